"""What the similarity tokens keep and what they let go (grader/similarity/tokens.py)."""

from __future__ import annotations

import textwrap

from grader.similarity.tokens import cell_tokens, names_of

RELEASE_SETUP = "import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"

BLOCK = textwrap.dedent('''
    class ResBlock(nn.Module):
        """Two layers and a skip."""

        def __init__(self, in_features, hidden_features):
            super().__init__()
            # the two layers
            self.fc1 = nn.Linear(in_features, hidden_features)
            self.fc2 = nn.Linear(hidden_features, in_features)

        def forward(self, x):
            return F.relu(x + self.fc2(F.relu(self.fc1(x))))  # skip
''')


def tokens(*cells: str) -> list[tuple[str, ...]]:
    """Each cell's tokens, with the names the cells and the release's set-up bind."""
    names = names_of([RELEASE_SETUP, *cells])
    return [cell_tokens(cell, names).texts for cell in cells]


def test_are_renamed_names_the_same_tokens():
    renamed = (
        BLOCK.replace("ResBlock", "Skip")
        .replace("fc1", "first")
        .replace("fc2", "second")
        .replace("in_features", "n_in")
        .replace("hidden_features", "n_hid")
        .replace("x", "inputs")
        .replace("self", "me")
    )
    original, disguised = tokens(BLOCK, renamed)
    assert original == disguised
    assert "V" in original


def test_do_comments_docstrings_and_blank_lines_count_for_nothing():
    bare = "\n".join(
        line.split("#")[0].rstrip()
        for line in BLOCK.splitlines()
        if line.strip() and '"""' not in line
    )
    noisy = BLOCK.replace("super().__init__()", "# set up\n\n        super().__init__()  # base")
    assert tokens(bare) == tokens(BLOCK) == tokens(noisy)


def test_does_rewrapping_a_call_over_lines_change_nothing():
    wrapped = BLOCK.replace(
        "nn.Linear(in_features, hidden_features)",
        "nn.Linear(\n                in_features,\n                hidden_features,\n            )",
    )
    one_line, rewrapped = tokens(BLOCK, wrapped)
    assert one_line == rewrapped


def test_do_library_names_stay_apart():
    conv = BLOCK.replace("nn.Linear", "nn.Conv1d")
    linear, convolution = tokens(BLOCK, conv)
    assert linear != convolution
    assert "Linear" in linear and "Conv1d" in convolution


def test_is_an_import_alias_read_as_the_module_it_names():
    other = "import torch.nn as tnn\nlayer = tnn.Linear(3, 4)\n"
    usual = "layer = nn.Linear(3, 4)\n"
    assert tokens(other)[0][-10:] == tokens(usual)[0][-10:]
    assert "torch.nn" in tokens(usual)[0]


def test_are_numbers_and_strings_normalised():
    first, second = tokens('lr = 0.01\nname = "adam"\n', "lr = 3e-4\nname = 'sgd'\n")
    assert first == second == ("V", "=", "N", ";", "V", "=", "S", ";")


def test_does_a_cell_with_magics_and_broken_lines_still_give_its_tokens():
    cell = "%%time\n!nvidia-smi\nx = 1\n  y = (2,\nz = x + 1\n"
    found = tokens(cell)[0]
    assert "%" not in found and "!" not in found
    assert found[:3] == ("V", "=", "N")
    assert "+" in found  # the line after the broken one is read too
