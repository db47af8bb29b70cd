"""Training settings of the `fnn_mnist` reference models (the sheet's: Adam, lr 0.001, 12
epochs): they train the reference and fill the notebook's training cells (`TrainConfig.code`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Images of the 60,000 training images kept apart for validation, as in the notebook.
VALIDATION_SIZE = 5000
REAL_TRAIN_SIZE = 60000


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    lr: float = 1e-3
    batch_size: int = 64
    optimizer: str = "adam"

    def code(self, model: str) -> str:
        """Notebook code that initialises `model` and sets `criterion`, `optimizer`, `epochs`."""
        return (
            f"init_weights({model})\n"
            "criterion = nn.CrossEntropyLoss()\n"
            f"optimizer = torch.optim.Adam({model}.parameters(), lr={self.lr})\n"
            f"epochs = {self.epochs}"
        )

    def make(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """The optimiser that `code` creates in the notebook."""
        return torch.optim.Adam(model.parameters(), lr=self.lr)


RUN = TrainConfig()  # both models, as the sheet trains them


def validation_size(n_train: int) -> int:
    """The notebook's 5,000 of 60,000 images, as the same share (1/12) of a smaller data set."""
    return min(VALIDATION_SIZE, n_train * VALIDATION_SIZE // REAL_TRAIN_SIZE)
