"""Which pairs to show next: the public entry point of active sampling.

``recommend_pairs`` turns a fitted :class:`~bayesarena.posterior.Posterior` (or the Gaussian
belief of a streaming update, :mod:`bayesarena.online`) into a table of the next ``k`` pairs
to show under one objective or a mixture of objectives:

* ``eig`` -- expected information gain about all strengths, ``H[E p(y|theta)] - E H[p(y|theta)]``
  over the four outcomes (Lindley 1956; Houlsby et al. 2011), from posterior draws with a
  first-order bias correction, or by quadrature over the Gaussian belief
  (:mod:`bayesarena.information`);
* ``rank`` / ``topk`` -- information about every pairwise order / about top-``k`` membership;
* ``thompson`` -- double Thompson sampling for the best model (Wu & Liu 2016);
* ``uniform`` and ``arena`` (Chiang et al. 2024, Eq. 9) baselines.

A list of ``k > 1`` pairs is chosen greedily with the belief updated after each pick, so the
pairs are not redundant; ``floor`` keeps every allowed pair's probability of being shown above
``floor / n_pairs``; ``exclude``, ``budget`` and ``weights`` express what the arena can show
(:mod:`bayesarena.policies` has the formulas).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayesarena.belief import GaussianBelief, belief_from_posterior
from bayesarena.errors import BayesArenaError
from bayesarena.information import eig_from_draws
from bayesarena.online import OnlineState
from bayesarena.policies import objective_weights, select_batch
from bayesarena.validation import check_models

if TYPE_CHECKING:
    from bayesarena.posterior import Posterior

#: Posterior draws used for draw-based EIG (with the bias correction, a few hundred suffice).
MAX_DRAWS = 1000


def _subsample(n: int, max_draws: int, seed: int) -> np.ndarray:
    if n <= max_draws:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_draws, replace=False))


def expected_information_gain(
    posterior: Posterior, pairs: np.ndarray, *, max_draws: int = MAX_DRAWS, seed: int = 0,
    category: str | None = None,
) -> np.ndarray:
    """EIG in nats of one vote on each pair (an ``(n_pairs, 2)`` index array), from at most
    ``max_draws`` posterior draws, bias-corrected (see :mod:`bayesarena.information`)."""
    theta = posterior.strength_draws(category)
    keep = _subsample(theta.shape[0], max_draws, seed)
    params = posterior.outcome_param_draws()
    params = type(params)(*(None if v is None else v[keep] for v in params))
    pairs = np.asarray(pairs)
    return eig_from_draws(theta[keep], params, (pairs[:, 0], pairs[:, 1]),
                          posterior.spec.likelihood)


def _model_vector(values: Mapping[str, float] | None, models: Sequence[str], default: float,
                  what: str) -> np.ndarray | None:
    if values is None:
        return None
    check_models(list(values), models)
    out = np.full(len(models), default, dtype=float)
    for name, v in values.items():
        if not np.isfinite(v) or v < 0:
            raise BayesArenaError(f"{what} for model {name!r} must be a number >= 0, got {v}")
        out[models.index(name)] = v
    return out


def recommend_pairs(
    posterior: Posterior | GaussianBelief | OnlineState,
    k: int = 5,
    *,
    objective: str | Mapping[str, float] = "eig",
    category: str | None = None,
    exclude: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    budget: Mapping[str, int] | None = None,
    floor: float = 0.0,
    top_k: int = 5,
    distinct: bool = True,
    max_draws: int = MAX_DRAWS,
    seed: int = 0,
    combine: str = "slots",
) -> pd.DataFrame:
    """The next ``k`` pairs to show, as a table ``model_a, model_b, objective, score``.

    Parameters
    ----------
    posterior:
        A fitted posterior (its draws give the EIG and Thompson draws), or the
        :class:`GaussianBelief` / :class:`OnlineState` of a streaming update (fast path: EIG by
        quadrature).
    objective:
        ``"eig" | "rank" | "topk" | "thompson" | "arena" | "uniform"`` or a mixture
        ``{"topk": 0.7, "eig": 0.3}`` (each pick draws its objective with these odds; with
        ``combine="scores"`` every pick maximises ``0.7 topk + 0.3 eig`` instead).
    category:
        Recommend for a prompt of this category (its strengths ``theta + delta_c``).
    exclude, weights, budget:
        Models never to propose; per-model score multipliers (pair weight ``w_a w_b``); the
        most picks a model may take in this list.
    floor:
        Share of picks drawn uniformly from the allowed pairs (exploration floor).
    top_k:
        ``k`` of the ``topk`` objective.
    distinct:
        No pair twice (default). ``False`` gives an allocation of ``k`` votes, in which a pair
        may recur.

    ``score`` is the objective's value for the pair when it was picked, in nats for ``eig``,
    ``rank`` and ``topk`` (empty for the randomised objectives and floor picks).
    """
    if k < 1:
        raise BayesArenaError(f"k must be >= 1, got {k}")
    try:
        mix = objective_weights(objective)
    except ValueError as exc:
        raise BayesArenaError(str(exc)) from None
    rng = np.random.default_rng(seed)
    draws = eig = None
    if isinstance(posterior, OnlineState):
        posterior = posterior.belief
    if isinstance(posterior, GaussianBelief):
        if category is not None:
            raise BayesArenaError("a Gaussian belief has no categories: recommend from the "
                                  "fitted posterior for a category board")
        belief = posterior
    else:
        belief = belief_from_posterior(posterior, category)
        theta = posterior.strength_draws(category)
        draws = theta[_subsample(theta.shape[0], max_draws, seed)]
    models = list(belief.models)
    check_models(list(exclude), models)
    excluded = np.isin(models, list(exclude))
    if "eig" in mix and draws is not None:  # from the posterior's draws, not the quadrature
        i, j = belief.pairs()
        ok = ~excluded[i] & ~excluded[j]
        eig = np.zeros(len(i))
        eig[ok] = expected_information_gain(posterior, np.stack([i[ok], j[ok]], axis=1),
                                            max_draws=max_draws, seed=seed, category=category)
    budget_vec = _model_vector(budget, models, np.inf, "budget")
    weight_vec = _model_vector(weights, models, 1.0, "weight")
    try:
        batch = select_batch(belief, k, objective=objective, rng=rng, floor=floor,
                             top_k=top_k, exclude=excluded, budget=budget_vec,
                             model_weights=weight_vec, distinct=distinct, draws=draws, eig=eig,
                             combine=combine)
    except ValueError as exc:
        raise BayesArenaError(f"cannot recommend {k} pairs: {exc}") from None
    names = np.asarray(models, dtype=object)
    return pd.DataFrame({
        "model_a": names[batch.model_a],
        "model_b": names[batch.model_b],
        "objective": batch.source.astype(str),
        "score": batch.score,
    })

