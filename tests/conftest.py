"""Fixtures shared by the whole suite: the reference submission, the real grader CLI, generated
data sets for assignments whose data is not on this machine, and a PostgreSQL server."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

# OpenMP threads that sleep rather than spin while they wait, set before anything loads torch:
# the tests that train or grade in this process share 2 cores with the grader's subprocesses,
# and spinning threads made one in-process training ten times slower (255 s against 25 s as a
# subprocess, which `python -m solutions` starts with this setting). Subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402 - after the environment is set

from grader.manifest import load_manifest  # noqa: E402
from solutions.data import (
    DATA_ENV,
    FIXTURE_SIZES,
    DataNotFoundError,
    resolve_root,
    write_cifar10_like,
    write_mnist_like,
)
from solutions.data._catalog import dataset_info
from solutions.submission import write_submission

REPO = Path(__file__).resolve().parents[1]


def run_cli(
    module: str,
    *args: str,
    timeout: float = 900,
    cwd: Path = REPO,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` the way an operator would; output captured as text.

    `env` adds to (or overrides) the environment, e.g. {"DLGRADE_DATA": fixture_root}.
    `python -m grader`, and `python -m solutions submission|data`, run in this process (their
    `main`, with `env` set and output captured): a new interpreter would only add its imports,
    about 4 s a call here. A TMPDIR (which `tempfile` reads once a process) or a working folder
    other than this process's (a second checkout: `-m` imports its code) get a process of their
    own, as does training (torch's global RNG, DataLoader workers forked); tests about the
    process itself (its imports, signals, leftovers) start it themselves.
    """
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        **(env or {}),
    }
    main = _main_of(module, args)
    if main is not None and "TMPDIR" not in env and cwd == Path.cwd():
        return _in_process(main, [module, *args], env)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **env},
    )


def _main_of(module: str, args: tuple[str, ...]):
    """The `main` of `python -m module args` when it may run in this process, else None."""
    if module == "grader":
        from grader.cli import main

        return main
    if module == "solutions" and args[:1] in (("submission",), ("data",)):
        from solutions.cli import main

        return main
    return None


def _in_process(main, argv: list[str], env: dict) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` (`argv`) as `main(ARGS)`: the exit status it returns (or exits
    with; 1 and the traceback for an exception, as the interpreter would), its output as text.
    The environment is restored afterwards."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv[1:])
            except SystemExit as exit_:  # argparse's errors and --help
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
            except Exception:  # noqa: BLE001 - as the interpreter: a traceback, status 1
                traceback.print_exc()
                code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(
        ["python", "-m", *argv], code, out.getvalue(), err.getvalue()
    )


def grade(
    *paths: Path,
    extra: tuple[str, ...] = (),
    assignment: str = "res_dense_nets",
    tmp: Path,
    env: dict | None = None,
) -> list[dict]:
    """Grade `paths` with the real CLI; return the JSON reports (always a list). `env` adds to
    the environment (`data_env`'s, for an assignment whose data is not on this machine)."""
    out = tmp / f"reports-{os.getpid()}-{len(list(tmp.glob('reports-*')))}.json"
    result = run_cli(
        "grader",
        "grade",
        *map(str, paths),
        "--assignment",
        assignment,
        "--json",
        str(out),
        "--quiet",
        *extra,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    return data if isinstance(data, list) else [data]


def points(report: dict) -> dict[str, tuple[float, float, str]]:
    """check name -> (points, max points, message)."""
    return {c["name"]: (c["points"], c["max_points"], c["message"]) for c in report["checks"]}


@pytest.fixture(scope="session")
def manifest():
    return load_manifest("res_dense_nets")


@pytest.fixture(scope="session")
def reference_submissions(tmp_path_factory):
    """`folder(assignment)`: its reference submission, as `python -m solutions submission`
    writes it, once a session."""
    root = tmp_path_factory.mktemp("reference")

    def folder(assignment: str) -> Path:
        path = root / assignment
        if not path.is_dir():
            write_submission(load_manifest(assignment), path)
        return path

    return folder


@pytest.fixture(scope="session")
def reference_reports(tmp_path_factory, reference_submissions, data_env):
    """`report(assignment)`: its reference submission graded once a session by the CLI (on
    generated stand-ins of its data set where the real one is not on this machine)."""
    reports: dict[str, dict] = {}

    def report(assignment: str) -> dict:
        if assignment not in reports:
            reports[assignment] = grade(
                reference_submissions(assignment),
                assignment=assignment,
                tmp=tmp_path_factory.mktemp(f"reference-report-{assignment}"),
                env=data_env(load_manifest(assignment).dataset),
            )[0]
        return reports[assignment]

    return report


@pytest.fixture(scope="session")
def reference_submission(reference_submissions) -> Path:
    """The reference submission of res_dense_nets."""
    return reference_submissions("res_dense_nets")


@pytest.fixture(scope="session")
def reference_report(reference_reports) -> dict:
    """The reference submission of res_dense_nets graded by the CLI, shared by the tests that
    read it."""
    return reference_reports("res_dense_nets")


def write_fixture(root: Path, dataset: str) -> None:
    """One data set's generated stand-in under `root`, exactly as `python -m solutions data
    --fixtures` writes it (seed 0, FIXTURE_SIZES): the committed weights of assignments whose
    data cannot be had here were trained on it."""
    n_train, n_test = FIXTURE_SIZES[dataset]
    if dataset == "cifar10":
        write_cifar10_like(root, n_train=n_train, n_test=n_test, seed=0)
    else:
        write_mnist_like(root, dataset, n_train=n_train, n_test=n_test, seed=0)


# Test images the end-to-end tests that grade a whole batch of notebooks (every variant,
# nbgrader's autograde) grade on when the real data set is on this machine: the first 1,000 of
# its test split, in its own file format. That tells a right answer from a wrong one at a tenth
# of the cost (cnn_techniques' four CNNs: 11.8 s a notebook on 10,000 images, 2.6 s on 2,000,
# 1.3 s on 1,000); the reference's grading on the whole split (`reference_reports`) keeps the
# full path tested.
GRADED_TEST_IMAGES = 1000

# IDX header bytes before the samples: magic and count, then one size per further dimension.
_IDX_HEADER = {"images": 16, "labels": 8}


def write_test_subset(real: Path, root: Path, dataset: str, n: int) -> bool:
    """`root`: `real`'s copy of an IDX data set (MNIST, Fashion-MNIST) with only the first `n`
    test samples (the training files hard-linked). False for other formats (CIFAR-10)."""
    info = dataset_info(dataset)
    if not all(name.endswith("-ubyte") for name in info.files):
        return False
    for name in info.files:
        src, dest = real / info.folder / name, root / info.folder / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not Path(name).name.startswith("t10k"):
            try:
                os.link(src, dest)
            except OSError:  # another file system
                shutil.copyfile(src, dest)
            continue
        data = src.read_bytes()
        header = _IDX_HEADER["images" if "images" in name else "labels"]
        per_sample = (len(data) - header) // int.from_bytes(data[4:8], "big")
        count = min(n, int.from_bytes(data[4:8], "big")).to_bytes(4, "big")
        dest.write_bytes(data[:4] + count + data[8:header] + data[header:][: n * per_sample])
    return True


@pytest.fixture(scope="session")
def data_env(tmp_path_factory):
    """`env(dataset, test_images=None)`: the environment to grade with. Where the data set is
    on this machine: empty, or with `test_images`, {DLGRADE_DATA: a root whose test split is
    its first `test_images` samples} (IDX data sets only; the real split otherwise). Else
    {DLGRADE_DATA: a root of generated stand-ins}. Each root is written once a session; the
    stand-ins' root holds only the missing data sets, so the real ones keep being used."""
    root = tmp_path_factory.mktemp("fixture-data")
    written: dict[tuple[str, int | None], dict[str, str]] = {}

    def env(dataset: str, test_images: int | None = None) -> dict[str, str]:
        try:
            real = resolve_root(dataset).root
        except DataNotFoundError:
            if (dataset, None) not in written:
                write_fixture(root, dataset)
                written[dataset, None] = {DATA_ENV: str(root)}
            return written[dataset, None]
        if not test_images:
            return {}
        if (dataset, test_images) not in written:
            subset = tmp_path_factory.mktemp(f"subset-{dataset}-{test_images}")
            done = write_test_subset(real, subset, dataset, test_images)
            written[dataset, test_images] = {DATA_ENV: str(subset)} if done else {}
        return written[dataset, test_images]

    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    """A real PostgreSQL server of our own, on a Unix socket, run as user postgres.

    Its folder is a fresh one under /tmp: pytest's own tmp folders are private to root.
    """
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bindir or os.geteuid() != 0:
        pytest.skip("needs Debian's postgresql package and root (to run the server as postgres)")
    bindir = bindir[-1]
    home = Path(tempfile.mkdtemp(prefix="dlgrade-pg-"))
    data, sock = home / "pgdata", home / "pgsock"
    sock.mkdir()
    shutil.chown(home, "postgres")
    shutil.chown(sock, "postgres")
    port = _free_port()

    def as_postgres(*cmd):
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, cmd)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    as_postgres(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres")
    as_postgres(
        bindir / "pg_ctl",
        "-D",
        data,
        "-w",
        "-l",
        home / "pg.log",
        "-o",
        f"-k {sock} -p {port} -c listen_addresses=''",
        "start",
    )
    try:
        as_postgres(bindir / "createdb", "-h", sock, "-p", port, "gradebook")
        yield f"postgresql://postgres@/gradebook?host={sock}&port={port}"
    finally:
        as_postgres(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)
