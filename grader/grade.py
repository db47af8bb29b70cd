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
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from grader.cgroups import SlotGroups, find_layout
from grader.fingerprint import code_fingerprint
from grader.judge import all_failed
from grader.manifest import Manifest
from grader.notebook_io import (
    MAX_NOTEBOOK_BYTES,
    NotebookError,
    choose_notebook,
    normalise,
    parse_notebook,
    release_test_sources,
    too_big,
)
from grader.probe_host import ProbeHost, Slot
from grader.report import Report
from grader.safe_fs import UnsafeFile, list_files, read_capped, remove, write_new
from grader.sandbox import Limits, Mount, Sandbox
from grader.session import Session
from grader.settings_key import SettingsSeed
from grader.supervise import TimeLimits, run_probe
from grader.text import inert_line
from solutions.data import (
    DataNotFoundError,
    blinded_root,
    is_stand_in,
    load_split,
    resolve_root,
)
from solutions.data._catalog import dataset_info
from solutions.paths import RELEASE_DIR

MAX_EXTRA_FILE_BYTES = 5 * 1024**2
MAX_EXTRA_FILES = 50
MAX_NOTEBOOKS = 5


@dataclass(frozen=True)
class GradeConfig:
    """How to grade: limits, threads, where scratch folders go."""

    time: TimeLimits = field(default_factory=TimeLimits)
    limits: Limits = field(default_factory=Limits)
    threads: int = max(1, os.cpu_count() or 1)
    scratch_root: Path | None = None
    keep_scratch: bool = False


# ---------------------------------------------------------------- the test split


@dataclass(frozen=True)
class ProbeInputs:
    """What every probe of a run reads, prepared once: the test split, shuffled in an order
    only the judge can undo, the data root (test labels withheld), matplotlib's fonts.

    Without the test split on this machine (MNIST cannot always be had), `images_file` and
    `labels` are None and `missing` says why; the accuracy checks then report it, and the
    reports are not final. `split_sha256` identifies the test split graded on (its images and
    labels in their published order; "missing" without one): grades depend on it.
    """

    folder: Path
    images_file: Path | None
    labels: torch.Tensor | None
    data_root: Path | None
    images_sha256: str = ""
    missing: str = ""
    split_sha256: str = "missing"
    data: str = "missing"  # "real", or "stand-ins" (generated, solutions/data/fixtures.py)
    source_root: str = ""  # where the test split was found
    split_name: str = ""  # what the accuracy checks measured on, in words

    @property
    def stand_ins(self) -> bool:
        return self.data == "stand-ins"

    @property
    def matplotlib_cache(self) -> Path:
        return self.folder / "matplotlib"

    def intact(self) -> bool:
        """Whether the shared test images are still exactly what was written."""
        if self.images_file is None:
            return True
        return _sha256(self.images_file.read_bytes()) == self.images_sha256


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


def prepare_inputs(
    manifest: Manifest, folder: Path, seed: int | None = None, *, fonts: bool = True
) -> ProbeInputs:
    """Decode the real test split once and write it, shuffled, for the probes to read.

    Shuffling with a fresh seed means a notebook that "predicts" by replaying the test labels in
    their usual order scores at chance.
    """
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # the probe's unprivileged uid reads it (read-only mount)
    if fonts:
        _build_matplotlib_cache(folder / "matplotlib")
    try:
        root = resolve_root(manifest.dataset)
        images, labels = load_split(manifest.dataset, train=False, root=root.root)
    except DataNotFoundError as err:
        return ProbeInputs(folder, None, None, None, missing=_missing_data(manifest, err))
    digest = hashlib.sha256(images.contiguous().numpy().tobytes())
    digest.update(labels.contiguous().numpy().tobytes())
    info = dataset_info(manifest.dataset)
    # Stand-ins carry a marker; a test split of another size is not the real one either.
    stand_ins = is_stand_in(manifest.dataset, root.root) or len(labels) != info.test_size
    split_name = f"the {info.title} test split"
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    images_file = folder / "test_images.pt"
    torch.save(images[order].contiguous(), images_file)
    images_file.chmod(0o644)
    # The notebook's own data cell sees every split, but not the test labels.
    data_root = blinded_root(manifest.dataset, root.root, folder / "data")
    return ProbeInputs(
        folder,
        images_file,
        labels[order].clone(),
        data_root,
        _sha256(images_file.read_bytes()),
        split_sha256=digest.hexdigest(),
        data="stand-ins" if stand_ins else "real",
        source_root=str(root.root),
        split_name=f"generated stand-ins of {split_name}" if stand_ins else split_name,
    )


def _missing_data(manifest: Manifest, err: Exception) -> str:
    first, title = str(err).splitlines()[0], dataset_info(manifest.dataset).title
    return (
        f"the grading machine has no {title} test split ({first}); set "
        "DLGRADE_DATA to a folder holding it in torchvision's layout and grade again"
    )


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
        fingerprint = run_fingerprint(
            manifest,
            dict(session.expected),
            config,
            settings_id,
            session.reference_digest(),
            inputs.split_sha256,
        )
        return cls(session, inputs, config, fingerprint)


# ---------------------------------------------------------------- reading a submission


@dataclass(frozen=True)
class Staged:
    """A submission read as data: the notebook's bytes and the files its probe gets."""

    notebook_name: str
    notebook: bytes
    weights: dict[str, bytes]  # manifest weights file -> bytes
    extras: dict[str, bytes]  # other small regular files of the folder
    problems: dict[str, str]  # weights file -> why it is missing or refused
    notes: tuple[str, ...] = ()

    def digest(self) -> str:
        """Hash of exactly the bytes that are graded."""
        digest = hashlib.sha256()
        for name, data in (
            ("notebook", self.notebook),
            *sorted(self.weights.items()),
            *sorted(self.extras.items()),
        ):
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
        digest.update(json.dumps(self.problems, sort_keys=True).encode())
        return digest.hexdigest()


def stage(path: Path, manifest: Manifest, *, notebook_only: bool = False) -> Staged:
    """Read a notebook or a submission folder without trusting it.

    Only regular files are read (no links, devices or FIFOs), each with its size checked before
    reading, and a folder only a few levels deep; whatever is passed over is noted (file names as
    inert text). NotebookError when there is no notebook to grade. `notebook_only` leaves the
    weights and other files unread (for tools that look at the code alone).
    """
    notes: list[str] = []
    if path.is_symlink():  # it could point anywhere: a classmate's folder, the course's source
        raise NotebookError(f"{path.name} is a symbolic link: hand in the files themselves")
    folder = path if path.is_dir() else path.parent
    if not path.is_dir():
        try:
            single = {path.name: read_capped(path, MAX_NOTEBOOK_BYTES)}
        except UnsafeFile as err:
            raise NotebookError(_refused_notebook(path, err)) from None
    else:
        single = None
    listing = list_files(folder, max_depth=0)  # only the files beside the notebook
    notes += [f"not read: {why}" for why in listing.refused[:10]]
    if len(listing.refused) > 10:
        notes.append(f"and {len(listing.refused) - 10} more entries not read")
    top = {p.name: p for p in listing.files if p.parent == folder}
    if single is not None:
        notebooks, chosen = single, path.name
    else:
        notebooks, unread = {}, []
        for name in sorted(n for n in top if n.endswith(".ipynb"))[:MAX_NOTEBOOKS]:
            try:
                notebooks[name] = read_capped(top[name], MAX_NOTEBOOK_BYTES)
            except UnsafeFile as err:
                unread.append(_refused_notebook(top[name], err))
                notes.append(f"not read: {unread[-1]}")
        unread += [
            f"{r}: hand in the notebook file itself" for r in listing.refused if ".ipynb" in r
        ]
        if not notebooks and unread:
            raise NotebookError(unread[0])
        chosen, note = choose_notebook(notebooks, manifest.notebook, folder.name)
        if note:
            notes.append(note)
    weights, problems, extras = {}, {}, {}
    if notebook_only:
        return Staged(chosen, notebooks[chosen], weights, extras, problems, tuple(notes))
    for model in manifest.models:
        file = top.get(model.weights)
        refused = next((r for r in listing.refused if r.startswith(model.weights + " ")), None)
        if file is None:
            problems[model.weights] = (
                f"{model.weights} is not a regular file ({refused})"
                if refused
                else f"{model.weights} was not submitted"
            )
            continue
        try:
            weights[model.weights] = read_capped(file, int(model.max_weights_mb * 1024**2))
        except UnsafeFile as err:
            problems[model.weights] = str(err)
    wanted = {m.weights for m in manifest.models}
    for name in sorted(top):
        if name in wanted or name.endswith(".ipynb") or len(extras) >= MAX_EXTRA_FILES:
            continue
        try:
            extras[name] = read_capped(top[name], MAX_EXTRA_FILE_BYTES)
        except UnsafeFile:
            pass
    notes = [inert_line(n) for n in notes]  # each names files the student named
    return Staged(chosen, notebooks[chosen], weights, extras, problems, tuple(notes))


def _refused_notebook(path: Path, err: UnsafeFile) -> str:
    """Why a notebook file was not read, in words for the student."""
    try:
        size = os.stat(path, follow_symlinks=False).st_size
    except OSError:
        size = 0
    if size > MAX_NOTEBOOK_BYTES and path.is_file() and not path.is_symlink():
        return too_big(path.name, size)
    return f"{err}: hand in the notebook file itself"


def student_name(path: Path, assignment: str) -> str:
    """`submitted/<student>/<assignment>/...` gives <student>; otherwise the folder's name."""
    folder = path if path.is_dir() else path.parent
    if folder.name == assignment and folder.parent.name:
        return folder.parent.name
    return folder.name or "unknown"


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
    return ProbeHost(
        sandbox, slot, run.manifest.id, run.config.time.startup, run.config.threads, groups
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
    ours = release_test_sources(RELEASE_DIR / manifest.id / manifest.notebook)
    graded = [
        (number, code)
        for number, code in zip(notebook.numbers, notebook.code_cells, strict=True)
        if code.strip() and normalise(code) not in ours
    ]
    slot, inside = host.slot, host.inside
    slot.clear()
    weights_dir = slot.folder("job") / "weights"
    weights_dir.mkdir(mode=0o755)
    for name, data in staged.weights.items():
        write_new(weights_dir / name, data, mode=0o644)
    job = {
        "manifest": manifest.model_dump(mode="json"),
        "cells": [code for _, code in graded],
        "cell_numbers": [number for number, _ in graded],
        "skip": {},
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
    report.notes += result.notes
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
    path: Path,
    run: GradingRun,
    host: ProbeHost,
    student: str | None = None,
    staged: Staged | None = None,
) -> Report:
    """Grade one notebook or submission folder. Never raises because of the submission."""
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
