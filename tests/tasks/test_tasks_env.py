"""VWMRecall-v0 / VWMRecallCued-v0 against neurogym's and gymnasium's own env rules."""

import subprocess
import sys
import warnings

import gymnasium as gym
import neurogym as ngym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from neurogym.envs.registration import all_tags
from neurogym.utils import TruncExp

import vwm_tasks
from vwm_tasks.recall import EPOCHS, VWMRecall
from vwm_tasks.recall_cued import VWMRecallCued

ENV_IDS = ("VWMRecall-v0", "VWMRecallCued-v0")


@pytest.fixture(autouse=True)
def _quiet_gym_warnings():
    # gymnasium warns about the seed() method and wrapper attribute forwarding, both used on purpose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _random_run(env, n_steps=100):
    obs, rewards = [], []
    env.reset()
    for _ in range(n_steps):
        ob, reward, terminated, truncated, info = env.step(env.action_space.sample())
        obs.append(np.array(ob))
        rewards.append(reward)
        assert "new_trial" in info and "gt" in info
        if terminated:
            env.reset()
    return np.array(obs), np.array(rewards)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_neurogym_run_and_tags(env_id):
    env = ngym.make(env_id)
    obs, _ = _random_run(env)
    assert obs.shape == (100, *env.observation_space.shape)
    tags = env.unwrapped.metadata["tags"]
    assert tags and all(tag in all_tags() for tag in tags)
    assert env.unwrapped.metadata["render_modes"] == []
    assert isinstance(env.unwrapped.new_trial(), dict)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_docstring_is_the_spec(env_id):
    doc = type(gym.make(env_id).unwrapped).__doc__
    for section in (
        "Description",
        "Observation Space",
        "Action Space",
        "Rewards",
        "Arguments",
        "Version History",
    ):
        assert f"## {section}" in doc


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeding_with_seed_and_with_reset_seed(env_id):
    env = gym.make(env_id, dt=20).unwrapped
    runs = []
    for _ in range(2):
        env.seed(0)
        runs.append(_random_run(env))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])

    def reset_seeded(seed):
        env.reset(seed=seed)
        return [env.new_trial()["theta"] for _ in range(3)]

    np.testing.assert_array_equal(reset_seeded(5), reset_seeded(5))
    assert not np.array_equal(reset_seeded(5), reset_seeded(6))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id):
    check_env(gym.make(env_id).unwrapped)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_neurogym_dataset_shapes_and_variety(env_id):
    dataset = ngym.Dataset(env_id, env_kwargs={"dt": 100}, batch_size=32, seq_len=40)
    inputs, target = dataset()
    assert inputs.shape[:2] == target.shape[:2] == (40, 32)
    dataset = ngym.Dataset(gym.make(env_id).unwrapped, batch_size=32, seq_len=1000)
    inputs, target = dataset()
    assert np.sum(np.var(inputs, axis=1)) > 0 and np.sum(np.var(target, axis=1)) > 0


def test_gym_make_without_prior_import():
    code = (
        "import gymnasium as gym; env = gym.make('VWMRecall-v0'); "
        "env2 = gym.make('VWMRecallCued-v0'); print(type(env.unwrapped).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "VWMRecall"


def test_module_prefixed_id_without_the_plugin_hook():
    # gymnasium >= 1.0 no longer loads "gymnasium.envs" entry points; "vwm_tasks:VWMRecall-v0"
    # imports our package first, which registers the ids, on every gymnasium version. The fresh
    # interpreter hides our entry point from gymnasium, as gymnasium 1.x would ignore it.
    code = (
        "import importlib.metadata as md\n"
        "entry_points = md.entry_points\n"
        "def without_gym_plugins(**kw):\n"
        "    return [] if kw.get('group') == 'gymnasium.envs' else entry_points(**kw)\n"
        "md.entry_points = without_gym_plugins\n"
        "import sys, gymnasium as gym\n"
        "from gymnasium.envs.registration import registry\n"
        "assert 'VWMRecall-v0' not in registry and 'vwm_tasks' not in sys.modules\n"
        "env = gym.make('vwm_tasks:VWMRecall-v0', max_items=4)\n"
        "cued = gym.make('vwm_tasks:VWMRecallCued-v0')\n"
        "print(type(env.unwrapped).__name__, env.unwrapped.max_items, type(cued.unwrapped).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "VWMRecall 4 VWMRecallCued"


def test_import_vwm_tasks_before_gymnasium():
    # The plugin hook is re-entered while gymnasium imports; it must not see a half-built module.
    code = "import vwm_tasks, gymnasium as gym; print(gym.make('VWMRecall-v0').unwrapped.max_items)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10"


def test_package_registers_and_exports():
    vwm_tasks.register_envs()  # idempotent
    assert vwm_tasks.VWMRecall is VWMRecall and vwm_tasks.VWMRecallCued is VWMRecallCued
    env = gym.make("VWMRecall-v0", max_items=3, dt=20)
    assert env.unwrapped.observation_space.shape == (9,)
    assert env.unwrapped.action_space.shape == (6,)


def test_default_trial_layout():
    env = VWMRecall()
    trial = env.new_trial()
    assert env.ob.shape == (202, 30) and env.gt.shape == env.mask.shape == (202, 20)
    assert env.ob.dtype == env.gt.dtype == env.mask.dtype == np.float32
    assert [env.start_ind[e] for e in EPOCHS] == [0, 2, 52, 152]
    assert [env.end_ind[e] for e in EPOCHS] == [2, 52, 152, 202]
    assert set(trial) >= {"theta", "theta_input", "presence", "set_size", "probe"}
    assert trial["theta"].shape == trial["theta_input"].shape == trial["presence"].shape == (10,)
    assert trial["probe"] == -1 and trial["presence"].sum() == trial["set_size"]


@pytest.mark.parametrize("cls", [VWMRecall, VWMRecallCued])
def test_input_only_in_stimulus_and_mask_exactly_decode_x_present(cls):
    env = cls(timing={"delay": ("uniform", (300, 900))}, ilc_noise=0.0)
    env.seed(3)
    for _ in range(30):
        trial = env.new_trial()
        start, end = env.start_ind, env.end_ind
        steps = np.arange(env.ob.shape[0])
        in_stimulus = (steps >= start["stimulus"]) & (steps < end["stimulus"])
        in_decode = (steps >= start["decode"]) & (steps < end["decode"])
        n_stim = env.ob.shape[1] - env.n_cue_channels
        assert not env.ob[~in_stimulus, :n_stim].any()
        assert (env.ob[in_stimulus, :n_stim] == env.ob[start["stimulus"], :n_stim]).all()
        if cls is VWMRecallCued:
            cue = np.zeros(env.max_items)
            cue[trial["probe"]] = env.input_strength / env.max_items
            assert (env.ob[in_decode, n_stim:] == cue).all() and not env.ob[
                ~in_decode, n_stim:
            ].any()
            assert trial["presence"][trial["probe"]]
            expected_mask = np.outer(in_decode, np.ones(2))
            theta = trial["theta"][[trial["probe"]]]
        else:
            expected_mask = np.outer(in_decode, np.repeat(trial["presence"], 2))
            theta = trial["theta"]
        np.testing.assert_array_equal(env.mask, expected_mask)
        pairs = env.gt[in_decode].reshape(in_decode.sum(), -1, 2)
        norms = np.linalg.norm(pairs, axis=-1)
        scored = expected_mask[in_decode][:, ::2] > 0
        np.testing.assert_allclose(norms[scored], 1.0, rtol=1e-6)
        assert not env.gt[~in_decode].any() and not norms[~scored].any()
        expected = np.stack([np.cos(theta), np.sin(theta)], -1).astype(np.float32)
        np.testing.assert_allclose(
            pairs[0][scored[0]], expected[scored[0] if cls is VWMRecall else [0]], rtol=1e-6
        )


@pytest.mark.parametrize("cls", [VWMRecall, VWMRecallCued])
def test_forced_trial_is_read_back(cls):
    env = cls(max_items=4, dt=20)
    theta = np.array([0.1, -1.0, 2.0, 3.0])
    presence = np.array([True, False, True, False])
    trial = env.new_trial(
        theta=theta, presence=presence, theta_input=theta, durations={"delay": 200}
    )
    np.testing.assert_array_equal(trial["theta"], theta)
    np.testing.assert_array_equal(trial["presence"], presence)
    assert trial["set_size"] == 2 and trial["durations"]["delay"] == 200
    assert env.end_ind["delay"] - env.start_ind["delay"] == 10
    if cls is VWMRecallCued:
        assert trial["probe"] in (0, 2)
        assert env.new_trial(presence=presence, probe=2)["probe"] == 2
    assert env.new_trial(set_size=3)["presence"].sum() == 3


@pytest.mark.parametrize("encoding", ["positive", "cossin"])
def test_cue_has_the_scale_of_a_stimulus_channel(encoding):
    # An item's channels average strength / K (positive: three channels summing to 3 x scale;
    # cossin: a unit vector x scale); the cue one-hot must drive the network as strongly.
    env = VWMRecallCued(max_items=5, input_strength=60.0, input_encoding=encoding, ilc_noise=0.0)
    env.seed(0)
    trial = env.new_trial(set_size=3)
    n_stim = env.ob.shape[1] - env.n_cue_channels
    stimulus = env.ob[env.start_ind["stimulus"], :n_stim].reshape(env.max_items, -1)
    present = stimulus[trial["presence"]]
    scale = 60.0 / 5
    if encoding == "positive":
        np.testing.assert_allclose(present.mean(axis=1), scale, rtol=1e-6)
    else:
        np.testing.assert_allclose(np.linalg.norm(present, axis=1), scale, rtol=1e-6)
    cue = env.ob[env.start_ind["decode"], n_stim:]
    expected = np.zeros(5, dtype=np.float32)
    expected[trial["probe"]] = scale
    np.testing.assert_array_equal(cue, expected)


def test_reward_and_performance():
    env = VWMRecall(max_items=3, dt=20)
    env.reset(seed=0)
    env.new_trial()
    decode_rewards, performances = [], []
    for _ in range(3 * env.ob.shape[0]):
        in_decode = env.start_ind["decode"] <= env.t_ind < env.end_ind["decode"]
        _, reward, _, _, info = env.step(env.gt[env.t_ind])  # a perfect responder
        if in_decode:
            decode_rewards.append(reward)
        else:
            assert reward == 0.0
        if info["new_trial"]:
            performances.append(info["performance"])
    assert len(performances) == 3 and np.allclose(performances, 1.0)
    assert np.allclose(decode_rewards, 0.0, atol=1e-12)
    env.new_trial()
    env.t_ind = env.start_ind["decode"]
    _, reward, _, _, _ = env.step(np.zeros(6))
    # all-zero report: squared error 1 per scored output (cos^2 + sin^2 over two outputs)
    assert reward == pytest.approx(-0.5)


def test_variable_timing_specs():
    env = VWMRecall(
        dt=10,
        timing={
            "init": [0, 20],
            "stimulus": ("choice", [100, 200]),
            "delay": ("truncated_exponential", (300, 100, 900)),
            "decode": ("until", 2000),
        },
    )
    lengths = {env.new_trial() and env.ob.shape[0] for _ in range(50)}
    assert lengths == {200}  # "until" fixes the trial end
    env = VWMRecall(timing={"delay": TruncExp(400, 100, 800)})
    env.seed(0)
    delays = {env.new_trial()["durations"]["delay"] for _ in range(20)}
    assert len(delays) > 1 and all(100 <= d < 800 and d % 10 == 0 for d in delays)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"set_sizes": [11]}, "set_sizes"),
        ({"set_sizes": [0, 1]}, "set_sizes"),
        ({"set_sizes": []}, "set_sizes"),
        ({"set_sizes": [2, 2]}, "set_sizes"),
        ({"max_items": 0}, "max_items"),
        ({"timing": {"delay": -100}}, "timing['delay']"),
        ({"timing": {"stimulus": 0}}, "timing['stimulus']"),
        ({"timing": {"decode": 5}}, "timing['decode']"),
        ({"timing": {"delay": ("uniform", (500, 100))}}, "timing['delay']"),
        ({"timing": {"delay": ("gauss", (1, 2))}}, "timing['delay']"),
        ({"timing": {"delay": "long"}}, "timing['delay']"),
        ({"timing": {"pause": 100}}, "timing keys"),
        ({"input_encoding": "polar"}, "input_encoding"),
        ({"dt": 0}, "dt"),
        ({"dt": -10}, "dt"),
        ({"ilc_noise": -0.1}, "ilc_noise"),
        ({"input_strength": 0}, "input_strength"),
        ({"rewards": {"correct": 1}}, "rewards"),
    ],
)
def test_bad_kwargs_raise_one_line_value_error(kwargs, names):
    for env_id in ENV_IDS:
        with pytest.raises(ValueError, match=None) as error:
            gym.make(env_id, **kwargs)
        message = str(error.value)
        assert names in message and "\n" not in message


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"set_size": 0}, "set_size"),
        ({"theta": [0.0, 1.0]}, "theta"),
        ({"presence": np.zeros(10, bool)}, "presence"),
        ({"presence": np.ones(10, bool), "set_size": 3}, "set_size"),
        ({"durations": {"stimulus": 0}}, "durations['stimulus']"),
        ({"durations": {"delay": -10}}, "durations['delay']"),
        ({"probe": 3}, "probe"),
        ({"colour": 1}, "new_trial keys"),
    ],
)
def test_bad_new_trial_kwargs_raise(kwargs, names):
    with pytest.raises(ValueError) as error:
        VWMRecall().new_trial(**kwargs)
    assert names in str(error.value)


def test_cued_probe_must_be_present():
    presence = np.zeros(10, bool)
    presence[4] = True
    with pytest.raises(ValueError, match="probe must be a present slot"):
        VWMRecallCued().new_trial(presence=presence, probe=2)
