"""gankit.ppsci_adapter leans on ppsci internals; each test here checks one assumption
against the installed ppsci and names it when it no longer holds. The adapter's step is
ppsci's step without its host reads: the same weights, schedule and mean loss, bit for bit."""

import numpy as np
import paddle
import ppsci
import pytest

from gankit import ppsci_adapter as adapter
from gankit.solvers import array_loader


class Affine(ppsci.arch.Arch):
    def __init__(self):
        super().__init__()
        self.input_keys, self.output_keys = ("x",), ("y",)
        self.linear = paddle.nn.Linear(1, 1)

    def forward(self, inputs):
        return {"y": self.linear(inputs["x"])}


def squared_error(output_dict, label_dict=None, weight_dict=None):
    return {"mse": ((output_dict["y"] - 2 * output_dict["x"]) ** 2).mean()}


def make_solver(tmp_path):
    paddle.seed(0)
    model = Affine()
    constraint = ppsci.constraint.SupervisedConstraint(
        array_loader({"x": np.arange(8, dtype="float32")[:, None]}, 2),
        ppsci.loss.FunctionalLoss(squared_error),
        output_expr={"x": lambda out: out["x"], "y": lambda out: out["y"]},
        name="fit",
    )
    rate = ppsci.optimizer.lr_scheduler.Linear(2, 4, 0.1)()
    optimizer = ppsci.optimizer.SGD(rate)(model)
    return ppsci.solver.Solver(
        model,
        {"fit": constraint},
        str(tmp_path),
        optimizer,
        epochs=2,
        iters_per_epoch=1,
        device="cpu",
    )


@pytest.fixture
def solver(tmp_path):
    return make_solver(tmp_path)


def test_the_step_is_ppscis_step_bit_for_bit(tmp_path):
    ours, theirs = make_solver(tmp_path / "ours"), make_solver(tmp_path / "theirs")
    for solver in (ours, theirs):
        adapter.set_length(solver, 8, 2, 0.1)
    for _ in range(5):
        adapter.train_step(ours, 1)
        theirs.train_epoch_func(theirs, 1, 10**9)
    for (name, a), b in zip(ours.model.state_dict().items(), theirs.model.state_dict().values()):
        np.testing.assert_array_equal(
            a.numpy(),
            b.numpy(),
            err_msg=(
                f"{name}: ppsci's epoch function (ppsci/solver/train.py) no longer steps as "
                "ppsci_adapter.train_step does"
            ),
        )
    assert adapter.mean_loss(ours) == theirs.train_output_info["loss"].avg, (
        "ppsci's running mean loss (AverageMeter of loss x batch size) is not the adapter's"
    )
    assert adapter.optimizer_of(ours).get_lr() == adapter.optimizer_of(theirs).get_lr()
    assert ours.global_step == theirs.global_step == 5


def test_one_train_step_is_one_optimizer_step_and_writes_no_checkpoint(solver, tmp_path):
    before = solver.model.linear.weight.numpy().copy()
    adapter.set_length(solver, 8, 2, 0.1)
    adapter.train_step(solver, 1)
    assert not np.array_equal(solver.model.linear.weight.numpy(), before), (
        "the adapter's step (solver.model, constraint.loss, solver.optimizer) took no step"
    )
    assert solver.global_step == 1, "solver.global_step is no longer the Solver's step count"
    assert not (tmp_path / "checkpoints").exists(), "a step wrote a checkpoint"


def test_the_losses_stay_on_the_device_until_read(solver, monkeypatch):
    adapter.set_length(solver, 8, 2, 0.1)
    reads = []
    for name in ("item", "numpy", "__float__"):
        original = getattr(paddle.Tensor, name)
        monkeypatch.setattr(
            paddle.Tensor,
            name,
            lambda self, *a, _o=original, _n=name, **k: reads.append(_n) or _o(self, *a, **k),
        )
    for _ in range(3):
        adapter.train_step(solver, 1)
    assert reads == [], f"a step read tensors to the host: {reads}"
    monkeypatch.undo()
    mean, largest = adapter.mean_loss(solver), adapter.largest_loss(solver)
    assert np.isfinite(mean) and abs(largest) >= abs(mean)
    state = adapter.loss_meters(solver)
    adapter.clear_losses(solver)
    assert adapter.mean_loss(solver) == 0.0 and adapter.largest_loss(solver) == 0.0
    adapter.restore_loss_meters(solver, state)
    assert adapter.mean_loss(solver) == mean, "a checkpoint's running mean did not come back"


def test_set_length_sets_the_steps_and_the_decay(solver):
    adapter.set_length(solver, 12, 3, 0.05)
    assert (solver.max_steps, solver.epochs) == (12, 3)
    scheduler = solver.lr_scheduler
    assert (scheduler.decay_steps, scheduler.base_lr) == (12, 0.05), (
        "ppsci's Linear schedule is no longer Paddle's PolynomialDecay (decay_steps, base_lr)"
    )
    for _ in range(6):
        adapter.train_step(solver, 1)
    assert adapter.optimizer_of(solver).get_lr() == pytest.approx(0.05 * (1 - 6 / 12)), (
        "ppsci's epoch function no longer steps solver.lr_scheduler once per optimizer step"
    )


def test_swap_and_put_back_keep_the_run_optimizer_untouched(solver):
    adapter.set_length(solver, 8, 2, 0.1)
    own = adapter.optimizer_of(solver)
    trial = ppsci.optimizer.SGD(0.1)(solver.model)
    saved = adapter.swap_optimizer(solver, trial, None)
    adapter.train_step(solver, 1)
    adapter.put_back(solver, saved)
    assert adapter.optimizer_of(solver) is own and solver.global_step == 0
    assert own.get_lr() == pytest.approx(0.1), "the run's schedule moved during a swapped step"


def test_continue_loader_resumes_a_shuffled_pass(solver):
    constraint = solver.constraint["fit"]
    reads = [next(constraint.data_iter)[0]["x"].numpy().ravel().tolist() for _ in range(4)]
    adapter.continue_loader(constraint, 1)
    again = [next(constraint.data_iter)[0]["x"].numpy().ravel().tolist() for _ in range(3)]
    assert again == reads[1:], (
        "ppsci's constraint.data_loader.batch_sampler / data_iter no longer replay a pass"
    )
