"""Sweeps on other executors: shards merged, a 2-worker Dask LocalCluster and MPI worker ranks
all give the cells of the local sweep (everything but wall-clock times)."""
from __future__ import annotations

import json
import sys

import pytest

from gpusnn import cli, executors, sweep
from gpusnn.errors import ConfigError
from test_distributed import run_ranks
from test_sweep import TINY

ALPHAS = ["--alphas", "0.7", "1.3", "1.9"]


def cells_by_key(doc: dict) -> dict:
    return {c["key"]: sweep.without_timing(c) for c in doc["cells"]}


def sweep_cli(out, *extra) -> dict:
    assert cli.main(["-q", "sweep", *TINY, *ALPHAS, "--out", str(out), *extra]) == 0
    return json.loads((out / "sweep.json").read_text())


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The local sweep (one process): 3 cells."""
    doc = sweep_cli(tmp_path_factory.mktemp("local") / "sweep")
    assert len(doc["cells"]) == 3 and all(c["status"] == "done" for c in doc["cells"])
    return doc


def test_shards_run_every_nth_cell_and_merge_into_the_local_sweep(local, tmp_path):
    out = tmp_path / "sweep"
    for i in range(2):
        assert cli.main(["-q", "sweep", *TINY, *ALPHAS, "--out", str(out), "--shard", f"{i}/2"]) == 0
    shards = [json.loads((out / f"sweep-shard-{i}-of-2.json").read_text()) for i in range(2)]
    assert [len(s["cells"]) for s in shards] == [2, 1] and [s["shard"] for s in shards] == ["0/2", "1/2"]
    assert [c["alpha"] for c in shards[0]["cells"]] == [0.7, 1.9] and shards[1]["cells"][0]["alpha"] == 1.3
    # a job array with more tasks than cells: the extra task finishes with an empty shard
    assert cli.main(["-q", "sweep", *TINY, *ALPHAS, "--out", str(out), "--shard", "3/4"]) == 0
    assert json.loads((out / "sweep-shard-3-of-4.json").read_text())["cells"] == []
    files = [str(out / f"sweep-shard-{i}-of-2.json") for i in range(2)]
    assert cli.main(["-q", "sweep", "merge", *files, "--out", str(tmp_path / "merged"),
                     "--json", str(tmp_path / "m.json")]) == 0
    merged = json.loads((tmp_path / "merged" / "sweep.json").read_text())
    assert cells_by_key(merged) == cells_by_key(local)
    assert merged["grid"] == local["grid"] and "shard" not in merged
    assert (tmp_path / "merged" / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "m.json").read_text())["cells"] == 3


def test_merge_keeps_a_finished_cell_over_an_unfinished_one(local, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    first = dict(local["cells"][0], status="failed")
    sweep.write_results(a, {**local, "cells": [first]})
    sweep.write_results(b, {**local, "cells": local["cells"]})
    merged = sweep.merge_results([a, b])
    assert cells_by_key(merged) == cells_by_key(local) and merged["grid"] == local["grid"]
    other = {**local, "grid": {**local["grid"], "alphas": [0.1]}, "cells": []}
    sweep.write_results(a, other)
    assert sweep.merge_results([a, b])["grid"] is None


def test_merge_of_a_missing_or_foreign_file_exits_2(tmp_path, capsys):
    assert cli.main(["-q", "sweep", "merge", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2
    assert "nope.json: no such sweep results file" in capsys.readouterr().err
    (tmp_path / "x.json").write_text('{"format": "other"}')
    assert cli.main(["-q", "sweep", "merge", str(tmp_path / "x.json"), "--out", str(tmp_path)]) == 2
    assert "not a gpusnn-sweep v1 results file" in capsys.readouterr().err


@pytest.mark.parametrize("spec,want", [("local:3", executors.ExecutorSpec("local", 3)), ("mpi", executors.ExecutorSpec("mpi")),
                                       ("dask://node01:8786", executors.ExecutorSpec("dask", address="tcp://node01:8786"))])
def test_executor_specs(spec, want):
    assert executors.parse(spec) == want


@pytest.mark.parametrize("spec", ["local:0", "local", "dask://node01", "slurm", "dask://:80"])
def test_bad_executor_specs_are_config_errors(spec):
    with pytest.raises(ConfigError, match="--executor"):
        executors.parse(spec)


@pytest.mark.parametrize("text", ["2/2", "a/3", "1", "-1/2", "1/0"])
def test_bad_shards_are_config_errors(text):
    with pytest.raises(ConfigError, match="--shard"):
        sweep.Shard.parse(text)


def test_bad_sweep_execution_options_exit_2(tmp_path, capsys):
    for extra, msg in ((["--executor", "local:x"], "--executor 'local:x'"), (["--shard", "3/2"], "--shard"),
                       (["--executor", "local:2", "--jobs", "2"], "not both")):
        assert cli.main(["-q", "sweep", *TINY, "--out", str(tmp_path), *extra]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "sweep.json").exists()


def test_sweep_on_a_two_worker_dask_cluster_equals_the_local_sweep(local, tmp_path):
    from dask.distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"OMP_NUM_THREADS": "1"}) as cluster:
        port = cluster.scheduler_address.rpartition(":")[2]
        doc = sweep_cli(tmp_path / "sweep", "--executor", f"dask://127.0.0.1:{port}")
    assert cells_by_key(doc) == cells_by_key(local)


def test_sweep_on_mpi_worker_ranks_equals_the_local_sweep(local, tmp_path):
    out = tmp_path / "sweep"
    res = run_ranks(3, sys.executable, "-m", "mpi4py.futures", "-m", "gpusnn", "-q", "sweep", *TINY, *ALPHAS,
                    "--out", str(out), "--executor", "mpi", timeout=600)
    assert res.returncode == 0, res.stderr
    assert cells_by_key(json.loads((out / "sweep.json").read_text())) == cells_by_key(local)
