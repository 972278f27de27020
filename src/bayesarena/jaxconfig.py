"""JAX settings bayesarena relies on, applied once when ``bayesarena`` is imported.

- float64: a cell log-likelihood summed over a million votes is ~1e6 in magnitude, where
  float32 keeps only ~0.1 of absolute precision; NUTS's energy-error test would then see
  rounding noise as divergence. Parameters, priors, sums and the sampler's state are float64;
  ``[sampler] precision = "mixed"`` computes only the per-vote terms in float32
  (:mod:`bayesarena.precision`).
- The persistent compilation cache (``BAYESARENA_JAX_CACHE``, default
  ``~/.cache/bayesarena/jax``) so a second process fitting the same shapes does not recompile.
  Cell arrays are padded to a few bucket sizes (see :func:`bayesarena.fit.pad_cells`) so that
  refits on slightly more data reuse the compiled sampler. Every program is cached, however
  fast it compiled: a fit also runs some 90 small programs outside the sampler (eager array
  operations, the Laplace step's pieces) at about 16 ms of compilation each, and with JAX's
  default threshold (1 s; 0.2 s here before) a new process recompiled them all. The
  ``bt-davidson`` fit of ``benchmarks/fit_scaling.py``, first in a process with a warm cache,
  went from 10.5 s to 8.6 s (under cProfile).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Virtual CPU devices requested so that 4 chains can run with ``chain_method="parallel"``.
HOST_DEVICES = 4


def request_host_devices(n: int = HOST_DEVICES) -> None:
    """Ask XLA for ``n`` host (CPU) devices, as ``numpyro.set_host_device_count`` does.

    Must run before JAX initialises its backend; bayesarena calls it on import. If JAX is
    already initialised (the user ran JAX code first) this does nothing and fits fall back to
    sequential chains. Measured on 2 cores (``benchmarks/fit_scaling.py``), parallel chains on
    virtual devices beat sequential and vectorized chains.
    """
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        initialised = getattr(xla_bridge, "backends_are_initialized", lambda: True)()
        if initialised:
            return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


request_host_devices()

import jax  # noqa: E402

_configured = False


def cache_dir() -> Path:
    """Where compiled XLA programs are kept between processes."""
    default = Path.home() / ".cache" / "bayesarena" / "jax"
    return Path(os.environ.get("BAYESARENA_JAX_CACHE", default))


def configure_jax() -> None:
    """Enable float64 and the persistent compilation cache (idempotent)."""
    global _configured
    if _configured:
        return
    jax.config.update("jax_enable_x64", True)
    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except OSError:  # read-only home: run without the cache rather than fail
        pass
    _configured = True
