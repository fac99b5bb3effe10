"""`gpusnn profile`: time and count one training step of a configurable workload."""
from __future__ import annotations

from gpusnn import training, workflow
from gpusnn.commands._checks import data_source
from gpusnn.commands._options import add_run_options, config_from_args, nonnegative_int, positive_int
from gpusnn.profiling import Workload, format_table, profile


def register(sub) -> None:
    p = sub.add_parser("profile", help="throughput and memory of a training step on a backend",
                       description="Profile FO-STDGD training steps: time per phase (medians after warm-up), "
                                   "input and synaptic events per second, peak memory and, on a GPU, the "
                                   "achieved bandwidth. Without --data the input is random binary spikes.")
    add_run_options(p)
    g = p.add_argument_group("profile")
    g.add_argument("--density", type=float, default=0.05,
                   help="input spike probability per sample, step and input of the synthetic input (default 0.05)")
    g.add_argument("--inputs", type=positive_int, default=2048, help="input lines of the synthetic input (default 2048)")
    g.add_argument("--classes", type=positive_int, default=11, help="output classes of the synthetic input (default 11)")
    g.add_argument("--repeats", type=positive_int, default=5, help="timed steps; the report gives medians (default 5)")
    g.add_argument("--warmup", type=nonnegative_int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--json", help="write the report to this file (keys: see gpusnn.profiling)")
    p.set_defaults(func=run)


def run(args) -> dict:
    cfg, hidden = config_from_args(args)
    workflow.check_backend(cfg.train.backend)
    data = None
    if args.data is None:
        widths = (args.inputs, *hidden, args.classes)
    else:
        encoded = workflow.load_for(cfg, data_source(args.data), progress=args.progress)
        cfg = training.with_input_drive(cfg, encoded.train)          # theta as `gpusnn train` would set it
        widths = (encoded.train.n_inputs, *hidden, encoded.n_classes)
        data = (encoded.train, encoded.train_labels)
    work = Workload(widths=widths, n_steps=cfg.network.n_steps, batch_size=cfg.train.batch_size,
                    density=None if args.data else args.density, data=args.data, backend=cfg.train.backend,
                    repeats=args.repeats, warmup=args.warmup, seed=cfg.train.seed)
    rep = profile(work, cfg, data=data, progress=args.progress)
    print(format_table(rep))
    return rep
