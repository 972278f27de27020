"""One function per method compared in ``benchmarks/compare_anchors.py``, run in the project's
environment (``arena-rank`` runs in its own, through ``arena_rank_driver.py``).

Each runner takes the votes as a pandas frame (``model_a, model_b, winner``), does everything
the method needs from there (its own counting or aggregation included) and returns a
:class:`Fitted`: ratings and, where the method gives them, 95% intervals, per model name.
``ELO`` ratings are ``1000 + 400/ln(10) * theta`` on the Bradley-Terry logit scale; openskill's
``mu`` is on its own scale (default ``mu = 25``, ``sigma = 25/3``), marked ``scale="openskill"``.

- ``bayesarena``: ``aggregate(read_votes(df))`` then ``fit(cells, spec, method=...)`` (a
  hierarchical spec such as ``arena`` is given the votes, not cells); rating =
  posterior mean, interval = the leaderboard's 95% credible interval.
- ``bootstrap_bt``: :mod:`anchors.bootstrap_bt` (FastChat's MLE + 100 multinomial bootstrap
  refits, ties as half wins).
- ``bootstrap_style``: :mod:`anchors.bootstrap_style` (LMArena's style-controlled board and
  its category boards before arena-rank: contextual Bradley-Terry MLE + 100 bootstrap refits
  per board; needs ``conv_metadata`` and ``category``). ``bayesarena`` with a spec that has
  categories returns its category boards too (``extra["category_ratings"]``).
- ``choix_ilsr``: ``choix.ilsr_pairwise_dense`` (Maystre & Grossglauser 2015, iterative Luce
  spectral ranking: the Bradley-Terry MLE) on the matrix of decisive-vote counts; no intervals.
- ``choix_ep``: ``choix.ep_pairwise`` (expectation propagation, Chu & Ghahramani 2005; logit
  model), one factor per decisive vote, isotropic prior ``N(0, 1/alpha)``; the interval is
  ``mean +- 1.96 sd`` of the sum-to-zero contrast ``theta_m - mean(theta)``.
- ``openskill``: ``openskill.models.BradleyTerryFull`` (Weng & Lin 2011), one ``rate`` call per
  vote in file order (online), ties rated as draws; interval ``mu +- 1.96 sigma``.

choix has no tie model, so ties (both-bad included) are dropped for both choix methods: under the
simulator's Davidson model a decisive vote follows Bradley-Terry exactly, so this keeps choix
on the truth's scale (counting ties as half wins would compress it, as it does for arena-rank
and the bootstrap method).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

ELO_PER_LOGIT = 400.0 / np.log(10.0)
BASE_RATING = 1000.0
Z95 = 1.959963984540054


class Fitted(NamedTuple):
    models: list[str]
    rating: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    scale: str = "elo"
    extra: dict | None = None


def _codes(votes: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(pd.concat([votes["model_a"], votes["model_b"]],
                                            ignore_index=True), sort=True)
    n = len(votes)
    return [str(m) for m in uniques], codes[:n], codes[n:]


def _decisive(votes: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Model names and (winner, loser) index arrays of the decisive votes (ties dropped)."""
    models, a, b = _codes(votes)
    winner = votes["winner"].to_numpy()
    win_a, win_b = winner == "model_a", winner == "model_b"
    keep = win_a | win_b
    return models, np.where(win_a, a, b)[keep], np.where(win_a, b, a)[keep]


def bayesarena(votes: pd.DataFrame, *, spec: str, method: str, seed: int = 0) -> Fitted:
    import bayesarena as ba

    data = ba.read_votes(votes)
    if not ba.load_spec(spec).hierarchical:  # hierarchical specs take the votes themselves
        data = ba.aggregate(data)
    post = ba.fit(data, spec, method=method, seed=seed, progress=False, warn=False)
    board = post.leaderboard().set_index("model").reindex(list(post.models))
    extra: dict = {}
    if method == "nuts":
        d = post.diagnostics
        extra = {"max_rhat": float(d.max_rhat), "min_ess_bulk": float(d.min_ess_bulk),
                 "divergences": int(d.divergences)}
    if "category_deviation" in post.tree["posterior"].data_vars:  # the category boards
        extra["category_ratings"] = {
            tag: post.leaderboard(category=tag).set_index("model")["rating"]
            .reindex(list(post.models)).tolist() for tag in post.categories}
    return Fitted(list(post.models), board["rating"].to_numpy(),
                  board["rating_lower"].to_numpy(), board["rating_upper"].to_numpy(),
                  extra=extra)


def bootstrap_bt(votes: pd.DataFrame, *, n_boot: int = 100, seed: int = 0) -> Fitted:
    from anchors.bootstrap_bt import bootstrap_bt as run

    res = run(votes, n_boot=n_boot, seed=seed)
    return Fitted(list(res.models), res.rating, res.lower, res.upper,
                  extra={"newton_iterations": res.iterations, "n_boot": n_boot})


def bootstrap_style(votes: pd.DataFrame, *, n_boot: int = 100, seed: int = 0) -> Fitted:
    from anchors.bootstrap_style import style_boards

    overall, boards = style_boards(votes, n_boot=n_boot, seed=seed)
    ratings = {tag: pd.Series(b.rating, index=list(b.models)).reindex(list(overall.models))
               .tolist() for tag, b in boards.items()}
    return Fitted(list(overall.models), overall.rating, overall.lower, overall.upper,
                  extra={"n_boot": n_boot, "style_coef": overall.style_coef.tolist(),
                         "category_ratings": ratings,
                         "newton_iterations": overall.iterations
                         + sum(b.iterations for b in boards.values())})


def choix_ilsr(votes: pd.DataFrame) -> Fitted:
    import choix

    models, w, lo = _decisive(votes)
    n = len(models)
    comp = np.bincount(w * n + lo, minlength=n * n).reshape(n, n).astype(float)
    theta = choix.ilsr_pairwise_dense(comp, alpha=0.0, tol=1e-10)
    return Fitted(models, BASE_RATING + ELO_PER_LOGIT * (theta - theta.mean()), None, None,
                  extra={"ties": "dropped", "decisive_votes": len(w)})


def choix_ep(votes: pd.DataFrame, *, alpha: float = 1.0, seed: int = 0) -> Fitted:
    import choix

    models, w, lo = _decisive(votes)
    n = len(models)
    np.random.seed(seed)  # noqa: NPY002  (choix's EP sweeps the factors in np.random's order)
    mean, cov = choix.ep_pairwise(n, np.column_stack([w, lo]), alpha, model="logit")
    centre = np.eye(n) - 1.0 / n  # theta_m - mean(theta): the sum-to-zero contrasts
    sd = np.sqrt(np.diag(centre @ cov @ centre.T))
    mid = BASE_RATING + ELO_PER_LOGIT * (mean - mean.mean())
    half = ELO_PER_LOGIT * Z95 * sd
    return Fitted(models, mid, mid - half, mid + half,
                  extra={"ties": "dropped", "decisive_votes": len(w), "prior_alpha": alpha,
                         "ep_sweeps": int(choix.ep._ep_pairwise.iterations)})


def openskill(votes: pd.DataFrame) -> Fitted:
    from openskill.models import BradleyTerryFull

    model = BradleyTerryFull()
    models, a, b = _codes(votes)
    ratings = [model.rating(name=m) for m in models]
    tie = ~votes["winner"].isin(["model_a", "model_b"]).to_numpy()
    b_won = (votes["winner"] == "model_b").to_numpy()
    for ia, ib, t, bw in zip(a.tolist(), b.tolist(), tie.tolist(), b_won.tolist(), strict=True):
        ranks = [0, 0] if t else ([1, 0] if bw else [0, 1])
        [[ra], [rb]] = model.rate([[ratings[ia]], [ratings[ib]]], ranks=ranks)
        ratings[ia], ratings[ib] = ra, rb
    mu = np.array([r.mu for r in ratings])
    sigma = np.array([r.sigma for r in ratings])
    return Fitted(models, mu, mu - Z95 * sigma, mu + Z95 * sigma, scale="openskill",
                  extra={"ties": "draws", "model": "BradleyTerryFull"})


#: name -> runner; the keyword arguments come from the method table in compare_anchors.py
RUNNERS = {
    "bayesarena": bayesarena,
    "bootstrap_bt": bootstrap_bt,
    "bootstrap_style": bootstrap_style,
    "choix_ilsr": choix_ilsr,
    "choix_ep": choix_ep,
    "openskill": openskill,
}
