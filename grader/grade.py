"""Grade one submission: read it as data, probe it in the sandbox, judge what the probe saw.

A `GradingRun` is what every submission of one run shares: the manifest, the check set, the
expected answers, the test split (shuffled, labels kept here), the settings drawn for this run
and the reference's observations for exactly those settings. `grade_submission` never raises
because of what a submission holds: anything that goes wrong becomes checks scored 0 with the
reason, and the report says what happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.cgroups import SlotGroups, find_layout
from grader.fingerprint import code_fingerprint
from grader.inputs import ProbeInputs
from grader.judge import all_failed
from grader.manifest import Manifest
from grader.notebook_io import (
    NotebookError,
    cells_to_run,
    last_part,
    parse_notebook,
    patched_parts,
    redefined_parts,
    release_imports,
    release_test_sources,
    star_imports,
    stopped_cells,
)
from grader.probe import colab
from grader.probe_host import ProbeHost, Slot
from grader.report import Report
from grader.safe_fs import remove, write_new
from grader.sandbox import Limits, Mount, Sandbox
from grader.session import Session
from grader.settings_key import SettingsSeed
from grader.staging import Staged, stage, student_name
from grader.supervise import TimeLimits, run_probe
from solutions.paths import RELEASE_DIR


@dataclass(frozen=True)
class GradeConfig:
    """How to grade: limits, threads, where scratch folders go."""

    time: TimeLimits = field(default_factory=TimeLimits)
    limits: Limits = field(default_factory=Limits)
    threads: int = max(1, os.cpu_count() or 1)
    scratch_root: Path | None = None
    keep_scratch: bool = False


# ---------------------------------------------------------------- one run's shared state


def release_tests_digest(manifest: Manifest) -> str:
    """A hash of the release notebook's test cells, which grading leaves out of the cells it
    runs: a re-released notebook regrades."""
    sources = release_test_sources(RELEASE_DIR / manifest.id / manifest.notebook)
    return hashlib.sha256("\0".join(sorted(sources)).encode()).hexdigest()


def run_fingerprint(
    manifest: Manifest,
    expected: dict,
    config: GradeConfig,
    settings_id: str = "",
    reference_id: str = "",
    data_id: str = "missing",
) -> str:
    """Hash of everything a grade depends on besides the submission: the grader's code and
    version, the manifest (points, checks), the expected answers, the limits, which probe
    settings (`settings_id`: a digest of the course's settings seed), what the reference and
    its alternatives computed with them (`reference_id`, `Session.reference_digest`), the
    release's test cells and which test split (`data_id`: `ProbeInputs.split_sha256`), so
    that fixing the data regrades."""
    digest = hashlib.sha256()
    for part in (
        code_fingerprint(),
        manifest.model_dump_json(),
        json.dumps(expected, sort_keys=True),
        json.dumps(asdict(config.time), sort_keys=True),
        json.dumps(asdict(config.limits), sort_keys=True),
        settings_id,
        reference_id,
        release_tests_digest(manifest),
        data_id,
    ):
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class GradingRun:
    """Everything the submissions of one run share (see the module docstring): the grading
    session (checks, settings, the reference's observations), the probes' inputs, the limits
    and the fingerprint of all that."""

    session: Session
    inputs: ProbeInputs
    config: GradeConfig
    fingerprint: str  # of everything a grade depends on except the submission itself
    settings_id: str = ""  # which settings (a digest of the course's seed, not the seed)

    @property
    def manifest(self) -> Manifest:
        return self.session.manifest

    @classmethod
    def prepare(
        cls,
        manifest: Manifest,
        inputs: ProbeInputs,
        config: GradeConfig = GradeConfig(),
        *,
        expected: dict | None = None,
        seed: SettingsSeed | None = None,
    ) -> GradingRun:
        """Draw the probe settings from `seed` (the course's, see grader.settings_key; fresh
        random ones when None) and observe the reference with them."""
        # A course's reference observations are kept beside its settings key: the same
        # settings and code give the same observations, so a regrade need not compute them.
        cache = seed.path.parent / "reference" if seed else None
        session = Session.prepare(
            manifest, seed.seed if seed else None, expected=expected, cache=cache
        )
        # Unseeded settings are this run's alone: nothing graded with them is reused later.
        settings_id = seed.digest if seed else secrets.token_hex(16)
        return cls.assemble(session, inputs, config, settings_id)

    @classmethod
    def assemble(
        cls, session: Session, inputs: ProbeInputs, config: GradeConfig, settings_id: str
    ) -> GradingRun:
        """A run of a prepared session, its fingerprint computed here: a cluster worker
        assembles the coordinator's session with its own inputs and compares fingerprints."""
        fingerprint = run_fingerprint(
            session.manifest,
            dict(session.expected),
            config,
            settings_id,
            session.reference_digest(),
            inputs.split_sha256,
        )
        return cls(session, inputs, config, fingerprint, settings_id)


# ---------------------------------------------------------------- job slots


def _sandbox(
    slot: Slot, inputs: ProbeInputs, config: GradeConfig, groups: SlotGroups | None
) -> Sandbox:
    threads = str(config.threads)
    mounts = [
        Mount(slot.folder("work"), Path("/submission"), writable=True),
        Mount(slot.folder("outs"), Path("/out"), writable=True),
        Mount(slot.folder("job"), Path("/job")),
        Mount(inputs.folder, Path("/grader-input")),
    ]
    if groups is not None:  # the zygote moves each probe into its attempt's groups
        mounts += [Mount(f, SlotGroups.inside(k), writable=True) for k, f in groups.folders.items()]
    if inputs.data_root is not None:
        mounts.append(Mount(inputs.data_root, Path("/data")))
        # Where a Colab notebook's torchvision data sets are ("data" from /content, Colab's
        # working folder): a hard-coded root finds the data (grader/probe/colab.py).
        mounts.append(Mount(inputs.data_root, Path("/content/data")))
    return Sandbox(
        mounts=tuple(mounts),
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
        whole_probe=groups.layout.describe() if groups is not None else "",
        # Colab's Drive, into the probe's own /tmp (fresh for every probe), where
        # grader/probe/colab.py makes MyDrive lead to the submitted files.
        links=((Path(colab.DRIVE), colab.DRIVE_STAND_IN),),
    )


def open_host(run: GradingRun, uid: int) -> ProbeHost:
    """A job slot with its scratch folders and warm sandbox, to grade submissions in turn."""
    root = Path(tempfile.mkdtemp(prefix="dlgrade-slot-", dir=run.config.scratch_root))
    slot = Slot(root, uid)
    slot.create()
    # Control groups hold a whole probe where the sandbox runs probes as their own uid.
    layout = find_layout() if Sandbox.root_drops_privileges() else None
    groups = SlotGroups(layout, uid) if layout is not None else None
    if groups is not None:
        groups.create()
    sandbox = _sandbox(slot, run.inputs, run.config, groups)
    release = RELEASE_DIR / run.manifest.id / run.manifest.notebook
    return ProbeHost(
        sandbox,
        slot,
        run.manifest.id,
        run.config.time.startup,
        run.config.threads,
        groups,
        preload=release_imports(release),
    )


def close_host(host: ProbeHost, config: GradeConfig) -> None:
    host.close()
    if not config.keep_scratch:
        remove(host.slot.root)  # what probes left, however deep, links not followed


# ---------------------------------------------------------------- grading


def _stager(staged: Staged, uid: int | None):
    """Fills an attempt's fresh working folder: the notebook's files, owned by the probe."""

    def fill(work: Path) -> None:
        for name, data in {**staged.extras, **staged.weights}.items():
            write_new(work / name, data, uid)

    return fill


def grade_staged(staged: Staged, run: GradingRun, host: ProbeHost, student: str) -> Report:
    """Probe and judge one staged submission in `host`'s slot."""
    manifest, started = run.manifest, time.monotonic()
    report = _new_report(run, student, host)
    report.notes += list(staged.notes)
    notebook = parse_notebook(staged.notebook_name, staged.notebook)
    report.notes += notebook.warnings
    release = RELEASE_DIR / manifest.id / manifest.notebook
    graded = cells_to_run(notebook, release)
    closing = last_part(graded, release)
    slot, inside = host.slot, host.inside
    slot.clear()
    weights_dir = slot.folder("job") / "weights"
    weights_dir.mkdir(mode=0o755)
    # Read-only copies of what was handed in: the checks read these, not the working folder's,
    # which the student's code they run may rewrite (probe.context.ProbeContext.submitted).
    for name, data in {**staged.extras, **staged.weights}.items():
        write_new(weights_dir / name, data, mode=0o644)
    job = {
        "manifest": manifest.model_dump(mode="json"),
        "cells": [code for _, code, _ in graded],
        "cell_numbers": [number for number, _, _ in graded],
        "skip": {},
        "given": [i for i, (_, _, given) in enumerate(graded) if given],
        "closing_after": closing,
        "observers": run.session.observers,
        "weights_dir": str(inside(weights_dir)),
        "test_images": str(inside(run.inputs.images_file)) if run.inputs.images_file else None,
        "weights_problems": staged.problems,
        "matplotlib_cache": str(inside(run.inputs.matplotlib_cache)),
    }
    session = run.session
    result = run_probe(
        host, job, session.settings, run.config.time, _stager(staged, host.probe_uid)
    )
    report.notes += result.notes + redefined_parts(notebook, release, result.graded)
    report.notes += patched_parts(release, result.patched) + stopped_cells(result.cells)
    report.notes += star_imports(notebook)
    report.machine_trouble = list(result.machine_trouble)
    if not run.inputs.intact():
        report.machine_trouble.append("the shared test images changed during the run")
        raise RuntimeError("the shared test images changed during grading: regrade")
    report.checks = session.judge(
        result.observations,
        labels=run.inputs.labels,
        no_test_split=run.inputs.missing,
        test_split=run.inputs.split_name if run.inputs.stand_ins else "",
    )
    if run.inputs.missing and manifest.models:
        # The accuracy checks could not run, through no fault of the student's: no grade yet.
        report.status, report.reason = "incomplete", run.inputs.missing
    report.duration_s = time.monotonic() - started
    return report


def _new_report(run: GradingRun, student: str, host: ProbeHost) -> Report:
    inputs = run.inputs
    return Report(
        run.manifest.id,
        student,
        [],
        sandbox=host.sandbox.kind,
        data=inputs.data,
        data_root=inputs.source_root,
    )


def grade_submission(
    path: Path | None,
    run: GradingRun,
    host: ProbeHost,
    student: str | None = None,
    staged: Staged | None = None,
) -> Report:
    """Grade one notebook or submission folder (or, without `path`, the `staged` files of
    `student`). Never raises because of the submission."""
    started = time.monotonic()
    manifest = run.manifest
    student = student or student_name(path, manifest.id)
    report = _new_report(run, student, host)
    try:
        staged = staged or stage(path, manifest)
        report = grade_staged(staged, run, host, student)
    except NotebookError as err:
        report.checks = all_failed(manifest, "error", str(err))
        report.status, report.reason = "ungradable", str(err)
        report.notes += list(staged.notes) if staged else []
    except Exception as err:  # noqa: BLE001 - a grader bug must not lose the batch
        report.checks = all_failed(manifest, "error", f"internal grader error: {err!r}")
        report.notes.append(traceback.format_exc(limit=5))
        report.machine_trouble.append(f"internal grader error: {err!r}")
    report.duration_s = time.monotonic() - started
    return report
