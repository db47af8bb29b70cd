"""What the checks meet of the student's code once every cell ran (`Kept`): a run from top to
bottom leaves names as the last cell bound them, but the notebook's own cells met the student's
code as it stood when they ran. The probe (grader/probe/run.py) tells `Kept` about each cell as
it runs, then puts back what given cells and closing experiments rebound (`clobbered`,
`put_back_members`), keeps the module for code that read a name as one (`pin`), and reports
which definitions and in-place patches the checks meet (`graded`, `patched`) for the report's
notes."""

from __future__ import annotations

import builtins
import contextlib
import dis
from types import CodeType, FunctionType, ModuleType
from typing import Any

from grader.checks.common import names_read


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
        self.rebound: dict[str, int] = {}  # a definition's name a later cell bound a value to

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
                # what it met stands, but a built-in the student's code calls: no given cell
                # wants `sum = 0` there (its reads include attributes: `.sum()`)
                self.undone = {
                    k: v
                    for k, v in self.undone.items()
                    if k not in reached or _BUILTINS.get(k) is v
                }
                self._remember_members(ns, reached)
            self.taken.update({k: self.defined[k] for k in changed if k in self.defined})
            return
        closing = self.closing_after is not None and index > self.closing_after
        for name in changed.keys() & self.used.keys() if closing else ():  # after its last use
            if not _stub(self.used[name]):  # a placeholder the given cells met: this stands
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
            # `for F in (nn.ReLU, nn.Tanh)` over a library's classes), and Python's builtins they
            # call (`sum = 0`: "'int' object is not callable" in l2_regularization, blind round 18)
            code = [v for v in self.used.values() if isinstance(v, type | FunctionType)]
            for name in changed.keys() & set().union(*map(_globals_read, code)) - mine:
                if name in before and not isinstance(before[name], ModuleType):
                    self.undone.setdefault(name, before[name])
                elif name not in before and name in _BUILTINS:
                    self.undone.setdefault(name, _BUILTINS[name])
        self.defined.update(defs)
        for name, value in defs.items():
            self.sites.setdefault(name, []).append((index, value))
            self.rebound.pop(name, None)
        for name in (changed.keys() - defs.keys()) & self.sites.keys():  # a value over a def
            self.rebound[name] = index
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
        of the cell whose definition `ns` (after `clobbered`) holds: what the checks meet. For
        one that a later student's cell bound a value to, which `ns` still holds, that cell's
        (blind round 15: `smallest_width = smallest_width({...})` to try it)."""
        found = {}
        for name, sites in self.sites.items():
            cells = [index for index, value in sites if value is ns.get(name)]
            if len(sites) > 1 and cells and len(found) < 100:
                found[name] = numbers[cells[-1]]
            elif name in self.rebound and not cells and len(found) < 100:
                found[name] = numbers[self.rebound[name]]
        return found


# Python's builtins before any student code ran (the probe imports this module first).
_BUILTINS = {k: v for k, v in vars(builtins).items() if not k.startswith("_")}


def _codes(value: type | FunctionType) -> list[CodeType]:
    """The code of a function, or of a class's methods (static and class methods too)."""
    members = [value] if isinstance(value, FunctionType) else list(vars(value).values())
    codes = [getattr(getattr(m, "__func__", m), "__code__", None) for m in members]
    return [c for c in codes if isinstance(c, CodeType)]


def _stub(value: Any) -> bool:
    """Whether a function, or a method of a class, does nothing but raise NotImplementedError
    (after super().__init__()): the release's placeholder, not filled in. Blind round 18 (res):
    every part written in one cell after the notebook's last, the placeholders left, was
    graded on the placeholders the given cells had met (0 of 50)."""
    placeholder = {"NotImplementedError", "super", "__init__"}
    codes = _codes(value) if isinstance(value, type | FunctionType) else []
    return any(
        "NotImplementedError" in c.co_names and set(c.co_names) <= placeholder for c in codes
    )


def _globals_read(value: type | FunctionType) -> set[str]:
    """The global names a function, or a class's methods, read (nested functions too)."""
    return set().union(*map(names_read, _codes(value)))


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
    codes, found = _codes(value), set()
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
