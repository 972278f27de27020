"""bayesarena: Bayesian ranking of AI models from pairwise human votes.

Votes in (:func:`read_votes`), cells out (:func:`aggregate`), a posterior from a declarative
spec (:func:`fit`, :func:`load_spec`), and leaderboards with credible and joint rank intervals
(:meth:`Posterior.leaderboard`).
"""

from __future__ import annotations

__version__ = "0.1.0"

# First, before anything imports JAX: importing jaxconfig asks XLA for host devices so chains
# can run in parallel.
from bayesarena.jaxconfig import configure_jax as _configure_jax  # noqa: I001
from bayesarena.malloc import tune_malloc as _tune_malloc

from bayesarena.aggregate import aggregate
from bayesarena.errors import BayesArenaError, SamplingWarning
from bayesarena.fit import fit
from bayesarena.io import read_votes
from bayesarena.posterior import Posterior
from bayesarena.simulate import ArenaTruth, simulate_arena
from bayesarena.spec import ModelSpec, available_specs, load_spec
from bayesarena.votes import Cells, ReadSummary, Votes

# float64 and the compilation cache, once, so every result (simulations included) is computed
# the same way whatever the call order: same seed and data, same numbers.
_configure_jax()
# glibc's mmap/trim thresholds: XLA's per-execution temporaries stay on the heap instead of
# being page-faulted in on every gradient (2x on the arena model; see bayesarena.malloc)
_tune_malloc()

__all__ = [
    "ArenaTruth",
    "BayesArenaError",
    "Cells",
    "ModelSpec",
    "Posterior",
    "ReadSummary",
    "SamplingWarning",
    "Votes",
    "__version__",
    "aggregate",
    "available_specs",
    "fit",
    "load_spec",
    "read_votes",
    "simulate_arena",
]
