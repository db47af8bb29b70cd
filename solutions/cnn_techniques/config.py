"""Training settings of the `cnn_techniques` reference runs.

The same values train the reference (tensor path, `python -m solutions train cnn_techniques`)
and fill the hyper-parameter solution regions of the notebook (DataLoader path), via
`TrainConfig.code`. They are those of today's pytorch/examples MNIST script: Adadelta at
learning rate 1.0, the rate multiplied by 0.7 after every epoch, batches of 64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

EPOCHS = 10  # the sheet's: every run reports the best of 10 epochs
CROP_PADDING = 2  # pixels of black around the image before the random 28x28 crop
TSNE_IMAGES = 10_000  # the first 10,000 training images (the sheet says all 60,000)
TSNE_SEED = 0
# Activation maximisation: gradient-ascent steps, Adam's step size, and the weight of the
# penalty on bright pixels (without it the images fill with saturated stripes).
DREAM_STEPS = 200
DREAM_LR = 0.05
DREAM_DECAY = 0.05
ANALYSED_RUN = "baseline"  # the run whose network the t-SNE, dreams and confusion matrix use
CURVE_RUNS = ("baseline", "augmented", "batchnorm", "finetuned")  # the sheet's four cases


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = EPOCHS
    lr: float = 1.0
    gamma: float = 0.7
    batch_size: int = 64

    @property
    def scheduler(self) -> str:
        return f"StepLR(step_size=1, gamma={self.gamma})"

    def code(self, parameters: str) -> str:
        """Notebook code that sets `optimizer` and `scheduler` over `parameters` (an expression)."""
        return (
            f"optimizer = torch.optim.Adadelta({parameters}, lr={self.lr})\n"
            "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, "
            f"gamma={self.gamma})"
        )

    def make(self, parameters) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR]:
        """(optimizer, scheduler) over `parameters`: the objects that `code` creates."""
        optimizer = torch.optim.Adadelta(parameters, lr=self.lr)
        return optimizer, self.scheduler_for(optimizer)

    def scheduler_for(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.StepLR:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=self.gamma)


# One configuration for every run, as the sheet compares techniques, not optimisers. The
# fine-tuning run's optimizer comes from `student.finetuning_setup` (Adadelta over fc2 only).
RUNS = {
    "baseline": TrainConfig(),
    "augmented": TrainConfig(),
    "batchnorm": TrainConfig(),
    "mnist": TrainConfig(),
    "finetuned": TrainConfig(),
}
