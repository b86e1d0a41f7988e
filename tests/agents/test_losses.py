"""Losses and metrics against hand-computed values on a tiny example."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vwm_agents.models import DaleRNN
from vwm_agents.training import losses
from vwm_agents.training.losses import (
    ERROR_DEFS,
    activity_penalty,
    angular_errors,
    classification_loss,
    classification_metrics,
    decoded_angles,
    masked_time_mean,
    vwm_metrics,
    vwm_trial_error,
)


def _example():
    """Two trials, K = 2 slots, T = 3 steps, decode on steps 1 and 2.

    Trial 0: slot 0 present (target angle 0), readout (1, 0) then (0, 2); slot 1 absent.
    Trial 1: slot 0 (angle 0) read out (2, 0), (3, 0); slot 1 (angle pi/2) read out (0, 1) twice.
    """
    outputs = torch.zeros(2, 3, 4)
    gt = torch.zeros(2, 3, 4)
    mask = torch.zeros(2, 3, 4)
    outputs[0, 1, :2] = torch.tensor([1.0, 0.0])
    outputs[0, 2, :2] = torch.tensor([0.0, 2.0])
    outputs[0, :, 2:] = torch.tensor([5.0, -3.0])  # absent slot: must not count
    gt[0, 1:, :2] = torch.tensor([1.0, 0.0])
    mask[0, 1:, :2] = 1.0
    outputs[1, 1, :] = torch.tensor([2.0, 0.0, 0.0, 1.0])
    outputs[1, 2, :] = torch.tensor([3.0, 0.0, 0.0, 1.0])
    gt[1, 1:, :] = torch.tensor([1.0, 0.0, 0.0, 1.0])
    mask[1, 1:, :] = 1.0
    outputs[:, 0] = 7.0  # outside the decode window: must not count
    return outputs, gt, mask


# Trial 0, slot 0: raw mean (0.5, 1.0); unit mean (0.5, 0.5), cos delta = 0.5, delta = pi/3.
# Trial 1: slot 0 raw mean (2.5, 0), unit mean (1, 0); slot 1 exact. Perfect items sit on the
# documented guards: arccos(1 - 1e-6) and roots of 1e-12.
PERFECT_DELTA = math.acos(1 - 1e-6)
EXPECTED = {
    "l2": [0.25 + 1.0, (2.25 + 0.0) / 2],
    "sqrtl2": [10 * 1.25**0.25, (10 * 1.5**0.5 + 10 * 1e-3) / 2],
    "rad": [math.pi / 3, PERFECT_DELTA],
    "exp": [-10 * math.exp(-1.0), -10 * math.exp(-3 * PERFECT_DELTA / math.pi)],
    "norml2": [math.sqrt(0.5), 1e-6],
}


@pytest.mark.parametrize("error_def", ERROR_DEFS)
def test_trial_error_matches_hand_computation(error_def):
    outputs, gt, mask = _example()
    error = vwm_trial_error(outputs, gt, mask, error_def)
    # float32 rounding of 1 - 1e-6 moves arccos by up to 5e-5
    assert torch.allclose(error, torch.tensor(EXPECTED[error_def]), rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("error_def", ERROR_DEFS)
def test_gradients_stay_finite_with_absent_and_perfect_items(error_def):
    outputs, gt, mask = _example()
    outputs.requires_grad_()
    vwm_trial_error(outputs, gt, mask, error_def).mean().backward()
    assert torch.isfinite(outputs.grad).all()
    assert (outputs.grad[mask == 0] == 0).all()


def test_outputs_outside_the_mask_change_nothing():
    outputs, gt, mask = _example()
    changed = outputs + 100.0 * torch.randn(
        outputs.shape, generator=torch.Generator().manual_seed(0)
    ) * (1 - mask)
    for error_def in ERROR_DEFS:
        assert torch.equal(
            vwm_trial_error(outputs, gt, mask, error_def),
            vwm_trial_error(changed, gt, mask, error_def),
        )
    rates = torch.ones(2, 3, 5)
    assert vwm_metrics(outputs, gt, mask, rates) == vwm_metrics(changed, gt, mask, rates)


def test_unknown_error_def():
    outputs, gt, mask = _example()
    with pytest.raises(ValueError, match="error_def must be one of"):
        vwm_trial_error(outputs, gt, mask, "l1")


def test_masked_time_mean_and_decoding():
    outputs, gt, mask = _example()
    assert torch.equal(masked_time_mean(outputs, mask)[0], torch.tensor([0.5, 1.0, 0.0, 0.0]))
    angles = decoded_angles(outputs, mask)
    assert math.isclose(angles[0, 0].item(), math.atan2(1.0, 0.5), rel_tol=1e-6)
    errors, present = angular_errors(outputs, gt, mask)
    assert present.tolist() == [[True, False], [True, True]]
    assert math.isclose(errors[0, 0].item(), -math.atan2(1.0, 0.5), rel_tol=1e-6)
    assert torch.allclose(errors[1], torch.zeros(2), atol=1e-6)


def test_error_wraps_around_the_circle():
    outputs = torch.zeros(1, 1, 2)
    outputs[0, 0] = torch.tensor([math.cos(3.0), math.sin(3.0)])
    gt = torch.tensor([[[math.cos(-3.0), math.sin(-3.0)]]])
    errors, _ = angular_errors(outputs, gt, torch.ones(1, 1, 2))
    assert math.isclose(errors.item(), 2 * math.pi - 6.0, rel_tol=1e-5)


def test_vwm_metrics_per_set_size():
    outputs, gt, mask = _example()
    rates = torch.stack([torch.full((3, 5), 2.0), torch.full((3, 5), 4.0)])
    metrics = vwm_metrics(outputs, gt, mask, rates, np.array([1, 2]))
    first = math.atan2(1.0, 0.5)
    assert math.isclose(metrics["error"], first / 2, rel_tol=1e-6)
    assert math.isclose(metrics["error_std"], first / 2, rel_tol=1e-6)  # population SD of 2 trials
    assert math.isclose(metrics["rate"], 3.0)
    assert set(metrics["per_set_size"]) == {"1", "2"}
    assert math.isclose(metrics["per_set_size"]["1"]["error"], first, rel_tol=1e-6)
    assert metrics["per_set_size"]["1"]["error_std"] == 0.0
    assert math.isclose(metrics["per_set_size"]["2"]["error"], 0.0, abs_tol=1e-6)
    assert metrics["per_set_size"]["2"]["rate"] == 4.0
    assert vwm_metrics(outputs, gt, mask, rates, torch.tensor([2, 2]))["per_set_size"].keys() == {
        "2"
    }


def test_activity_penalty_is_mean_absolute_rate():
    rates = torch.tensor([[[1.0, -3.0], [2.0, 0.0]]])
    assert activity_penalty(rates).item() == 1.5


def test_activity_penalty_of_nonnegative_rates_has_the_constant_gradient():
    """Rates >= 0 by construction (``nonnegative=True``): same value, gradient 1/numel without a
    sign pass (expanded from a scalar), equal to autograd's sign(r)/numel wherever r > 0."""
    rates = torch.rand(3, 4, 5, dtype=torch.float64) + 0.1
    known = rates.clone().requires_grad_(True)
    plain = rates.clone().requires_grad_(True)
    assert activity_penalty(known, nonnegative=True).item() == pytest.approx(
        activity_penalty(plain).item(), rel=1e-15
    )
    (known_grad,) = torch.autograd.grad(activity_penalty(known, nonnegative=True), known)
    (plain_grad,) = torch.autograd.grad(activity_penalty(plain), plain)
    torch.testing.assert_close(known_grad, plain_grad, rtol=0, atol=1e-18)
    assert known_grad.stride() == (0, 0, 0)
    assert plain_grad.stride() != (0, 0, 0)  # the default is autograd's |r|
    # one penalty per stacked model (leading dimension kept), same values and gradients
    per_model = activity_penalty(known, leading=1, nonnegative=True)
    torch.testing.assert_close(per_model, plain.abs().flatten(1).mean(dim=1).detach())
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    (known_grad,) = torch.autograd.grad(
        (activity_penalty(known, leading=1, nonnegative=True) * weights).sum(), known
    )
    (plain_grad,) = torch.autograd.grad((activity_penalty(plain, leading=1) * weights).sum(), plain)
    torch.testing.assert_close(known_grad, plain_grad, rtol=0, atol=1e-18)


def test_dale_rnn_states_its_rates_are_nonnegative():
    """The agent's statement that the trainer passes to the penalty, checked on its rates."""
    torch.manual_seed(0)
    model = DaleRNN(3, 2, n_neurons=12, spike_noise_type="gamma", spike_noise_factor=0.5)
    _, rates = model(torch.randn(4, 9, 3) * 5)
    assert DaleRNN.nonnegative_rates is True
    assert bool((rates >= 0).all())


@pytest.mark.parametrize("error_def", ERROR_DEFS)
def test_cutting_to_the_mask_window_changes_no_value_or_gradient(error_def, monkeypatch):
    """On the CPU the loss works on the steps between the first and last masked step only:
    the same values and gradients as on all steps (per trial, windows of different spans)."""
    generator = torch.Generator().manual_seed(1)
    outputs = torch.randn(3, 12, 4, dtype=torch.float64, generator=generator)
    gt = torch.nn.functional.normalize(
        torch.randn(3, 1, 2, 2, dtype=torch.float64, generator=generator), dim=-1
    )
    gt = gt.flatten(-2).expand(3, 12, 4)
    mask = torch.zeros(3, 12, 4, dtype=torch.float64)
    mask[0, 3:6, :2] = 1.0
    mask[1, 5:9] = 1.0
    mask[2, 4:7, 2:] = 1.0
    full = outputs.clone().requires_grad_(True)
    cut = outputs.clone().requires_grad_(True)
    value_cut = vwm_trial_error(cut, gt, mask, error_def).sum()
    with monkeypatch.context() as patch:  # the computation on all steps
        patch.setattr(losses, "_masked_window", lambda *tensors: tensors)
        value_full = vwm_trial_error(full, gt, mask, error_def).sum()
    torch.testing.assert_close(value_cut, value_full, rtol=1e-12, atol=1e-12)
    (grad_full,) = torch.autograd.grad(value_full, full)
    (grad_cut,) = torch.autograd.grad(value_cut, cut)
    torch.testing.assert_close(grad_cut, grad_full, rtol=1e-10, atol=1e-12)
    assert grad_cut[:, :3].abs().max() == 0 and grad_cut[:, 9:].abs().max() == 0


def test_classification_loss_and_accuracy_on_masked_steps():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]]])
    gt = torch.tensor([[0, 0, 1]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the last (wrong) step does not count
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(2.0))) / 2
    assert math.isclose(classification_loss(logits, gt, mask).item(), expected, rel_tol=1e-6)
    metrics = classification_metrics(logits, gt, mask)
    assert metrics == {"accuracy": 0.5, "error": 0.5}
