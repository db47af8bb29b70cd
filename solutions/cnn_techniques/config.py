"""Training settings of the `cnn_techniques` reference runs: one configuration for every run
(the sheet compares techniques, not optimisers), today's pytorch/examples MNIST script's; it also
fills the hyper-parameter solution regions of the notebook (`TrainConfig.code`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

EPOCHS = 10  # the sheet's: every run reports the best of 10 epochs
CROP_PADDING = 2  # pixels of black around the image before the random 28x28 crop
TSNE_IMAGES = 10_000  # the first 10,000 training images (the sheet says all 60,000)
ANALYSED_RUN = "baseline"  # the run whose network the t-SNE, dreams and confusion matrix use
CURVE_RUNS = ("baseline", "augmented", "batchnorm", "finetuned")  # the sheet's four cases


@dataclass(frozen=True)
class TrainConfig:
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
        return self.scheduled(torch.optim.Adadelta(parameters, lr=self.lr))

    def scheduled(self, optimizer: torch.optim.Optimizer) -> tuple:
        """(optimizer, its StepLR scheduler)."""
        return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=self.gamma)


RUN = TrainConfig()  # the fine-tuning run's optimizer comes from `student.finetuning_setup`
