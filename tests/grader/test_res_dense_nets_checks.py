"""res_dense_nets' own DenseBlock checks, in-process: does a block without dense connectivity
lose all of denseblock_layer_inputs in every course's settings?"""

from __future__ import annotations

import pytest

from tests.grader.families.conftest import Harness

# Every dense layer is fed the block's input alone; the outputs are concatenated at the end.
INPUT_ONLY = """
class DenseBlock(nn.Module):
    def __init__(self, in_channels, num_layers, growth_rate):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(in_channels),
                nn.ReLU(),
                nn.Conv2d(in_channels, growth_rate, kernel_size=3, padding=1),
            )
            for _ in range(num_layers)
        )

    def forward(self, x):
        return torch.cat([x, *(layer(x) for layer in self.layers)], dim=1)
"""


@pytest.mark.parametrize("seed", range(6))
def test_does_a_block_whose_layers_see_only_its_input_lose_every_setting(seed):
    # A one-layer block has no dense connectivity to get wrong: such a setting paid this block.
    harness = Harness.of("res_dense_nets", seed=seed)
    results = harness.grade(harness.namespace(INPUT_ONLY), ["denseblock_structure"])
    layer_inputs = results["denseblock_layer_inputs"]
    assert layer_inputs.points == 0, layer_inputs.message
    assert (
        results["denseblock_concatenates"].points == results["denseblock_concatenates"].max_points
    )


# Dropout that only acts in training mode: the sheet's ResMLP has none (its text says so).
DROPOUT_MLP = """
class ResMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(28 * 28, 256)
        self.blocks = nn.Sequential(ResBlock(256, 128), ResBlock(256, 128))
        self.head = nn.Linear(256, 10)

    def forward(self, x):
        x = F.dropout(F.relu(self.stem(torch.flatten(x, 1))), 0.2, training=self.training)
        return self.head(self.blocks(x))
"""


def test_is_dropout_in_the_residual_mlp_charged_to_its_behaviour_alone():
    harness = Harness.of("res_dense_nets")
    observer = harness.checkset.checks["resmlp_behaviour"].observer
    results = harness.grade(harness.namespace(DROPOUT_MLP), [observer])
    lost = {name for name, r in results.items() if r.points < r.max_points}
    assert lost == {"resmlp_behaviour"}, {n: r.message for n, r in results.items()}
