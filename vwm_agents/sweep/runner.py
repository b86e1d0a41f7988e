"""Running a sweep on Ray Tune: the only module of ``vwm_agents`` that imports Ray.

Without an address the sweep starts its own Ray on this machine (``ray.init(address="local")``:
never a cluster that ``/tmp/ray/ray_current_cluster`` still names after its head died) and stops
it at the end. With ``--address HOST:PORT`` (or ``auto``, or ``$RAY_ADDRESS``) it joins a running
cluster, after checking within :data:`CONNECT_TIMEOUT_S` seconds that a Ray head answers there and
whether it wants token authentication (Ray >= 2.59 turns it on for clusters started with
``ray start`` once a token exists). The driver then uses the cluster's mode: with token
authentication, the token is read where Ray reads it -- ``$RAY_AUTH_TOKEN``, the file
``$RAY_AUTH_TOKEN_PATH`` names, else ``~/.ray/auth_token`` -- and a token the head rejects ends the
sweep with one line saying what to set, instead of Ray's retry log.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vwm_agents.sweep.results import TrialResult, collect_results, write_results
from vwm_agents.sweep.spec import (
    HumanTarget,
    Resources,
    SweepError,
    SweepSpec,
    TrialPlan,
    check_output,
)
from vwm_agents.sweep.trial import TrainFn, is_finished, run_trial, write_yaml

__all__ = [
    "CONNECT_TIMEOUT_S",
    "SPEC_COPY",
    "RAY_DIR",
    "ClusterAuth",
    "run_sweep",
    "ray_session",
    "check_cluster",
]

CONNECT_TIMEOUT_S = 10.0  # how long a cluster has to answer before --address gives up
SPEC_COPY = "sweep.yaml"
RAY_DIR = "_ray"
AUTH_MODE_VAR = "RAY_AUTH_MODE"
TOKEN_VAR = "RAY_AUTH_TOKEN"
TOKEN_PATH_VAR = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")


def run_sweep(
    spec: SweepSpec,
    *,
    address: str | None = None,
    max_concurrent: int | None = None,
    resume: bool = False,
    train_fn: TrainFn | None = None,
    verbose: int = 0,
    progress: bool = True,
) -> list[TrialResult]:
    """Run the sweep's unfinished trials on Ray Tune, then write and return the results.

    Args:
        address: a running Ray cluster (``HOST:PORT``, ``auto``, ``ray://HOST:10001``); None:
            ``$RAY_ADDRESS`` if set, else a new Ray on this machine (unless this process already
            initialised Ray, which is then reused).
        max_concurrent: at most this many trials at once (default: as many as resources allow).
        resume: continue a sweep in a non-empty output folder: finished trials are skipped and
            unfinished ones continue from their checkpoints.
        train_fn: the training function (default :func:`vwm_agents.train`); tests pass a
            stand-in with the same signature.
        verbose: Ray Tune's verbosity (0 silent, 1 status updates, 2 every result).
        progress: a progress bar of trials finished out of the sweep's total (on stderr).

    Raises:
        SweepError: Ray is missing, cannot start, or the cluster cannot be reached or joined.
    """
    check_output(spec, resume=resume)
    pending = [plan for plan in spec.trials if not is_finished(plan, spec.human)]
    if pending:
        num_cpus = _local_cpus(spec.resources, len(pending), max_concurrent)
        with ray_session(address, num_cpus, verbose=verbose) as tune:  # connect before writing
            write_yaml(spec.output / SPEC_COPY, spec.raw)
            _fit(
                tune,
                spec,
                pending,
                max_concurrent=max_concurrent,
                train_fn=train_fn,
                verbose=verbose,
                progress=progress,
            )
    else:
        write_yaml(spec.output / SPEC_COPY, spec.raw)
    results = collect_results(spec)
    write_results(spec, results)
    return results


def _local_cpus(resources_: Resources, n_trials: int, max_concurrent: int | None) -> int:
    """CPUs for a Ray of our own: what the trials can use at once, at most what this machine has."""
    concurrent = n_trials if max_concurrent is None else min(n_trials, max_concurrent)
    wanted = math.ceil(resources_.cpus * concurrent)
    return max(math.ceil(resources_.cpus), min(wanted, os.cpu_count() or 1))


# ----------------------------------------------------------------------------------------------
# Connecting


@dataclass(frozen=True)
class ClusterAuth:
    """What a cluster wants from a driver: ``mode`` is ``"token"`` or ``"disabled"``."""

    mode: str
    gcs_address: str | None = None  # HOST:PORT that answered (None for ray:// addresses)


@contextlib.contextmanager
def ray_session(
    address: str | None, num_cpus: int, *, verbose: int = 0, timeout: float = CONNECT_TIMEOUT_S
) -> Iterator[Any]:
    """Ray Tune, connected: to a Ray this process already started, else to ``address`` (checked
    first with :func:`check_cluster`), else to a new Ray of our own with ``num_cpus`` CPUs.
    What this opened is shut down on exit, and ``$RAY_AUTH_MODE`` restored."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise SweepError("ray: Ray Tune is not installed; pip install 'vwm-rnn[sweep]'") from None

    if ray.is_initialized():
        yield tune
        return
    # Ray itself connects to $RAY_ADDRESS (how `ray job submit` hands a job its cluster)
    address = address or os.environ.get("RAY_ADDRESS") or None
    saved_mode = os.environ.get(AUTH_MODE_VAR)
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": verbose > 0}
    try:
        if address is None:
            # "local": a new Ray even where /tmp/ray/ray_current_cluster names another. Ray
            # turns token authentication on for it (creating ~/.ray/auth_token if needed) and
            # warns that it did, unless $RAY_AUTH_MODE says so: it is said here, quietly.
            _use_auth_mode(saved_mode or "token")
            kwargs.update(address="local", num_cpus=num_cpus, include_dashboard=False)
            where = "ray: cannot start Ray here"
        else:
            auth = check_cluster(address, timeout=timeout)
            _use_auth_mode(auth.mode)
            kwargs.update(address=address)
            where = f"--address {address}: cannot connect to the Ray cluster"
        try:
            ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise SweepError(f"{where}: {' '.join(str(exc).split())}") from None
        try:
            yield tune
        finally:
            ray.shutdown()
    finally:
        if os.environ.get(AUTH_MODE_VAR) != saved_mode:
            _use_auth_mode(saved_mode)


def check_cluster(address: str, *, timeout: float = CONNECT_TIMEOUT_S) -> ClusterAuth:
    """Check, within ``timeout`` seconds per step, that a Ray head answers at ``address`` and
    that this machine has what it asks for; returns the authentication mode it uses.

    Raises:
        SweepError: one line: nothing answers, not a Ray head, or a missing or rejected token
            (saying which of ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or the token file to set).
    """
    flag = f"--address {address}"
    if address.startswith("ray://"):  # Ray Client: its server speaks another protocol
        host, port = _host_port(address[len("ray://") :], flag, default_port=10001)
        _check_port(host, port, flag, timeout)
        return ClusterAuth(mode=os.environ.get(AUTH_MODE_VAR, "disabled").lower())
    if address == "auto":
        address = _auto_address(flag)
    host, port = _host_port(address, flag)
    _check_port(host, port, flag, timeout)
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 in brackets
    status = _get_cluster_id(target, None, timeout)
    if status == "OK":
        return ClusterAuth(mode="disabled", gcs_address=target)
    if status != "UNAUTHENTICATED":
        raise SweepError(
            f"{flag}: {target} does not answer as a Ray head (its GCS port) within "
            f"{timeout:g} s ({status}); give the port of `ray start --head --port=...`"
        )
    token, source = _local_token(flag)
    if token is None:
        raise SweepError(
            f"{flag}: the cluster uses token authentication and this machine has no token; set "
            f"{TOKEN_VAR} to the head's token (`ray get-auth-token` on the head node), or "
            f"{TOKEN_PATH_VAR} to a file holding it, or copy it to {DEFAULT_TOKEN_FILE}"
        )
    if _get_cluster_id(target, token, timeout) == "UNAUTHENTICATED":
        raise SweepError(
            f"{flag}: the cluster rejected the authentication token from {source}; set "
            f"{TOKEN_VAR} to the head's token (`ray get-auth-token` on the head node), or "
            f"{TOKEN_PATH_VAR} to a file holding it, or copy it to {DEFAULT_TOKEN_FILE}"
        )
    return ClusterAuth(mode="token", gcs_address=target)


def _auto_address(flag: str) -> str:
    from ray._private.services import canonicalize_bootstrap_address_or_die

    try:
        return canonicalize_bootstrap_address_or_die("auto")
    except (ConnectionError, ValueError) as exc:
        raise SweepError(
            f"{flag}: no Ray cluster found on this node: {' '.join(str(exc).split())}"
        ) from None


def _host_port(address: str, flag: str, default_port: int | None = None) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = address, "" if default_port is None else str(default_port)
    host = host.strip("[]")  # [::1]:6379
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SweepError(
            f"{flag}: must be HOST:PORT (the head's port, 6379 unless `ray start "
            "--head --port` chose another), auto, or ray://HOST:PORT"
        )
    return host, int(port)


def _check_port(host: str, port: int, flag: str, timeout: float) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise SweepError(
            f"{flag}: cannot reach {host}:{port} within {timeout:g} s ({reason}); is "
            f"`ray start --head --port={port}` running there and the port open?"
        ) from None


def _get_cluster_id(target: str, token: str | None, timeout: float) -> str:
    """The status name of the GCS's GetClusterId call (the first call every Ray driver makes),
    sent with ``token`` as Ray's bearer header when given."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(target) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=metadata
            )
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            return code.name if code is not None else "UNKNOWN"
    return "OK"


def _local_token(flag: str) -> tuple[str | None, str]:
    """The token Ray would send and where it came from, in Ray's order: ``$RAY_AUTH_TOKEN``, the
    file ``$RAY_AUTH_TOKEN_PATH`` names, ``~/.ray/auth_token``."""
    token = os.environ.get(TOKEN_VAR, "").strip()
    if token:
        return token, TOKEN_VAR
    named = os.environ.get(TOKEN_PATH_VAR)
    if named:
        path = Path(named).expanduser()
        source = f"{TOKEN_PATH_VAR} ({path})"
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise SweepError(
                f"{flag}: {TOKEN_PATH_VAR}: cannot read {path}: {exc.strerror or exc}"
            ) from None
        return token or None, source
    path = DEFAULT_TOKEN_FILE.expanduser()
    try:
        token = path.read_text().strip()
    except OSError:
        return None, str(path)
    return token or None, str(path)


def _use_auth_mode(mode: str | None) -> None:
    """Make this process's Ray use ``mode`` (None: Ray's default): Ray reads ``$RAY_AUTH_MODE``
    into its cached config, so the cache is refreshed as Ray does when it enables tokens itself."""
    if mode is None:
        os.environ.pop(AUTH_MODE_VAR, None)
    else:
        os.environ[AUTH_MODE_VAR] = mode
    with contextlib.suppress(ImportError, AttributeError):
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


# ----------------------------------------------------------------------------------------------
# Tune


def _fit(
    tune: Any,
    spec: SweepSpec,
    plans: Sequence[TrialPlan],
    *,
    max_concurrent: int | None,
    train_fn: TrainFn | None,
    verbose: int,
    progress: bool,
) -> None:
    """Run ``plans`` as one Tune experiment; failed trials are recorded by
    :func:`vwm_agents.sweep.trial.run_trial` and the results are read back from the run
    directories."""
    # Tune's parameter is the trial name (its status table shows it); the plans travel in
    # Ray's object store
    payloads = {plan.name: plan.to_payload() for plan in plans}
    trainable = tune.with_resources(
        tune.with_parameters(_ray_trial, payloads=payloads, human=spec.human, train_fn=train_fn),
        {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus},
    )
    callbacks = []
    if progress:
        done = len(spec.trials) - len(plans)
        callbacks.append(_progress_callback(tune, spec.name, len(spec.trials), done))
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(list(payloads))},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,  # a trial's worker keeps torch imported for the next one
            trial_name_creator=_ray_trial_name,
            trial_dirname_creator=_ray_trial_name,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(spec.output / RAY_DIR),
            verbose=verbose,
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            callbacks=callbacks,
        ),
    )
    with _tune_output(quiet=verbose == 0):
        tuner.fit()


@contextlib.contextmanager
def _tune_output(*, quiet: bool) -> Iterator[None]:
    """Tune's newer console output prints its experiment banner and paths even at verbose=0;
    its older one (``RAY_AIR_NEW_OUTPUT=0``, read when ``fit`` starts) is silent at 0."""
    if not quiet:
        yield
        return
    saved = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = saved


def _progress_callback(tune: Any, name: str, total: int, done: int) -> Any:
    """A Tune callback drawing a tqdm bar of trials finished (or failed for good) out of ``total``."""

    class SweepProgress(tune.Callback):
        def __init__(self) -> None:
            self.bar = None

        def setup(self, **info: Any) -> None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=done,
                desc=f"sweep {name}",
                unit="trial",
                file=sys.stderr,
                dynamic_ncols=True,
            )

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if self.bar is not None:
                self.bar.update(1)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if self.bar is not None:
                self.bar.update(1)

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

        def __getstate__(self) -> dict[str, Any]:  # Tune saves its callbacks; a bar is not data
            return {**self.__dict__, "bar": None}

    return SweepProgress()


def _ray_trial_name(trial: Any) -> str:
    return trial.config["trial"]


def _ray_trial(
    params: Mapping[str, Any],
    payloads: Mapping[str, Mapping[str, Any]],
    human: HumanTarget | None = None,
    train_fn: TrainFn | None = None,
) -> None:
    """The Ray Tune function trainable: one trial, reporting each history record to Tune."""
    from ray import tune

    plan = TrialPlan.from_payload(payloads[params["trial"]])
    run_trial(plan, human=human, train_fn=train_fn, report=tune.report)
