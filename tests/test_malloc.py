"""bayesarena.malloc: glibc keeps large temporaries on the heap once bayesarena is imported."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the thresholds are glibc's")

#: Bytes that glibc serves by mmap for a fresh 4 MiB array, measured with mallinfo2 in a new
#: process (the allocator state of this test process is not what a user's process sees).
PROBE = textwrap.dedent("""
    import ctypes, sys
    import numpy as np
    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                    "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "import":
        import bayesarena
        from bayesarena.malloc import tune_malloc
        print(tune_malloc())
    else:
        print(None)
    before = libc.mallinfo2().hblkhd
    x = np.ones(4 * 2**20 // 8)
    print(libc.mallinfo2().hblkhd - before)
""")


def _probe(mode: str, **env: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                         check=True, env={**os.environ, **env}).stdout.split()
    return out[0], int(out[1])


@glibc
def test_large_arrays_stay_on_the_heap_after_import():
    status, mapped = _probe("import")
    assert status == "True"
    assert mapped == 0


@glibc
def test_glibc_default_maps_large_arrays():
    # the control: without bayesarena the same array is mmapped (what made gradients slow)
    status, mapped = _probe("plain")
    assert status == "None"
    assert mapped >= 4 * 2**20


@glibc
def test_opt_out_leaves_the_allocator_alone():
    status, mapped = _probe("import", BAYESARENA_MALLOC_TUNING="0")
    assert status == "False"
    assert mapped >= 4 * 2**20


def test_tune_malloc_is_idempotent():
    from bayesarena.malloc import tune_malloc

    assert tune_malloc() == tune_malloc()
