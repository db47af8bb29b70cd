"""Files that someone else could have written, read and made by a process that must not be fooled.

The grader runs as root next to folders that student code can write (the probe's output) or
that students hand in (submission folders). Everything here opens without following symbolic
links, accepts only regular files, checks the size before reading a byte, never blocks on a
FIFO, and makes folders fresh instead of walking and changing what is already there.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


class UnsafeFile(Exception):
    """A path that is not a plain regular file within its size limit; the message says why."""


class TooBig(UnsafeFile):
    """A plain regular file over its size limit; the message gives both sizes."""


def _describe(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024**2:,.0f} MB" if nbytes >= 1024**2 else f"{nbytes:,} bytes"


def _gib_or_mb(nbytes: int) -> str:
    return f"{nbytes / 1024**3:g} GiB" if nbytes >= 1024**3 else _size(nbytes)


def _over(nbytes: int, limit: int) -> tuple[str, str]:
    """`nbytes` and the `limit` it exceeds in words that tell them apart: a 2.3 MB file against
    a 2 MB limit is "2.3 MB" and "2 MB", never "2 MB" and "2 MB"; bytes when no rounding does."""
    if limit >= 1024**2:
        mb, limit_mb = nbytes / 1024**2, limit / 1024**2
        for digits in range(4):
            if round(mb, digits) > limit_mb:
                return f"{mb:,.{digits}f} MB", f"{limit_mb:,g} MB"
    return f"{nbytes:,} bytes", f"{limit:,} bytes"


def read_capped(path: Path, limit: int, *, owner: int | None = None) -> bytes:
    """The bytes of regular file `path` (not a link), refusing anything over `limit` bytes
    before reading it, and, with `owner`, anything not owned by that uid (a hard link to
    someone else's file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as err:
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise UnsafeFile(f"{path.name} cannot be opened ({err.strerror})") from None
        raise UnsafeFile(f"{path.name} is {_describe(mode)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{path.name} is {_describe(info.st_mode)}")
        if owner is not None and info.st_uid != owner:
            raise UnsafeFile(f"{path.name} belongs to another user")
        if info.st_size > limit:
            size, most = _over(info.st_size, limit)
            raise TooBig(f"{path.name} is {size}; the limit is {most}")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise UnsafeFile(f"{path.name} grew past its limit of {_size(limit)} while read")
        return data
    finally:
        os.close(fd)


def read_from(path: Path, offset: int, limit: int, *, owner: int | None = None) -> bytes:
    """Up to `limit` bytes of regular file `path` from `offset` (a log being appended to);
    b"" for anything that is missing, not regular, or someone else's."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or (owner is not None and info.st_uid != owner):
            return b""
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, limit)
    finally:
        os.close(fd)


def tail(path: Path, size: int = 4000, *, owner: int | None = None) -> str:
    """The last `size` bytes of a log as text ("" when it is not a plain file)."""
    try:
        info = os.lstat(path)
    except OSError:
        return ""
    if not stat.S_ISREG(info.st_mode):
        return ""
    return read_from(path, max(0, info.st_size - size), size, owner=owner).decode(
        "utf-8", "replace"
    )


def fresh_dir(path: Path, uid: int | None = None, mode: int = 0o700) -> Path:
    """`path` as a new empty folder (whatever was there is removed first, links not
    followed), owned by `uid` when given. Its parent must be a folder nobody else can write."""
    remove(path)
    path.mkdir(mode=mode)
    path.chmod(mode)  # mkdir's mode is cut by the umask
    if uid is not None:
        os.chown(path, uid, uid, follow_symlinks=False)
    return path


def remove(path: Path) -> None:
    """Remove a file, link or folder tree without following links inside it, however deep.

    A probe can nest folders thousands deep (deeper than PATH_MAX, with long names), past
    what a recursive walk such as `shutil.rmtree` survives: it raised RecursionError, which
    cost every later student of the job slot their grade. Nothing here recurses or builds
    long paths; errors other than a vanished entry are left to the caller to notice (the
    folder is still there).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        path.unlink(missing_ok=True)
        return
    try:
        _empty_tree(path)
        os.rmdir(path)
    except OSError:
        pass


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _empty_tree(folder: Path) -> None:
    """Empty `folder` with two descriptors open at most: each sub-folder's entries are moved
    up into `folder` (renamed, never followed), then the emptied sub-folder is removed, until
    `folder` holds nothing. Every entry is moved once; the depth costs rounds, not stack."""
    top = os.open(folder, _DIR_FLAGS)
    moved = 0
    try:
        while True:
            with os.scandir(top) as found:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in found]
            if not entries:
                return
            for name, is_dir in entries:
                if not is_dir:
                    _ignore_missing(os.unlink, name, dir_fd=top)
                    continue
                try:
                    os.rmdir(name, dir_fd=top)
                    continue
                except OSError:
                    pass  # not empty: hoist what it holds
                inner = os.open(name, _DIR_FLAGS, dir_fd=top)
                try:
                    with os.scandir(inner) as found:
                        children = [e.name for e in found]
                    for child in children:
                        while True:
                            moved += 1
                            free = f".dlgrade-removing-{moved}"
                            try:
                                os.stat(free, dir_fd=top, follow_symlinks=False)
                            except FileNotFoundError:
                                break
                        os.rename(child, free, src_dir_fd=inner, dst_dir_fd=top)
                finally:
                    os.close(inner)
    finally:
        os.close(top)


def _ignore_missing(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except FileNotFoundError:
        pass


def write_new(path: Path, data: bytes, uid: int | None = None, mode: int = 0o600) -> None:
    """Create `path` (which must not exist) with `data`, owned by `uid` when given."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        if uid is not None:
            os.fchown(fd, uid, uid)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Listing:
    """Regular files found in a folder, and what was passed over (with the reason)."""

    files: tuple[Path, ...]
    refused: tuple[str, ...]


def list_files(folder: Path, *, max_depth: int = 3, max_entries: int = 500) -> Listing:
    """Regular files under `folder`, without following links, at most `max_depth` folders
    deep and `max_entries` entries in all; everything else is named in `refused`."""
    files, refused, seen = [], [], 0

    def walk(current: Path, depth: int) -> None:
        nonlocal seen
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as err:
            refused.append(f"{current.name}/ cannot be read ({err.strerror})")
            return
        for entry in entries:
            seen += 1
            if seen > max_entries:
                if seen == max_entries + 1:
                    refused.append(f"more than {max_entries} entries: the rest was not read")
                return
            relative = Path(entry.path).relative_to(folder)
            if entry.is_symlink():
                refused.append(f"{relative} is a symbolic link")
            elif entry.is_dir(follow_symlinks=False):
                if max_depth == 0:
                    refused.append(f"{relative}/ (a folder: only the files beside it are read)")
                elif depth >= max_depth:
                    refused.append(
                        f"{relative}/ is nested too deep (only files up to {max_depth} folders "
                        "below the submission are read)"
                    )
                else:
                    walk(Path(entry.path), depth + 1)
            elif entry.is_file(follow_symlinks=False):
                files.append(Path(entry.path))
            else:
                refused.append(
                    f"{relative} is {_describe(entry.stat(follow_symlinks=False).st_mode)}"
                )

    walk(folder, 0)
    return Listing(tuple(files), tuple(refused))


def over_disk_limit(folders: list[Path], max_bytes: int, max_entries: int) -> str:
    """Why the files and folders under `folders` are over their limits, or "" when they are
    not: bytes on disk (a sparse file counts what it holds, not its size) and entries, links
    not followed. The count stops at the first limit it passes, so a folder of millions of
    files costs no more than `max_entries` steps."""
    try:
        sizes = _walk_sizes(folders)
        return _first_over(sizes, max_bytes, max_entries)
    except OSError:  # ENAMETOOLONG: a tree deeper than a path can name; find(1) walks it
        with subprocess.Popen(
            ["find", *map(str, folders), "-mindepth", "1", "-printf", "%b\n"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as find:
            try:
                return _first_over((int(n) * 512 for n in find.stdout), max_bytes, max_entries)
            finally:
                find.kill()


def _walk_sizes(folders: list[Path]) -> Iterator[int]:
    """Bytes on disk of each entry under `folders`, links not followed."""
    pending = [str(f) for f in folders]
    while pending:
        try:
            with os.scandir(pending.pop()) as found:
                for entry in found:
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode):
                        pending.append(entry.path)
                    yield info.st_blocks * 512
        except FileNotFoundError:
            continue  # removed meanwhile


def _first_over(sizes: Iterable[int], max_bytes: int, max_entries: int) -> str:
    used = 0
    for entries, size in enumerate(sizes, 1):
        used += size
        if entries > max_entries:
            return f"it made more than {max_entries:,} files and folders"
        if used > max_bytes:
            return f"it wrote more than {_gib_or_mb(max_bytes)} to disk"
    return ""
