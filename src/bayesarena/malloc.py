"""glibc's allocator thresholds, raised once when ``bayesarena`` is imported: :func:`tune_malloc`.

XLA's CPU runtime allocates the temporary buffers of a compiled program on every execution
and frees them afterwards. With glibc's defaults a buffer above the mmap threshold (128 KiB at
start, raised dynamically to at most 32 MiB as mapped chunks are freed) is obtained by
``mmap`` and returned by ``munmap``, and freed heap memory above the trim threshold is handed
back to the kernel. Either way the next execution page-faults the memory in again, and the
kernel zeroes every page first. A likelihood gradient over a few hundred thousand cells
allocates dozens of such buffers (one cell array of float64 at 426k cells is 3.4 MB), so
this cost rivals the arithmetic.

Measured on this project's 2-core machine, one value-and-gradient on one thread (``XLA_FLAGS``
single-threaded, the setting of parallel chains), with and without the thresholds below
(microbenchmarks; ``benchmarks/arena_gradient.py``, with XLA's default threading, went from
27.5 to 12.4 ms):

=========================================================  ========  ========
``models/arena.toml``, 150 models, 1M votes (426k padded    25.1 ms   11.7 ms
cells, 721k direction rows)
its cell likelihood alone                                   15.8 ms    5.2 ms
``models/bt-davidson.toml``, 150 models, 11k cells          259 us    261 us
=========================================================  ========  ========

Setting ``M_MMAP_THRESHOLD`` (which also switches off the dynamic adjustment) and
``M_TRIM_THRESHOLD`` keeps such buffers on the heap and the heap mapped, at the price of a
resident set that stays near its peak instead of shrinking after a large fit. These are the
values of :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD`; the same variables as environment
variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) would have to be set before
the process starts, which a library cannot do. Dask's workers set
``MALLOC_TRIM_THRESHOLD_=65536`` for the opposite reason (returning memory promptly); the call
here overrides it in any process that imports bayesarena.

Set ``BAYESARENA_MALLOC_TUNING=0`` to leave the allocator alone. Other C libraries (musl) or
platforms (macOS, Windows) are left alone too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: Allocations below this size come from the heap (glibc's ``M_MMAP_THRESHOLD``): larger than
#: the arena model's largest per-row array at LMArena scale (721k x 4 float64 = 23 MB).
MMAP_THRESHOLD = 64 * 2**20
#: Free memory at the top of the heap kept mapped (glibc's ``M_TRIM_THRESHOLD``).
TRIM_THRESHOLD = 256 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's <malloc.h>

_applied: bool | None = None


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds (see the module docstring); idempotent.

    Returns whether the thresholds are in effect: ``False`` when switched off with
    ``BAYESARENA_MALLOC_TUNING=0``, when the platform is not Linux, or when the C library has
    no ``mallopt`` that accepts them.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("BAYESARENA_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith(
            "linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
