"""Does the reference answer the sheet, and does the committed run reach the issue's targets?
(That it trains with what the notebook shows: tests/solutions/test_registry.py.)"""

from __future__ import annotations

from grader.judge import load_expected
from solutions.res_dense_nets.student import DenseNet, shape_answers

ID = "res_dense_nets"


def test_are_the_shape_answers_read_from_the_model_not_typed():
    # The sheet's net at growth rate k: 4 + 3k channels out of each block.
    for growth in (4, 12, 20):
        answers = shape_answers(growth)
        assert answers["block1_out_channels"] == 4 + 3 * growth == answers["fc_in_features"]
        assert answers["block1_spatial"] == [14, 14] and answers["block2_spatial"] == [7, 7]


def test_does_the_committed_reference_reach_the_issue_targets():
    # Hashes, thresholds and provenance: tests/solutions/test_expected.py, for every assignment.
    expected = load_expected(ID)
    assert expected["quick"] is False
    assert expected["accuracy"]["resmlp"]["test_accuracy"] >= 0.89
    assert expected["accuracy"]["densenet"]["test_accuracy"] >= 0.85


def test_is_the_densenet_parameter_count_the_sheet_s():
    # 3x3 conv 1->4, two blocks of 3 BN-ReLU-conv layers, a BN + 1x1 transition, a 10-way fc.
    def count(k):
        block = sum(2 * (4 + i * k) + 9 * k * (4 + i * k) + k for i in range(3))
        return 40 + 2 * block + 2 * (4 + 3 * k) + (4 + 3 * k) * 4 + 4 + (4 + 3 * k) * 10 + 10

    for k in (4, 12):
        assert sum(p.numel() for p in DenseNet(k).parameters()) == count(k)
