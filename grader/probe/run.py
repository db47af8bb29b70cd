"""The probe's main loop: run the cells, wait for the challenge, restore, observe, write.

Progress goes to `progress.jsonl` in the attempt's output folder, one event per line, flushed
as it happens, so that the supervisor (outside the sandbox) knows which cell or observer was
running when a time limit hit or the process died, and can start again without it.

The settings the observers probe with (the *challenge*) do not exist while the cells run: the
supervisor writes them into the read-only job folder only after the probe reported
`cells_done`. Every observation carries the challenge's nonce; the supervisor accepts nothing
else, so whatever student code wrote into the output folder beforehand counts for nothing.
"""

from __future__ import annotations

import contextlib
import dis
import json
import os
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from types import CodeType, FunctionType, ModuleType
from typing import Any

from grader.cell_code import cell_reads
from grader.checks.assemble import build_checkset
from grader.checks.common import describe_error, names_read, torch_defaults
from grader.manifest import Manifest
from grader.observations import encode
from grader.probe import colab
from grader.probe.context import STACK_FILE, CellOutcome, ProbeContext
from grader.probe.integrity import Snapshot
from grader.probe.shell import GradingShell, make_shell, run_cell
from grader.probe.unrun_imports import bind_unrun_imports

CHALLENGE_WAIT_S = 120.0


class Progress:
    def __init__(self, path: Path):
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the probe

    def emit(self, event: str, **fields: Any) -> None:
        self._file.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
        self._file.flush()


class StackWatch:
    """Writes the main thread's stack to `STACK_FILE` shortly before a cell's or an observer's
    time limit (`job["stack_after"]`, seconds by kind), so that the supervisor, stopping the
    probe, can say which of the student's functions was running. A timer thread reads the frames
    with `sys._current_frames()` under the GIL (faulthandler's dump, which reads them without
    it, crashed two probes with SIGSEGV in round 10b)."""

    def __init__(self, path: Path, after: dict[str, float]):
        self._path, self._after = path, after
        self._main = threading.main_thread().ident
        self._timer: threading.Timer | None = None

    def arm(self, kind: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._path.write_text("")
        if self._after.get(kind):
            self._timer = threading.Timer(self._after[kind], self._dump)
            self._timer.daemon = True
            self._timer.start()

    def _dump(self) -> None:
        frame = sys._current_frames().get(self._main)
        lines = [
            f'  File "{f.f_code.co_filename}", line {line} in {f.f_code.co_name}'
            for f, line in traceback.walk_stack(frame)
        ]  # most recent call first, as faulthandler writes it
        self._path.write_text("Thread (most recent call first):\n" + "\n".join(lines) + "\n")


def write_observation(out_dir: Path, name: str, nonce: str, result: Any) -> None:
    """`<name>.json` and `<name>.bin` (raw tensor bytes), the JSON renamed into place last."""
    text, blob = encode({"nonce": nonce, "data": result})
    (out_dir / f"{name}.bin").write_bytes(blob)
    tmp = out_dir / f"{name}.json.tmp"
    tmp.write_text(text)
    tmp.rename(out_dir / f"{name}.json")


class Kept:
    """The functions and classes the student's cells define, kept from the notebook's given
    cells: one that runs later and binds the same name (`_images, _labels = next(...)` after a
    student's helper `_images`) leaves it to the checks, which call the student's code after
    every cell ran, as the student's cells saw it. So are the modules (`nn`, `F`, `np`) that a
    student's cell rebinds to something else (`nn = DeepFNN(...)` in a closing experiment)
    unless code the student defines from then on reads the name: only that code can rely on
    the new value. So are the student's definitions that their closing experiments (cells after
    the last part of the notebook they fill in, `closing_after`) rebind after the last given
    cell that used that code (`def dense_layer` for B1's "variant of dense_layer"): the
    notebook's own cells met the earlier ones; a later fix that a given cell then uses, itself
    or through the code it calls (`_reached`), stands, and only that one (an experiment on
    `Dense` before a given cell that trains `DeepClassifier` does not). So are the attributes
    of the student's classes such an experiment sets in place (`ResBlock.forward = plain`).
    Where a module's name stays rebound (`F = 4` in the DenseNet's cell, which reads it), the
    student's code defined before that cell, which read the name as the module (ResBlock's
    `F.relu`), is `pinned`: it keeps the module under that name (`pin`); so is code that read
    the name itself (`F * 7 * 7`, `F = 64` filters in the CNN's cell) when a later cell of the
    student's imports the module under it again: it keeps the value the given cells met."""

    def __init__(self, given: set[int], closing_after: int | None = None):
        self.given, self.defined, self.taken = given, {}, {}
        self.closing_after = closing_after
        self.modules, self.shadowed = {}, {}
        self.used, self.undone = {}, {}
        self.sites: dict[str, list[tuple[int, object]]] = {}  # each student definition's cells
        self.members: dict[str, tuple[type, dict]] = {}  # used classes' attributes, last used
        self.pinned: dict[int, tuple[Any, dict]] = {}  # id -> (class or function, name -> module)
        self.bodies: dict[int, dict] = {}  # the student's classes' attributes after each cell
        self.patches: dict[tuple[str, str], tuple[int, type, Any]] = {}  # (class, method) -> set

    def after(self, index: int, before: dict, ns: dict, reads: set[str] = frozenset()) -> None:
        changed = {k: v for k, v in ns.items() if before.get(k, self) is not v}
        self._track_patches(index, changed, ns)
        self.modules.update({k: v for k, v in changed.items() if isinstance(v, ModuleType)})
        # A module's name this cell takes over from the module, or from an earlier shadowing
        # (not from a value the student's code read since: `F = 784` read by flatten).
        shadowing = {k for k in changed if isinstance(before.get(k), ModuleType)}
        shadowing |= changed.keys() & self.shadowed.keys()
        for name in changed:  # bound again: the latest binding decides
            self.shadowed.pop(name, None)
        if index in self.given:
            reached = _reached(reads, ns) if reads else set()
            if reached & self.defined.keys():  # a given cell used the student's code as it is
                names = (self.used.keys() | self.defined.keys()) & reached
                self.used.update({k: ns[k] for k in names if k in ns})
                self.undone = {k: v for k, v in self.undone.items() if k not in reached}
                self._remember_members(ns, reached)
            self.taken.update({k: self.defined[k] for k in changed if k in self.defined})
            return
        closing = self.closing_after is not None and index > self.closing_after
        for name in changed.keys() & self.used.keys() if closing else ():  # after its last use
            self.undone[name] = self.used[name]
        defs = {k: v for k, v in changed.items() if isinstance(v, type | FunctionType)}
        mine = {k for k, v in defs.items() if getattr(v, "__module__", None) == ns.get("__name__")}
        for name, value in changed.items():  # a module's name rebound: earlier readers pinned
            old = before.get(name, self)
            if isinstance(old, ModuleType) == isinstance(value, ModuleType) or old is self:
                continue
            for code in self.defined.values():  # those that read attributes only it has
                attributes = _attributes_read(code, name)  # "": the name itself (`F * 7`)
                if any(hasattr(old, a) and not hasattr(value, a) for a in attributes) or (
                    isinstance(value, ModuleType) and "" in attributes  # a name made a module
                ):
                    self.pinned.setdefault(id(code), (code, {}))[1].setdefault(name, old)
        if closing:  # so are the values their code reads (`criterion = ...(label_smoothing=0.1)`,
            # `for F in (nn.ReLU, nn.Tanh)` over a library's classes)
            code = [v for v in self.used.values() if isinstance(v, type | FunctionType)]
            for name in changed.keys() & set().union(*map(_globals_read, code)) - mine:
                if name in before and not isinstance(before[name], ModuleType):
                    self.undone.setdefault(name, before[name])
        self.defined.update(defs)
        for name, value in defs.items():
            self.sites.setdefault(name, []).append((index, value))
        if not closing:  # the student's own part: its bindings stand, for the checks too
            self.used.update({k: v for k, v in changed.items() if k in self.used or k in defs})
            self._remember_members(ns)
        for name in changed:  # the student's own later binding stands
            self.taken.pop(name, None)
        # Names that code defined here reads keep their new values (`for F in (nn.ReLU, ...)`
        # defines nothing; a plotting helper defined after it does not read F).
        own = [defs[k] for k in mine]
        used = set().union(*map(_globals_read, own))
        self.shadowed = {k: v for k, v in self.shadowed.items() if k not in used}
        self.shadowed.update(
            {k: self.modules[k] for k in shadowing if k in self.modules.keys() - used}
        )

    def pin(self, ns: dict) -> None:
        """Each pinned class or function (`ns` as the cells left it, clobbered names back) reads
        its modules from a view of `ns` of its own, where a name still rebound is the module."""
        for code, modules in self.pinned.values():
            rebound = {k: m for k, m in modules.items() if ns.get(k) is not m}
            if rebound:
                _read_globals_from(code, _Pinned(ns, rebound), ns)

    def clobbered(self) -> dict:
        """The student's definitions a given cell, or a student's cell after the last given
        cell that used them, rebound, and the modules a student's cell shadowed that none of
        their later code reads, by name."""
        return {**self.undone, **self.taken, **self.shadowed}

    def _remember_members(self, ns: dict, names: set[str] | None = None) -> None:
        """The attributes of the classes the student's cells define (not a library's): of
        those named in `names` (a given cell's, `_reached`), else of all."""
        own = {
            k: (v, dict(vars(v)))
            for k, v in self.used.items()
            if isinstance(v, type) and v.__module__ == ns.get("__name__")
        }
        if names is None:
            self.members = own
        else:
            self.members.update({k: v for k, v in own.items() if k in names})

    def put_back_members(self) -> None:
        """Undo what closing experiments set or added in place on the classes `used` holds."""
        for cls, members in self.members.values():
            for name in vars(cls).keys() - members.keys():
                with contextlib.suppress(AttributeError, TypeError):
                    delattr(cls, name)
            for name, value in members.items():
                if vars(cls).get(name, self) is not value:
                    with contextlib.suppress(AttributeError, TypeError):
                        setattr(cls, name, value)

    def _track_patches(self, index: int, changed: dict, ns: dict) -> None:
        """The methods a student's cell sets on their classes outside the class body
        (`ResBlock.forward = plain`), with the cell (`patches`, for the report's note)."""
        for name, cls in list(ns.items()):
            if not isinstance(cls, type) or cls.__module__ != ns.get("__name__"):
                continue
            now, was = dict(vars(cls)), self.bodies.get(id(cls))
            self.bodies[id(cls)] = now
            if was is None or name in changed or index in self.given:  # a body of its own
                continue
            for attr, value in now.items():
                method = callable(value) or isinstance(value, staticmethod | classmethod | property)
                if was.get(attr, self) is not value and method:
                    self.patches[(name, attr)] = (index, cls, value)

    def patched(self, numbers: list[int]) -> dict[str, int]:
        """ "Class.method" -> the number of the cell that set it outside the class, for those the
        checks meet (not put back: `put_back_members`)."""
        found = [
            (f"{name}.{attr}", numbers[index])
            for (name, attr), (index, cls, value) in self.patches.items()
            if vars(cls).get(attr) is value
        ]
        return dict(found[:20])

    def graded(self, ns: dict, numbers: list[int]) -> dict[str, int]:
        """For each function or class the student's cells defined more than once, the number
        of the cell whose definition `ns` (after `clobbered`) holds: what the checks meet."""
        found = {}
        for name, sites in self.sites.items():
            cells = [index for index, value in sites if value is ns.get(name)]
            if len(sites) > 1 and cells and len(found) < 100:
                found[name] = numbers[cells[-1]]
        return found


def _globals_read(value: type | FunctionType) -> set[str]:
    """The global names a function, or a class's methods, read (nested functions too)."""
    members = [value] if isinstance(value, FunctionType) else list(vars(value).values())
    codes = [getattr(getattr(m, "__func__", m), "__code__", None) for m in members]
    return set().union(*(names_read(c) for c in codes if isinstance(c, CodeType)))


def _reached(reads: set[str], ns: dict) -> set[str]:
    """The names a given cell that reads `reads` met: those, and the globals read by the
    functions and classes among them (an instance's class, a class's bases too), in turn."""
    classes: dict[int, list[str]] = {}
    for name, value in ns.items():
        if isinstance(value, type):
            classes.setdefault(id(value), []).append(name)
    seen, todo = set(), list(reads)
    while todo:
        name = todo.pop()
        if name in seen or name not in ns:
            continue
        seen.add(name)
        value = ns[name]
        if isinstance(value, FunctionType):
            todo += _globals_read(value)
            continue
        for cls in (value if isinstance(value, type) else type(value)).__mro__:
            if getattr(cls, "__module__", None) == ns.get("__name__"):  # not a library's
                todo += classes.get(id(cls), []) + sorted(_globals_read(cls))
    return seen


def _attributes_read(value: type | FunctionType, name: str) -> set[str]:
    """The attributes a function, or a class's methods, read off the global `name` (`F.relu`),
    and "" where they read the name itself (`F * 7`)."""
    members = [value] if isinstance(value, FunctionType) else list(vars(value).values())
    codes = [getattr(getattr(m, "__func__", m), "__code__", None) for m in members]
    codes, found = [c for c in codes if isinstance(c, CodeType)], set()
    while codes:
        code = codes.pop()
        codes += [c for c in code.co_consts if isinstance(c, CodeType)]
        ops = list(dis.get_instructions(code))
        found |= {
            after.argval if after and after.opname in ("LOAD_ATTR", "LOAD_METHOD") else ""
            for op, after in zip(ops, [*ops[1:], None], strict=True)
            if op.opname == "LOAD_GLOBAL" and op.argval == name
        }
    return found


class _Pinned(dict):
    """Globals that hold a few names of their own and read every other name live from `ns`."""

    def __init__(self, ns: dict, own: dict):
        super().__init__(own)
        self.ns = ns

    def __missing__(self, name: str) -> Any:
        return self.ns[name]


def _with_globals(fn: FunctionType, globals_: dict) -> FunctionType:
    new = FunctionType(fn.__code__, globals_, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__, new.__dict__ = fn.__kwdefaults__, fn.__dict__
    new.__qualname__, new.__module__, new.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
    return new


def _read_globals_from(code: type | FunctionType, globals_: dict, ns: dict) -> None:
    """A class's methods (static and class methods too) or a function (every name `ns` binds it
    to) made to read their globals from `globals_`."""
    if isinstance(code, FunctionType):
        new = _with_globals(code, globals_)
        for name in [k for k, v in ns.items() if v is code]:
            ns[name] = new
        return
    for name, member in list(vars(code).items()):
        if isinstance(member, FunctionType):
            setattr(code, name, _with_globals(member, globals_))
        elif isinstance(member, staticmethod | classmethod) and isinstance(
            member.__func__, FunctionType
        ):
            setattr(code, name, type(member)(_with_globals(member.__func__, globals_)))


def run_cells(
    shell: GradingShell, job: dict, progress: Progress, watch: StackWatch | None = None
) -> list[CellOutcome]:
    """Run every code cell not marked skip, in order.

    Cells that fail with a NameError run again after the others, as long as that helps: a
    notebook whose cells were moved around (Colab makes it easy) then still defines everything.
    Ends with the `cells_done` event, which names the definitions the checks meet where the
    student's cells define one several times (`Kept.graded`: the supervisor's note says which).
    """
    skip = {int(k): v for k, v in job["skip"].items()}
    numbers, keep = job["cell_numbers"], Kept(set(job.get("given", ())), job.get("closing_after"))
    cut = job.get("cut_short", {})  # index -> (its source, why): run as its definitions alone
    outcomes: dict[int, CellOutcome] = {}
    pending = [i for i in range(len(job["cells"])) if i not in skip]
    imported: list[str] | None = None
    while pending:
        retry = []
        for index in pending:
            source = job["cells"][index]
            progress.emit("cell_start", index=index)
            if watch:
                watch.arm("cell")
            before = dict(shell.user_ns)
            run = run_cell(shell, source)
            reads = cell_reads(source) if index in keep.given else set()  # given cells'
            keep.after(index, before, shell.user_ns, reads)
            progress.emit("cell_end", index=index, status=run.status, message=run.message)
            outcomes[index] = CellOutcome(index, source, run.status, run.message, numbers[index])
            if str(index) in cut and run.status == "ok":  # its own text, for what it lacks
                original, why = cut[str(index)]
                outcomes[index] = CellOutcome(index, original, "cut short", why, numbers[index])
            if run.message.startswith("NameError"):
                retry.append(index)
        helped = False
        if imported is None:  # after the first pass, what only a branch run on Colab imports
            imported = bind_unrun_imports(shell.user_ns, job["cells"])
            if imported:
                print(f"[grader] imported as on Colab (a branch not run here): {imported}")
            helped = bool(imported)
        if len(retry) == len(pending) and not helped:
            break
        pending = retry
    shell.user_ns.update(keep.clobbered())
    keep.put_back_members()
    # Before pinned functions are made anew:
    graded, patched = keep.graded(shell.user_ns, numbers), keep.patched(numbers)
    keep.pin(shell.user_ns)
    for index, reason in skip.items():
        outcomes[index] = CellOutcome(index, job["cells"][index], "skipped", reason, numbers[index])
    progress.emit("cells_done", graded=graded, patched=patched)
    return [outcomes[i] for i in sorted(outcomes)]


def wait_for_challenge(path: Path, timeout: float = CHALLENGE_WAIT_S) -> dict:
    """The challenge the supervisor writes once it has seen `cells_done`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except ValueError:  # being renamed into place: read again
                pass
        time.sleep(0.02)
    raise TimeoutError("no challenge arrived")


def start_shell(own: list) -> tuple[GradingShell, Snapshot]:
    """The shell, then the snapshot that undoes what cells change (before any student code runs).
    Taken after the shell, so that IPython's own builtins stay: a restore removed `display`, and
    a `display(df)` in fit raised NameError when a check called it."""
    shell = make_shell()
    return shell, Snapshot.take(own)


def main(job_path: Path, out_dir: Path, challenge_path: Path) -> int:
    job = json.loads(job_path.read_text())
    (out_dir / "obs").mkdir(exist_ok=True)
    progress = Progress(out_dir / "progress.jsonl")
    watch = StackWatch(out_dir / STACK_FILE, job.get("stack_after", {}))
    manifest = Manifest.model_validate(job["manifest"])
    checkset = build_checkset(manifest)
    # Our own references, taken before any student code runs: a cell may reach the check set
    # through sys.modules and swap an observer.
    observers = {name: spec.observe for name, spec in checkset.observers.items()}
    own = [
        m for n, m in list(sys.modules.items()) if n.startswith(("grader.checks", "grader.probe"))
    ]
    if job.get("matplotlib_cache") and Path(job["matplotlib_cache"]).is_dir():
        target = Path(os.environ.get("MPLCONFIGDIR", "/tmp/matplotlib"))
        shutil.copytree(job["matplotlib_cache"], target, dirs_exist_ok=True)
    os.chdir(job["workdir"])
    colab.link_data(Path(job["workdir"]))  # `datasets.X("data", download=True)` finds it
    colab.link_drive(Path(job["workdir"]))  # a Drive folder holds the submitted files
    colab.find_data_anywhere()  # and so does a Drive folder's root
    shell, snapshot = start_shell(own)
    progress.emit("started")

    cells = run_cells(shell, job, progress, watch)  # its last event: cells_done
    snapshot.restore()
    challenge = wait_for_challenge(challenge_path)
    nonce, settings = challenge["nonce"], challenge["settings"]

    ctx = ProbeContext(
        ns=shell.user_ns,
        manifest=manifest,
        workdir=Path(job["workdir"]),
        weights_dir=Path(job["weights_dir"]),
        test_images=Path(job["test_images"]) if job.get("test_images") else None,
        weights_problems=job.get("weights_problems", {}),
        cells=tuple(cells),
    )
    for name in job["observers"]:
        restored = snapshot.restore()
        progress.emit("observer_start", name=name, restored=restored[:50])
        watch.arm("observer")
        try:
            with torch_defaults():
                result = observers[name](ctx.with_settings(settings.get(name, {})))
        except BaseException as err:  # noqa: BLE001 - SystemExit from student code included
            result = {"__error__": describe_error(err, 500)}
        snapshot.restore()
        write_observation(out_dir / "obs", name, nonce, result)
        progress.emit("observer_end", name=name)
    progress.emit("done")
    return 0
