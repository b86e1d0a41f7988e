"""plot_trial draws one trial from an env or a batch, without neurogym's plot_env."""

import matplotlib

matplotlib.use("Agg")

import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vwm_tasks.plotting import plot_trial, save_trial_figure  # noqa: E402
from vwm_tasks.recall import VWMRecall  # noqa: E402


@pytest.mark.parametrize("env_id", ["VWMRecall-v0", "VWMRecallCued-v0"])
def test_plot_trial_from_env(env_id):
    env = gym.make(env_id)
    fig = plot_trial(env, title="one trial")
    assert isinstance(fig, Figure)
    inputs, targets, mask = fig.axes[:3]
    assert [t.get_text() for t in inputs.texts] == ["init", "stimulus", "delay", "decode"]
    trial = env.unwrapped.trial
    n_lines = 2 if trial["probe"] >= 0 else 2 * trial["set_size"]
    assert len(targets.get_lines()) == n_lines
    assert mask.get_xlim() == (0, env.unwrapped.ob.shape[0] * env.unwrapped.dt)


def test_plot_trial_from_batch_and_compact_rejected():
    env = VWMRecall(timing={"delay": ("uniform", (200, 800))})
    batch = env.sample_batch(4, rng=0)
    fig = plot_trial(batch, index=2)
    assert fig.axes[2].get_xlim() == (0, batch.valid[2].sum() * batch.dt)
    with pytest.raises(ValueError, match="dense"):
        plot_trial(env.sample_batch(4, rng=0, dense=False))
    with pytest.raises(ValueError, match="index"):
        plot_trial(batch, index=4)


def test_save_trial_figure(tmp_path):
    path = save_trial_figure(tmp_path / "trial.png", seed=1)
    assert path.exists() and path.stat().st_size > 10_000
