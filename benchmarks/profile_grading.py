"""Where grading time goes, stage by stage, for one submission and a class of each assignment.

    python benchmarks/profile_grading.py [--size 20] [--assignment ID ...]

For each assignment: the cold start of the CLI (`python -m grader --help` and `import torch,
torchvision` in fresh processes), then `python -m grader grade` run in this process (so that the
stages can be timed: the CLI's own code, unchanged, with timers wrapped around its steps) on one
reference submission with `--jobs 1`, and on a class (as `grade_class.py` builds it) with
`--jobs 2`. Stages: the test split (`prepare_inputs`), the reference observations in the parent
(`Session.prepare`), making the job slots (`open_host`: folders, control groups), starting each
probe (`ProbeHost.spawn`: the zygote, which imports torch, on a slot's first use, then a fork),
the student's cells and each observer (from the probe's own progress events), the judge,
writing the outputs. Times in a class are summed over both slots, so they can
exceed the wall clock. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.grade_class import build_class, data_env  # noqa: E402
from grader import cli, grade, inputs, probe_host, session, slots, supervise  # noqa: E402
from grader.manifest import assignment_ids  # noqa: E402


class Timers:
    """Seconds per stage, summed over calls (and threads)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._spawned = threading.local()  # when this thread's probe last finished starting

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def wrap(self, stage: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - started)

        return timed

    def spawn(self, function):
        """`ProbeHost.spawn`: the zygote's start on a slot's first use, a fork after."""
        timed = self.wrap("probe start (zygote on first use, then fork)", function)

        def spawn(host, *args, **kwargs):
            result = timed(host, *args, **kwargs)
            self._spawned.at = time.monotonic()
            return result

        return spawn

    def attempt(self, function):
        """`_run_attempt`, its probe's cells and observers timed from the progress events (the
        probe and this process read the same monotonic clock)."""

        def timed(host, *args, **kwargs):
            spawned = time.monotonic()
            attempt = function(host, *args, **kwargs)
            last = getattr(self._spawned, "at", spawned)
            for event in attempt.events:  # the latest end of each cell and observer, in order
                if "t" not in event:
                    continue
                kind = "cells" if event["event"] == "cell_end" else f"observer {event['name']}"
                self.add(kind, event["t"] - last)
                last = event["t"]
            self.add("probe attempts (whole)", time.monotonic() - spawned)
            return attempt

        return timed


def cold_start(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, capture_output=True, check=True)
    return time.perf_counter() - started


def profile(paths: list[Path], assignment: str, jobs: int) -> tuple[float, Timers]:
    """Grade `paths` with the CLI in this process, timers around its stages."""
    timers = Timers()
    patches = [
        mock.patch.object(
            inputs, "prepare_inputs", timers.wrap("test split", inputs.prepare_inputs)
        ),
        mock.patch.object(
            session.Session,
            "prepare",
            classmethod(timers.wrap("reference observations", session.Session.prepare.__func__)),
        ),
        mock.patch.object(slots, "open_host", timers.wrap("job slots", slots.open_host)),
        mock.patch.object(probe_host.ProbeHost, "spawn", timers.spawn(probe_host.ProbeHost.spawn)),
        mock.patch.object(supervise, "_run_attempt", timers.attempt(supervise._run_attempt)),
        mock.patch.object(session.Session, "judge", timers.wrap("judge", session.Session.judge)),
        mock.patch.object(grade, "parse_notebook", timers.wrap("notebook", grade.parse_notebook)),
        mock.patch.object(cli, "_write_outputs", timers.wrap("outputs", cli._write_outputs)),
    ]
    argv = ["grade", *map(str, paths), "--assignment", assignment, "--jobs", str(jobs)]
    with ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        started = time.perf_counter()
        code = cli.main([*argv, "--quiet", "--no-gradebook"])
        wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{assignment}: grading exited with {code}")
    return wall, timers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--assignment", nargs="+", default=assignment_ids())
    args = parser.parse_args()
    python = sys.executable
    print(f"cold `python -m grader --help`: {cold_start([python, '-m', 'grader', '--help']):.1f} s")
    print(
        f"cold `import torch, torchvision`: "
        f"{cold_start([python, '-c', 'import torch, torchvision']):.1f} s"
    )
    for assignment in args.assignment:
        with tempfile.TemporaryDirectory(prefix=f"profile-{assignment}-") as tmp:
            env, data = data_env(assignment, Path(tmp) / "data")
            with mock.patch.dict("os.environ", env):
                one_course, class_course = Path(tmp) / "one", Path(tmp) / "class"
                build_class(one_course, assignment, 1)
                build_class(class_course, assignment, args.size)
                one = profile(sorted((one_course / "submitted").iterdir()), assignment, 1)
                many = profile([class_course / "submitted"], assignment, 2)
        print(f"\n{assignment} ({data} data)")
        print(f"{'stage':<44} {'one, --jobs 1':>14} {f'{args.size}, --jobs 2':>14}")
        stages = list(dict.fromkeys([*one[1].seconds, *many[1].seconds]))
        for stage in stages:
            print(
                f"{stage:<44} {one[1].seconds.get(stage, 0):13.2f}s "
                f"{many[1].seconds.get(stage, 0):13.2f}s"
            )
        print(f"{'wall clock':<44} {one[0]:13.2f}s {many[0]:13.2f}s")
        rates = f"{60 / one[0]:14.1f} {args.size * 60 / many[0]:14.1f}"
        print(f"{'submissions per minute':<44} {rates}")


if __name__ == "__main__":
    main()
