"""Throughput of one class graded here with --jobs 2 and on a two-worker Dask LocalCluster.

    python benchmarks/grade_cluster.py [--size 30] [--assignment res_dense_nets]

Builds one class as `grade_class.py` does (reference, variants, untouched release, hostile
submissions), grades it from scratch with `python -m grader grade --jobs 2`, then a copy of it
from scratch with `--dask` on a `distributed.LocalCluster` of two worker processes of one
thread each on this machine (the same two slots), and prints both in submissions per minute.
Both runs grade the same submissions in the same number of slots, each from a cold start, so
the difference per submission is what the coordination costs: sending each submission and its
report, the workers' own start (their test split, their zygotes) and Dask itself. Run it on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import distributed  # noqa: E402

from benchmarks.grade_class import build_class, data_env, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=30)
    parser.add_argument("--assignment", default="res_dense_nets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        local, cluster = Path(tmp) / "local", Path(tmp) / "cluster"
        env, data = data_env(args.assignment, Path(tmp) / "data")
        kinds = build_class(local, args.assignment, args.size)
        shutil.copytree(local / "submitted", cluster / "submitted", symlinks=True)
        base = [sys.executable, "-m", "grader", "grade", "--assignment", args.assignment]
        base += ["--quiet", "--no-gradebook"]
        local_s = timed([*base, str(local / "submitted"), "--jobs", "2"], REPO, env)
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, env=env
        ) as dask:
            address = dask.scheduler_address
            cluster_s = timed([*base, str(cluster / "submitted"), "--dask", address], REPO, env)
    n, made = args.size, ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    load = os.getloadavg()[0]
    print(f"\n{args.assignment} ({data} data), {n} submissions: {made}")
    print(f"{os.cpu_count()} CPU cores, load average {load:.1f} at the end")
    print(f"{'where':<36} {'seconds':>8} {'submissions/min':>16}")
    for where, seconds in (("here, --jobs 2", local_s), ("LocalCluster, 2 workers x 1", cluster_s)):
        print(f"{where:<36} {seconds:8.0f} {n / seconds * 60:16.1f}")
    print(f"coordination: {(cluster_s - local_s) / n:+.2f} s per submission")


if __name__ == "__main__":
    main()
