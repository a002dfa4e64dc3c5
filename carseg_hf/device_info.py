"""One-line descriptions of the device a benchmark ran on, so that recorded figures name their hardware.

CPU figures differ a lot between hosts of the same nominal kind (for example, an EPYC virtual machine with or without
AVX-512), so the CPU line names the processor model, the vector instruction set that PyTorch's kernels dispatch to,
the logical cores and the torch thread count.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model_name(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The processor's model name from `/proc/cpuinfo`, or `platform.processor()` where that file is absent.

    Args:
        cpuinfo: The file to read (a parameter so that tests can pass their own).

    Returns:
        The model name, e.g. `"AMD EPYC"`, or `"unknown CPU"`.
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def describe_device(device: torch.device | str) -> str:
    """Describe `device` in one line for a benchmark's header.

    Args:
        device: A CPU or CUDA device.

    Returns:
        For CUDA: the GPU name, compute capability and memory. For the CPU: the model name, the ISA level PyTorch
        dispatches to (`torch.backends.cpu.get_cpu_capability()`, e.g. AVX2 or AVX512), the logical cores and the
        torch intra-op threads.
    """
    device = torch.device(device)
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        return (
            f"{properties.name}, compute capability {properties.major}.{properties.minor}, "
            f"{properties.total_memory / 2**30:.0f} GiB"
        )
    capability = torch.backends.cpu.get_cpu_capability()
    return (
        f"{cpu_model_name()}, ISA {capability}, {os.cpu_count()} logical cores, "
        f"{torch.get_num_threads()} torch threads"
    )


def cpu_bf16_is_native() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX), as oneDNN sees it.

    Without it, bf16 autocast on the CPU still works but every convolution is emulated: on an AVX2-only EPYC host a
    training step of the bundled model at 512x768 took about 32 s in bf16 against 4 s in fp32.

    Returns:
        True where oneDNN runs bf16 convolutions natively.
    """
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_bf16_warning() -> str | None:
    """A warning to show when bf16 is asked for on a CPU that would emulate it, else None."""
    if cpu_bf16_is_native():
        return None
    return (
        f"bf16 on this CPU ({cpu_model_name()}, ISA {torch.backends.cpu.get_cpu_capability()}) is emulated: it has "
        "no AVX512-BF16 or AMX, so bf16 convolutions run several times slower than fp32. Use fp32 here "
        "(--mixed_precision no for training, --dtype fp32 for predict)."
    )
