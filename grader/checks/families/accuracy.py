"""Accuracy of the submitted weights on the real test split, measured by the grader itself.

The observer rebuilds each model that an accuracy check judges from the student's own class
(`class_name(*args, **kwargs)`), loads the submitted weights file (a read-only copy) with
`weights_only=True`, and predicts the grader's test images in evaluation mode under no_grad,
each batch reshaped to the model's `input_shape` when the manifest gives one (a flattened
(N, 784) for an FNN), else as (N, C, H, W) images. The images reach the probe in an order drawn
for the run and without labels; the judge, in the parent, scores the logits against the labels
in that order. A grading machine without the test split gives status "error" (`Unjudgeable`),
with the fix in the message.

How the images are prepared: with the manifest's `[normalize]` statistics, or, for a model whose
manifest entry names a `test_transform`, with the student's own transform (the one that global
of the notebook applies, e.g. `test_loader.dataset.transform`) on each image as a PIL image, as
torchvision's data sets hand it over. The weights were trained on inputs prepared by that
transform, from statistics the notebook computed on the data it had, so the measurement holds on
the real data set and on a stand-in whose statistics are not the real ones alike. A notebook
without such a transform, or whose transform fails, is measured with `[normalize]` (the report
says so).

A model whose architecture the student chooses comes with a configuration file (`config`):
an assignment's own observer builds it with `configured_model` (the class called with the
file's architecture keys, the weights loaded, what did not fit recorded), and
`judge_config_fits` asks that the configuration and the weights belong together. An own check
reads a handed-in state with `handed_in_state` (which tensors fine-tuning changed in one:
`changed_tensors`).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re

import torch
from PIL import Image
from torch.nn.parameter import is_lazy

from grader.checks.common import StopProbe, WrongValue, describe_error, diff_shapes, jsonable, plain
from grader.spec import CheckSet, Verdict

NAME = "accuracy"
# Test images per forward pass. Convolutions ran twice as fast on batches of 100 as on batches
# of 500 (cnn_techniques' Net over the 10,000 test images, one thread: 3.7 s against 7 s), whose
# activations (500 x 32 x 26 x 26 floats, 43 MB) no longer fit in the cache.
BATCH = 100
OBSERVER = "predictions"


class Unjudgeable(Exception):
    """The grading machine lacks what the check needs (the test split): status "error"."""


def _pil(image: torch.Tensor) -> Image.Image:
    """A uint8 (C, H, W) test image as torchvision's data sets hand it to a transform."""
    return Image.fromarray(image[0].numpy() if len(image) == 1 else image.permute(1, 2, 0).numpy())


def own_transform(ctx, name: str):
    """The transform the notebook's global `name` applies to each image: its `transform`, or
    that of the data set under it (a DataLoader's, a Subset's), or `name` itself when it is a
    plain callable. None when there is none."""
    found = ctx.get(name)
    for _ in range(5):
        transform = getattr(found, "transform", None)
        if callable(transform):
            return transform
        if not hasattr(found, "dataset"):
            break
        found = found.dataset
    plain = callable(found) and not hasattr(found, "__getitem__")
    return found if plain else None


def transformed_batches(ctx, transform, batch_size: int = BATCH, seed: int = 0) -> list:
    """The test images through `transform` (PIL image in, tensor out), stacked in batches, after
    `torch.manual_seed(seed)`: a transform that draws at random gives one answer per seed."""
    images = torch.load(ctx.test_images, weights_only=True)  # uint8 (N, C, H, W)
    torch.manual_seed(seed)
    batches = [
        torch.stack([plain(transform(_pil(image))) for image in images[i : i + batch_size]])
        for i in range(0, len(images), batch_size)
    ]
    # float32 where the transform gives float64 (statistics kept in float64), as the student's
    # own evaluate fed the model it trained: float32 weights refuse float64 inputs.
    return [b.float() if b.is_floating_point() else b for b in batches]


def transform_steps(transform) -> str:
    """A transform's steps on one line, a Compose's in order ("ToTensor(), flatten"), for a
    student whose weights fail on them to see what the notebook's transform does. A Compose (or a
    student's class holding `.transforms`) and an nn.Sequential are opened, RandomChoice and
    RandomApply are not: they apply one or none of theirs. A step without a repr of its own shows
    its class's name, not `<Standardise object at 0x7f...>` (an address, different every run)."""

    def steps(step) -> list:  # a Compose's steps, nested ones opened
        inner = getattr(step, "transforms", None)
        # RandomChoice, RandomApply keep `.transforms` too but apply one or none of them
        if isinstance(inner, list | tuple) and not type(step).__name__.startswith("Random"):
            return [s for each in inner for s in steps(each)]
        if isinstance(step, torch.nn.Sequential):
            return [s for each in step for s in steps(each)]
        return [step]

    def name(step) -> str:
        if getattr(step, "__name__", None):
            return step.__name__
        function = getattr(step, "lambd", None)  # transforms.Lambda: its repr is "Lambda()"
        if (
            type(step).__name__ == "Lambda"
            and getattr(function, "__name__", "<lambda>") != "<lambda>"
        ):
            return f"Lambda({function.__name__})"
        if type(step).__repr__ is object.__repr__:
            return type(step).__name__
        return " ".join(repr(step).split())

    try:
        return ", ".join(name(step) for step in steps(transform))[:300]
    except Exception:  # noqa: BLE001 - a student's repr: only a hint is lost
        return ""


def prepared_batches(ctx, name: str | None, batch_size: int = BATCH) -> tuple[list, str | None]:
    """(batches of the test images, how they were prepared): through the notebook's own
    transform `name` when it has one that works (how names its steps: a student whose weights
    fail sees that the notebook's last `name` lacks a Normalize, blind 15), else normalised per
    the manifest (how: None when no transform was asked for)."""
    if not name:
        return list(ctx.test_batches(batch_size)), None
    try:
        transform = own_transform(ctx, name)
        if transform is None:
            raise TypeError(f"{name} has no transform")
        batches = transformed_batches(ctx, transform, batch_size)
        steps = transform_steps(transform)
        return batches, f"{name}'s own transform" + (f" ({steps})" if steps else "")
    except StopProbe:
        raise
    except Exception as err:  # noqa: BLE001 - measured the manifest's way, and said so
        how = f"the manifest's mean {list(ctx.manifest.mean)} and std {list(ctx.manifest.std)}"
        return list(ctx.test_batches(batch_size)), f"{how}, since {describe_error(err, 200)}"


# Prefixes every key of a state dict carries when saved from a wrapped model: nn.DataParallel
# or DistributedDataParallel ("module."), torch.compile ("_orig_mod.").
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _all_tensors(value) -> bool:
    return (
        isinstance(value, dict) and bool(value) and all(torch.is_tensor(v) for v in value.values())
    )


def submitted_state(ctx, spec, notes: list | None = None, keep: set | None = None) -> dict:
    """The state dict in the submitted weights file of model `spec` (read with
    `weights_only=True`): in a checkpoint dict ({"model_state_dict": ..., "epoch": ...}) its one
    dict of tensors, keys without a wrapper's prefix (`WRAPPER_PREFIXES`) unless the model's own
    keys `keep` carry it (an attribute called `module`); what was done is appended to `notes`. A
    TypeError when the file holds something else."""
    notes = [] if notes is None else notes
    try:
        state = torch.load(ctx.weights_dir / spec.weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not (refused := re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))):
            raise
        if refused[1].startswith("numpy"):  # a checkpoint's np.float64 (blind round 19)
            raise TypeError(
                f"{spec.weights} holds a numpy value ({refused[1]}: a number from np.max or "
                "np.mean?) that weights-only loading refuses: it was not loaded; save numbers as "
                "float(...) or int(...), or model.state_dict() alone"
            ) from None
        # torch.save(model) pickles the model's class, which weights_only=True never loads.
        raise TypeError(
            f"{spec.weights} holds a pickled object ({refused[1]}) that weights-only loading "
            "refuses, not a state dict (a whole model, saved with torch.save(model)?): it was not "
            f'loaded; save torch.save(model.state_dict(), "{spec.weights}")'
        ) from None
    except RuntimeError as err:  # torch's advice (weights_only=False) is the grader's, not theirs
        if "TorchScript archive" not in str(err):
            raise
        raise TypeError(  # blind round 17, mlp_tuning p19
            f"{spec.weights} is a TorchScript archive (torch.jit.save), not a state dict: it was "
            f'not loaded; save torch.save(model.state_dict(), "{spec.weights}")'
        ) from None
    if not isinstance(state, dict):
        raise TypeError(f"{spec.weights} holds a {type(state).__name__}: save model.state_dict()")
    if not _all_tensors(state):
        inner = [k for k, v in state.items() if _all_tensors(v)]
        if len(inner) == 1:
            state = state[inner[0]]
            notes.append(
                f"the state dict under {inner[0]!r} graded: next time save model.state_dict() alone"
            )
    return _unprefixed(state, notes, keep)


def handed_in_state(ctx, key: str) -> dict:
    """`submitted_state` of the manifest's model `key`; a `WrongValue` saying why when its
    weights file was not handed in or cannot be used (staging's problem with it)."""
    spec = ctx.manifest.model(key)
    if problem := ctx.weights_problems.get(spec.weights):
        raise WrongValue(problem)
    return submitted_state(ctx, spec)


def changed_tensors(ctx, before: str, after: str) -> list[str]:
    """The names, sorted, of the tensors of model `after`'s submitted weights that differ from
    model `before`'s (`handed_in_state`); a `WrongValue` when their tensors are named apart."""
    first, then = handed_in_state(ctx, before), handed_in_state(ctx, after)
    if first.keys() != then.keys():
        raise WrongValue("the two files hold differently named tensors")
    return sorted(k for k in first if not torch.equal(first[k], then[k]))


def _unprefixed(state: dict, notes: list, keep: set | None = None) -> dict:
    """`state` without the wrappers' prefixes on every key, in any order and nesting
    (torch.compile of an nn.DataParallel: "_orig_mod.module."), unless the model's own keys
    (`keep`) carry them too."""
    removed = ""
    while state and (
        prefix := next(
            (p for p in WRAPPER_PREFIXES if all(str(k).startswith(p) for k in state)), ""
        )
    ):
        if keep and all(k.startswith(prefix) for k in keep):
            break
        state, removed = {k[len(prefix) :]: v for k, v in state.items()}, removed + prefix
    if removed:
        notes.append(
            f"the {removed!r} prefix of its keys removed: next time save the unwrapped "
            "model's state_dict()"
        )
    return state


def load_submitted(model, ctx, spec, notes: list | None = None, built: str = "") -> None:
    """Load model `spec`'s submitted weights into `model` (strictly, but for what does not
    change its outputs: num_batches_tracked left out, tensors the model does not have),
    appending to `notes` what was done. `built` says how `model` was built (for a message; the
    manifest's arguments when empty)."""
    notes = [] if notes is None else notes
    own = model.state_dict()
    state = submitted_state(ctx, spec, notes, set(own))
    missing = [k for k in own if k not in state]
    if all(k.endswith("num_batches_tracked") for k in missing):
        if missing:  # batch norm counts its batches only when momentum is None: unused here
            state = {**state, **{k: own[k] for k in missing}}
            notes.append("num_batches_tracked missing, filled in")
        if extra := sorted(k for k in state if k not in own):
            state = {k: v for k, v in state.items() if k in own}
            shown = ", ".join(extra[:5]) + (" ..." if len(extra) > 5 else "")
            notes.append(f"{len(extra)} tensors the model does not have ignored ({shown})")
    # A lazy layer's tensors (nn.LazyLinear) take their shapes from the load itself.
    misfit = [k for k in own if k in state and not is_lazy(own[k])]
    if misfit := [k for k in misfit if _shape(state[k]) != _shape(own[k])]:
        # Weights of another width or depth: say what differs, not load_state_dict's wall of text.
        built, first = built or _call(spec), misfit[0]
        raise ValueError(
            f"the file does not fit {built}: {first} is {_shape(state[first])} in the file, "
            f"{_shape(own[first])} in the model ({len(misfit)} of {len(own)} tensors differ); "
            "hand in the weights of that model" + _swapped(ctx, spec, state)
        )
    if lacking := [k for k in missing if not k.endswith("num_batches_tracked")]:
        # Not load_state_dict's wall of text either (blind round 19: dict(named_parameters())).
        told = f"the file lacks {len(lacking)} of the model's {len(own)} tensors ({_some(lacking)})"
        if extra := [k for k in state if k not in own]:
            told += f" and holds {len(extra)} it does not have ({_some(extra)})"
        elif all(k.endswith(("running_mean", "running_var")) for k in lacking):
            told += (
                ": the batch-norm running statistics, buffers that named_parameters() leaves out"
            )
        raise ValueError(f"{told}; save model.state_dict() of that model")
    model.load_state_dict(state)


def _some(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (" ..." if len(keys) > 3 else "")


def _call(spec) -> str:
    arguments = [*map(repr, spec.args), *(f"{k}={v!r}" for k, v in spec.kwargs.items())]
    return f"{spec.class_name}({', '.join(arguments)})"


def _swapped(ctx, spec, state: dict) -> str:
    """Where the file's tensors are shaped as another model's of the manifest (built from the
    student's class), a hint that the two files were named crosswise (blind round 19: dense.pt
    and cnn.pt renamed on download); else ""."""
    for other in ctx.manifest.models:
        if other.weights == spec.weights or other.config:
            continue
        try:
            shapes = _shapes(ctx.get(other.class_name)(*other.args, **other.kwargs).state_dict())
        except StopProbe:
            raise
        except Exception:  # noqa: BLE001 - only the hint is lost
            continue
        if shapes == _shapes(state):
            return (
                f" (its tensors are shaped as {_call(other)}'s, whose file is {other.weights}: "
                "the two files' names swapped?)"
            )
    return ""


def _shape(value) -> tuple | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def submitted_config(ctx, spec, required: tuple[str, ...]) -> dict:
    """The JSON object of model `spec`'s submitted `config` file, which must name every key of
    `required`; an exception that says what is wrong with it otherwise."""
    path = ctx.submitted(spec.config)
    if not path.is_file():
        raise FileNotFoundError(f"{spec.config} was not submitted")
    try:
        config = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{spec.config} is not JSON ({err})") from None
    if not isinstance(config, dict):
        raise TypeError(f"{spec.config} holds a {type(config).__name__}, not a JSON object")
    if missing := [k for k in required if k not in config]:
        raise KeyError(f"{spec.config} lacks {', '.join(missing)}")
    return config


def _shapes(state: dict) -> list:
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor) and not is_lazy(v)]
    return sorted(list(v.shape) for v in tensors)


def configured_model(ctx, spec, architecture: tuple[str, ...], required: tuple[str, ...], out):
    """(model, configuration): model `spec` built as `class_name(**the `architecture` keys of
    its submitted configuration)`, the submitted weights loaded. Records in `out` the
    configuration ("config") and the shapes of the file's and of the model's tensors ("load",
    with the load's "error"), which `judge_config_fits` judges."""
    config = submitted_config(ctx, spec, (*architecture, *required))
    out["config"] = jsonable(config)
    if problem := ctx.weights_problems.get(spec.weights):
        raise FileNotFoundError(problem)
    arguments = {k: config[k] for k in architecture}
    model = ctx.get(spec.class_name)(**arguments)
    built = f"{spec.class_name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
    out["load"] = {"model_shapes": _shapes(model.state_dict()), "notes": []}
    try:
        # The file's own shapes: tensors the model lacks mean another configuration here.
        out["load"]["file_shapes"] = _shapes(submitted_state(ctx, spec))
        load_submitted(model, ctx, spec, out["load"]["notes"], built)  # what was done: said so
        out["load"]["model_shapes"] = _shapes(model.state_dict())  # lazy layers shaped by now
    except Exception as err:  # noqa: BLE001 - recorded for judge_config_fits, then raised
        out["load"]["error"] = describe_error(err, 400)
        raise
    return model, config


def judge_config_fits(key: str, architecture: tuple[str, ...]):
    """The judge of "model `key`'s submitted configuration and weights belong together", on an
    observation with what `configured_model` recorded ("load" {} when it never got that far)
    and, under `key`, the entry whose "error" says why."""

    def judge(seen, want, ctx) -> Verdict:
        spec = ctx.manifest.model(key)
        load = seen["load"]
        if "file_shapes" not in load:
            return Verdict.wrong(f"the final model could not be built: {seen[key]['error']}")
        arguments = ", ".join(f"{k}={seen['config'][k]!r}" for k in architecture)
        built = f"{spec.class_name}({arguments})"
        if "error" in load or load["file_shapes"] != load["model_shapes"]:
            difference = diff_shapes(load["model_shapes"], load["file_shapes"])
            return Verdict.wrong(
                f"{spec.weights} does not fit {built} built from {spec.config}: "
                f"{difference or load.get('error')}; hand in the configuration of the model "
                "whose weights you saved"
            )
        done = "".join(f" ({note})" for note in load.get("notes", []))
        return Verdict.ok(f"{spec.weights} loads into {built} built from {spec.config}{done}")

    return judge


def canonical(batches: list) -> tuple[list, torch.Tensor]:
    """The batches' images in an order set by their contents (batches of the same sizes), and
    the index that puts the scores back: the test split is shuffled afresh at every run, so a
    model that draws at random in evaluation mode (dropout left on) would see its seeded masks
    fall on other images at every regrade (blind 16: 0.8978, then 0.8976)."""
    if not batches:
        return batches, torch.zeros(0, dtype=torch.long)
    flat = torch.cat(batches)
    keys = [hashlib.sha1(x.contiguous().numpy().tobytes()).digest() for x in flat.cpu()]
    order = torch.tensor(sorted(range(len(keys)), key=keys.__getitem__), dtype=torch.long)
    return list(flat[order].split([len(b) for b in batches])), torch.argsort(order)


def scores(model, batches: list, shape=None) -> torch.Tensor:
    """`_scores` over the batches in their contents' order (canonical), in their own order."""
    batches, undo = canonical(batches)
    return _scores(model, batches, shape)[undo]


def _scores(model, batches: list, shape=None) -> torch.Tensor:
    """(N, classes) float32 scores of `model` in evaluation mode for the batches, each reshaped
    to `shape` (per sample) when given. Image batches (N, C, H, W) go in channels-last memory
    layout when the model takes them so (the same values up to float rounding; cnn_techniques'
    four CNNs over the 10,000 test images in 10 s instead of 15 s), else as they are: a forward
    that calls `.view` on its convolutions' output raises on that layout."""
    model.eval()
    with torch.no_grad():
        if shape is None and batches and batches[0].dim() == 4:
            try:
                model.to(memory_format=torch.channels_last)
                layout = torch.channels_last
                return torch.cat(
                    [model(x.contiguous(memory_format=layout)) for x in batches]
                ).float()
            except StopProbe:
                raise
            except Exception:  # noqa: BLE001 - the model's own layout decides, below
                model.to(memory_format=torch.contiguous_format)
        return torch.cat(
            [model(x.reshape(len(x), *shape) if shape else x) for x in batches]
        ).float()


def observe(ctx) -> dict:
    result = {}
    prepared: dict = {}  # test_transform name -> (batches, how), made once for every model
    judged = {check.source.split(".")[1] for check in ctx.manifest.sourced(NAME)}
    for spec in ctx.manifest.models:
        if spec.key not in judged:  # handed in for another check (cnn_techniques' MNIST net)
            continue
        entry: dict = {}
        result[spec.key] = entry
        if problem := ctx.weights_problems.get(spec.weights):
            entry["error"] = problem
            continue
        if ctx.test_images is None:
            entry["no_test_split"] = True
            continue
        try:
            model = ctx.get(spec.class_name)(*spec.args, **spec.kwargs)
            loaded: list[str] = []
            load_submitted(model, ctx, spec, loaded)
            if loaded:
                entry["loaded"] = "; ".join(loaded)
            name = spec.test_transform
            if name not in prepared:
                prepared[name] = prepared_batches(ctx, name)
            batches, how = prepared[name]
            if how:
                entry["prepared"] = how
            # A model that draws at random in evaluation mode (its dropout left on) scores the
            # same at every regrade: one draw per model, whatever was observed before it.
            torch.manual_seed(0)
            entry["logits_tensor"] = scores(model, batches, spec.input_shape)
        except StopProbe:
            raise
        except Exception as err:  # noqa: BLE001
            entry["error"] = describe_error(err, 400)
    return result


def judge_model(key: str):
    def judge(seen, want, ctx) -> Verdict:
        entry = seen.get(key)
        weights = ctx.manifest.model(key).weights
        if not isinstance(entry, dict):
            return Verdict.error(f"no predictions were recorded for {weights}")
        if entry.get("no_test_split") or ctx.labels is None:
            raise Unjudgeable(ctx.no_test_split or "the grading machine has no test split")
        if "error" in entry:
            return Verdict.error(f"{weights} could not be evaluated: {entry['error']}")
        logits, labels = entry.get("logits_tensor"), ctx.labels
        classes = ctx.manifest.classes
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(labels), classes):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
            return Verdict.wrong(
                f"expected ({len(labels)}, {classes}) scores for the test split, got {shape}"
            )
        accuracy = float((logits.argmax(1) == labels).float().mean())
        threshold = ctx.expected["accuracy"][key]["threshold"]
        # A fixed threshold's source (grader/expected) is written for the instructor; a student
        # reads only that no reference run measured it.
        fixed = "threshold_source" in ctx.expected["accuracy"][key]
        why = " (a threshold the course fixed, not measured on a reference run)" if fixed else ""
        if entry.get("prepared"):
            why = f"; test images prepared with {entry['prepared']}{why}"
        if entry.get("loaded"):  # a state dict read with allowances: say which
            why = f"{why}; {weights}: {entry['loaded']}"
        # Generated stand-ins are not the test split the threshold was set for: say so.
        on = f" on {ctx.test_split}" if ctx.test_split else ""
        return Verdict.expect(
            accuracy >= threshold,
            f"test accuracy {accuracy:.4f}{on} >= {threshold:.2f}{why}",
            f"test accuracy {accuracy:.4f}{on} is below the threshold {threshold:.2f}{why}",
            value=round(accuracy, 6),
        )

    return judge


def source_problem(manifest, parts: list[str]) -> str | None:
    """What is wrong with a check source "accuracy.<model key>", if anything."""
    if len(parts) != 1 or parts[0] not in {m.key for m in manifest.models}:
        keys = ", ".join(m.key for m in manifest.models) or "none"
        return f"write it as accuracy.<model key> (models: {keys})"
    return None


def register(checks: CheckSet, manifest) -> None:
    """The predictions observer and the checks whose source is "accuracy.<model key>"."""
    sourced = manifest.sourced(NAME)
    if not sourced:
        return
    checks.add_observer(OBSERVER, observe, reference=False, needs_test_images=True)
    for check in sourced:
        checks.add_check(check.name, OBSERVER, judge_model(check.source.split(".")[1]))
