"""How fast this CPU runs `cnn_techniques`' networks over a test split's worth of images: the
floor under the grader's accuracy pass (four such networks per submission).

    python benchmarks/cnn_forward_floor.py [--threads 2] [--images 10000]

Random (N, 1, 28, 28) inputs; each network in evaluation mode under `torch.inference_mode`, in
batches of 100 and 500, in the default and the channels-last layout, and once under bfloat16
autocast (faster where the CPU has it, but its logits differ from float32's). One warm-up batch
per setting. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the grader's probes run
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from solutions.cnn_techniques.student import BatchNormNet, Net  # noqa: E402


def seconds(model: torch.nn.Module, batches: list[torch.Tensor], bf16: bool = False) -> float:
    """Wall time of one pass over `batches`, after one warm-up batch."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(batches[0])
        started = time.perf_counter()
        for x in batches:
            model(x)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = torch.randn(args.images, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    print(f"{args.images} images, {args.threads} threads, torch {torch.__version__}")
    for cls in (Net, BatchNormNet):
        for size in (100, 500):
            batches = list(images.split(size))
            plain = seconds(cls().eval(), batches)
            model = cls().eval().to(memory_format=torch.channels_last)
            last = [x.contiguous(memory_format=torch.channels_last) for x in batches]
            print(
                f"{cls.__name__:13} batches of {size}: {plain:.2f} s, channels-last "
                f"{seconds(model, last):.2f} s"
            )
        print(f"{cls.__name__:13} bfloat16 autocast: {seconds(cls().eval(), batches, True):.2f} s")


if __name__ == "__main__":
    main()
