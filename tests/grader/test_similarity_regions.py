"""The matching regions of a pair (grader/similarity/regions.py): each stretch of copied code
paired with its own copy, wherever the copy was moved."""

from __future__ import annotations

import textwrap

from grader.similarity.documents import Release, build_document
from grader.similarity.fingerprints import TokenHasher
from grader.similarity.regions import compare

TRAIN = textwrap.dedent("""
    def train(model, loader, optimizer):
        model.train()
        total = 0.0
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            total += loss.item() * labels.size(0)
        return total / len(loader.dataset)
""").strip()

EVALUATE = textwrap.dedent("""
    def evaluate(model, loader):
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in loader:
                correct += (model(images).argmax(1) == labels).sum().item()
        return correct / len(loader.dataset)
""").strip()


def test_is_each_function_paired_with_its_own_copy_after_a_reorder():
    hasher = TokenHasher()
    release = Release(["import torch\nfrom torch.nn import functional as F"], hasher)
    renamed = EVALUATE.replace("correct", "hits").replace("model", "net")
    a = build_document("a", [f"{TRAIN}\n\n\n{EVALUATE}"], [3], release, hasher)
    b = build_document("b", ["x = 1", f"{renamed}\n\n\n{TRAIN}"], [2, 5], release, hasher)
    detail = compare(a, b)
    train_a, evaluate_a = range(1, 11), range(13, 20)  # lines of each function in a's cell
    evaluate_b, train_b = range(1, 8), range(10, 20)  # and in b's second cell
    assert detail.regions
    for region in detail.regions:
        assert region.a.cell == 0 and region.b.cell == 1
        in_train = region.a.first in train_a and region.a.last in train_a
        in_evaluate = region.a.first in evaluate_a and region.a.last in evaluate_a
        assert in_train or in_evaluate, region
        paired = train_b if in_train else evaluate_b
        assert region.b.first in paired and region.b.last in paired, region
    assert {r.a.first in train_a for r in detail.regions} == {True, False}  # both found
    assert detail.lines_a >= 12 and detail.lines_b >= 12
