"""Fast execution of the forward + loss + backward part of a training iteration.

``training.compile`` chooses how :class:`LossStep` runs it:

==============  ==================================================================================
``off``         eager PyTorch (the plain path; the CPU default).
``graph``       the whole forward + loss + backward captured once as a CUDA graph and replayed
                (static input buffers; warm-up on a side stream). The Euler loop launches ~20
                small kernels per step, so on a GPU the eager loop is launch-bound; a replay
                launches them all at once. CUDA only.
``inductor``    ``torch.compile`` of forward + loss (backward through AOTAutograd). Compiling
                the unrolled 200-step loop takes minutes per input shape; CUDA only by default.
``auto``        ``graph`` on CUDA, ``off`` elsewhere.
==============  ==================================================================================

A mode that cannot be used (no CUDA, or capture/compilation fails) falls back to ``off`` with a
warning, never an error, and the results are those of the plain path (the graph and compiled
paths compute the same maths; ``tests/agents/test_accel.py`` checks outputs and gradients).

The optimiser step, gradient clipping and weight projection stay eager and outside: they are a
handful of (foreach) kernels, and keeping them out lets the LR scheduler, early stopping and a
noise curriculum change learning rates and state between iterations without re-capturing. No
path reads values back to the host; the caller syncs once per iteration for the loss.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from vwm_agents.config import COMPILE_MODES  # the schema owns the names

__all__ = ["COMPILE_MODES", "LossStep", "resolve_compile_mode"]

# Eager iterations run on a side stream before capture, so that lazily initialised state (cuBLAS
# workspaces, autograd buffers, the caching allocator's pools) exists before the graph records.
_GRAPH_WARMUP_ITERATIONS = 3


def resolve_compile_mode(mode: str, device: torch.device | str) -> str:
    """The mode that will actually run (``off``, ``graph`` or ``inductor``) on ``device``.

    ``auto`` is ``graph`` on CUDA and ``off`` elsewhere; ``graph``/``inductor`` on a device
    without CUDA fall back to ``off`` with a warning.
    """
    if mode not in COMPILE_MODES:
        raise ValueError(f"training.compile must be one of {COMPILE_MODES}, got {mode!r}")
    is_cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
    if mode == "auto":
        return "graph" if is_cuda else "off"
    if mode != "off" and not is_cuda:
        warnings.warn(
            f"training.compile={mode!r} needs a CUDA device; running eagerly on {device}",
            RuntimeWarning,
            stacklevel=2,
        )
        return "off"
    return mode


class LossStep:
    """``step(*inputs, **options) -> (loss, *extras)`` runs ``fn(*inputs, **options)`` and
    backpropagates ``loss``.

    After a call every parameter in ``params`` holds the gradient of this call's loss (fresh
    each call, never accumulated), ready for an optimiser step.

    Args:
        fn: ``fn(*inputs, **options) -> (loss, *extras)`` with a scalar ``loss``; ``extras``
            (e.g. outputs and rates, detached here) are returned for metrics. ``inputs`` are
            tensors (copied into static buffers for a CUDA graph); ``options`` are plain Python
            values that select what is computed (a graph is re-captured when they change). It
            must not read tensors back to the host (a CUDA graph cannot capture that).
        params: the parameters whose gradients the step produces.
        mode: ``off``, ``graph`` or ``inductor`` (see :func:`resolve_compile_mode`).
        generators: the ``torch.Generator`` objects ``fn`` draws from (a CUDA graph must
            register them to draw fresh numbers at every replay).
        allow_cpu: let ``inductor`` run on the CPU (tests; the compile takes minutes at full size).

    ``mode`` after construction or after the first call says what really runs (``off`` after a
    fallback).
    """

    def __init__(
        self,
        fn: Callable[..., Sequence[Tensor]],
        params: Sequence[Tensor],
        mode: str = "off",
        *,
        generators: Sequence[torch.Generator] = (),
        allow_cpu: bool = False,
    ) -> None:
        if mode not in ("off", "graph", "inductor"):
            raise ValueError(f"mode must be 'off', 'graph' or 'inductor', got {mode!r}")
        self.fn = fn
        self.params = [p for p in params if p.requires_grad]
        self.mode = mode
        self.generators = list(generators)
        self.allow_cpu = allow_cpu
        self._compiled: Callable[..., Sequence[Tensor]] | None = None
        self._graph: _CapturedStep | None = None

    def __call__(self, *inputs: Tensor, **options: Any) -> tuple[Tensor, ...]:
        if self.mode == "graph":
            try:
                return self._graphed(inputs, options)
            except Exception as error:  # noqa: BLE001 (any capture failure -> eager)
                self._fall_back(f"CUDA graph capture failed ({type(error).__name__}: {error})")
        if self.mode == "inductor":
            try:
                return self._eager(self._compiled_fn(inputs), inputs, options)
            except Exception as error:  # noqa: BLE001 (any compile failure -> eager)
                self._fall_back(f"torch.compile failed ({type(error).__name__}: {error})")
        return self._eager(self.fn, inputs, options)

    # -- paths ------------------------------------------------------------------------------
    def _eager(
        self, fn: Callable[..., Sequence[Tensor]], inputs: Sequence[Tensor], options: dict[str, Any]
    ):
        for param in self.params:
            param.grad = None
        loss, *extras = fn(*inputs, **options)
        loss.backward()
        return (loss.detach(), *(_detach(x) for x in extras))

    def _compiled_fn(self, inputs: Sequence[Tensor]) -> Callable[..., Sequence[Tensor]]:
        if self._compiled is None:
            if not self.allow_cpu and not all(x.is_cuda for x in inputs):
                raise RuntimeError("inductor is enabled for CUDA inputs only (allow_cpu=False)")
            self._compiled = torch.compile(self.fn, dynamic=False, fullgraph=False)
        return self._compiled

    def _graphed(self, inputs: Sequence[Tensor], options: dict[str, Any]) -> tuple[Tensor, ...]:
        if self._graph is None or not self._graph.matches(inputs, options):
            self._graph = _CapturedStep(self.fn, self.params, inputs, options, self.generators)
        return self._graph.replay(inputs)

    def _fall_back(self, reason: str) -> None:
        warnings.warn(f"{reason}; running eagerly", RuntimeWarning, stacklevel=3)
        self.mode = "off"
        self._graph = None
        self._compiled = None


def _detach(x):
    return x.detach() if isinstance(x, Tensor) else x


class _CapturedStep:
    """forward + loss + backward of ``fn`` recorded as one CUDA graph for fixed input shapes."""

    def __init__(
        self,
        fn,
        params: Sequence[Tensor],
        inputs: Sequence[Tensor],
        options: dict[str, Any],
        generators: Sequence[torch.Generator],
    ) -> None:
        if not all(isinstance(x, Tensor) and x.is_cuda for x in inputs):
            raise RuntimeError("CUDA graphs need CUDA input tensors")
        self.params = list(params)
        self.signature = _signature(inputs, options)
        self.static_inputs = [x.detach().clone() for x in inputs]
        # Warm-up draws noise and accumulates gradients: restore both, so that capturing does not
        # change what the training sees (parameters are not touched: no optimiser step here).
        saved_rng = [g.get_state() for g in generators]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(_GRAPH_WARMUP_ITERATIONS):
                for param in self.params:
                    param.grad = None
                loss, *_ = fn(*self.static_inputs, **options)
                loss.backward()
        torch.cuda.current_stream().wait_stream(side)
        for generator, state in zip(generators, saved_rng, strict=True):
            generator.set_state(state)
        for param in self.params:
            param.grad = None
        self.graph = torch.cuda.CUDAGraph()
        for generator in generators:
            register = getattr(self.graph, "register_generator_state", None)
            if register is None:
                raise RuntimeError("this torch cannot capture draws from a custom torch.Generator")
            register(generator)
        with torch.cuda.graph(self.graph):
            loss, *extras = fn(*self.static_inputs, **options)
            loss.backward()
        self.outputs = (loss.detach(), *(_detach(x) for x in extras))
        # Gradients written by the graph: re-attached at every replay in case a caller set
        # ``.grad`` to None in between (the graph keeps writing into these tensors).
        self.static_grads = [param.grad for param in self.params]

    def matches(self, inputs: Sequence[Tensor], options: dict[str, Any]) -> bool:
        return _signature(inputs, options) == self.signature

    def replay(self, inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
        for static, x in zip(self.static_inputs, inputs, strict=True):
            if static.data_ptr() != x.data_ptr():
                static.copy_(x, non_blocking=True)
        self.graph.replay()
        for param, grad in zip(self.params, self.static_grads, strict=True):
            param.grad = grad
        return self.outputs


def _signature(inputs: Sequence[Tensor], options: dict[str, Any]) -> tuple:
    return (
        tuple((tuple(x.shape), x.dtype, x.device) for x in inputs),
        tuple(sorted(options.items())),
    )


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def retain_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Let glibc's malloc reuse freed CPU memory instead of returning it to the OS; True if done.

    A training iteration allocates and frees tensors of ``(B, T, N)`` rates (100 MB at the default
    size) several times. By default glibc serves such blocks with a fresh ``mmap`` and unmaps
    them on free, so every iteration page-faults them in again, which makes creating one cost
    about 4x the arithmetic on it (e.g. the sign of 26 M floats: ~100 ms instead of ~25 ms on
    one core). Raising the mmap and trim thresholds keeps the blocks in the heap for reuse.
    Process-wide and harmless elsewhere; a no-op (False) where glibc is not the allocator.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes))) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * int(threshold_bytes))
    )
