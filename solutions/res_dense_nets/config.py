"""Training settings of the `res_dense_nets` reference models.

The same values train the reference (tensor path, `python -m solutions train`) and fill the
hyper-parameter solution regions of the notebook (DataLoader path), via `TrainConfig.code`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    optimizer: str  # "sgd" (Nesterov momentum) or "adam"
    lr: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64

    def code(self, model: str) -> str:
        """Notebook code that sets `epochs`, `optimizer` and `scheduler` for `model`."""
        if self.optimizer == "sgd":
            make = (
                f"SGD({model}.parameters(), lr={self.lr}, momentum={self.momentum}, nesterov=True"
            )
        else:
            make = f"Adam({model}.parameters(), lr={self.lr}"
        return (
            f"epochs = {self.epochs}\n"
            f"optimizer = torch.optim.{make}, weight_decay={self.weight_decay})\n"
            "scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)"
        )

    def make(self, model: torch.nn.Module):
        """(optimizer, scheduler) for `model`, the objects that `code` creates in the notebook."""
        if self.optimizer == "sgd":
            optimizer = torch.optim.SGD(
                model.parameters(),
                lr=self.lr,
                momentum=self.momentum,
                nesterov=True,
                weight_decay=self.weight_decay,
            )
        else:
            optimizer = torch.optim.Adam(
                model.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)


RESMLP = TrainConfig(epochs=15, optimizer="sgd", lr=0.05, weight_decay=5e-4)
DENSENET = TrainConfig(epochs=8, optimizer="adam", lr=3e-3)
DENSENET_GROWTH_RATE = 12
