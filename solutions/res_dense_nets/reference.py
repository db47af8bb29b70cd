"""Expected answers of `res_dense_nets`, computed from the reference models, never typed.

`structure` answers the grader's probe settings (manifest `[probe]`) with the reference classes:
shapes are per sample (no batch dimension), parameter shapes sorted so that layouts compare.
`train` trains both reference models on the real training split and measures test accuracy.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from solutions.data import load_split, normalize
from solutions.manifest import Manifest
from solutions.res_dense_nets import config
from solutions.res_dense_nets.student import (
    DenseBlock,
    DenseNet,
    ResBlock,
    ResMLP,
    Transition,
    shape_answers,
)
from solutions.training import History, fit

MODELS = {"resmlp": (ResMLP, config.RESMLP), "densenet": (DenseNet, config.DENSENET)}


def param_shapes(module: nn.Module) -> list[list[int]]:
    return sorted([list(p.shape) for p in module.parameters()])


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def per_layer(module: nn.Module) -> dict[str, int]:
    """Parameters owned by each submodule, by its name in the reference model."""
    counts = {}
    for name, sub in module.named_modules():
        own = sum(p.numel() for p in sub.parameters(recurse=False))
        if own:
            counts[name] = own
    return counts


def _record_inputs(modules: list[nn.Module]) -> tuple[list, list]:
    seen = []
    handles = [
        m.register_forward_pre_hook(lambda mod, inputs: seen.append(list(inputs[0].shape[1:])))
        for m in modules
    ]
    return seen, handles


@torch.no_grad()
def structure(manifest: Manifest) -> dict:
    probe = manifest.probe
    resblocks = []
    for in_features, hidden in probe["resblock_widths"]:
        block = ResBlock(in_features, hidden)
        resblocks.append(
            {
                "setting": [in_features, hidden],
                "output_shape": list(block(torch.zeros(1, in_features)).shape[1:]),
                "param_shapes": param_shapes(block),
                "params": param_count(block),
            }
        )
    mlp = ResMLP().eval()
    resmlp = {
        "output_shape": list(mlp(torch.zeros(1, 1, 28, 28)).shape[1:]),
        "resblocks": sum(isinstance(m, ResBlock) for m in mlp.modules()),
        "param_shapes": param_shapes(mlp),
        "params": param_count(mlp),
        "per_layer": per_layer(mlp),
    }
    denseblocks = []
    for c, n, k in probe["denseblock_settings"]:
        for size in probe["denseblock_sizes"]:
            block = DenseBlock(c, n, k).eval()
            convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
            seen, handles = _record_inputs(convs)
            out = block(torch.zeros(1, c, size, size))
            [h.remove() for h in handles]
            denseblocks.append(
                {
                    "setting": [c, n, k],
                    "size": size,
                    "output_shape": list(out.shape[1:]),
                    "layer_in_channels": sorted(s[0] for s in seen),
                    "batchnorm_features": sorted(
                        m.num_features for m in block.modules() if isinstance(m, nn.BatchNorm2d)
                    ),
                }
            )
    transitions = []
    for c_in, c_out, size in probe["transition_settings"]:
        layer = Transition(c_in, c_out).eval()
        transitions.append(
            {
                "setting": [c_in, c_out, size],
                "output_shape": list(layer(torch.zeros(1, c_in, size, size)).shape[1:]),
                "param_shapes": param_shapes(layer),
            }
        )
    densenets = {}
    for growth in probe["densenet_growth_rates"]:
        model = DenseNet(growth).eval()
        block_inputs, handles = _record_inputs([model.block1, model.block2])
        fc_inputs, fc_handles = _record_inputs([model.fc])
        out = model(torch.zeros(1, 1, 28, 28))
        [h.remove() for h in handles + fc_handles]
        densenets[str(growth)] = {
            "output_shape": list(out.shape[1:]),
            "block_inputs": block_inputs,
            "last_linear_input": fc_inputs[0],
            "param_shapes": param_shapes(model),
            "params": param_count(model),
            "per_layer": per_layer(model),
        }
    return {
        "resblock": resblocks,
        "resmlp": resmlp,
        "denseblock": denseblocks,
        "transition": transitions,
        "densenet": densenets,
    }


@dataclass(frozen=True)
class TrainResult:
    histories: dict[str, History]
    test_accuracy: dict[str, float]
    weights: dict[str, Path]
    seconds: float


def train(
    manifest: Manifest,
    device: torch.device,
    seed: int,
    weights_dir: Path,
    *,
    quick: bool = False,
    data_root: Path | None = None,
) -> TrainResult:
    """Train both reference models on the training split; save weights; test accuracy.

    `quick` trains one epoch on 2,000 training images and tests on 1,000: every code path,
    none of the accuracy.
    """
    started = time.perf_counter()
    splits = {}
    for split, is_train in (("train", True), ("test", False)):
        images, labels = load_split(manifest.dataset, is_train, root=data_root, device=device)
        splits[split] = (normalize(images, manifest.mean, manifest.std), labels)
    if quick:
        splits = {"train": _head(splits["train"], 2000), "test": _head(splits["test"], 1000)}
    histories, accuracies, weights = {}, {}, {}
    weights_dir.mkdir(parents=True, exist_ok=True)
    for key, (cls, cfg) in MODELS.items():
        spec = manifest.model(key)
        torch.manual_seed(seed)
        model = cls(*spec.args).to(device)
        optimizer, scheduler = cfg.make(model)
        histories[key] = fit(
            model,
            optimizer,
            scheduler,
            splits["train"],
            splits["test"],
            epochs=1 if quick else cfg.epochs,
            batch_size=cfg.batch_size,
            seed=seed,
            name=key,
        )
        accuracies[key] = histories[key].test_accuracy[-1]
        weights[key] = weights_dir / spec.weights
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights[key])
    return TrainResult(histories, accuracies, weights, time.perf_counter() - started)


def _head(split, n):
    return split[0][:n], split[1][:n]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_answers(manifest: Manifest, result: TrainResult, quick: bool) -> dict:
    """Everything the grader compares with, besides provenance."""
    accuracy = {}
    for key, acc in result.test_accuracy.items():
        spec = manifest.model(key)
        cfg = MODELS[key][1]
        accuracy[key] = {
            "test_accuracy": round(acc, 4),
            "threshold": spec.threshold(acc),
            "threshold_rule": f"floor((test_accuracy - {spec.threshold_margin}) * 100) / 100",
            "epochs": len(result.histories[key].loss),
            "optimizer": cfg.optimizer,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "train_accuracy": round(result.histories[key].train_accuracy[-1], 4),
            "seconds_per_epoch": round(
                sum(result.histories[key].seconds) / len(result.histories[key].seconds), 2
            ),
        }
    return {
        "structure": structure(manifest),
        "answers": shape_answers(config.DENSENET_GROWTH_RATE),
        "accuracy": accuracy,
        "weights": {p.name: {"sha256": sha256(p)} for p in result.weights.values()},
        "quick": quick,
    }
