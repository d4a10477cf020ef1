"""The compute of a pre-training run: device validation, native bf16, a readable hardware name."""

from __future__ import annotations

import torch

from satdifuser._system import cpu_model
from satdifuser.errors import ConfigError


def check_device(spec: str) -> torch.device:
    """Parse ``spec`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``) and check that it exists here.

    Raises:
        ConfigError: ``spec`` is not a device name, or names a device this machine lacks.
    """
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(
            f"device={spec!r} is not a device name; use cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={spec!r} but this machine has no usable CUDA GPU; use cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"device={spec!r} but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1}); pick one of them"
            )
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device={spec!r} but MPS is not available here; use cpu")
        return device
    raise ConfigError(
        f"device={spec!r} is not supported for pre-training; use cpu, cuda[:N] or mps"
    )


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 natively (emulated bf16 convs on CPU are ~70x slower)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def hardware_name(device: torch.device) -> str:
    """A readable name of the compute: CPU model, threads and native bf16, or the CUDA device."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    cpu = cpu_model()
    isa = ", native bf16" if bf16_native(device) else ""  # tells CPU generations of one name apart
    return f"cpu: {cpu} ({torch.get_num_threads()} threads{isa})"
