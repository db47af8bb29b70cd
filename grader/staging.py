"""Reading a submission as data: the notebook, the weights the manifest names and other small
files beside it, each a regular file read with its size capped; what is passed over is noted."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from grader.manifest import Manifest
from grader.names import peeled
from grader.notebook_io import (
    MAX_NOTEBOOK_BYTES,
    NotebookError,
    choose_notebook,
    too_big,
)
from grader.safe_fs import TooBig, UnsafeFile, list_files, read_capped
from grader.text import inert_line

MAX_EXTRA_FILE_BYTES = 5 * 1024**2
MAX_EXTRA_FILES = 50
TOOL_FOLDERS = tuple(f"{name}/ " for name in (".ipynb_checkpoints", "__pycache__", "__MACOSX"))
MAX_NOTEBOOKS = 5
# Endings under which students save weights (`torch.save` writes the same file whatever its
# name), and archives the grader does not unpack.
WEIGHTS_SUFFIXES = ("", ".pt", ".pth", ".pkl", ".bin", ".ckpt", ".tar")
LONE_WEIGHTS_SUFFIXES = (".pt", ".pth", ".ckpt")  # what torch.save is given
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".rar", ".7z")
BOM = b"\xef\xbb\xbf"


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
    if path.is_dir() and (inner := unpacked_folder(path)):
        staged = stage(inner, manifest, notebook_only=notebook_only)
        note = f"graded the files in {inner.name}/ (an archive unpacked with its own folder?)"
        return replace(staged, notes=(inert_line(note), *staged.notes))
    folder = path if path.is_dir() else path.parent
    if not path.is_dir():
        try:
            single = {path.name: read_capped(path, MAX_NOTEBOOK_BYTES)}
        except UnsafeFile as err:
            raise NotebookError(_refused_notebook(path, err)) from None
    else:
        single = None
    listing = list_files(folder, max_depth=0)  # only the files beside the notebook
    # Folders that Jupyter, Python and macOS's zip make by themselves are passed over unnoted:
    # every student who hands in their Colab or Jupyter folder has one.
    noted = [r for r in listing.refused if not r.startswith(TOOL_FOLDERS)]
    notes += [f"not read: {why}" for why in noted[:10]]
    if len(noted) > 10:
        notes.append(f"and {len(noted) - 10} more entries not read")
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
        archives = [n for n in sorted(top) if n.lower().endswith(ARCHIVE_SUFFIXES)]
        if not notebooks and archives:
            raise NotebookError(
                f"no notebook in {folder.name}/ (expected {manifest.notebook}), only the archive "
                f"{inert_line(', '.join(archives))}: the grader does not unpack archives; hand "
                "in the notebook and the weights files themselves"
            )
        chosen, note = choose_notebook(notebooks, manifest.notebook, folder.name)
        if note:
            notes.append(note)
    weights, problems, extras = {}, {}, {}
    if notebook_only:
        return Staged(chosen, notebooks[chosen], weights, extras, problems, tuple(notes))
    nested = None  # the files below the notebook's folder, listed when a weights file is missing
    taken = set()  # files beside the notebook graded under another name (resmlp.pth)
    for model in manifest.models:
        file = top.get(model.weights)
        refused = next((r for r in listing.refused if r.startswith(model.weights + " ")), None)
        if file is None and not refused:
            if nested is None:
                nested = list_files(folder, max_depth=2).files
            file, problem = _weights_elsewhere(model.weights, folder, nested)
            if problem:
                problems[model.weights] = problem
                continue
            if file is not None:
                if file.parent == folder:
                    taken.add(file.name)
                used = f"not read: {file.relative_to(folder).parts[0]}/ "  # it was, in part
                notes = [n for n in notes if not n.startswith(used)]
                notes.append(
                    f"graded {file.relative_to(folder)} as {model.weights}: next time hand it "
                    f"in as {model.weights} beside the notebook"
                )
        if file is None:
            problems[model.weights] = (
                f"{model.weights} is not a regular file ({refused})"
                if refused
                else not_submitted(model.weights)
            )
            continue
        try:
            weights[model.weights] = read_capped(file, int(model.max_weights_mb * 1024**2))
        except TooBig as err:  # Adam's state in a checkpoint is twice the weights' size
            problems[model.weights] = (
                f"{err} (if it is a checkpoint that holds the optimizer's state too, two to "
                "three times the weights' size, hand in model.state_dict() alone)"
            )
        except UnsafeFile as err:
            problems[model.weights] = str(err)
    # Files already graded as weights: neither another model's weights nor extras.
    wanted = {m.weights for m in manifest.models} | taken
    limits = {m.weights: m.max_weights_mb for m in manifest.models}
    adopted = _adopt_lone_weights(top, wanted, weights, problems, notes, limits)
    for name in sorted(top):
        if (
            name in wanted
            or name == adopted
            or name.endswith(".ipynb")
            or len(extras) >= MAX_EXTRA_FILES
        ):
            continue
        try:
            extras[name] = read_capped(top[name], MAX_EXTRA_FILE_BYTES)
        except UnsafeFile:
            continue
        if name.endswith(".json") and extras[name].startswith(BOM):
            # A Windows editor's byte order mark, which json.load refuses (RFC 8259 lets
            # readers skip it): the notebook reads the file as it was meant.
            extras[name] = extras[name][len(BOM) :]
    configs = [m.config for m in manifest.models if m.config]
    _adopt_downloaded_copies(extras, [*configs, *manifest.files], notes)
    notes = [inert_line(n) for n in notes]  # each names files the student named
    return Staged(chosen, notebooks[chosen], weights, extras, problems, tuple(notes))


def not_submitted(name: str) -> str:
    """The problem recorded for an expected file not handed in (checks tell it from others)."""
    return f"{name} was not submitted"


def unpacked_folder(folder: Path) -> Path | None:
    """The one subfolder that holds the notebooks when `folder` holds none: an LMS or Drive
    archive unpacked with its own top folder. None when there is no such single subfolder."""
    listing = list_files(folder, max_depth=1)
    parents = {p.parent for p in listing.files if p.suffix == ".ipynb"}
    parents = {p for p in parents if f"{p.name}/ " not in TOOL_FOLDERS}
    if len(parents) != 1 or folder in parents:
        return None
    return parents.pop()


def _weights_elsewhere(name: str, folder: Path, files: list[Path]) -> tuple[Path | None, str]:
    """(the file to grade as weights file `name`, "") when exactly one file in `folder` or up to
    two folders below it is `name` but for its case, its ending (.pth for .pt) or its folder;
    (None, why) when several are; (None, "") when none is."""
    stem = Path(name).stem.lower()

    def same(path: Path) -> bool:
        lower = path.name.lower()
        return lower == name.lower() or (
            Path(lower).stem == stem and Path(lower).suffix in WEIGHTS_SUFFIXES
        )

    found = [p for p in files if same(p)]
    if len(found) > 1:
        names = inert_line(", ".join(str(p.relative_to(folder)) for p in found))
        return None, f"{not_submitted(name)}; which of {names} it is cannot be told"
    return (found[0] if found else None), ""


def _adopt_lone_weights(top, wanted, weights, problems, notes, limits) -> str:
    """Grade the one weights-like file beside the notebook under no expected name (model.pt) as
    the one expected weights file that is missing, with a note: a renamed file is the likely
    cause, and a file that does not fit fails the accuracy check with the loader's reason,
    as a missing one would have failed it anyway. Two or more of either: nothing is guessed.
    Gives the name of the file taken ("" when none)."""
    missing = [name for name, why in problems.items() if why == not_submitted(name)]
    spare = [n for n in top if n not in wanted and n.lower().endswith(LONE_WEIGHTS_SUFFIXES)]
    if len(missing) != 1 or len(spare) != 1:
        return ""
    (name,), (file,) = missing, spare
    try:
        weights[name] = read_capped(top[file], int(limits[name] * 1024**2))
    except UnsafeFile as err:
        problems[name] += f" ({file} was not read either: {err})"
        return ""
    del problems[name]
    notes.append(f"graded {file} as {name}: next time hand it in under the name {name}")
    return file


def _adopt_downloaded_copies(extras: dict, expected: list[str], notes: list) -> None:
    """Grade the one file beside the notebook named as a Colab or browser copy of an expected
    file that is missing ("final_config (1).json", "Copy of final_config.json") under the
    expected name, with a note, as a renamed weights file is. Two such copies: neither."""
    for name in expected:
        stem, suffix = os.path.splitext(name.lower())
        copies = [
            n
            for n in extras
            if os.path.splitext(n.lower())[1] == suffix
            and peeled(os.path.splitext(n.lower())[0]) == stem
        ]
        if name not in extras and len(copies) == 1:
            extras[name] = extras.pop(copies[0])
            notes.append(
                f"graded {copies[0]} as {name}: next time hand it in under the name {name}"
            )


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
