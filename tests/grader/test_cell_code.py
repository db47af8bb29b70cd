"""Does a cell that stopped the probe keep what it defines, and nothing it runs?"""

from __future__ import annotations

from grader.cell_code import definitions_only

CELL = """%%time
import torch, copy
from torch import nn
!nvidia-smi
EPOCHS: int = 10
HIDDEN, DROPOUT = 128, 0.2
IMG = 28
INPUT_SIZE, LR = IMG * IMG, -(2**-10)
STEPS = len(loader) * EPOCHS
STAGES = tuple({"share": s, "epochs": e} for s, e in zip((0.6, 0.4), [EPOCHS, 2 * EPOCHS]))
NOISE = torch.randn(3)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

@torch.no_grad()
def evaluate(model, loader):
    return sum(1 for _ in loader)

class Net(nn.Module):
    pass

def fit(model, epochs=EPOCHS, device=device):  # `device` is dropped: this def fails alone
    return epochs

def predict(model, x):
    return x

history = fit(Net(), EPOCHS)  # the training run left under the definitions
for epoch in range(EPOCHS):
    print(epoch)
"""


def test_are_imports_functions_classes_and_literal_constants_kept():
    kept = definitions_only(CELL)
    namespace: dict = {}
    exec(compile(kept, "<kept>", "exec"), namespace)  # runs at once: the loop and fit are gone
    assert namespace["EPOCHS"] == 10 and (namespace["HIDDEN"], namespace["DROPOUT"]) == (128, 0.2)
    assert namespace["evaluate"](None, [1, 2]) == 2 and "copy" in namespace and "Net" in namespace
    assert (namespace["INPUT_SIZE"], namespace["LR"]) == (784, -(2**-10))  # arithmetic on them
    assert "device" not in namespace and "history" not in namespace and "fit(Net()" not in kept
    assert "STEPS" not in namespace  # reads a name that may be unbound: `loader`
    # Built from literals by pure built-ins and a comprehension (round 10b, mlp: a search's
    # default argument); a call of anything else (torch) is not kept.
    assert namespace["STAGES"] == ({"share": 0.6, "epochs": 10}, {"share": 0.4, "epochs": 20})
    assert "NOISE" not in namespace
    assert "fit" not in namespace and namespace["predict"](None, 3) == 3  # one failure, alone


def test_does_a_cell_without_definitions_or_unreadable_keep_nothing():
    assert definitions_only("while True:\n    pass\n") == ""
    assert definitions_only("def broken(:\n") == ""
    assert definitions_only("x = (" * 5000 + ")" * 5000) == ""  # nested past the parser's limit
