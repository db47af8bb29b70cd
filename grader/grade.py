"""Grade one submission: read it, probe it in the sandbox, judge what the probe saw.

`grade_submission` never raises because of what a submission holds: anything that goes wrong
becomes checks scored 0 with the reason, and the report says what happened.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader.judge import JudgeContext, all_failed, judge, load_expected
from grader.notebook_io import (
    NotebookError,
    find_notebook,
    normalise,
    read_notebook,
    release_test_sources,
)
from grader.probe_host import ProbeHost, Slot
from grader.report import Report
from grader.sandbox import Limits, Mount, Sandbox
from grader.spec import load_checkset
from grader.supervise import TimeLimits, run_probe
from solutions.data import blinded_root, load_split, resolve_root
from solutions.manifest import Manifest
from solutions.paths import RELEASE_DIR

MAX_EXTRA_FILE_BYTES = 5 * 1024**2
MAX_EXTRA_FILES = 50


@dataclass(frozen=True)
class GradeConfig:
    """How to grade: limits, threads, where scratch folders go."""

    time: TimeLimits = field(default_factory=TimeLimits)
    limits: Limits = field(default_factory=Limits)
    threads: int = max(1, os.cpu_count() or 1)
    # The probe's uid. It must belong to nothing else on the machine: after each probe every
    # process of this uid is killed. Batches use uid, uid + 1, ... one per concurrent job, so
    # that one job's fork bomb cannot use up another job's process limit.
    uid: int = 990_000
    scratch_root: Path | None = None
    keep_scratch: bool = False


@dataclass(frozen=True)
class ProbeInputs:
    """What every probe of a grading run reads, prepared once: the test split, shuffled in an
    order only the judge can undo, the data root (test labels withheld), matplotlib's fonts."""

    images_file: Path  # uint8 (N, C, H, W), permuted
    labels: torch.Tensor  # int64 (N,), permuted the same way
    data_root: Path

    @property
    def folder(self) -> Path:
        return self.images_file.parent

    @property
    def matplotlib_cache(self) -> Path:
        return self.folder / "matplotlib"


def _build_matplotlib_cache(folder: Path) -> None:
    """Build matplotlib's font list once; each probe copies it instead of spending seconds on it."""
    folder.mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", "import matplotlib.font_manager"],
        env={**os.environ, "MPLCONFIGDIR": str(folder), "MPLBACKEND": "Agg"},
        capture_output=True,
        timeout=120,
    )
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def prepare_inputs(manifest: Manifest, folder: Path, seed: int | None = None) -> ProbeInputs:
    """Decode the real test split once and write it, shuffled, for the probes to read.

    Shuffling with a fresh seed means a notebook that "predicts" by replaying the test labels in
    their usual order scores at chance.
    """
    root = resolve_root(manifest.dataset)
    images, labels = load_split(manifest.dataset, train=False, root=root.root)
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # the probe's unprivileged uid reads it (read-only mount)
    images_file = folder / "test_images.pt"
    torch.save(images[order].contiguous(), images_file)
    images_file.chmod(0o644)
    # The notebook's own data cell sees every split, but not the test labels.
    data_root = blinded_root(manifest.dataset, root.root, folder / "data")
    inputs = ProbeInputs(images_file, labels[order].clone(), data_root)
    _build_matplotlib_cache(inputs.matplotlib_cache)
    return inputs


def student_name(path: Path, assignment: str) -> str:
    """`submitted/<student>/<assignment>/...` gives <student>; otherwise the folder's name."""
    folder = path if path.is_dir() else path.parent
    if folder.name == assignment and folder.parent.name:
        return folder.parent.name
    return folder.name or "unknown"


def _stage_files(folder: Path, manifest: Manifest, work: Path) -> dict[str, str]:
    """Copy the weights and small extra files into the probe's work folder.

    Returns, per weights file, why it was not staged (missing, a link, too large).
    """
    problems = {}
    for model in manifest.models:
        src = folder / model.weights
        if not src.exists() and not src.is_symlink():
            problems[model.weights] = f"{model.weights} was not submitted"
        elif src.is_symlink() or not src.is_file():
            problems[model.weights] = f"{model.weights} is not a regular file"
        elif src.stat().st_size > model.max_weights_mb * 1024**2:
            size = src.stat().st_size / 1024**2
            problems[model.weights] = (
                f"{model.weights} is {size:,.0f} MB; the limit is {model.max_weights_mb:g} MB"
            )
        else:
            shutil.copyfile(src, work / model.weights)
    weights = {m.weights for m in manifest.models}
    extras = [
        p
        for p in sorted(folder.iterdir())
        if p.name not in weights
        and p.suffix != ".ipynb"
        and p.is_file()
        and not p.is_symlink()
        and p.stat().st_size <= MAX_EXTRA_FILE_BYTES
    ]
    for extra in extras[:MAX_EXTRA_FILES]:
        shutil.copyfile(extra, work / extra.name)
    return problems


def _sandbox(slot: Slot, inputs: ProbeInputs, config: GradeConfig) -> Sandbox:
    threads = str(config.threads)
    return Sandbox(
        mounts=(
            Mount(slot.folder("work"), Path("/submission"), writable=True),
            Mount(slot.folder("outs"), Path("/out"), writable=True),
            Mount(slot.folder("job"), Path("/job")),
            Mount(inputs.folder, Path("/grader-input")),
            Mount(inputs.data_root, Path("/data")),
        ),
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": threads,
            # Threads that sleep rather than spin when they wait: with other probes or jobs on
            # the same cores, spinning OpenMP threads made a forward pass 10x slower.
            "OMP_WAIT_POLICY": "PASSIVE",
            "MKL_NUM_THREADS": threads,
            # OpenBLAS would start a thread pool at import: the zygote must fork single-threaded.
            "OPENBLAS_NUM_THREADS": "1",
            "NBGRADER_EXECUTION": "autograde",
            "DLGRADE_DATA": "/data",
        },
        cwd=Path("/submission"),
        uid=slot.uid,
        limits=config.limits,
    )


def open_host(
    manifest: Manifest, inputs: ProbeInputs, config: GradeConfig, uid: int | None = None
) -> ProbeHost:
    """A job slot with its scratch folders and warm sandbox, to grade submissions in turn."""
    root = Path(tempfile.mkdtemp(prefix="dlgrade-slot-", dir=config.scratch_root))
    root.chmod(0o755)  # the zygote's children cross it as the slot's uid
    slot = Slot(root, config.uid if uid is None else uid)
    slot.clear()
    return ProbeHost(_sandbox(slot, inputs, config), slot, manifest.id, config.time.startup)


def close_host(host: ProbeHost, config: GradeConfig) -> None:
    host.close()
    if not config.keep_scratch:
        shutil.rmtree(host.slot.root, ignore_errors=True)


def grade_submission(
    path: Path,
    manifest: Manifest,
    inputs: ProbeInputs,
    config: GradeConfig = GradeConfig(),
    student: str | None = None,
    expected: dict | None = None,
    host: ProbeHost | None = None,
) -> Report:
    """Grade one notebook or submission folder. Never raises because of the submission.

    `expected` (the assignment's expected answers) is read from grader/expected when not given;
    a batch passes it, so every student is judged against the same answers. `host` is the job
    slot to grade in; without one, a slot is opened for this submission and closed after.
    """
    started = time.monotonic()
    student = student or student_name(path, manifest.id)
    own_host = host is None
    report = Report(manifest.id, student, [], sandbox="")
    try:
        host = host or open_host(manifest, inputs, config)
        expected = expected if expected is not None else load_expected(manifest.id)
        checkset = load_checkset(manifest.id)
        folder = path if path.is_dir() else path.parent
        notebook_path = find_notebook(folder, manifest.notebook) if path.is_dir() else path
        notebook = read_notebook(notebook_path)
        report.notes += notebook.warnings
        ours = release_test_sources(RELEASE_DIR / manifest.id / manifest.notebook)
        graded = [
            (number, code)
            for number, code in zip(notebook.numbers, notebook.code_cells, strict=True)
            if code.strip() and normalise(code) not in ours
        ]

        slot, sandbox = host.slot, host.sandbox
        slot.clear()
        problems = _stage_files(folder, manifest, slot.folder("work"))
        report.sandbox = sandbox.kind
        sandbox.prepare(slot.folder("work"))
        sandbox.prepare(slot.folder("outs"))
        job = {
            "assignment": manifest.id,
            "cells": [code for _, code in graded],
            "cell_numbers": [number for number, _ in graded],
            "skip": {},
            "observers": checkset.observers_for([c.name for c in manifest.checks]),
            "workdir": str(sandbox.inside(slot.folder("work"))),
            "settings": _plain(manifest.probe),
            "models": [
                {
                    "key": m.key,
                    "class_name": m.class_name,
                    "args": list(m.args),
                    "weights": m.weights,
                }
                for m in manifest.models
            ],
            "mean": list(manifest.mean),
            "std": list(manifest.std),
            "test_images": str(sandbox.inside(inputs.images_file)),
            "weights_problems": problems,
            "matplotlib_cache": str(sandbox.inside(inputs.matplotlib_cache)),
        }
        result = run_probe(host, job, config.time, config.threads)
        report.notes += result.notes
        ctx = JudgeContext(manifest, expected, inputs.labels)
        report.checks = judge(checkset, manifest, result.observations, ctx)
    except NotebookError as err:
        report.checks = all_failed(manifest, "error", str(err))
    except Exception as err:  # noqa: BLE001 - a grader bug must not lose the batch
        report.checks = all_failed(manifest, "error", f"internal grader error: {err!r}")
        report.notes.append(traceback.format_exc(limit=5))
    finally:
        report.duration_s = time.monotonic() - started
        if own_host and host is not None:
            close_host(host, config)
    return report


def _plain(value):
    """Manifest values (tuples, mapping proxies) as JSON-ready lists and dicts."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value
