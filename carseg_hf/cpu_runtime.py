"""Process-wide settings for fast CPU inference.

On Linux, glibc returns every large freed block (over its mmap threshold, 128 KiB to 32 MiB) to the kernel at once,
and the next allocation of the same size takes fresh pages, each one a page fault. A U-Net at 1024x1024 allocates and
frees activations of tens to hundreds of MiB per layer, so in a virtual machine where page faults are expensive, a
large share of a CPU forward pass can go to faulting memory in. Asking glibc to keep freed memory in the heap lets the
next layer reuse it.

This is a property of the whole process, so the library never applies it on its own: the `carseg` commands and the
Space call `retain_freed_memory()` at start-up, and Python users may call it themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

_MMAP_THRESHOLD = 1 << 30  # allocations up to 1 GiB come from the reusable heap
_TRIM_THRESHOLD = (1 << 31) - 1  # keep up to 2 GiB of free heap instead of returning it to the kernel


@lru_cache(maxsize=1)
def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the kernel; idempotent.

    It raises the mmap and trim thresholds, and uses a single malloc arena so that blocks freed by one thread (an
    oneDNN worker, a Gradio worker) are reused by the next allocation from any other. Peak memory does not grow; the
    process simply keeps what it has already used.

    Returns:
        True if the settings were applied, False where they do not apply (not Linux, or a C library without
        `mallopt`, such as musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    results = [
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
        mallopt(_M_ARENA_MAX, 1),
    ]
    return all(result == 1 for result in results)
