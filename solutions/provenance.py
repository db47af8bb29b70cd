"""Where a generated file came from: command, commit, device, versions, seed, time."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime

import torch
import torchvision

from solutions.paths import REPO_ROOT


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + ("+dirty" if dirty.stdout.strip() else "")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(device: torch.device, seed: int, **extra) -> dict:
    return {
        "command": " ".join(["python -m solutions", *sys.argv[1:]]),
        "commit": git_commit(),
        "device": device_name(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "seed": seed,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }
