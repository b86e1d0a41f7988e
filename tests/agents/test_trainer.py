"""The trainer: real (tiny) trainings, exact resume, divergence, curriculum, run directories."""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest
import torch
import yaml
from agent_test_support import TRAINED_RUN_FILES, assert_same_tree

from vwm_agents.config import Config, ConfigError, apply_overrides
from vwm_agents.training import trainer as trainer_module
from vwm_agents.training.api import train
from vwm_agents.training.checkpoint import load_checkpoint
from vwm_agents.training.evaluation import evaluate, fixed_batches, run_seeds
from vwm_agents.training.run import load_run
from vwm_agents.training.rundir import RunDirError, read_history, run_name
from vwm_agents.training.schedules import EarlyStopping, noise_levels
from vwm_agents.training.trainer import TrainingDiverged, TrainingInterrupted

# Short trials (4 + 10 + 10 + 10 steps at dt = 10 ms) and small sizes keep each run ~1 s; one torch
# thread, because two threads on a shared 2-core machine slow tiny matmuls down many times.
SHORT_TIMING = {"init": 40, "stimulus": 100, "delay": 100, "decode": 100}


def vwm_config(*overrides: str, agent: str = "dale_rnn") -> Config:
    data = {
        "task": {"id": "VWMRecall-v0", "max_items": 2, "timing": SHORT_TIMING},
        "agent": (
            {
                "name": "dale_rnn",
                "n_neurons": 24,
                "spike_noise_type": "gauss",
                "spike_noise_factor": 0.05,
            }
            if agent == "dale_rnn"
            else {"name": agent, "n_hidden": 24}
        ),
        "training": {
            "seed": 0,
            "num_iterations": 20,
            "batch_size": 16,
            "learning_rate": 0.01,
            "eval_batch_size": 32,
            "device": "cpu",
            "threads": 1,
        },
        "logging": {"run_name": "t", "period": 5, "progress": False},
    }
    return Config.from_dict(apply_overrides(data, overrides))


def dms_config(*overrides: str) -> Config:
    """neurogym's DelayMatchSample (Discrete actions), 32 steps of 100 ms."""
    data = {
        "task": {"id": "DelayMatchSample-v0", "dt": 100},
        "agent": {
            "name": "dale_rnn",
            "n_neurons": 24,
            "tau_min": 200.0,
            "tau_max": 600.0,
            "positive_input": False,
            "spike_noise_type": "none",
        },
        "training": {
            "seed": 0,
            "num_iterations": 60,
            "batch_size": 16,
            "learning_rate": 0.02,
            "eval_batch_size": 32,
            "device": "cpu",
            "lambda_reg": 0.0,
            "threads": 1,
        },
        "logging": {"run_name": "dms", "period": 10, "progress": False},
    }
    return Config.from_dict(apply_overrides(data, overrides))


def losses_of(run_dir) -> list[float]:
    return [record["loss"] for record in read_history(run_dir)]


@pytest.mark.parametrize(
    "config",
    [
        vwm_config("training.num_iterations=60", "logging.period=10", agent="gru"),
        vwm_config("training.num_iterations=60", "logging.period=10", "task.max_items=1"),
        dms_config(),
    ],
    ids=["gru-vwm", "dale-vwm", "dale-delaymatchsample"],
)
def test_loss_falls(tmp_path, config):
    run_dir = train(config, tmp_path)
    history = losses_of(run_dir)
    assert len(history) == 6
    # mean loss of the first 10 iterations vs the last 20
    assert np.mean(history[-2:]) < 0.9 * history[0], history
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["checkpoint"] == "best"
    assert 0 <= metrics["error"] <= math.pi
    if config.task.id == "VWMRecall-v0":
        assert metrics["error"] < 1.3  # chance is pi/2
    else:
        assert 0 <= metrics["accuracy"] <= 1
        assert metrics["accuracy"] > 0.6  # fixation is most steps; chance is 1/3


def test_run_directory_layout_and_schema(tmp_path):
    records = []
    run_dir = train(vwm_config(), tmp_path, callback=records.append)
    assert run_dir.name == "t_n24item2PI1gauss0.05rad" == run_name(vwm_config())
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    assert files == TRAINED_RUN_FILES
    history = read_history(run_dir)
    assert history == records
    assert [r["iteration"] for r in history] == [5, 10, 15, 20]
    record = history[-1]
    # one name per quantity: the history and metrics.json both call the firing rate "rate"
    assert set(record) >= {
        "iteration",
        "loss",
        "error",
        "error_std",
        "rate",
        "lr",
        "per_set_size",
        "val_error",
    }
    assert set(record["per_set_size"]) == {"1", "2"}
    assert set(record["per_set_size"]["1"]) == {"error", "error_std", "rate"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {
        "error",
        "error_std",
        "rate",
        "per_set_size",
        "iteration",
        "checkpoint",
        "evaluated_on",
        "selected_on",
        "val_error",
    }
    assert set(metrics["per_set_size"]["2"]) == {"error", "error_std", "rate"}
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt", kind="best")
    assert metrics["iteration"] == best["iteration"]
    assert best["val_error"] == min(r["val_error"] for r in history) == metrics["val_error"]
    saved = Config.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    # the resolved config: training.random_numbers: auto recorded as the source it chose
    from vwm_agents.models.noise import resolve_random_numbers

    source = resolve_random_numbers("auto", "cpu")
    assert saved == vwm_config(f"logging.out_dir={tmp_path}", f"training.random_numbers={source}")
    loaded = load_run(run_dir)
    assert loaded.iteration == best["iteration"] and not loaded.model.training
    # a second run of the same name is refused rather than overwritten
    with pytest.raises(RunDirError, match="exists; continue it with --resume"):
        train(vwm_config(), tmp_path)


def test_best_is_selected_on_validation_and_reported_on_test(tmp_path):
    config = vwm_config("training.num_iterations=10")
    run_dir = train(config, tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = read_history(run_dir)
    best = min(history, key=lambda r: r["val_error"])
    assert metrics["iteration"] == best["iteration"]
    assert metrics["val_error"] == pytest.approx(best["val_error"], abs=1e-6)
    # metrics.json reports the best model on the test batch, which says so
    seeds = run_seeds(0)
    assert metrics["evaluated_on"] == (
        f"test batch: 32 trials, data seed {seeds.test_data}, noise seed {seeds.test_noise}"
    )
    assert metrics["selected_on"].startswith("validation batch: 32 trials")
    loaded = load_run(run_dir)
    env = loaded.env
    _, test = fixed_batches(env, seeds, 32, torch.device("cpu"))
    expected = evaluate(loaded.model, test, discrete=False)
    assert metrics["error"] == pytest.approx(expected["error"], abs=1e-6)
    assert metrics["error"] != pytest.approx(metrics["val_error"], abs=1e-6)


def test_validation_and_test_batches_differ():
    from vwm_agents.training.run import make_env

    env = make_env(vwm_config())
    seeds = run_seeds(0)
    validation, test = fixed_batches(env, seeds, 32, torch.device("cpu"))
    assert validation.noise_seed != test.noise_seed and validation.data_seed != test.data_seed
    assert validation.sample.ob.shape == test.sample.ob.shape
    assert not torch.equal(validation.sample.ob, test.sample.ob)
    assert not torch.equal(validation.sample.gt, test.sample.gt)
    # drawn again from the same seed: the same batch (fixed)
    again, _ = fixed_batches(env, seeds, 32, torch.device("cpu"))
    assert torch.equal(validation.sample.ob, again.sample.ob)
    # and neither is the training data stream
    trained_on = np.random.default_rng(seeds.data)
    assert (
        len(
            {
                seeds.data,
                seeds.val_data,
                seeds.test_data,
                seeds.noise,
                seeds.val_noise,
                seeds.test_noise,
            }
        )
        == 6
        and trained_on is not None
    )


def state_of(run_dir, name="latest"):
    return load_checkpoint(run_dir / "checkpoints" / f"{name}.pt")


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_interrupt_and_resume_is_bit_exact(tmp_path, monkeypatch, caplog):
    config = vwm_config("training.num_iterations=20")
    straight = train(config, tmp_path / "straight")

    # Ctrl-C in the middle of a logging window (after iteration 7): a checkpoint is saved
    original_step = trainer_module.Trainer.step

    def step_then_interrupt(self):
        loss = original_step(self)
        if self.iteration == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(trainer_module.Trainer, "step", step_then_interrupt)
    with pytest.raises(TrainingInterrupted, match="after iteration 7"):
        train(config, tmp_path / "resumed")
    monkeypatch.setattr(trainer_module.Trainer, "step", original_step)
    assert state_of(tmp_path / "resumed" / straight.name)["iteration"] == 7

    with caplog.at_level("INFO", logger="vwm_agents.training.trainer"):
        resumed = train(config, tmp_path / "resumed", resume=True)
    assert f"{resumed.name}: resuming at iteration 7" in caplog.messages
    a, b = state_of(straight), state_of(resumed)
    assert a["iteration"] == b["iteration"] == 20
    assert_same_tree(a, b)  # model, optimiser, schedules and every RNG state
    assert_same_tree(state_of(straight, "best"), state_of(resumed, "best"))
    assert read_history(straight) == read_history(resumed)
    assert (straight / "metrics.json").read_text() == (resumed / "metrics.json").read_text()


def test_training_leaves_the_global_generators_alone(tmp_path):
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 (the legacy global generator is what is checked)
    before_torch, before_numpy = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    run_dir = train(vwm_config("training.num_iterations=10"), tmp_path)
    assert torch.equal(torch.get_rng_state(), before_torch)
    assert np.array_equal(np.random.get_state()[1], before_numpy)  # noqa: NPY002
    # Inside the run the global torch generator is seeded from the run seed, and nothing of ours
    # draws from it: the saved state is still the freshly seeded one.
    seeded = torch.Generator().manual_seed(run_seeds(0).torch_global).get_state()
    assert torch.equal(state_of(run_dir)["rng"]["torch_cpu"], seeded)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_afresh(tmp_path):
    config = vwm_config("training.num_iterations=10")
    straight = train(config, tmp_path / "a")
    killed = tmp_path / "b" / straight.name
    killed.mkdir(parents=True)
    (killed / "config.yaml").write_text(
        (straight / "config.yaml").read_text().replace(str(tmp_path / "a"), str(tmp_path / "b"))
    )
    with pytest.raises(RunDirError, match="exists; continue it with --resume"):
        train(config, tmp_path / "b")
    resumed = train(config, tmp_path / "b", resume=True)
    assert_same_tree(state_of(straight), state_of(resumed))


def test_history_is_appended_and_old_yaml_histories_are_read(tmp_path):
    from vwm_agents.training.rundir import RunDir

    run = RunDir(tmp_path)
    run.append_history({"iteration": 5, "rate": 1.0})
    run.append_history({"iteration": 10, "rate": 2.0})
    with open(tmp_path / "history.jsonl", "a") as handle:
        handle.write('{"iteration": 15, "ra')  # killed while appending
    assert [r["iteration"] for r in read_history(tmp_path)] == [5, 10]
    run.truncate_history(7)
    assert read_history(tmp_path) == [{"iteration": 5, "rate": 1.0}]
    old = tmp_path / "old"
    old.mkdir()
    (old / "history.yaml").write_text(
        yaml.safe_dump(
            [
                {
                    "iteration": 50,
                    "activation": 3.0,
                    "heldout_error": 0.5,
                    "per_set_size": {"1": {"error": 0.1, "activation": 2.0}},
                }
            ]
        )
    )
    assert read_history(old) == [
        {
            "iteration": 50,
            "rate": 3.0,
            "val_error": 0.5,
            "per_set_size": {"1": {"error": 0.1, "rate": 2.0}},
        }
    ]
    with pytest.raises(RunDirError, match="corrupt history at line 1"):
        (tmp_path / "history.jsonl").write_text("not json\n{}\n")
        read_history(tmp_path)


def test_resume_extends_a_finished_run_exactly(tmp_path):
    straight = train(vwm_config("training.num_iterations=20"), tmp_path / "a")
    train(vwm_config("training.num_iterations=10"), tmp_path / "b")
    extended = train(vwm_config("training.num_iterations=20"), tmp_path / "b", resume=True)
    assert_same_weights(state_of(straight)["model"], state_of(extended)["model"])
    assert (
        state_of(straight)["optimizer"]["state"][0]["step"]
        == state_of(extended)["optimizer"]["state"][0]["step"]
    )


def test_resume_errors(tmp_path):
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(vwm_config(), tmp_path, resume=True)
    train(vwm_config("training.num_iterations=5"), tmp_path)
    with pytest.raises(RunDirError, match="different training.learning_rate"):
        train(
            vwm_config("training.num_iterations=5", "training.learning_rate=0.02"),
            tmp_path,
            resume=True,
        )


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, caplog):
    original_forward = trainer_module.forward_model
    calls = {"n": 0}

    def forward_with_nan(model, ob, generator, takes_generator, **options):
        outputs, rates = original_forward(model, ob, generator, takes_generator, **options)
        if model.training:
            calls["n"] += 1
            if calls["n"] == 8:
                rates = rates * torch.nan
        return outputs, rates

    monkeypatch.setattr(trainer_module, "forward_model", forward_with_nan)
    with pytest.raises(TrainingDiverged, match="non-finite rates at iteration 8;") as info:
        train(vwm_config(), tmp_path)
    run_dir = info.value.run_dir
    latest = state_of(run_dir)
    assert latest["iteration"] == 5
    assert all(torch.isfinite(t).all() for t in latest["model"].values())
    assert json.loads((run_dir / "metrics.json").read_text())["iteration"] == 5
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "divergence"]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert "non-finite rates at iteration 8" in warnings[0].getMessage()


def test_early_stopping_rules():
    stopper = EarlyStopping(patience=3)
    for loss in [1.0, 0.5, math.nan, 0.5, 0.6, math.nan]:
        assert not stopper.step(loss)
    assert stopper.counter == 2 and stopper.best == 0.5
    assert stopper.step(0.7)
    never = EarlyStopping(patience=None)
    assert not any(never.step(1.0) for _ in range(100))


def test_early_stopping_ends_the_run(tmp_path, caplog):
    caplog.set_level("INFO", logger="vwm_agents.training.trainer")
    run_dir = train(
        vwm_config(
            "training.learning_rate=1e-9",
            "training.early_stop_patience=3",
            "training.num_iterations=100",
        ),
        tmp_path,
    )
    latest = state_of(run_dir)
    assert latest["early_stopping"]["stopped"]
    assert latest["iteration"] < 100
    stops = [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "stop"]
    assert stops == [
        f"{run_dir.name}: iteration {latest['iteration']}: early stopping: no lower "
        f"loss for 3 iterations (best {latest['early_stopping']['best']:.4g})"
    ]


def test_noise_curriculum(tmp_path, caplog):
    caplog.set_level("INFO", logger="vwm_agents.training.trainer")
    assert noise_levels(0.1, 1) == [0.1]
    levels = noise_levels(0.1, 3)
    assert levels == pytest.approx([1e-3, 1e-2, 1e-1])
    # patience 1: every iteration without improvement ends a stage
    config = vwm_config(
        "training.noise_stages=3",
        "training.lr_patience=1",
        "training.learning_rate=1e-6",
        "training.num_iterations=30",
    )
    run_dir = train(config, tmp_path)
    latest = state_of(run_dir)
    assert latest["curriculum"]["stage"] == 2
    assert latest["model"]["spike_noise_factor"].item() == pytest.approx(0.05)
    factors = [r["noise_factor"] for r in read_history(run_dir)]
    assert factors == sorted(factors) and factors[-1] == pytest.approx(0.05)
    # each stage change is an event of the logger; no LR drop before the final stage
    events = [(r.event, r.getMessage()) for r in caplog.records if hasattr(r, "event")]
    stages = [message for kind, message in events if kind == "stage"]
    assert len(stages) == 2 and "noise stage 2/3" in stages[0] and "noise stage 3/3" in stages[1]
    first_stage_end = events.index(("stage", stages[1]))
    assert all(kind != "lr_drop" for kind, _ in events[:first_stage_end])
    with pytest.raises(
        ConfigError, match="^training.noise_stages: agent gru has no set_noise_factor"
    ):
        train(vwm_config("training.noise_stages=2", agent="gru"), tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.num_models=0", "training.num_models: "),
        ("task.max_items=0", "task.max_items: "),
    ],
)
def test_runtime_config_errors_write_nothing(tmp_path, override, message):
    with pytest.raises(ConfigError, match="^" + message):
        train(vwm_config(override), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cuda_request_without_cuda_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="^training.device: cuda requested but"):
        train(vwm_config(), tmp_path, device="cuda")


def test_run_name_builds_no_env(tmp_path, monkeypatch):
    import gymnasium

    config = vwm_config("task.ilc_noise=-1")  # only the env itself refuses this value

    def no_make(*args, **kwargs):
        raise AssertionError("run_name built an env")

    with monkeypatch.context() as patch:
        patch.setattr(gymnasium, "make", no_make)
        assert run_name(config) == "t_n24item2PI1gauss0.05rad"
        assert run_name(dms_config()) == "dms_n24PI0none0.05xent"
    with pytest.raises(ConfigError, match="^task.ilc_noise: "):
        train(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
