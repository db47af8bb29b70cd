"""Where a data set's files are: the root-resolution rules of design.md, in order.

1. `$DLGRADE_DATA`, if it holds the data set in torchvision's on-disk layout;
2. `./data` (relative to the current directory), same condition;
3. Fashion-MNIST only: the Debian package `dataset-fashion-mnist`, whose four `.gz` files are
   unpacked once into a per-user cache in torchvision's layout;
4. `./data` with `download=True` when the data set's host answers;
5. otherwise `DataNotFoundError`, whose message says how to get the data.
"""

import gzip
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from solutions.data._catalog import DatasetInfo, dataset_info

DATA_ENV = "DLGRADE_DATA"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# How long the online probe waits for a TCP connection to the data set's host.
_PROBE_TIMEOUT_S = 2.0


class DataNotFoundError(RuntimeError):
    """No rule found the data set, and downloading is not possible here."""


@dataclass(frozen=True)
class DataRoot:
    """A root to pass to torchvision's dataset class, with its `download` flag.

    `source` names the rule that won: "env", "./data", "debian" or "download".
    """

    root: Path
    download: bool
    source: str


def required_files(dataset: str) -> tuple[Path, ...]:
    """Paths, relative to a root, that torchvision's class needs before it loads `dataset`
    (MNIST family: `_check_exists` looks for `<root>/<ClassName>/raw/<file>`; CIFAR-10:
    `_check_integrity` reads the batch files, `_load_meta` the meta file)."""
    info = dataset_info(dataset)
    return tuple(Path(info.folder) / name for name in info.files)


def has_layout(dataset: str, root: Path) -> bool:
    """Whether `root` holds every file torchvision checks for before loading `dataset`."""
    root = Path(root)
    return all((root / rel).is_file() for rel in required_files(dataset))


def cache_dir() -> Path:
    """Per-user folder for unpacked data: `$XDG_CACHE_HOME/dlgrade/data` or `~/.cache/...`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlgrade" / "data"


def unpack_idx_gz(src_dir: Path, dest_raw: Path, *, overwrite: bool = False) -> None:
    """Gunzip every `*-ubyte.gz` in `src_dir` into `dest_raw`, dropping the `.gz` suffix.

    Each file is written to a temporary name in `dest_raw` and renamed into place, so a reader
    (or a second process unpacking at the same time) never sees a half-written file. Files
    already present are kept unless `overwrite` is set.
    """
    src_dir, dest_raw = Path(src_dir), Path(dest_raw)
    sources = sorted(src_dir.glob("*-ubyte.gz"))
    if not sources:
        raise FileNotFoundError(f"no *-ubyte.gz files in {src_dir}")
    dest_raw.mkdir(parents=True, exist_ok=True)
    for src in sources:
        dest = dest_raw / src.name.removesuffix(".gz")
        if dest.is_file() and not overwrite:
            continue
        fd, tmp_name = tempfile.mkstemp(dir=dest_raw, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as inp:
                shutil.copyfileobj(inp, out, length=1 << 20)
            # mkstemp creates the file 0600; a shared cache must stay readable by other users
            # (a sandboxed grading process, for one).
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, dest)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def _debian_root(info: DatasetInfo) -> Path:
    """Unpack the Debian Fashion-MNIST files into the cache (once) and return that root."""
    root = cache_dir()
    if not has_layout(info.name, root):
        unpack_idx_gz(DEBIAN_FASHION_MNIST, root / info.folder / "raw")
    return root


def is_online(dataset: str, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the host torchvision downloads `dataset` from succeeds."""
    parts = urlsplit(dataset_info(dataset).download_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _not_found_message(info: DatasetInfo, looked: list[str]) -> str:
    layout = "\n".join(f"    <folder>/{rel.as_posix()}" for rel in required_files(info.name))
    fixes = [
        f"  - set {DATA_ENV} to a folder holding torchvision's layout:\n{layout}",
    ]
    if info.name == "fashion_mnist":
        fixes.append(
            "  - install the Debian package: apt-get install dataset-fashion-mnist "
            f"(files in {DEBIAN_FASHION_MNIST})"
        )
    else:
        fixes.append("  - (no Debian or PyPI package carries this data set)")
    fixes.append(
        "  - or run where torchvision can download it (e.g. Google Colab); "
        "it is then saved under ./data"
    )
    looked_lines = "\n".join(f"  - {item}" for item in looked)
    fix_lines = "\n".join(fixes)
    return (
        f"data set {info.name!r} not found, and its download host is unreachable.\n"
        f"Looked in:\n{looked_lines}\nTo fix, either:\n{fix_lines}"
    )


def resolve_root(dataset: str, *, online: bool | None = None) -> DataRoot:
    """Find where torchvision should load `dataset` from (rules in the module docstring).

    `online=None` probes the download host (2 s TCP connect); tests pass `online=False`.
    """
    info = dataset_info(dataset)
    looked: list[str] = []

    env = os.environ.get(DATA_ENV)
    if env:
        env_root = Path(env).expanduser().resolve()
        if has_layout(dataset, env_root):
            return DataRoot(env_root, download=False, source="env")
        looked.append(f"${DATA_ENV}={env} (no {info.folder}/ in torchvision's layout)")
    else:
        looked.append(f"${DATA_ENV} (not set)")

    local = Path.cwd() / "data"
    if has_layout(dataset, local):
        return DataRoot(local, download=False, source="./data")
    looked.append(f"{local} (no {info.folder}/ in torchvision's layout)")

    if dataset == "fashion_mnist":
        if all((DEBIAN_FASHION_MNIST / name).is_file() for name in _debian_names()):
            try:
                return DataRoot(_debian_root(info), download=False, source="debian")
            except OSError as err:
                # An unwritable cache must not hide the download and error rules below.
                looked.append(
                    f"{DEBIAN_FASHION_MNIST} (could not unpack into {cache_dir()}: {err})"
                )
        else:
            looked.append(f"{DEBIAN_FASHION_MNIST} (package not installed)")

    if online is None:
        online = is_online(dataset)
    if online:
        return DataRoot(local, download=True, source="download")
    host = urlsplit(info.download_url).hostname
    looked.append(f"download from {host} (offline or unreachable)")
    raise DataNotFoundError(_not_found_message(info, looked))


def _debian_names() -> tuple[str, ...]:
    """File names the Debian package installs: the upstream `.gz` names."""
    return tuple(f"{Path(name).name}.gz" for name in dataset_info("fashion_mnist").files)
