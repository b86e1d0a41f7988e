"""Vectorised batches: sample_batch == new_trial, compact form, torch tensors, generic collector."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from neurogym.utils import TruncExp

from vwm_tasks.batch import TrialBatch, batch_tensors, collect_batch
from vwm_tasks.recall import VWMRecall, replay_kwargs
from vwm_tasks.recall_cued import VWMRecallCued

VARIABLE_TIMING = {
    "init": [0, 20, 40],
    "stimulus": ("uniform", (100, 300)),
    "delay": TruncExp(400, 100, 900),
    "decode": ("until", 2000),
}


@pytest.mark.parametrize("cls", [VWMRecall, VWMRecallCued])
@pytest.mark.parametrize("timing", [None, VARIABLE_TIMING], ids=["fixed", "variable"])
@pytest.mark.parametrize("encoding", ["positive", "cossin"])
def test_sample_batch_equals_new_trial_replay(cls, timing, encoding):
    env = cls(timing=timing, input_encoding=encoding, ilc_noise=0.05, max_items=6)
    batch = env.sample_batch(40, rng=7)
    lengths = batch.valid.sum(1)
    assert batch.ob.shape[:2] == batch.valid.shape == (40, lengths.max())
    if timing is not None:
        assert len(set(batch.epochs["delay"][:, 1] - batch.epochs["delay"][:, 0])) > 1
    for i in range(batch.batch_size):
        trial = env.new_trial(**replay_kwargs(batch, i))
        n_steps = env.ob.shape[0]
        assert lengths[i] == n_steps and batch.valid[i, :n_steps].all()
        np.testing.assert_array_equal(batch.ob[i, :n_steps], env.ob)
        np.testing.assert_array_equal(batch.gt[i, :n_steps], env.gt)
        np.testing.assert_array_equal(batch.mask[i, :n_steps], env.mask)
        assert not batch.ob[i, n_steps:].any() and not batch.mask[i, n_steps:].any()
        for epoch, bounds in batch.epochs.items():
            assert tuple(bounds[i]) == (env.start_ind[epoch], env.end_ind[epoch])
        assert trial["set_size"] == batch.set_size[i] and trial["probe"] == batch.probe[i]


def _summaries(theta, theta_input, presence, set_size, probe, delay, ilc):
    """Per-trial quantities whose means must agree between the two samplers."""
    k = presence.shape[1]
    noise = np.angle(np.exp(1j * (theta_input - theta)))
    probed = np.take_along_axis(presence, np.maximum(probe, 0)[:, None], 1)[:, 0]
    return {
        "set_size": set_size,
        "slot0_present": presence[:, 0],
        "slot_last_present": presence[:, k - 1],
        "cos_theta": np.cos(theta[:, 0]),
        "theta_sq": theta[:, 1] ** 2,  # pi^2 / 3 for uniform angles
        "noise_sq_over_var": (noise**2).mean(1) / ilc**2,
        "probe_present": probed,
        "probe_slot": probe,
        "delay": delay,
    }


@pytest.mark.parametrize("cls", [VWMRecall, VWMRecallCued])
def test_sample_batch_has_the_new_trial_distribution(cls):
    env = cls(
        set_sizes=[1, 2, 5], max_items=5, ilc_noise=0.2, timing={"delay": ("uniform", (100, 600))}
    )
    n = 3000
    env.seed(1)
    trials = [env.new_trial() for _ in range(n)]
    looped = _summaries(
        *(
            np.array([t[key] for t in trials])
            for key in ("theta", "theta_input", "presence", "set_size", "probe")
        ),
        np.array([t["durations"]["delay"] for t in trials]),
        env.ilc_noise,
    )
    batch = env.sample_batch(n, rng=2)
    delay = (batch.epochs["delay"][:, 1] - batch.epochs["delay"][:, 0]) * batch.dt
    vectorised = _summaries(
        batch.theta,
        batch.theta_input,
        batch.presence,
        batch.set_size,
        batch.probe,
        delay,
        env.ilc_noise,
    )
    for name, a in looped.items():
        b = vectorised[name].astype(float)
        a = a.astype(float)
        se = np.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n)
        # 4 standard errors: a false alarm rate of 6e-5 per comparison
        assert abs(a.mean() - b.mean()) <= 4 * se + 1e-12, (name, a.mean(), b.mean(), se)
    assert np.isclose(vectorised["theta_sq"].mean(), np.pi**2 / 3, rtol=0.05)


def test_sample_batch_seeding():
    env = VWMRecall()
    a, b = env.sample_batch(8, rng=3), env.sample_batch(8, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a.ob, b.ob)
    env.seed(4)
    c = env.sample_batch(8)
    env.seed(4)
    np.testing.assert_array_equal(c.theta, env.sample_batch(8).theta)
    assert not np.array_equal(c.theta, env.sample_batch(8).theta)
    with pytest.raises(ValueError, match="rng"):
        env.sample_batch(8, rng="seed")
    with pytest.raises(ValueError, match="batch_size"):
        env.sample_batch(0)


def test_balance_set_sizes_blocks():
    env = VWMRecall()
    batch = env.sample_batch(512, rng=0, balance_set_sizes=True)
    sizes, starts, counts = np.unique(batch.set_size, return_index=True, return_counts=True)
    np.testing.assert_array_equal(sizes, np.arange(1, 11))
    np.testing.assert_array_equal(counts, [52, 52] + [51] * 8)
    np.testing.assert_array_equal(starts, np.concatenate([[0], np.cumsum(counts)[:-1]]))
    np.testing.assert_array_equal(batch.presence.sum(1), batch.set_size)


@pytest.mark.parametrize("cls", [VWMRecall, VWMRecallCued])
@pytest.mark.parametrize("timing", [None, VARIABLE_TIMING], ids=["fixed", "variable"])
def test_compact_form_and_batch_tensors(cls, timing):
    env = cls(timing=timing)
    dense = env.sample_batch(32, rng=5)
    compact = env.sample_batch(32, rng=5, dense=False)
    assert compact.ob is None and compact.gt is None and compact.mask is None
    assert not compact.is_dense and dense.is_dense
    np.testing.assert_array_equal(compact.theta_input, dense.theta_input)
    for batch in (compact, dense):
        ob, gt, mask = env.batch_tensors(batch, "cpu")
        assert ob.dtype == gt.dtype == mask.dtype == torch.float32
        np.testing.assert_array_equal(ob.numpy(), dense.ob)
        np.testing.assert_array_equal(gt.numpy(), dense.gt)
        np.testing.assert_array_equal(mask.numpy(), dense.mask)
        # the builder used on accelerators, run on the CPU here
        for tensor, array in zip(
            env._expand_on_device(batch, "cpu"), (dense.ob, dense.gt, dense.mask), strict=True
        ):
            assert tensor.dtype == torch.float32
            np.testing.assert_array_equal(tensor.numpy(), array)
    wrapped = gym.make(cls.__name__ + "-v0", timing=timing)
    ob, _, _ = batch_tensors(wrapped, compact, torch.device("cpu"))
    np.testing.assert_array_equal(ob.numpy(), dense.ob)


def test_collect_batch_uses_sample_batch():
    env = gym.make("VWMRecall-v0")
    batch = collect_batch(env, 16, rng=3, balance_set_sizes=True)
    np.testing.assert_array_equal(
        batch.ob, env.unwrapped.sample_batch(16, rng=3, balance_set_sizes=True).ob
    )
    assert collect_batch(env, 16, rng=3, dense=False).ob is None


def test_collect_batch_discrete_env():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make("DelayMatchSample-v0", dt=100)
        batch = collect_batch(env, 12, rng=0)
        again = collect_batch(env, 12, rng=0)
    assert isinstance(batch, TrialBatch) and batch.trials is not None and len(batch.trials) == 12
    assert batch.gt.dtype == np.int64 and batch.gt.shape == batch.valid.shape == batch.mask.shape
    assert batch.ob.shape[:2] == batch.valid.shape and batch.ob.dtype == np.float32
    np.testing.assert_array_equal(batch.mask, batch.valid.astype(np.float32))
    np.testing.assert_array_equal(batch.ob, again.ob)
    for i, trial_start in enumerate(batch.epochs["fixation"][:, 0]):
        assert trial_start == 0 and batch.epochs["decision"][i, 1] == batch.valid[i].sum()
    ob, gt, mask = batch_tensors(env, batch)
    assert gt.dtype == torch.int64 and gt.shape == batch.valid.shape
    with pytest.raises(ValueError, match="sample_batch"):
        collect_batch(env, 4, dense=False)


def test_collect_batch_box_env_pads_variable_lengths():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make("ReachingDelayResponse-v0")
        batch = collect_batch(env, 40, rng=1)
    lengths = batch.valid.sum(1)
    assert len(set(lengths)) > 1 and batch.n_steps == lengths.max()
    assert batch.gt.dtype == np.float32 and batch.gt.shape == (40, batch.n_steps, 2)
    np.testing.assert_array_equal(batch.mask, np.repeat(batch.valid[..., None], 2, -1))
    for i, n in enumerate(lengths):
        assert not batch.ob[i, n:].any() and not batch.gt[i, n:].any()
        assert batch.ob[i, :n].any()
