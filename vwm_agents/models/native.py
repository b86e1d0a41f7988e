"""Fused CPU kernels for the Euler loop's elementwise maths, compiled at first use.

On the CPU the matrix products of a training iteration are only part of its cost: at the
default size a gamma noise draw is ~25 small eager ops (each a pass over the (B, N) rates with
its own allocation and dispatch), and the saturating update another five. ``native_kernels.c``
(next to this file) does each of them in one vectorised loop: the gamma noise draw and its
slope, the Gaussian one, sigmoid + Euler update + phi's slope, and the noise's random numbers
(Philox-4x32-10 with its Box-Muller normals, :mod:`vwm_agents.models.philox`: the same bits as the
eager version of the generator). Results agree with the eager ops to float32 rounding
(``tests/agents/test_native.py``).

The C file is plain C99 without PyTorch headers: built with the system's C compiler (``$CC``,
else ``cc``, ``gcc`` or ``clang``) in well under a second, cached under
``$VWM_RNN_CACHE`` (default ``~/.cache/vwm-rnn``) keyed by the source, the compiler, its flags
and the CPU (``-march=native`` code must not run on another node of a cluster that shares the
home directory), and loaded with ctypes. Where there is no compiler, or the build fails, or
``VWM_RNN_NATIVE=0`` is set, :func:`kernels` returns None: the callers run the same maths in
eager PyTorch and the noise draws come from PyTorch's generator (:mod:`vwm_agents.models.noise`); one
warning says why, unless the kernels were switched off on purpose.

The kernels are serial and float32 only: callers use them for contiguous float32 CPU tensors,
and with several torch threads only below the size where eager ops would start to split work
across threads (:func:`use_kernels`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["NativeKernels", "kernels", "use_kernels"]

SOURCE = Path(__file__).with_name("native_kernels.c")
# IEEE semantics kept (no -ffast-math): no reassociation, NaN propagates.
_FLAGS = ("-O3", "-std=c99", "-fPIC", "-shared", "-fno-math-errno", "-fno-trapping-math")
_NATIVE_FLAGS = ("-march=native",)
# Eager elementwise ops split work across threads from this many elements on (ATen's grain
# size); below it they run on one thread, as the kernels do.
_EAGER_GRAIN = 32768
# Values of $VWM_RNN_NATIVE.
_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")

_index = ctypes.c_int64
_pointer = ctypes.c_void_p
_float = ctypes.c_float


class NativeKernels:
    """The loaded kernels; arguments are contiguous float32 CPU tensors of equal size."""

    def __init__(self, library: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._gamma = library.vwm_gamma_noise
        self._gamma.argtypes = (_index, _pointer, _pointer, _pointer, _float, _pointer, _pointer)
        self._gamma.restype = None
        self._gauss = library.vwm_gauss_noise
        self._gauss.argtypes = (_index, _pointer, _pointer, _float, _float, _pointer, _pointer)
        self._gauss.restype = None
        self._sigmoid = library.vwm_sigmoid_step
        self._sigmoid.argtypes = (_index, _pointer, _pointer, _pointer, _float, _pointer, _pointer)
        self._sigmoid.restype = None
        self._normal = library.vwm_philox_normal
        self._uniform = library.vwm_philox_uniform
        for fill in (self._normal, self._uniform):
            fill.argtypes = (_index, ctypes.c_uint32, ctypes.c_uint32, _pointer)
            fill.restype = None

    def philox_normal(self, key: int, out: Tensor) -> None:
        """Fill ``out`` with the standard normals of the Philox draw ``key``
        (:mod:`vwm_agents.models.philox`)."""
        self._normal(out.numel(), key & 0xFFFFFFFF, key >> 32, out.data_ptr())

    def philox_uniform(self, key: int, out: Tensor) -> None:
        """Fill ``out`` with the uniforms in [0, 1) of the Philox draw ``key``."""
        self._uniform(out.numel(), key & 0xFFFFFFFF, key >> 32, out.data_ptr())

    def gamma_noise(
        self,
        rates: Tensor,
        normal: Tensor,
        uniform: Tensor,
        variance_per_rate: float,
        noisy: Tensor,
        slope: Tensor | None,
    ) -> None:
        """``noisy``, ``slope`` (optional) = gamma noise of ``rates`` and d noisy / d rates."""
        self._gamma(
            rates.numel(),
            rates.data_ptr(),
            normal.data_ptr(),
            uniform.data_ptr(),
            variance_per_rate,
            noisy.data_ptr(),
            _address(slope),
        )

    def gauss_noise(
        self,
        rates: Tensor,
        normal: Tensor,
        factor: float,
        dt_s: float,
        noisy: Tensor,
        slope: Tensor | None,
    ) -> None:
        """``noisy``, ``slope`` (optional) = Gaussian noise of ``rates`` and its slope."""
        self._gauss(
            rates.numel(),
            rates.data_ptr(),
            normal.data_ptr(),
            factor,
            1.0 / dt_s,
            noisy.data_ptr(),
            _address(slope),
        )

    def sigmoid_step(
        self,
        pre: Tensor,
        previous: Tensor,
        leak: Tensor,
        saturation: float,
        rates: Tensor,
        phi_slope: Tensor | None,
    ) -> None:
        """``rates = lerp(previous, r_sat sigmoid(pre), leak)``; ``phi_slope = leak phi'(pre)``."""
        self._sigmoid(
            pre.numel(),
            pre.data_ptr(),
            previous.data_ptr(),
            leak.data_ptr(),
            saturation,
            rates.data_ptr(),
            _address(phi_slope),
        )


def _address(tensor: Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def use_kernels(*tensors: Tensor | None) -> NativeKernels | None:
    """The kernels if they exist and fit these tensors (CPU, float32, contiguous, and small
    enough or one torch thread), else None."""
    present = [t for t in tensors if t is not None]
    first = present[0]
    if first.device.type != "cpu" or first.dtype != torch.float32:
        return None
    if first.numel() >= _EAGER_GRAIN and torch.get_num_threads() > 1:
        return None
    if not all(
        t.is_contiguous() and t.dtype == torch.float32 and t.numel() == first.numel()
        for t in present
    ):
        return None
    return kernels()


@functools.cache
def kernels() -> NativeKernels | None:
    """The compiled kernels, built (or found in the cache) once per process; None if unavailable."""
    switch = os.environ.get("VWM_RNN_NATIVE", "1").strip().lower()
    if switch in _OFF:
        return None
    if switch not in _ON:
        warnings.warn(
            f"VWM_RNN_NATIVE={os.environ['VWM_RNN_NATIVE']!r} is not one of "
            f"{', '.join(_OFF + _ON)}; using the kernels (the default)",
            RuntimeWarning,
            stacklevel=2,
        )
    compiler = _find_compiler()
    if compiler is None:
        reason = "no C compiler found (set $CC, or install gcc or clang)"
    else:
        try:
            return _load(compiler)
        except (OSError, subprocess.SubprocessError, AttributeError) as error:
            reason = f"could not build them with {compiler} ({error})"
    warnings.warn(
        f"vwm_agents.models.native: {reason}; CPU training runs on eager PyTorch ops and "
        "PyTorch's random numbers instead of the fused kernels (same maths, other "
        "noise draws, about 1.5-2x slower); VWM_RNN_NATIVE=0 silences this",
        RuntimeWarning,
        stacklevel=2,
    )
    return None


def _find_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _cache_dirs() -> list[Path]:
    """Where built libraries are kept: ``$VWM_RNN_CACHE``, else the user cache directory;
    a per-user temporary directory if that is not writable."""
    explicit = os.environ.get("VWM_RNN_CACHE")
    if explicit:
        preferred = Path(explicit)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        preferred = (Path(xdg) if xdg else Path.home() / ".cache") / "vwm-rnn"
    fallback = (
        Path(tempfile.gettempdir()) / f"vwm-rnn-{os.getuid() if hasattr(os, 'getuid') else 0}"
    )
    return [preferred / "native", fallback / "native"]


def _cpu_signature() -> str:
    """What -march=native depends on: the machine and, on Linux, the CPU's model and flags."""
    parts = [platform.machine(), platform.system()]
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    parts.append(line.strip())
                if line.strip() == "":
                    break  # the first processor describes them all
    except OSError:
        parts.append(platform.processor())
    return "\n".join(parts)


def _compiler_version(compiler: str) -> str:
    result = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    return result.stdout


def _load(compiler: str) -> NativeKernels:
    source = SOURCE.read_bytes()
    version = _compiler_version(compiler)
    errors: list[str] = []
    for flags in (_FLAGS + _NATIVE_FLAGS, _FLAGS):  # some compilers reject -march=native
        key = hashlib.sha256(
            b"\0".join(
                [source, version.encode(), " ".join(flags).encode(), _cpu_signature().encode()]
            )
        ).hexdigest()[:20]
        for directory in _cache_dirs():
            path = directory / key / "libvwm_kernels.so"
            try:
                if not path.exists():
                    _build(compiler, flags, path)
                return NativeKernels(ctypes.CDLL(str(path)), path)
            except subprocess.CalledProcessError as error:
                lines = (error.stderr or "").strip().splitlines()
                errors.append(lines[-1] if lines else str(error))
                break  # the flags, not the directory: try the next flags
            except OSError as error:  # unwritable directory: try the next one
                errors.append(str(error))
    raise OSError("; ".join(errors))


def _build(compiler: str, flags: tuple[str, ...], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: concurrent processes (a sweep's workers) never load
    # a half-written library.
    handle, temporary = tempfile.mkstemp(suffix=".so", dir=path.parent)
    os.close(handle)
    try:
        subprocess.run(
            [compiler, *flags, "-o", temporary, str(SOURCE)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
