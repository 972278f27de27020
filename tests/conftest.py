"""Shared fixtures: small simulated arenas and fits cached per session (fits are the slow part)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault(
    "BAYESARENA_JAX_CACHE", str(Path(__file__).resolve().parents[1] / ".jax_cache")
)

from bayesarena import aggregate, fit, read_votes, simulate_arena

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Small but honest sampler settings for tests: 4 chains so R-hat means something.
TEST_SAMPLER = {"chains": 4, "warmup": 300, "draws": 1000}


@pytest.fixture(scope="session")
def small_arena():
    """10 models, 4,000 votes, ties and both-bad included."""
    return simulate_arena(10, 4000, seed=11)


@pytest.fixture(scope="session")
def small_cells(small_arena):
    df, _ = small_arena
    return aggregate(read_votes(df))


@pytest.fixture(scope="session")
def small_posterior(small_cells):
    return fit(small_cells, "bt-davidson", seed=3, progress=False, **TEST_SAMPLER)
