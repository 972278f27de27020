"""Which pair to show next: expected information gain (EIG) of one vote, from posterior draws.

For a vote on pair (a, b) with outcome y in {a wins, b wins, tie, both bad},

    EIG(a, b) = H[ E_theta p(y | a, b, theta) ] - E_theta H[ p(y | a, b, theta) ],

the mutual information between the vote and the parameters (Lindley 1956; the BALD form of
Houlsby et al. 2011). Both expectations are Monte Carlo averages over posterior draws, computed
for every candidate pair at once. With S draws the plug-in estimate is biased upward by about
(outcomes - 1) / (2 S) nats; we use up to 2,000 draws (bias < 1e-3 nats, far below the gaps
between pairs that matter). The rank/top-k targeted objectives, the Chatbot Arena baseline and
batch selection build on this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import entr

from bayesarena.errors import BayesArenaError
from bayesarena.validation import check_models

if TYPE_CHECKING:
    from bayesarena.posterior import Posterior

MAX_DRAWS = 2000


def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) over the last axis; ``entr(0) = 0``."""
    return entr(p).sum(axis=-1)


def expected_information_gain(
    posterior: Posterior, pairs: np.ndarray, *, max_draws: int = MAX_DRAWS, seed: int = 0
) -> np.ndarray:
    """EIG in nats of one vote on each pair; ``pairs`` is an ``(n_pairs, 2)`` index array."""
    theta = posterior.theta_draws()
    params = posterior.outcome_param_draws()
    if theta.shape[0] > max_draws:
        keep = np.sort(np.random.default_rng(seed).choice(theta.shape[0], max_draws,
                                                          replace=False))
        theta = theta[keep]
        params = type(params)(*(None if v is None else v[keep] for v in params))
    eig = np.empty(len(pairs))
    for start in range(0, len(pairs), 512):  # bound memory: draws x 512 pairs x 4 outcomes
        chunk = pairs[start:start + 512]
        probs = posterior.outcome_probs_from_draws(theta[:, chunk[:, 0]], theta[:, chunk[:, 1]],
                                                   params)
        eig[start:start + 512] = _entropy(probs.mean(axis=0)) - _entropy(probs).mean(axis=0)
    return eig


def recommend_pairs(
    posterior: Posterior,
    k: int = 5,
    *,
    exclude: Sequence[str] = (),
    seed: int = 0,
) -> pd.DataFrame:
    """The ``k`` pairs whose next vote is expected to teach the most about the strengths.

    Returns a table ``model_a, model_b, eig`` (nats) sorted by EIG; models in ``exclude`` are
    never proposed (unknown names are refused).
    """
    models = posterior.models
    check_models(list(exclude), models)
    allowed = np.array([m not in set(exclude) for m in models])
    iu, ju = np.triu_indices(len(models), k=1)
    mask = allowed[iu] & allowed[ju]
    pairs = np.stack([iu[mask], ju[mask]], axis=1)
    if len(pairs) == 0:
        raise BayesArenaError("no pair left to recommend after the exclusions")
    eig = expected_information_gain(posterior, pairs, seed=seed)
    order = np.argsort(-eig, kind="stable")[:k]
    names = np.asarray(models, dtype=object)
    return pd.DataFrame({
        "model_a": names[pairs[order, 0]],
        "model_b": names[pairs[order, 1]],
        "eig": eig[order],
    })
