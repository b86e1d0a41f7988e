"""Configuration: schema validation, overrides, the original four-section format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vwm_agents.config import (
    ERROR_DEFS,
    Config,
    ConfigError,
    from_original,
    load_config,
    to_original,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# The original code's README-era default config.yaml, verbatim (see docs/model.md, section Training).
ORIGINAL_YAML = """
model_params:
  max_item_num: 10
  item_num: [1,2,3,4,5,6,7,8,9,10]
  num_neurons: 256
  dt: 10
  tau_max: 300
  tau_min: 50
  ILC_noise: 0.01
  spike_noise_factor: 0.05
  spike_noise_type: 'gamma'
  positive_input: true
  input_strength: 120
  saturation_firing_rate: 60
  dales_law: true
  T_init: 20
  T_stimi: 500
  T_delay: 1000
  T_decode: 500
training_params:
  train_rnn: true
  load_history: false
  use_scripted_model: false
  num_iterations: 50000
  error_def: 'rad'
  eta: 0.0001
  lambda_reg: 0.00001
  lambda_err: 1.0
  num_trials: 512
  logging_period: 50
  early_stop_patience: 600
  adaptive_lr_patience: 400
model_and_logging_params:
  rnn_name: "EasyTask1"
  cuda_device: 0
  plot_weights_bool: false
  error_dist_bool: false
  fit_mixture_bool: false
  snr_analy_bool: false
  mixed_selec_bool: false
fpf_params:
  fpf_bool: false
  fpf_pca_bool: true
  fpf_names: ['fpf_NoFps', 'fpf_decode']
  fpf_trials: 20
  fpf_N_init: 20
  fpf_noise_scale: 0.0
  fpf_hps:
    max_iters: 50
    lr_init: 0.01
    outlier_distance_scale: 10.0
    verbose: false
    super_verbose: false
"""


def write(tmp_path: Path, data, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return path


def test_error_defs_agree_with_losses():
    from vwm_agents.training import losses

    assert tuple(ERROR_DEFS) == tuple(losses.ERROR_DEFS)


def test_default_config_loads_and_round_trips():
    config = load_config()
    assert config.task.id == "VWMRecall-v0" and config.agent.name == "dale_rnn"
    assert (
        config.training.grad_clip is not None
    )  # the CPU default clips (docs/model.md, What is ours)
    again = Config.from_dict(config.to_dict())
    assert again == config
    assert Config.from_dict(yaml.safe_load(config.to_yaml())) == config


def test_empty_sections_take_reference_defaults():
    config = Config.from_dict({})
    t = config.training
    assert (t.learning_rate, t.lr_factor, t.lr_patience, t.early_stop_patience) == (
        1e-4,
        0.5,
        400,
        600,
    )
    assert (t.batch_size, t.num_iterations, t.error_def, t.grad_clip) == (512, 50_000, "rad", None)
    assert (t.lambda_err, t.lambda_reg) == (1.0, 1e-5)
    assert config.logging.period == 50
    assert config.logging.tensorboard is False


def test_one_default_the_reference_and_the_shipped_default_file_is_a_config_file():
    """The schema's defaults are the reference model, which configs/original.yaml spells out;
    load_config() without a path is configs/default.yaml read like any other file."""
    import inspect

    import gymnasium as gym

    empty = Config.from_dict({})
    reference = load_config(CONFIGS / "original.yaml")
    for section in ("training", "logging", "analysis"):
        assert getattr(empty, section) == getattr(reference, section), section
    assert (empty.task.id, empty.agent.name) == (reference.task.id, reference.agent.name)
    # task and agent kwargs left out take the env's / agent's defaults: the reference's too
    agent_defaults = inspect.signature(empty.agent_class().__init__).parameters
    for key, value in reference.agent.kwargs.items():
        assert agent_defaults[key].default == value, key
    env = gym.make(reference.task.id, disable_env_checker=True).unwrapped
    for key, value in reference.task.kwargs.items():
        if key == "input_encoding":
            continue
        assert (
            list(getattr(env, key)) == value if key == "set_sizes" else getattr(env, key) == value
        ), key
    # the command line's default is the shipped file, layered on the same defaults
    assert load_config() == load_config(CONFIGS / "default.yaml")
    shipped = yaml.safe_load((CONFIGS / "default.yaml").read_text())
    assert load_config().training.num_iterations == shipped["training"]["num_iterations"]
    assert load_config().training.lr_factor == empty.training.lr_factor  # a key it leaves out


def test_json_and_overrides(tmp_path):
    path = write(tmp_path, {"training": {"seed": 1}, "agent": {"name": "gru"}}, "c.json")
    config = load_config(
        path,
        [
            "training.seed=3",
            "task.timing.delay=200",
            "agent.n_hidden=16",
            "training.grad_clip=null",
        ],
    )
    assert config.training.seed == 3
    assert config.task.kwargs["timing"] == {"delay": 200}
    assert config.agent.kwargs == {"n_hidden": 16}
    assert config.training.grad_clip is None


def test_int_widens_to_float():
    config = Config.from_dict({"training": {"learning_rate": 1, "grad_clip": 2}})
    assert isinstance(config.training.learning_rate, float)
    assert config.training.grad_clip == 2.0


BAD_CONFIGS = [
    (
        {"training": {"learning_rate": -1}},
        "training.learning_rate: must be a positive number, got -1",
    ),
    (
        {"training": {"learning_rate": "fast"}},
        "training.learning_rate: must be a positive number, got 'fast'",
    ),
    ({"training": {"batch_size": 0}}, "training.batch_size: must be an integer >= 1, got 0"),
    ({"training": {"batch_size": 2.5}}, "training.batch_size: must be an integer >= 1, got 2.5"),
    ({"training": {"seed": True}}, "training.seed: must be an integer >= 0, got true"),
    ({"training": {"lr_factor": 1.0}}, "training.lr_factor: must be a number > 0 and < 1, got 1.0"),
    (
        {"training": {"error_def": "l1"}},
        "training.error_def: must be one of l2, sqrtl2, rad, exp, norml2, got 'l1'",
    ),
    (
        {"training": {"grad_clip": 0}},
        "training.grad_clip: must be null or a positive number, got 0",
    ),
    (
        {"training": {"device": "tpu"}},
        "training.device: must be one of auto, cpu, cuda, cuda:<index>, got 'tpu'",
    ),
    (
        {"training": {"compile": "yes"}},
        "training.compile: must be one of auto, off, graph, inductor, got 'yes'",
    ),
    (
        {"training": {"balance_set_sizes": "yes"}},
        "training.balance_set_sizes: must be true or false, got 'yes'",
    ),
    (
        {"training": {"learning_rate": float("nan")}},
        "training.learning_rate: must be a positive number, got nan",
    ),
    ({"training": {"lr": 0.1}}, "training.lr: unknown key; allowed: seed, num_iterations,"),
    ({"logging": {"period": -5}}, "logging.period: must be an integer >= 1, got -5"),
    (
        {"logging": {"run_name": "../x"}},
        "logging.run_name: must be a relative name without '..', got '../x'",
    ),
    ({"analysis": {"only": "snr"}}, "analysis.only: must be null or a list of strings, got 'snr'"),
    (
        {"analysis": {"fixed_points": {"max_iters": 0}}},
        "analysis.fixed_points.max_iters: must be an integer >= 1, got 0",
    ),
    (
        {"optimizer": {}},
        "optimizer: unknown section; allowed: task, agent, training, logging, analysis",
    ),
    ({"training": [1, 2]}, "training: must be a mapping of keys to values, got [1, 2]"),
    ({"agent": {"name": "lstm"}}, "agent.name: unknown agent 'lstm'; allowed: dale_rnn, gru"),
    (
        {"agent": {"name": "dale_rnn", "neurons": 64}},
        "agent.neurons: unknown argument of dale_rnn; allowed: n_neurons, dt,",
    ),
    (
        {"agent": {"name": "dale_rnn", "n_neurons": "many"}},
        "agent.n_neurons: must be an integer, got 'many'",
    ),
    (
        {"agent": {"name": "dale_rnn", "dales_law": 1}},
        "agent.dales_law: must be true or false, got 1",
    ),
    ({"task": {"id": "NoSuchTask-v9"}}, "task.id: unknown environment 'NoSuchTask-v9'"),
    (
        {"task": {"id": "VWMRecall-v0", "items": 3}},
        "task.items: unknown argument of VWMRecall-v0; allowed:",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"), BAD_CONFIGS, ids=[m.split(":")[0] for _, m in BAD_CONFIGS]
)
def test_bad_config_gives_one_line_naming_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message), text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.seed", "--set training.seed: must look like section.key=value"),
        ("train.seed=1", "--set train.seed=1: unknown section 'train'"),
        ("training.seed=[1", "training.seed: value '[1' is not valid YAML"),
        # --set and Config.with_value walk a dotted key with the same code and the same words
        ("agent.n_neurons.x=1", "agent.n_neurons: is not a mapping, cannot set agent.n_neurons.x"),
    ],
)
def test_bad_override(override, message):
    with pytest.raises(ConfigError, match="^" + message.replace("[", r"\[")):
        load_config(None, [override])


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {seed: [}\n")
    with pytest.raises(ConfigError, match="not valid YAML/JSON") as info:
        load_config(bad)
    assert "\n" not in str(info.value)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(listing)


def test_model_and_env_errors_name_the_argument():
    from vwm_agents.training.run import build_model, make_env

    config = Config.from_dict({"task": {"max_items": 0}})
    with pytest.raises(ConfigError, match=r"^task\.max_items: "):
        make_env(config)
    # the message mentions max_items too; the argument it is about comes first
    config = Config.from_dict({"task": {"max_items": 10, "set_sizes": [11]}})
    with pytest.raises(ConfigError, match=r"^task\.set_sizes: .*got \[11\]$"):
        make_env(config)
    config = Config.from_dict({"task": {"input_encoding": "foo"}})
    with pytest.raises(ConfigError, match=r"^task\.input_encoding: .*got 'foo'$"):
        make_env(config)
    config = Config.from_dict({"agent": {"tau_min": 500.0, "tau_max": 100.0}})
    with pytest.raises(ConfigError, match=r"^agent\.tau_(min|max): "):
        build_model(config, make_env(config))
    config = Config.from_dict({"agent": {"dt": 20.0}})
    with pytest.raises(ConfigError, match=r"^agent\.dt: must equal the task's dt"):
        build_model(config, make_env(config))


# -- the original four-section format -----------------------------------------------------------


def test_original_format_maps_onto_ours(tmp_path):
    config = load_config(write(tmp_path, yaml.safe_load(ORIGINAL_YAML)))
    assert config.task.kwargs == {
        "max_items": 10,
        "set_sizes": list(range(1, 11)),
        "dt": 10,
        "ilc_noise": 0.01,
        "input_encoding": "positive",
        "input_strength": 120,
        "timing": {"init": 20, "stimulus": 500, "delay": 1000, "decode": 500},
    }
    assert config.agent.kwargs == {
        "n_neurons": 256,
        "tau_max": 300,
        "tau_min": 50,
        "spike_noise_factor": 0.05,
        "spike_noise_type": "gamma",
        "positive_input": True,
        "saturation_firing_rate": 60,
        "dales_law": True,
    }
    t = config.training
    assert (t.num_iterations, t.error_def, t.learning_rate, t.lambda_reg, t.lambda_err) == (
        50000,
        "rad",
        1e-4,
        1e-5,
        1.0,
    )
    assert (t.batch_size, t.early_stop_patience, t.lr_patience, t.grad_clip) == (
        512,
        600,
        400,
        None,
    )
    assert (t.device, t.noise_stages) == ("auto", 1)
    assert (config.logging.run_name, config.logging.period) == ("EasyTask1", 50)
    assert config.analysis.only == ["dn"]
    assert config.analysis.fixed_points.to_dict() == {
        "trials": 20,
        "n_init": 20,
        "noise_scale": 0.0,
        "max_iters": 50,
        "lr_init": 0.01,
        "outlier_distance_scale": 10.0,
        "pca": True,
        "newton_iterations": 30,
        "epoch": None,
    }


def test_original_round_trips_and_equals_configs_original(tmp_path):
    original = yaml.safe_load(ORIGINAL_YAML)
    ours = load_config(write(tmp_path, original))
    # original -> ours -> original: every key the mapping keeps comes back unchanged
    back = to_original(ours)
    dropped = {"train_rnn", "load_history", "use_scripted_model", "fpf_names"}
    expected = {
        section: {k: v for k, v in body.items() if k not in dropped}
        for section, body in original.items()
    }
    expected["fpf_params"]["fpf_hps"] = {
        k: v for k, v in expected["fpf_params"]["fpf_hps"].items() if "verbose" not in k
    }
    assert back == expected
    # ... and ours -> original -> ours is the identity
    assert Config.from_dict(back) == ours
    # configs/original.yaml is the same run in our schema (the analysis switches aside)
    shipped = load_config(CONFIGS / "original.yaml").to_dict()
    mapped = ours.to_dict()
    shipped.pop("analysis"), mapped.pop("analysis")
    assert shipped == mapped


def test_original_latest_version_keys():
    data = yaml.safe_load(ORIGINAL_YAML)
    del data["model_params"]["spike_noise_factor"]
    data["model_params"]["final_spike_noise_factor"] = 0.2
    data["training_params"]["multi_stage_training"] = {"num_stage": 4}
    data["model_and_logging_params"]["divis_norma_bool"] = False
    data["model_and_logging_params"]["snr_analy_bool"] = True
    del data["model_and_logging_params"]["cuda_device"]
    data["training_params"]["error_def"] = "norml2"
    config = Config.from_dict(data)
    assert config.agent.kwargs["spike_noise_factor"] == 0.2
    assert config.training.noise_stages == 4
    assert config.training.error_def == "norml2"
    assert config.analysis.only == ["snr"]
    back = to_original(config)
    assert back["model_params"]["final_spike_noise_factor"] == 0.2
    assert back["training_params"]["multi_stage_training"] == {"num_stage": 4}


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        (
            "model_params",
            "num_neuron",
            3,
            "model_params.num_neuron: unknown key of the original format; allowed: max_item_num,",
        ),
        (
            "training_params",
            "eta",
            -0.1,
            "training_params.eta (training.learning_rate): must be a positive number",
        ),
        ("training_params", "train_rnn", "yes", "training_params.train_rnn: must be true or false"),
        (
            "training_params",
            "multi_stage_training",
            {"stages": 2},
            "training_params.multi_stage_training: must be a mapping with the single key num_stage",
        ),
        (
            "model_and_logging_params",
            "cuda_device",
            -1,
            "model_and_logging_params.cuda_device: must be an integer >= 0",
        ),
        (
            "fpf_params",
            "fpf_hps",
            {"max_iter": 5},
            "fpf_params.fpf_hps.max_iter: unknown key of the original format",
        ),
    ],
)
def test_original_format_errors(section, key, value, message):
    data = yaml.safe_load(ORIGINAL_YAML)
    data[section][key] = value
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data)
    assert str(info.value).startswith(message), str(info.value)


def test_original_unknown_section_and_overrides(tmp_path):
    data = yaml.safe_load(ORIGINAL_YAML)
    data["extra_params"] = {}
    with pytest.raises(ConfigError, match="^extra_params: unknown section of the original format"):
        from_original(data)
    data.pop("extra_params")
    config = load_config(write(tmp_path, data), ["training.seed=7", "agent.n_neurons=64"])
    assert config.training.seed == 7 and config.agent.kwargs["n_neurons"] == 64


# -- item-by-item behaviour of a validated config ------------------------------------------------


def test_config_is_immutable_and_with_value_checks_one_value():
    import dataclasses

    config = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.seed = 3  # type: ignore[misc]
    changed = config.with_value("training.seed", 3)
    assert changed.training.seed == 3 and config.training.seed == 0
    assert changed.training.num_iterations == config.training.num_iterations
    assert changed.task is config.task  # untouched sections are shared, not rebuilt
    assert config.with_value("logging.out_dir", "2024").logging.out_dir == "2024"
    assert config.with_value("logging.out_dir", "runs #1").logging.out_dir == "runs #1"
    assert config.with_value("task.timing.delay", 300).task.kwargs["timing"] == {"delay": 300}
    assert (
        config.with_value("analysis.fixed_points.max_iters", 5).analysis.fixed_points.max_iters == 5
    )
    assert config.with_values({"training.seed": 4, "training.num_models": 1}).training.seed == 4
    with pytest.raises(ConfigError, match=r"^agent\.n_neurons: unknown argument of gru"):
        config.with_value("agent.name", "gru")  # re-checks the kwargs against the new class
    for key, value, message in [
        ("training.seed", -1, "training.seed: must be an integer >= 0, got -1"),
        ("training.sed", 1, "training.sed: unknown key; allowed: seed,"),
        ("logging.run_name", "../up", "logging.run_name: must be a relative name"),
        ("agent.neurons", 3, "agent.neurons: unknown argument of dale_rnn"),
        ("agent.n_neurons", "many", "agent.n_neurons: must be an integer, got 'many'"),
        ("training.seed.x", 1, "training.seed: is not a mapping, cannot set training.seed.x"),
        ("seed", 1, "seed: must be a dotted key"),
    ]:
        with pytest.raises(ConfigError) as info:
            config.with_value(key, value)
        assert str(info.value).startswith(message), str(info.value)
    with pytest.raises(
        ConfigError, match=r"^--out \(logging\.out_dir\): must be a non-empty string"
    ):
        config.with_value("logging.out_dir", "", written_as="--out")


def test_task_id_with_module_prefix():
    config = Config.from_dict({"task": {"id": "vwm_tasks:VWMRecall-v0", "max_items": 3}})
    assert config.task.id == "vwm_tasks:VWMRecall-v0"
    with pytest.raises(ConfigError, match=r"^task\.items: unknown argument"):
        Config.from_dict({"task": {"id": "vwm_tasks:VWMRecall-v0", "items": 3}})
    with pytest.raises(ConfigError, match=r"^task\.id: cannot import 'no_such_pkg'"):
        Config.from_dict({"task": {"id": "no_such_pkg:VWMRecall-v0"}})


def test_agent_import_path_error_says_why():
    with pytest.raises(
        ConfigError, match=r"^agent\.name: agent name 'no_such_pkg:Agent' could not be imp"
    ):
        Config.from_dict({"agent": {"name": "no_such_pkg:Agent"}})


# Issue 11 item 8: an original-format file's bad value is named as the user wrote it, whether
# the schema finds it (at load) or the env / the agent (when the run is built).
ORIGINAL_BAD = [
    (
        "model_params",
        "num_neurons",
        "many",
        "model_params.num_neurons (agent.n_neurons): must be an integer",
    ),
    ("model_params", "num_neurons", -5, "model_params.num_neurons (agent.n_neurons): "),
    ("model_params", "item_num", [1, 2, 11], "model_params.item_num (task.set_sizes): "),
    (
        "training_params",
        "eta",
        -1,
        "training_params.eta (training.learning_rate): must be a positive",
    ),
    (
        "training_params",
        "num_trials",
        0,
        "training_params.num_trials (training.batch_size): must be an integer >= 1, got 0",
    ),
    ("model_params", "T_stimi", 0, "model_params.T_stimi (task.timing): "),
    ("model_params", "tau_min", 1, "model_params.dt (agent.dt): dt / tau_min must be <= 1"),
    (
        "model_and_logging_params",
        "rnn_name",
        "../x",
        "model_and_logging_params.rnn_name (logging.run_name)",
    ),
    (
        "fpf_params",
        "fpf_hps",
        {"max_iters": 0},
        "fpf_params.fpf_hps.max_iters (analysis.fixed_points.max_iters): must be an integer >= 1",
    ),
    (
        "training_params",
        "multi_stage_training",
        {"num_stage": 0},
        "training_params.multi_stage_training.num_stage (training.noise_stages): must be an integer >= 1",
    ),
]


def _load_and_build(path):
    """What the command line does: load, then build env and model; errors as the user wrote them."""
    from vwm_agents.training.run import build_model, make_env

    config = load_config(path)
    try:
        build_model(config, make_env(config))
    except ConfigError as exc:
        raise config.user_error(exc) from None
    return config


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    ORIGINAL_BAD,
    ids=[f"{k}={v}" for _, k, v, _ in ORIGINAL_BAD],
)
def test_original_format_error_names_the_key_as_written(tmp_path, section, key, value, message):
    data = yaml.safe_load(ORIGINAL_YAML)
    data["model_params"].update(num_neurons=8)  # small, so that building is quick
    data[section][key] = value
    with pytest.raises(ConfigError) as info:
        _load_and_build(write(tmp_path, data))
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_override_of_an_original_key_is_named_as_overridden(tmp_path):
    data = yaml.safe_load(ORIGINAL_YAML)
    with pytest.raises(ConfigError, match=r"^agent\.n_neurons: must be an integer"):
        load_config(write(tmp_path, data), ["agent.n_neurons=many"])
    config = load_config(write(tmp_path, data), ["agent.n_neurons=8"])
    assert config.origin["agent.tau_min"] == "model_params.tau_min"
    assert "agent.n_neurons" not in config.origin
    # the origin is not part of the value
    assert config == Config.from_dict(config.to_dict())


def test_env_and_agent_classes_are_resolved_once(monkeypatch):
    from vwm_agents.config import kwargs as kwargs_module
    from vwm_agents.config import named

    calls = []
    real = kwargs_module.resolve_env_class
    monkeypatch.setattr(
        named, "resolve_env_class", lambda env_id: calls.append(env_id) or real(env_id)
    )
    config = Config.from_dict({"task": {"max_items": 3}})
    changed = config.with_value("training.seed", 2).with_value("agent.n_neurons", 16)
    assert changed.task.env_class() is config.task.env_class() is not None
    assert changed.agent_class() is config.agent_class()
    assert calls == ["VWMRecall-v0"]  # validation looked once; nothing after it looks again
    assert config.with_value("task.max_items", 4).task.env_class() is config.task.env_class()
    assert calls == ["VWMRecall-v0", "VWMRecall-v0"]  # a changed task is re-checked, once
    import pickle  # configs travel to Ray workers

    assert pickle.loads(pickle.dumps(config)) == config
