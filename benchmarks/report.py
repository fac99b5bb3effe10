"""Markdown tables of the JSON results in benchmarks/results/ (pasted into BENCHMARKS.md).

    python benchmarks/report.py [DIR]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from common import RESULTS

MIB = 2 ** 20


def _load(d: Path, name: str):
    p = d / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def machine_line(res: dict) -> str:
    m, v = res["machine"], res["machine"]["versions"]
    blas = ", ".join(f"{b['internal_api']} {b['architecture']} x{b['num_threads']}" for b in m.get("blas", []))
    libs = ", ".join(f"{k} {v[k]}" for k in ("numpy", "scipy", "torch", "snntorch", "spikingjelly", "tonic") if k in v)
    return f"{m['date']}, {m['cpu']} x{m['cpu_cores']}, Python {v['python']}, {libs}; BLAS {blas}"


def training_table(res: dict) -> str:
    w = res["workload"]
    head = ("| T | gpusnn s/epoch | snnTorch s/epoch | SpikingJelly s/epoch | snnTorch / gpusnn | SpikingJelly / gpusnn "
            "| gpusnn training RSS MiB | snnTorch training RSS MiB | SpikingJelly training RSS MiB |\n"
            "|---|---|---|---|---|---|---|---|---|")
    rows = [f"| {r['T']} | {r['gpusnn']['epoch_s']:.3f} | {r['snntorch']['epoch_s']:.3f} | {r['spikingjelly']['epoch_s']:.3f} "
            f"| {r['snntorch_over_gpusnn_time']:.1f}x | {r['spikingjelly_over_gpusnn_time']:.1f}x "
            f"| {r['gpusnn']['training_rss_bytes'] / MIB:.1f} | {r['snntorch']['training_rss_bytes'] / MIB:.1f} "
            f"| {r['spikingjelly']['training_rss_bytes'] / MIB:.1f} |" for r in res["rows"]]
    peak = ("\n\nPeak RSS of the whole process (MiB; includes the interpreter, libraries and the data): "
            + "; ".join(f"T={r['T']}: gpusnn {r['gpusnn']['peak_rss_bytes'] / MIB:.0f}, snnTorch "
                        f"{r['snntorch']['peak_rss_bytes'] / MIB:.0f}, SpikingJelly {r['spikingjelly']['peak_rss_bytes'] / MIB:.0f}"
                        for r in res["rows"]))
    return (f"{'-'.join(map(str, w['widths']))}, batch {w['batch']}, {w['samples']} samples, density {w['density']}, "
            f"{w['threads']} threads, backend {w['backend']}, medians of {w['rounds']} alternating rounds\n\n"
            + head + "\n" + "\n".join(rows) + peak)


def realrate_table(res: dict) -> str:
    w = res["workload"]
    head = ("| T | threads | coalesced density | events / line / step | gpusnn s/epoch | SpikingJelly s/epoch "
            "| gpusnn / SpikingJelly | CPU s/epoch gpusnn / SpikingJelly (ratio) | load average before / after "
            "| gpusnn hidden silent / saturated / spikes per step | SpikingJelly hidden "
            "silent / saturated / spikes per step | train accuracy last epoch gpusnn / SpikingJelly "
            "| training RSS MiB gpusnn / SpikingJelly |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def cpu(r):
        if "gpusnn_over_spikingjelly_cpu" not in r:
            return "n/a"
        return (f"{r['gpusnn']['epoch_cpu_s']:.2f} / {r['spikingjelly']['epoch_cpu_s']:.2f} "
                f"({r['gpusnn_over_spikingjelly_cpu']:.2f})")

    def load(r):
        return " / ".join(f"{v:.1f}" for v in r["load_average_1min"]) if "load_average_1min" in r else "n/a"

    def fire(f):
        return "n/a" if f is None else (f"{f['silent']:.0%} / {f['saturated']:.0%} / "
                                        f"{f['spikes_per_neuron_step']:.2f}")
    rows = [f"| {r['T']} | {r['threads']} | {r['coalesced_density']:.1%} | {r['events_per_line_step']:.2f} "
            f"| {r['gpusnn']['epoch_s']:.3f} | {r['spikingjelly']['epoch_s']:.3f} "
            f"| **{r['gpusnn_over_spikingjelly_time']:.2f}** | {cpu(r)} | {load(r)} | {fire(r['gpusnn']['hidden_firing'])} "
            f"| {fire(r['spikingjelly']['hidden_firing'])} | {r['gpusnn']['train_accuracy'][-1]:.0%} / "
            f"{r['spikingjelly']['train_accuracy'][-1]:.0%} | {r['gpusnn']['training_rss_bytes'] / MIB:.0f} / "
            f"{r['spikingjelly']['training_rss_bytes'] / MIB:.0f} |" for r in res["rows"]]
    return (f"{'-'.join(map(str, w['widths']))}, batch {w['batch']}, {w['samples']} samples, {w['rate']} events per "
            f"line per step, gpusnn init_scale {w['gpusnn_init_scale']} lr {w.get('gpusnn_lr', 'default')}, backend {w['backend']}, "
            f"medians of {w['rounds']} alternating rounds\n\n" + head + "\n" + "\n".join(rows))


def density_table(res: dict) -> str:
    w = res["workload"]
    out = [f"first layer {w['widths'][0]}-{w['widths'][1]}, T {w['T']}, batch {w['batch']}"]
    for n, part in res["by_threads"].items():
        cross = part["measured_crossover_density"]
        out.append(f"\n{n} BLAS thread(s): measured crossover {'none' if cross is None else f'{cross:.0%}'}, "
                   f"auto threshold (fastpaths.DENSE_ABOVE) {part['auto_threshold']:.0%}\n")
        out.append("| input density | event-driven ms | dense ms | dense / event | auto picks |\n|---|---|---|---|---|")
        out += [f"| {r['density']:.1%} | {r['event_s'] * 1e3:.2f} | {r['dense_s'] * 1e3:.2f} | "
                f"{r['dense_over_event']:.2f} | {r['auto_picks']}{'' if r['auto_is_faster_choice'] else ' (slower)'} |"
                for r in part["rows"]]
    return "\n".join(out)


def reader_table(res: dict) -> str:
    w = res["workload"]
    head = "| reader | median s | M events/s | gpusnn speed-up | peak RSS over start MiB |\n|---|---|---|---|---|"
    names = {"gpusnn": "gpusnn data_tools.aedat3", "spikingjelly": "SpikingJelly load_aedat_v3",
             "tonic": "tonic get_aer_events_from_file + decode"}
    speedup = {k: "" if k == "gpusnn" else f"{res['speedup_pairwise_median']['gpusnn_vs_' + k]:.1f}x"
               for k in res["readers"]}
    rows = [f"| {names[k]} | {r['median_s']:.3f} | {r['events_per_s'] / 1e6:.1f} | {speedup[k]} "
            f"| {r['peak_rss_over_start_bytes'] / MIB:.0f} |" for k, r in res["readers"].items()]
    return (f"{w['events']:,} events ({w['file_bytes'] / 1e6:.0f} MB), fresh process per read, "
            f"{w['rounds']} alternating rounds\n\n" + head + "\n" + "\n".join(rows))


def scaling_table(res: dict) -> str:
    wl = res["workload"]
    out = [f"{wl['base']}, backend {wl['backend']}, {wl.get('threads', '?')} BLAS thread(s) "
           "(step = forward + gradient + update)"]
    for key, label in (("vs_T", "T"), ("vs_hidden", "hidden"), ("vs_batch", "batch")):
        out.append(f"\n| {label} | " + " | ".join(str(r[label]) for r in res[key]) + " |")
        out.append("|---|" + "---|" * len(res[key]))
        out.append("| step ms | " + " | ".join(f"{r['step_s'] * 1e3:.1f}" for r in res[key]) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    d = Path((argv or sys.argv[1:] or [RESULTS])[0])
    for name, fn in (("training", training_table), ("realrate", realrate_table), ("density", density_table),
                     ("reader", reader_table),
                     ("scaling", scaling_table)):
        res = _load(d, name)
        if res is not None:
            print(f"### {name}\n\n{machine_line(res)}\n\n{fn(res)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
