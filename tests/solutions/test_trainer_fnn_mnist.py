"""Does the `fnn_mnist` NetworkTrainer do what its notebook tells students: correct-prediction
counts, penalties, per-sample losses, modes, gradients, devices, curves; and does NetworkUser
save, load and predict as it says?"""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from solutions.fnn_mnist.student import (
    FNN,
    NetworkTrainer,
    NetworkUser,
    l1_regularization,
    l2_regularization,
    sum_correct_preds,
)

matplotlib.use("Agg")


def test_does_sum_correct_preds_count_argmax_hits_as_an_int():
    scores = torch.tensor([[0.1, 0.9], [2.0, -1.0], [0.0, 3.0], [-5.0, -4.0]])
    targets = torch.tensor([1, 0, 0, 0])
    got = sum_correct_preds(scores, targets)
    assert type(got) is int and got == 2
    assert sum_correct_preds(scores, scores.argmax(1)) == len(scores)


def _known_model() -> nn.Module:
    """Linear(2, 2) then BatchNorm1d(2), every parameter set by hand."""
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        model[0].bias.copy_(torch.tensor([3.0, -1.0]))
        model[1].weight.copy_(torch.tensor([2.0, 1.0]))
        model[1].bias.copy_(torch.tensor([0.0, -0.5]))
    return model


def test_are_the_penalties_lambda_times_the_sums_over_all_parameters():
    values = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, -1.0, 2.0, 1.0, 0.0, -0.5])
    model = _known_model()
    assert l2_regularization(model, 0.1).item() == pytest.approx(0.1 * values.pow(2).sum().item())
    assert l1_regularization(model, 0.1).item() == pytest.approx(0.1 * values.abs().sum().item())
    assert l2_regularization(model).item() == pytest.approx(1e-3 * values.pow(2).sum().item())
    l2_regularization(model, 0.1).backward()
    torch.testing.assert_close(model[0].weight.grad, 0.2 * model[0].weight.detach())


def _trainer(model, data, batch_size=4, lr=0.0, **kwargs) -> NetworkTrainer:
    """A trainer on `data` for training and validation, plain SGD (lr 0: nothing moves)."""
    return NetworkTrainer(
        model,
        DataLoader(data, batch_size=batch_size),
        DataLoader(data, batch_size=batch_size),
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=lr),
        "cpu",
        **kwargs,
    )


def _data(n=10, features=6, seed=0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(
        torch.randn(n, features, generator=g), torch.randint(0, 3, (n,), generator=g)
    )


def test_does_the_trainer_average_losses_per_sample_over_a_short_last_batch():
    torch.manual_seed(0)
    data, model = _data(), nn.Linear(6, 3)
    x, y = data.tensors
    with torch.no_grad():
        per_sample = F.cross_entropy(model(x), y).item()
        batch_means = [F.cross_entropy(model(x[i : i + 4]), y[i : i + 4]).item() for i in (0, 4, 8)]
    assert abs(sum(batch_means) / 3 - per_sample) > 1e-3  # batches of 4, 4, 2 tell them apart
    trainer = _trainer(model, data)
    assert trainer.train_epoch() == pytest.approx(per_sample, abs=1e-6)
    loss, accuracy = trainer.validate()
    assert loss == pytest.approx(per_sample, abs=1e-6)
    assert accuracy == pytest.approx((model(x).argmax(1) == y).float().mean().item())


def test_does_the_trainer_count_accuracy_with_the_given_function_as_a_fraction():
    data = _data()
    for count, want in ((lambda out, t: len(t), 1.0), (lambda out, t: 0, 0.0)):
        trainer = _trainer(nn.Linear(6, 3), data, sum_correct_preds=count)
        trainer.train_epoch()
        assert trainer.train_accuracy == want
        assert trainer.validate()[1] == want


def test_does_validation_change_neither_weights_nor_batchnorm_statistics():
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    seen = []
    model.register_forward_pre_hook(
        lambda m, inputs: seen.append((m.training, torch.is_grad_enabled()))
    )
    trainer = _trainer(model, _data(), lr=0.5)
    trainer.train_epoch()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    seen.clear()
    trainer.validate()
    assert seen and all(mode == (False, False) for mode in seen)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_does_train_epoch_train_in_training_mode_even_after_validation():
    model = nn.Sequential(nn.Linear(6, 3))
    modes = []
    model.register_forward_pre_hook(lambda m, inputs: modes.append(m.training))
    trainer = _trainer(model, _data())
    trainer.validate()
    modes.clear()
    trainer.train_epoch()
    assert modes == [True, True, True]


class _GradientRecorder(torch.optim.SGD):
    """SGD with lr 0 that keeps a copy of the gradients it is asked to step with."""

    def __init__(self, params):
        super().__init__(params, lr=0.0)
        self.grads = []

    def step(self, closure=None):
        self.grads.append([p.grad.clone() for g in self.param_groups for p in g["params"]])
        return super().step(closure)


def test_does_every_step_use_the_gradient_of_its_own_batch_only():
    torch.manual_seed(0)
    data, model = _data(), nn.Linear(6, 3)
    optimizer = _GradientRecorder(model.parameters())
    loader = DataLoader(data, batch_size=4)
    trainer = NetworkTrainer(model, loader, loader, nn.CrossEntropyLoss(), optimizer, "cpu")
    trainer.train_epoch()
    x, y = data.tensors
    for i, recorded in zip((0, 4, 8), optimizer.grads, strict=True):
        want = torch.autograd.grad(
            F.cross_entropy(model(x[i : i + 4]), y[i : i + 4]), [model.weight, model.bias]
        )
        for got, expected in zip(recorded, want, strict=True):
            torch.testing.assert_close(got, expected)


def test_is_the_penalty_in_the_training_loss_only():
    data, model = _data(), nn.Linear(6, 3)
    plain = _trainer(model, data).validate()[0]
    trainer = _trainer(model, data, regularization=lambda m: torch.tensor(5.0))
    assert trainer.train_epoch() == pytest.approx(plain + 5.0, abs=1e-5)
    assert trainer.validate()[0] == pytest.approx(plain, abs=1e-6)


def test_does_a_regularised_step_move_the_weights_as_the_penalty_says():
    model = _known_model()
    start = {k: v.clone() for k, v in model.named_parameters()}
    lr, lam = 0.1, 0.05
    trainer = NetworkTrainer(
        model,
        DataLoader(_data(n=4, features=2), batch_size=4),
        [],
        lambda outputs, targets: outputs.sum() * 0.0,  # only the penalty has a gradient
        torch.optim.SGD(model.parameters(), lr=lr),
        "cpu",
        regularization=lambda m: l2_regularization(m, lam),
    )
    trainer.train_epoch()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), start[name] * (1 - 2 * lr * lam), msg=name)


def test_does_train_network_report_one_entry_per_epoch_of_each_curve():
    trainer = _trainer(nn.Linear(6, 3), _data(), lr=0.1)
    history = trainer.train_network(3)
    assert set(history) == {"train_loss", "val_loss", "train_accuracy", "val_accuracy"}
    assert all(len(v) == 3 for v in history.values())
    assert history["val_loss"][-1] == pytest.approx(trainer.validate()[0])
    assert all(0 <= a <= 1 for a in history["train_accuracy"] + history["val_accuracy"])


class _Stop(Exception):
    pass


def test_does_the_trainer_move_the_model_and_every_batch_to_its_device():
    """On the meta device, as the grader checks it: a hook records where input and model are."""
    for run in ("train_epoch", "validate"):
        model = nn.Linear(6, 3)
        seen = []

        def hook(module, inputs, seen=seen):
            seen.append((inputs[0].device.type, module.weight.device.type))
            raise _Stop

        model.register_forward_pre_hook(hook)
        data = _data()
        trainer = NetworkTrainer(
            model,
            DataLoader(data, batch_size=4),
            DataLoader(data, batch_size=4),
            nn.CrossEntropyLoss(),
            torch.optim.SGD(model.parameters(), lr=0.1),
            torch.device("meta"),
        )
        with pytest.raises(_Stop):
            getattr(trainer, run)()
        assert seen == [("meta", "meta")], run


# ---------------------------------------------------------------- [NU] the network user


def test_does_a_saved_and_loaded_network_predict_exactly_as_the_original(tmp_path):
    torch.manual_seed(0)
    model = FNN(20, 7, 3, batch_norm=True)
    trainer = _trainer(
        model, TensorDataset(torch.randn(32, 20), torch.randint(0, 3, (32,))), lr=0.1
    )
    trainer.train_epoch()  # batch norm statistics away from their start
    inputs = torch.randn(16, 20)
    user = NetworkUser(model)
    labels = user.predict(inputs)
    assert labels.dtype == torch.int64 and labels.device.type == "cpu" and labels.shape == (16,)
    user.save(tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert set(state) == set(model.state_dict())
    fresh = NetworkUser(FNN(20, 7, 3, batch_norm=True))
    fresh.load(tmp_path / "w.pt")
    assert torch.equal(fresh.predict(inputs), labels)
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(inputs), model.eval()(inputs), rtol=0, atol=0)


def test_does_show_predictions_draw_each_image_with_both_labels():
    user = NetworkUser(FNN())
    images, labels = torch.randn(10, 784), torch.arange(10)
    predicted = user.predict(images)
    fig = user.show_predictions(images, labels, n=5)
    assert isinstance(fig, matplotlib.figure.Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        f"pred {int(p)}\ntrue {int(t)}" for p, t in zip(predicted[:5], labels[:5], strict=True)
    ]
    assert all(ax.images[0].get_array().shape == (28, 28) for ax in fig.axes)
    matplotlib.pyplot.close(fig)
