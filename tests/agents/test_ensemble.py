"""Stacked ensembles: member s computes and trains like a single model with its seed.

Bit-exactness is not expected (see the docstring of :mod:`vwm_agents.models.ensemble`: batched GEMMs
block and sum differently from single GEMMs), so values are compared within float32 tolerance;
the noise draws themselves must be *identical* (same generator, same draw order).
"""

from __future__ import annotations

import pytest
import torch
from test_fast_paths import one_torch_thread  # noqa: F401 (a fixture)

from vwm_agents.models import DaleRNN, GRUAgent
from vwm_agents.models.ensemble import ensemble_forward, stackable
from vwm_agents.models.noise import noise_fn
from vwm_agents.training import losses
from vwm_agents.training.losses import ensemble_vwm_loss
from vwm_agents.training.rundir import HISTORY_FILE, read_history

N_IN, N_OUT, N_NEURONS, BATCH, STEPS = 9, 6, 24, 6, 16
RTOL, ATOL = 1e-4, 1e-5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _member(seed: int, noise_type: str = "gamma") -> DaleRNN:
    torch.manual_seed(seed)
    return DaleRNN(
        N_IN, N_OUT, n_neurons=N_NEURONS, spike_noise_type=noise_type, spike_noise_factor=0.1
    )


def _data(n_members: int, seed: int = 100):
    """One batch per member (as the trainer gives each member its own data stream)."""
    generator = torch.Generator().manual_seed(seed)
    ob = torch.rand(n_members, BATCH, STEPS, N_IN, generator=generator) * 12.0
    gt = torch.randn(n_members, BATCH, STEPS, N_OUT, generator=generator)
    mask = torch.zeros(n_members, BATCH, STEPS, N_OUT)
    mask[:, :, STEPS // 2 :, : N_OUT // 2] = 1.0  # decode window, first slots present
    return ob, gt, mask


def _single_loss(model, ob, gt, mask, generator, readout_from=0):
    outputs, rates = model(ob, generator=generator, readout_from=readout_from)
    return losses.vwm_trial_error(outputs, gt, mask, "rad").mean() + 1e-3 * losses.activity_penalty(
        rates, nonnegative=True
    )


def test_per_member_generators_reproduce_single_draws_exactly():
    rates = torch.rand(3, 5, 7) * 30.0
    factor = torch.full((3, 1, 1), 0.1)
    stacked = noise_fn("gamma", factor, 10.0, [torch.Generator().manual_seed(s) for s in range(3)])
    draws = stacked(rates)
    for s in range(3):
        single = noise_fn("gamma", torch.tensor(0.1), 10.0, torch.Generator().manual_seed(s))
        torch.testing.assert_close(draws[s], single(rates[s]), rtol=0, atol=0)


@pytest.mark.parametrize("noise_type, readout_from", [("gamma", 0), ("gauss", 0), ("gamma", 8)])
def test_stacked_forward_and_gradients_match_single_models(noise_type, readout_from):
    members = [_member(seed, noise_type) for seed in (0, 1, 2)]
    ob, gt, mask = _data(3)
    outputs, rates = ensemble_forward(
        members,
        ob,
        generators=[torch.Generator().manual_seed(10 + s) for s in range(3)],
        readout_from=readout_from,
    )
    per_member = ensemble_vwm_loss(
        outputs, rates, gt, mask, error_def="rad", nonnegative=True, lambda_reg=1e-3
    )
    per_member.sum().backward()
    stacked_grads = [[p.grad.clone() for p in m.parameters()] for m in members]
    for s, model in enumerate(members):
        model.zero_grad(set_to_none=True)
        generator = torch.Generator().manual_seed(10 + s)
        single_out, single_rates = model(
            ob[s], generator=torch.Generator().manual_seed(10 + s), readout_from=readout_from
        )
        torch.testing.assert_close(outputs[s], single_out, rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(rates[s], single_rates, rtol=RTOL, atol=ATOL)
        loss = _single_loss(model, ob[s], gt[s], mask[s], generator, readout_from)
        torch.testing.assert_close(per_member[s], loss, rtol=RTOL, atol=ATOL)
        loss.backward()
        for stacked, single in zip(stacked_grads[s], model.parameters(), strict=True):
            assert single.grad.abs().max() > 0
            torch.testing.assert_close(
                stacked, single.grad, rtol=RTOL, atol=ATOL * single.grad.abs().max().item()
            )


def _train_single(seed: int, iterations: int, data, clip: float):
    model = _member(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1000 + seed)
    for it in range(iterations):
        ob, gt, mask = (x[it] for x in data)
        optimizer.zero_grad(set_to_none=True)
        _single_loss(model, ob, gt, mask, generator).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        model.apply_constraints()
    return model


def test_member_trains_like_a_single_run_and_stopped_members_drop_out():
    """3 members, 4 Adam iterations with clipping; member 1 stops after iteration 2 (as early
    stopping would) and leaves the stack. Each ends with the weights of its single run."""
    seeds, iterations, clip, stop_after = (0, 1, 2), 4, 0.5, {1: 2}
    data = {
        s: _data(iterations, seed=200 + s) for s in seeds
    }  # per-member streams (iteration-major)
    members = {s: _member(s) for s in seeds}
    optimizers = {s: torch.optim.Adam(members[s].parameters(), lr=1e-3) for s in seeds}
    generators = {s: torch.Generator().manual_seed(1000 + s) for s in seeds}
    active = list(seeds)
    for it in range(iterations):
        active = [s for s in active if stop_after.get(s, iterations) > it]
        ob, gt, mask = (torch.stack([data[s][i][it] for s in active]) for i in range(3))
        for s in active:
            optimizers[s].zero_grad(set_to_none=True)
        outputs, rates = ensemble_forward(
            [members[s] for s in active], ob, generators=[generators[s] for s in active]
        )
        ensemble_vwm_loss(
            outputs, rates, gt, mask, error_def="rad", nonnegative=True, lambda_reg=1e-3
        ).sum().backward()
        for s in active:
            torch.nn.utils.clip_grad_norm_(members[s].parameters(), clip)
            optimizers[s].step()
            members[s].apply_constraints()
    for s in seeds:
        single = _train_single(s, stop_after.get(s, iterations), data[s], clip)
        for trained, expected in zip(members[s].parameters(), single.parameters(), strict=True):
            torch.testing.assert_close(trained, expected, rtol=RTOL, atol=ATOL)
        assert not torch.equal(members[s].recurrent_weights, _member(s).recurrent_weights)


def test_non_dale_members_fall_back_to_a_loop():
    torch.manual_seed(0)
    members = [GRUAgent(N_IN, N_OUT, n_hidden=8) for _ in range(2)]
    assert not stackable(members)
    ob = _data(2)[0]
    outputs, states = ensemble_forward(members, ob)
    for s, model in enumerate(members):
        expected_out, expected_states = model(ob[s])
        torch.testing.assert_close(outputs[s], expected_out, rtol=0, atol=0)
        torch.testing.assert_close(states[s], expected_states, rtol=0, atol=0)


def test_shared_batch_is_broadcast_to_members():
    members = [_member(0), _member(1)]
    ob = _data(1)[0][0]
    outputs, rates = ensemble_forward(members, ob, noise=False)
    assert outputs.shape == (2, BATCH, STEPS, N_OUT) and rates.shape == (2, BATCH, STEPS, N_NEURONS)
    torch.testing.assert_close(rates[1], members[1](ob, noise=False)[1], rtol=RTOL, atol=ATOL)


def test_members_with_different_settings_are_not_stacked():
    assert stackable([_member(0), _member(1)])
    assert not stackable([_member(0), _member(1, noise_type="gauss")])


def test_bad_arguments_are_one_line_errors():
    members = [_member(0), _member(1)]
    ob = _data(2)[0]
    with pytest.raises(ValueError, match=r"generators: need one per member \(2\), got 1"):
        ensemble_forward(members, ob, generators=[torch.Generator()])
    with pytest.raises(ValueError, match=r"ob: expected \(B, T, n_in\) or \(2, B, T, n_in\)"):
        ensemble_forward(members, ob[:1])
    with pytest.raises(ValueError, match="models: need at least one member"):
        ensemble_forward([], ob)
    with pytest.raises(ValueError, match="models: all members must be the same class"):
        ensemble_forward([members[0], GRUAgent(N_IN, N_OUT)], ob)


# ----------------------------------------------------------------------------------------------
# Through the trainer: training.num_models


def _trainer_config(*overrides: str):
    from vwm_agents.config import Config, apply_overrides

    data = {
        "task": {
            "id": "VWMRecall-v0",
            "max_items": 2,
            "timing": {"init": 40, "stimulus": 100, "delay": 100, "decode": 100},
        },
        "agent": {
            "name": "dale_rnn",
            "n_neurons": 16,
            "spike_noise_type": "gamma",
            "spike_noise_factor": 0.1,
        },
        "training": {
            "seed": 0,
            "num_iterations": 6,
            "batch_size": 8,
            "learning_rate": 0.01,
            "eval_batch_size": 16,
            "device": "cpu",
            "threads": 1,
            "grad_clip": 1.0,
        },
        "logging": {"run_name": "ens", "period": 3, "progress": False},
    }
    return Config.from_dict(apply_overrides(data, overrides))


def _latest(run_dir):
    from vwm_agents.training.checkpoint import load_checkpoint

    return load_checkpoint(run_dir / "checkpoints" / "latest.pt", kind="latest")


def test_trainer_members_train_like_single_runs(tmp_path):
    """``training.num_models=3``: runs/<name>/seed_<s>/ hold what the single run of seed s holds
    (weights after 6 iterations within float32 tolerance, same history iterations and losses),
    including a member that early-stops before the others (patience 2)."""
    import yaml

    from vwm_agents import train

    overrides = ("training.early_stop_patience=2", "training.num_iterations=8")
    run_dir = train(_trainer_config("training.num_models=3", *overrides), tmp_path / "ensemble")
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["training"]["num_models"] == 3
    stopped_at = set()
    for seed in (0, 1, 2):
        member = run_dir / f"seed_{seed}"
        for name in ("config.yaml", HISTORY_FILE, "metrics.json", "checkpoints/latest.pt"):
            assert (member / name).is_file(), member / name
        member_cfg = yaml.safe_load((member / "config.yaml").read_text())["training"]
        assert (member_cfg["seed"], member_cfg["num_models"]) == (seed, 1)
        single_dir = train(
            _trainer_config(f"training.seed={seed}", *overrides), tmp_path / f"single_{seed}"
        )
        got, expected = _latest(member), _latest(single_dir)
        assert got["iteration"] == expected["iteration"]
        stopped_at.add(got["iteration"])
        for key, value in expected["model"].items():
            torch.testing.assert_close(got["model"][key], value, rtol=RTOL, atol=ATOL)
        got_history = read_history(member)
        expected_history = read_history(single_dir)
        assert [r["iteration"] for r in got_history] == [r["iteration"] for r in expected_history]
        for a, b in zip(got_history, expected_history, strict=True):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert len(stopped_at) > 1  # members left the stack at different iterations


def test_trainer_ensemble_resumes_exactly_and_refuses_to_overwrite(tmp_path):
    from vwm_agents import RunDirError, train

    straight = train(_trainer_config("training.num_models=2"), tmp_path / "a")
    train(_trainer_config("training.num_models=2", "training.num_iterations=3"), tmp_path / "b")
    resumed = train(_trainer_config("training.num_models=2"), tmp_path / "b", resume=True)
    for seed in (0, 1):
        a, b = _latest(straight / f"seed_{seed}"), _latest(resumed / f"seed_{seed}")
        assert a["iteration"] == b["iteration"] == 6
        for key, value in a["model"].items():
            torch.testing.assert_close(b["model"][key], value, rtol=0, atol=0)
    with pytest.raises(RunDirError, match="a run of this name exists"):
        train(_trainer_config("training.num_models=2"), tmp_path / "a")
