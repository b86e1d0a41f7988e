"""The original code's four-section ``config.yaml``, mapped onto our schema (frozen: add nothing).

The four sections are ``model_params``, ``training_params``, ``model_and_logging_params`` and
``fpf_params``. :func:`from_original` maps them onto our schema key by key (``_ORIGINAL_KEYS`` is
the table) and :func:`to_original` maps back. The mapping also records, for every key of ours it
sets, the key the user wrote (``model_params.num_neurons`` for ``agent.n_neurons``), so that an
error about a value of an original-format file names the key as written in that file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vwm_agents.config.specs import SECTIONS, ConfigError, Spec, show

__all__ = [
    "ORIGINAL_SECTIONS",
    "is_original_format",
    "from_original",
    "map_original",
    "to_original",
]

ORIGINAL_SECTIONS: tuple[str, ...] = (
    "model_params",
    "training_params",
    "model_and_logging_params",
    "fpf_params",
)

# (original section, original key) -> our key path. Keys mapped to None are accepted, type-checked
# and dropped, because our package gives them no meaning (reasons in _ORIGINAL_DROPPED).
_ORIGINAL_KEYS: dict[tuple[str, str], tuple[str, ...] | None] = {
    ("model_params", "max_item_num"): ("task", "max_items"),
    ("model_params", "item_num"): ("task", "set_sizes"),
    ("model_params", "num_neurons"): ("agent", "n_neurons"),
    ("model_params", "dt"): ("task", "dt"),  # the agent takes its dt from the env
    ("model_params", "tau_max"): ("agent", "tau_max"),
    ("model_params", "tau_min"): ("agent", "tau_min"),
    ("model_params", "ILC_noise"): ("task", "ilc_noise"),
    ("model_params", "spike_noise_factor"): ("agent", "spike_noise_factor"),
    ("model_params", "final_spike_noise_factor"): ("agent", "spike_noise_factor"),
    ("model_params", "spike_noise_type"): ("agent", "spike_noise_type"),
    ("model_params", "positive_input"): ("agent", "positive_input"),  # + task.input_encoding
    ("model_params", "input_strength"): ("task", "input_strength"),
    ("model_params", "saturation_firing_rate"): ("agent", "saturation_firing_rate"),
    ("model_params", "dales_law"): ("agent", "dales_law"),
    ("model_params", "T_init"): ("task", "timing", "init"),
    ("model_params", "T_stimi"): ("task", "timing", "stimulus"),
    ("model_params", "T_delay"): ("task", "timing", "delay"),
    ("model_params", "T_decode"): ("task", "timing", "decode"),
    ("training_params", "train_rnn"): None,
    ("training_params", "load_history"): None,
    ("training_params", "use_scripted_model"): None,
    ("training_params", "num_iterations"): ("training", "num_iterations"),
    ("training_params", "error_def"): ("training", "error_def"),
    ("training_params", "eta"): ("training", "learning_rate"),
    ("training_params", "lambda_reg"): ("training", "lambda_reg"),
    ("training_params", "lambda_err"): ("training", "lambda_err"),
    ("training_params", "num_trials"): ("training", "batch_size"),
    ("training_params", "logging_period"): ("logging", "period"),
    ("training_params", "early_stop_patience"): ("training", "early_stop_patience"),
    ("training_params", "adaptive_lr_patience"): ("training", "lr_patience"),
    ("training_params", "multi_stage_training"): ("training", "noise_stages"),  # {num_stage: S}
    ("model_and_logging_params", "rnn_name"): ("logging", "run_name"),
    ("model_and_logging_params", "cuda_device"): ("training", "device"),
    ("model_and_logging_params", "plot_weights_bool"): ("analysis", "only", "weights"),
    ("model_and_logging_params", "error_dist_bool"): ("analysis", "only", "errors"),
    ("model_and_logging_params", "fit_mixture_bool"): ("analysis", "only", "mixture"),
    ("model_and_logging_params", "snr_analy_bool"): ("analysis", "only", "snr"),
    ("model_and_logging_params", "mixed_selec_bool"): ("analysis", "only", "selectivity"),
    ("model_and_logging_params", "divis_norma_bool"): ("analysis", "only", "dn"),
    ("fpf_params", "fpf_bool"): ("analysis", "only", "fixed_points"),
    ("fpf_params", "fpf_pca_bool"): ("analysis", "fixed_points", "pca"),
    ("fpf_params", "fpf_names"): None,
    ("fpf_params", "fpf_trials"): ("analysis", "fixed_points", "trials"),
    ("fpf_params", "fpf_N_init"): ("analysis", "fixed_points", "n_init"),
    ("fpf_params", "fpf_noise_scale"): ("analysis", "fixed_points", "noise_scale"),
    ("fpf_params", "fpf_hps"): ("analysis", "fixed_points"),  # nested, see _ORIGINAL_FPF_HPS
}
_ORIGINAL_FPF_HPS: dict[str, str | None] = {
    "max_iters": "max_iters",
    "lr_init": "lr_init",
    "outlier_distance_scale": "outlier_distance_scale",
    "verbose": None,
    "super_verbose": None,
}
_ORIGINAL_DROPPED: dict[str, str] = {
    "train_rnn": "the CLI always trains; analyse a saved run with the analysis package",
    "load_history": "use --resume (which restores the optimiser and RNG state too)",
    "use_scripted_model": "use training.compile",
    "fpf_names": "file names of the fixed-point plots are fixed by the analysis package",
    "verbose": "logging verbosity",
    "super_verbose": "logging verbosity",
}
# The divisive-normalisation analysis ran unconditionally in the README-era code.
_ORIGINAL_ANALYSES_ALWAYS_ON: tuple[str, ...] = ("dn",)
_ORIGINAL_ANALYSES: tuple[str, ...] = (
    "weights",
    "errors",
    "mixture",
    "snr",
    "selectivity",
    "dn",
    "fixed_points",
)
_ORIGINAL_BOOL_KEYS = {
    key
    for key, target in _ORIGINAL_KEYS.items()
    if target is not None and target[:2] == ("analysis", "only")
} | {
    ("model_params", "positive_input"),
    ("model_params", "dales_law"),
    ("training_params", "train_rnn"),
    ("training_params", "load_history"),
    ("training_params", "use_scripted_model"),
    ("fpf_params", "fpf_pca_bool"),
}


def is_original_format(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` uses the original code's section names."""
    return isinstance(data, Mapping) and any(key in ORIGINAL_SECTIONS for key in data)


def from_original(data: Mapping[str, Any]) -> dict[str, Any]:
    """Map an original four-section config onto our schema (plain data, not yet validated).

    Semantics kept: ``positive_input`` sets both the agent's input sign constraint and the env's
    input encoding (``positive`` or ``cossin``); ``dt`` is the env's and the agent inherits it;
    ``cuda_device: n`` means "cuda:n if available else cpu", i.e. ``device: auto`` for n = 0;
    ``multi_stage_training.num_stage`` becomes ``noise_stages``; gradient clipping stays off (the
    reference has none); the ``*_bool`` analysis switches become ``analysis.only``.
    """
    return map_original(data)[0]


def map_original(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """:func:`from_original`, plus ``{our dotted key: the original key as written}``."""
    out: dict[str, Any] = {
        "task": {"id": "VWMRecall-v0"},
        "agent": {"name": "dale_rnn"},
        "training": {},
        "logging": {},
        "analysis": {},
    }
    origin: dict[str, str] = {}
    enabled: list[str] = list(_ORIGINAL_ANALYSES_ALWAYS_ON)
    for section, body in data.items():
        if section in SECTIONS:
            raise ConfigError(
                f"{section}: a section of our schema in a file of the original format (it has "
                f"{', '.join(k for k in data if k in ORIGINAL_SECTIONS)}); use one format per file"
            )
        if section not in ORIGINAL_SECTIONS:
            raise ConfigError(
                f"{section}: unknown section of the original format; allowed: "
                f"{', '.join(ORIGINAL_SECTIONS)}"
            )
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ConfigError(f"{section}: must be a mapping of keys to values, got {show(body)}")
        allowed = [key for (sec, key) in _ORIGINAL_KEYS if sec == section]
        for key, value in body.items():
            name = f"{section}.{key}"
            if (section, key) not in _ORIGINAL_KEYS:
                raise ConfigError(
                    f"{name}: unknown key of the original format; allowed: {', '.join(allowed)}"
                )
            if (section, key) in _ORIGINAL_BOOL_KEYS:
                Spec("bool").check(name, value)
            target = _ORIGINAL_KEYS[(section, key)]
            if target is None:
                continue
            if key == "positive_input":
                out["agent"]["positive_input"] = value
                out["task"]["input_encoding"] = "positive" if value else "cossin"
                origin["agent.positive_input"] = origin["task.input_encoding"] = name
            elif key == "multi_stage_training":
                out["training"]["noise_stages"] = _original_num_stage(name, value)
                origin["training.noise_stages"] = f"{name}.num_stage"
            elif key == "cuda_device":
                Spec("int", low=0).check(name, value)
                out["training"]["device"] = "auto" if value == 0 else f"cuda:{value}"
                origin["training.device"] = name
            elif key == "fpf_hps":
                hps = _original_fpf_hps(name, value)
                out["analysis"].setdefault("fixed_points", {}).update(hps)
                for ours in hps:  # ours and theirs share the names
                    origin[f"analysis.fixed_points.{ours}"] = f"{name}.{ours}"
            elif target[:2] == ("analysis", "only"):
                if value:
                    enabled.append(target[2])
                elif target[2] in enabled:
                    enabled.remove(target[2])
            else:
                node = out
                for part in target[:-1]:
                    node = node.setdefault(part, {})
                node[target[-1]] = value
                origin[".".join(target)] = name
                if key == "dt":  # the agent inherits it; its errors about dt name this key
                    origin["agent.dt"] = name
    out["analysis"]["only"] = [name for name in _ORIGINAL_ANALYSES if name in enabled]
    return out, origin


def _original_num_stage(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping) or set(value) - {"num_stage"}:
        raise ConfigError(
            f"{name}: must be a mapping with the single key num_stage, got {show(value)}"
        )
    return value.get("num_stage", 1)


def _original_fpf_hps(name: str, value: Any) -> dict[str, Any]:
    """Our ``analysis.fixed_points`` settings from ``fpf_hps`` (the verbosity flags dropped)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: must be a mapping of keys to values, got {show(value)}")
    out = {}
    for key, item in value.items():
        if key not in _ORIGINAL_FPF_HPS:
            raise ConfigError(
                f"{name}.{key}: unknown key of the original format; allowed: {', '.join(_ORIGINAL_FPF_HPS)}"
            )
        if _ORIGINAL_FPF_HPS[key] is None:
            Spec("bool").check(f"{name}.{key}", item)
        else:
            out[_ORIGINAL_FPF_HPS[key]] = item
    return out


def to_original(config: Any) -> dict[str, Any]:
    """Our config (a validated :class:`~vwm_agents.config.schema.Config`, not named in the
    annotation: the schema imports this module) in the original four-section format (only keys
    the reference knew).

    Raises ConfigError when the config uses something the original format cannot express
    (another task or agent, gradient clipping, agent/task kwargs without an original key).
    """
    if config.task.id != "VWMRecall-v0" or config.agent.name != "dale_rnn":
        raise ConfigError("config: only dale_rnn on VWMRecall-v0 has an original-format equivalent")
    if config.training.grad_clip is not None:
        raise ConfigError("training.grad_clip: the original format has no gradient clipping")
    out: dict[str, dict[str, Any]] = {section: {} for section in ORIGINAL_SECTIONS}
    data = config.to_dict()
    reverse = {
        target: key
        for key, target in _ORIGINAL_KEYS.items()
        if target is not None
        and target[:2] != ("analysis", "only")
        and key[1]
        not in (
            "spike_noise_factor",
            "final_spike_noise_factor",
            "multi_stage_training",
            "cuda_device",
            "fpf_hps",
        )
    }
    used = set()
    for target, (section, key) in reverse.items():
        node: Any = data
        for part in target:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            out[section][key] = node
            used.add(target)
    for section_name in ("task", "agent"):
        for key in data[section_name]:
            if key in ("id", "name", "timing", "input_encoding", "spike_noise_factor"):
                continue
            if (section_name, key) not in used:
                raise ConfigError(f"{section_name}.{key}: has no original-format equivalent")
    if "spike_noise_factor" in config.agent.kwargs:
        key = (
            "final_spike_noise_factor" if config.training.noise_stages > 1 else "spike_noise_factor"
        )
        out["model_params"][key] = config.agent.kwargs["spike_noise_factor"]
    if config.training.noise_stages > 1:
        out["training_params"]["multi_stage_training"] = {"num_stage": config.training.noise_stages}
    device = config.training.device
    if device.startswith("cuda:"):
        out["model_and_logging_params"]["cuda_device"] = int(device.split(":")[1])
    elif device == "auto":
        out["model_and_logging_params"]["cuda_device"] = 0
    only = config.analysis.only
    for (section, key), target in _ORIGINAL_KEYS.items():
        if target is not None and target[:2] == ("analysis", "only"):
            enabled = only is None or target[2] in only
            if key == "divis_norma_bool" and enabled:
                continue  # on by default in the original code; the key is from its latest version
            out[section][key] = enabled
    fpf = config.analysis.fixed_points.to_dict()
    out["fpf_params"]["fpf_hps"] = {
        ours: fpf[ours] for ours in _ORIGINAL_FPF_HPS.values() if ours is not None
    }
    return out
