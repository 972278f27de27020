"""The simulated LMArena-scale arena the ``arena_*.py`` benchmarks share: its command-line
sizes and the simulation itself (150 models x 10 categories x 1,000,000 votes from 100,000
voters by default; :func:`~bayesarena.simulate.simulate_hierarchical_arena`)."""

from __future__ import annotations

import argparse

import pandas as pd

from bayesarena.simulate import HierarchicalTruth, simulate_hierarchical_arena


def add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """``--models``, ``--votes``, ``--categories``, ``--voters`` with the LMArena-scale
    defaults."""
    parser.add_argument("--models", type=int, default=150)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--categories", type=int, default=10)
    parser.add_argument("--voters", type=int, default=100_000)


def simulate(args: argparse.Namespace, seed: int) -> tuple[pd.DataFrame, HierarchicalTruth]:
    """Votes (LMArena's layout, with style metadata and multi-tag categories) and the truth."""
    return simulate_hierarchical_arena(args.models, args.votes, categories=args.categories,
                                       n_voters=args.voters, seed=seed)
