"""Model comparison by PSIS-LOO, with one vote as the observation unit for every spec.

Specs aggregate votes differently (cells per pair for Bradley-Terry, cells and direction rows
for the arena model), so their likelihood "terms" are not comparable observations. Here the
observation is always **one vote**: ``log p(y_v | theta)`` is the log-probability of that vote's
outcome (no multinomial coefficient), per posterior draw, and PSIS-LOO (Vehtari, Gelman & Gabry
2017, *Practical Bayesian model evaluation using leave-one-out cross-validation and WAIC*,
Statistics and Computing 27; Pareto smoothing from ``arviz_stats``) estimates

    elpd_loo = sum_v log p(y_v | y_{-v}).

Atoms
-----
Votes identical in everything any compared spec uses (pair, outcome, tag set, voter parameter
group, position, style vector) have identical pointwise log-likelihoods, so the computation runs
once per distinct *atom* ``a`` with weight ``w_a`` = its number of votes. This is exact, not an
approximation: leaving out any one of ``w_a`` identical votes gives the same leave-one-out
posterior ``p(theta | y) / p(y_a | theta)`` (up to normalisation), hence the same PSIS weights,
the same LOO predictive density and the same Pareto k. So, with ``e_a`` the atom's elpd and
``N = sum_a w_a`` votes,

    elpd_loo = sum_a w_a e_a,   SE = sqrt(N var_w(e)),   p_loo = sum_a w_a p_a,

``var_w`` the vote-weighted variance with ``N - 1`` in the denominator, which is exactly the
per-vote formula of ``arviz_stats.loo`` (``sqrt(n var(elpd_i, ddof=1))``) on the expanded votes.
A comparison pairs the specs vote by vote (atoms aligned on the union of the keys both use):
``elpd_diff = sum_a w_a (e1_a - e2_a)`` and ``SE_diff = sqrt(N var_w(e1 - e2))`` (``ddof = 0``,
as ``arviz_stats.compare``).

Pareto k is per atom, so it is reported as the number of *votes* whose atom has ``k > 0.7``
and ``k > good_k = min(1 - 1 / log10(S), 0.7)`` (the threshold ``arviz_stats`` uses for ``S``
draws). ``r_eff`` is the mean relative ESS of the posterior's variables on the draws used, as
``arviz_stats.loo`` computes it.

Outcome sets
------------
Every spec must predict every vote. Plain ``bt`` drops ties, ``bt-ties-half`` scores a tie as
half a win each side (a pseudo-likelihood: no probability of a tie), ``both_bad = "as_tie"``
predicts "tie or both bad" as one outcome: such specs are refused with a message naming them,
unless ``decisive_only=True``, which compares the specs on the decisive votes only, each by
``log P(winner | decisive)`` (``log sigmoid`` of the gap for Bradley-Terry, the direction factor
for the arena model). The PSIS weights then still use each vote's own likelihood term in the
fitted posterior (for a Davidson fit ``P(decisive) P(winner | decisive)``), so the estimate is
the LOO predictive of the conditional outcome.

Memory: votes are grouped in one DuckDB ``GROUP BY``; log-likelihoods are computed and smoothed
in chunks of atoms (every draw of one chunk at a time), so memory is bounded whatever the
number of votes. Cost grows with the number of atoms: with style features nearly every vote is
its own atom (about 1 ms per atom for 1,000 draws, mostly the Pareto fit).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from bayesarena.errors import BayesArenaError, InputError
from bayesarena.likelihood import (
    OutcomeParams,
    bothbad_split,
    decisive_log_probs,
    direction_log_probs,
    log_outcome_probs,
)
from bayesarena.posterior import Posterior
from bayesarena.spec import ModelSpec, load_spec
from bayesarena.validation import sql_identifier
from bayesarena.votes import CELL_OUTCOMES, Votes

#: Default cap on the posterior draws used (thinned evenly within each chain).
DEFAULT_DRAWS = 1000
#: Pareto k above which PSIS estimates are unreliable whatever the number of draws.
K_THRESHOLD = 0.7
#: Elements of one (draws x atoms) block: bounds the memory of one chunk.
_BLOCK = 1_000_000
#: Separator of tags inside a tag-set key (as in :mod:`bayesarena.arena_data`).
_TAG_SEP = "\x1f"
#: Style feature columns of the atom table (raw, a minus b).
_STYLE_PREFIX = "style_"

DECISIVE = (0, 1)


# --------------------------------------------------------------------------------------------
# Which outcomes a spec predicts
# --------------------------------------------------------------------------------------------


def outcome_classes(spec: ModelSpec) -> dict[str, str | None]:
    """What each vote outcome is to ``spec``: the name of the predicted outcome it belongs to,
    ``None`` when the spec does not model it, ``"pseudo"`` when it enters the likelihood but
    has no probability (half-win ties)."""
    lik = spec.likelihood
    out: dict[str, str | None] = {"win_i": "win_i", "win_j": "win_j"}
    if lik.ties == "drop":
        out["tie"] = out["tie_bothbad"] = None
    elif lik.ties == "half":
        out["tie"] = "pseudo"
        out["tie_bothbad"] = "pseudo" if lik.both_bad == "as_tie" else None
    else:
        out["tie"] = "tie"
        out["tie_bothbad"] = {"modelled": "tie_bothbad", "as_tie": "tie", "drop": None}[
            lik.both_bad]
    return out


def predicted_mask(spec: ModelSpec) -> np.ndarray:
    """``(4,)`` 0/1: which of ``CELL_OUTCOMES`` carry their own predictive probability."""
    lik = spec.likelihood
    tie = lik.ties in ("davidson", "rao_kupper")
    return np.array([1.0, 1.0, float(tie), float(tie and lik.both_bad == "modelled")])


def check_comparable(specs: Mapping[str, ModelSpec], outcome_votes: Mapping[str, int],
                     *, decisive_only: bool = False) -> None:
    """Refuse comparing specs that do not predict the same outcomes of the observed votes.

    ``outcome_votes``: votes per outcome in :data:`CELL_OUTCOMES` terms (``win_i`` and
    ``win_j`` may be merged into either). With ``decisive_only`` every spec qualifies.
    """
    if decisive_only:
        return
    observed = [o for o in CELL_OUTCOMES[2:] if outcome_votes.get(o, 0) > 0]
    hint = (f" Compare on the {_decisive_votes(outcome_votes):,} decisive votes only with "
            "decisive_only=True (CLI: --decisive-only), each spec scored by "
            "log P(winner | decisive).")
    for name, spec in specs.items():
        classes = outcome_classes(spec)
        dropped = [o for o in observed if classes[o] is None]
        pseudo = [o for o in observed if classes[o] == "pseudo"]
        if dropped:
            others = [n for n, s in specs.items()
                      if n != name and all(outcome_classes(s)[o] for o in dropped)]
            also = f", which {_names(others)} model{'s' if len(others) == 1 else ''}" \
                if others else ""
            raise InputError(
                f"cannot compare by LOO: spec {name!r} does not model the "
                + " and ".join(f"{outcome_votes[o]:,} {o} votes" for o in dropped)
                + f"{also}; every spec must predict every vote.{hint}")
        if pseudo:
            raise InputError(
                f"cannot compare by LOO: spec {name!r} scores "
                + " and ".join(f"{o} votes ({outcome_votes[o]:,})" for o in pseudo)
                + " as half a win for each side, a pseudo-likelihood with no probability of a "
                f"tie, so it has no predictive density for them.{hint}")
    partitions = {name: _partition(spec, observed) for name, spec in specs.items()}
    first, *rest = partitions
    for name in rest:
        if partitions[name] != partitions[first]:
            raise InputError(
                f"cannot compare by LOO: specs {first!r} and {name!r} predict different "
                f"outcomes ({_describe(partitions[first])} vs {_describe(partitions[name])}); "
                f"both must score the same outcome of each vote.{hint}")


def _decisive_votes(outcome_votes: Mapping[str, int]) -> int:
    return int(sum(outcome_votes.get(o, 0) for o in ("win_i", "win_j", "decisive")))


def _partition(spec: ModelSpec, observed: Sequence[str]) -> frozenset[frozenset[str]]:
    classes = outcome_classes(spec)
    groups: dict[str, set[str]] = {}
    for o in observed:
        groups.setdefault(str(classes[o]), set()).add(o)
    return frozenset(frozenset(g) for g in groups.values())


def _describe(partition: frozenset[frozenset[str]]) -> str:
    parts = sorted(" or ".join(sorted(g)) if len(g) > 1 else next(iter(g)) for g in partition)
    return "outcomes: " + ", ".join(["win_i", "win_j", *parts])


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


# --------------------------------------------------------------------------------------------
# Votes -> atoms (one DuckDB GROUP BY)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtomKeys:
    """Which per-vote fields the atoms must keep apart (the union over the specs compared)."""

    tags: bool = False
    sign: bool = False  # +1 when model_i is model_a (the model-a-shown-first convention)
    shown: bool = False  # +1 when model_i was shown first, from the position column
    voter: bool = False
    style: bool = False

    @classmethod
    def for_specs(cls, specs: Iterable[ModelSpec], *, first_shown: bool = False,
                  has_position_column: bool = False) -> AtomKeys:
        specs = list(specs)
        pos_column = any(s.position.enabled and s.position.source == "column" for s in specs)
        return cls(
            tags=any(s.categories.enabled for s in specs),
            sign=(any(s.style.enabled or (s.position.enabled and s.position.source == "model_a")
                      for s in specs) or (first_shown and not has_position_column)),
            shown=pos_column or (first_shown and has_position_column),
            voter=any(s.voters.enabled for s in specs),
            style=any(s.style.enabled for s in specs),
        )


def vote_atoms(votes: Votes, keys: AtomKeys) -> pd.DataFrame:
    """Distinct votes with their counts: one row per (pair, outcome, the fields in ``keys``).

    Columns: ``model_i``, ``model_j`` (names, ``model_i < model_j``), then ``tags`` (tag-set
    key, tags joined by ``\\x1f``), ``sign``, ``shown``, ``voter`` and the raw style features
    ``style_length`` ... (``a`` minus ``b``) as ``keys`` asks, ``outcome`` (index into
    :data:`CELL_OUTCOMES`, oriented to ``(model_i, model_j)``) and ``n`` (votes).
    """
    from bayesarena.arena_data import check_no_null, position_sql, tags_sql
    from bayesarena.errors import MissingColumnError

    relation = votes.relation
    cols = set(votes.optional_columns)
    ident = sql_identifier
    a, b = ident("model_a"), ident("model_b")
    a_first = f"({a} < {b})"

    def need(column: str, what: str, per_vote: bool = True) -> None:
        if column not in cols:
            raise MissingColumnError(
                f"{what} needs a {column!r} column; found columns "
                f"{', '.join(repr(c) for c in relation.columns)}",  # type: ignore[attr-defined]
                column=column)
        if per_vote and votes.kind != "votes":
            raise InputError(f"{what} needs one row per vote; the input is in the "
                             "aggregated-count form")

    exprs: dict[str, str] = {"model_i": f"least({a}, {b})", "model_j": f"greatest({a}, {b})"}
    if keys.tags:
        need("category", "categories", per_vote=False)
        check_no_null(relation, "category", "a category tag (or an empty list) on every row")
        exprs["tags"] = tags_sql(relation)
    if keys.sign:
        exprs["sign"] = f"CASE WHEN {a_first} THEN 1 ELSE -1 END"
    if keys.shown:
        need("position", "the position column")
        exprs["shown"] = f"CASE WHEN ({position_sql(relation)}) = {a_first} THEN 1 ELSE -1 END"
    if keys.voter:
        need("voter", "voters")
        exprs["voter"] = f"CAST({ident('voter')} AS VARCHAR)"
    if keys.style:
        from bayesarena.style import check_style_metadata, style_features_sql

        need("conv_metadata", "style")
        check_style_metadata(relation)
        for name, expr in style_features_sql(relation).items():
            exprs[f"{_STYLE_PREFIX}{name}"] = f"CAST({expr} AS DOUBLE)"
    select = ", ".join(f"{e} AS {ident(k)}" for k, e in exprs.items())
    if votes.kind == "votes":
        o = ident("outcome")
        code = (f"CASE {o} WHEN 'win_a' THEN (CASE WHEN {a_first} THEN 0 ELSE 1 END) "
                f"WHEN 'win_b' THEN (CASE WHEN {a_first} THEN 1 ELSE 0 END) "
                f"WHEN 'tie' THEN 2 ELSE 3 END")
        query = (f"SELECT {select}, {code} AS outcome, count(*) AS n FROM votes GROUP BY ALL")
    else:
        codes = (f"[CASE WHEN {a_first} THEN 0 ELSE 1 END, CASE WHEN {a_first} THEN 1 ELSE 0 "
                 "END, 2, 3]")
        counts = "[" + ", ".join(ident(c) for c in ("wins_a", "wins_b", "ties",
                                                     "ties_bothbad")) + "]"
        names = ", ".join(ident(k) for k in exprs)
        query = (f"SELECT {names}, outcome, sum(n) AS n FROM (SELECT {select}, "
                 f"unnest({codes}) AS outcome, unnest({counts}) AS n FROM votes) "
                 "WHERE n > 0 GROUP BY ALL")
    df = relation.query("votes", query).df()  # type: ignore[attr-defined]
    df["outcome"] = df["outcome"].astype(np.int8)
    df["n"] = df["n"].astype(np.int64)
    order = [c for c in df.columns if c not in ("outcome", "n")]
    return df.sort_values([*order, "outcome"], kind="stable").reset_index(drop=True)


def outcome_totals(atoms: pd.DataFrame) -> dict[str, int]:
    """Votes per outcome (:data:`CELL_OUTCOMES`) in an atom table."""
    totals = atoms.groupby("outcome")["n"].sum()
    return {name: int(totals.get(k, 0)) for k, name in enumerate(CELL_OUTCOMES)}


# --------------------------------------------------------------------------------------------
# Posterior draws
# --------------------------------------------------------------------------------------------


def thin_indices(n_chains: int, n_draws: int, max_draws: int) -> np.ndarray:
    """Draw indices kept in every chain: evenly spaced, at most ``max_draws`` in all."""
    if max_draws < 1:
        raise BayesArenaError(f"draws must be >= 1, got {max_draws}")
    keep = max(1, min(n_draws, max_draws // max(n_chains, 1)))
    return np.unique(np.round(np.linspace(0, n_draws - 1, keep)).astype(np.int64))


@dataclass(frozen=True)
class Draws:
    """Parameter draws of one posterior (chains stacked, ``S = chains * per_chain``)."""

    spec: ModelSpec
    models: tuple[str, ...]
    chains: int
    per_chain: int
    theta: np.ndarray  # (S, M)
    params: OutcomeParams  # each (S,) or None
    categories: tuple[str, ...] = ()
    delta: np.ndarray | None = None  # (S, M, C)
    position: np.ndarray | None = None  # (S,)
    style_coef: np.ndarray | None = None  # (S, F)
    style_mean: np.ndarray | None = None  # (F,)
    style_sd: np.ndarray | None = None  # (F,)
    voters: tuple[str, ...] = ()  # heavy voters; index len(voters): the crowd (kappa = 1)
    discrimination: np.ndarray | None = None  # (S, V + 1): kappa_v, then 1 for the crowd
    r_eff: float = 1.0

    @property
    def n_draws(self) -> int:
        return int(self.theta.shape[0])

    @classmethod
    def from_posterior(cls, posterior: Posterior, max_draws: int = DEFAULT_DRAWS) -> Draws:
        post = posterior.tree["posterior"]
        n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
        idx = thin_indices(n_chains, n_draws, max_draws)
        thinned = post.isel(draw=idx)

        def stack(name: str, *dims: str) -> np.ndarray | None:
            if name not in thinned.data_vars:
                return None
            values = thinned[name].transpose("chain", "draw", *dims).values
            return values.reshape(-1, *values.shape[2:]).astype(np.float64)

        spec = posterior.spec
        params = OutcomeParams(*(stack(n) for n in OutcomeParams._fields))
        const = posterior.tree["constant_data"] if "constant_data" in posterior.tree.children \
            else None
        kwargs: dict[str, Any] = {}
        if spec.categories.enabled:
            kwargs["categories"] = tuple(str(c) for c in post["category"].values)
            kwargs["delta"] = stack("category_deviation", "model", "category")
        if spec.position.enabled:
            kwargs["position"] = stack("position")
        if spec.style.enabled:
            if const is None or "style_mean" not in const.data_vars:
                raise InputError("the posterior has a style component but no stored style "
                                 "scaling (constant_data style_mean/style_sd)")
            kwargs["style_coef"] = stack("style_coef", "style_feature")
            features = [str(f) for f in post["style_feature"].values]
            kwargs["style_mean"] = const["style_mean"].sel(style_feature=features).values
            kwargs["style_sd"] = const["style_sd"].sel(style_feature=features).values
        if spec.voters.enabled:
            kappa = stack("voter_discrimination", "voter")
            n_draws_total = len(idx) * n_chains
            if kappa is None:  # no heavy voter: everyone votes like the crowd
                kappa = np.zeros((n_draws_total, 0))
                kwargs["voters"] = ()
            else:
                kwargs["voters"] = tuple(str(v) for v in post["voter"].values)
            kwargs["discrimination"] = np.concatenate([kappa, np.ones((n_draws_total, 1))],
                                                      axis=1)
        return cls(spec=spec, models=posterior.models, chains=n_chains, per_chain=len(idx),
                   theta=stack("theta", "model"), params=params,
                   r_eff=_relative_eff(thinned), **kwargs)


def _relative_eff(posterior: xr.Dataset) -> float:
    """Mean relative ESS over every posterior variable (as ``arviz_stats.loo`` computes it)."""
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    if n_chains == 1:
        return 1.0
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)

    ess = posterior.azstats.ess(method="mean")
    values = np.hstack([np.asarray(ess[v].values, dtype=float).ravel() for v in ess.data_vars])
    reff = float(np.nanmean(values)) / (n_chains * n_draws)
    return reff if np.isfinite(reff) and reff > 0 else 1.0


# --------------------------------------------------------------------------------------------
# Per-atom log-probabilities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtomArrays:
    """Atoms in one posterior's index space (see :func:`atom_arrays`)."""

    model_i: np.ndarray  # int64 (A,)
    model_j: np.ndarray  # int64 (A,)
    tagset: np.ndarray  # int64 (A,): row of ``tagsets``
    tagsets: np.ndarray  # float (G, C)
    position: np.ndarray  # float (A,): +1 / -1 / 0
    voter: np.ndarray  # int64 (A,): index into the discriminations (the crowd = last)
    style: np.ndarray  # float (A, F): z-scored, oriented i minus j

    def key_columns(self, spec: ModelSpec) -> list[np.ndarray]:
        """The per-atom arrays this spec's likelihood reads (equal keys: equal likelihood)."""
        cols = [self.model_i, self.model_j]
        if spec.categories.enabled:
            cols.append(self.tagset)
        if spec.position.enabled:
            cols.append(self.position)
        if spec.voters.enabled:
            cols.append(self.voter)
        if spec.style.enabled:
            cols += list(self.style.T)
        return cols

    def take(self, rows: np.ndarray) -> AtomArrays:
        return AtomArrays(self.model_i[rows], self.model_j[rows], self.tagset[rows],
                          self.tagsets, self.position[rows], self.voter[rows],
                          self.style[rows])


def tagset_arrays(keys: pd.Series, categories: Sequence[str], spec_name: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Tag-set index of each key (tags joined by the unit separator) and the tag-set
    membership matrix over ``categories``; a tag without a deviation raises InputError."""
    codes, uniq = pd.factorize(keys, sort=True)
    tag_index = {t: c for c, t in enumerate(categories)}
    tagsets = np.zeros((len(uniq), len(categories)))
    for g, key in enumerate(uniq):
        tags = [t for t in str(key).split(_TAG_SEP) if t]
        missing = [t for t in tags if t not in tag_index]
        if missing:
            raise InputError(f"the votes have category tag(s) {_names(missing)} that the "
                             f"posterior of spec {spec_name!r} has no deviation for")
        tagsets[g, [tag_index[t] for t in tags]] = 1.0
    return codes.astype(np.int64), tagsets


def atom_arrays(atoms: pd.DataFrame, draws: Draws) -> AtomArrays:
    """Map an atom table (:func:`vote_atoms`) into the posterior's models, tags, voters and
    style scaling; unknown models or tags raise :class:`InputError`."""
    spec = draws.spec
    index = {m: k for k, m in enumerate(draws.models)}
    names = pd.unique(pd.concat([atoms["model_i"], atoms["model_j"]]))
    unknown = [str(m) for m in names if m not in index]
    if unknown:
        raise InputError(f"the votes have model(s) {_names(sorted(unknown)[:5])} that the "
                         f"posterior of spec {spec.name!r} does not know: it was fitted to "
                         "other votes")
    mi = atoms["model_i"].map(index).to_numpy(np.int64)
    mj = atoms["model_j"].map(index).to_numpy(np.int64)
    n = len(atoms)
    tagset = np.zeros(n, dtype=np.int64)
    tagsets = np.zeros((1, max(len(draws.categories), 1)))
    if spec.categories.enabled:
        tagset, tagsets = tagset_arrays(atoms["tags"], draws.categories, spec.name)
    position = np.zeros(n)
    if spec.position.enabled:
        column = "sign" if spec.position.source == "model_a" else "shown"
        position = atoms[column].to_numpy(np.float64)
    voter = np.zeros(n, dtype=np.int64)
    if spec.voters.enabled:
        voter_index = {v: k for k, v in enumerate(draws.voters)}
        pooled = len(draws.voters)
        voter = atoms["voter"].map(voter_index).fillna(pooled).to_numpy(np.int64)
    style = np.zeros((n, 0))
    if spec.style.enabled:
        from bayesarena.style import STYLE_FEATURES

        raw = atoms[[f"{_STYLE_PREFIX}{f}" for f in STYLE_FEATURES]].to_numpy(np.float64)
        style = atoms["sign"].to_numpy(np.float64)[:, None] * (raw - draws.style_mean) \
            / draws.style_sd
    return AtomArrays(mi, mj, tagset, tagsets, position, voter, style)


def atom_log_probs(draws: Draws, arrays: AtomArrays, draw_slice: slice = slice(None)
                   ) -> np.ndarray:
    """``log P(outcome)`` of one vote in each atom for each draw, shape ``(S, A, 4)`` over
    :data:`CELL_OUTCOMES` (entries of outcomes the spec does not predict are placeholders:
    see :func:`predicted_mask`).

    Non-hierarchical specs: :func:`~bayesarena.likelihood.log_outcome_probs` at
    ``d = theta_i - theta_j``. Hierarchical specs: the arena likelihood
    (:mod:`bayesarena.arena_model`): ``d = s_i(T) - s_j(T) + gamma p``, ``log P(win_i) = log
    P(decisive | d) + log P(i wins | decisive)`` with the style offset and the voter's
    discrimination in the second factor, ``log P(tie)``, ``log P(both bad)`` from the split.
    """
    spec = draws.spec
    lik = spec.likelihood
    theta = draws.theta[draw_slice]
    p = OutcomeParams(*(None if v is None else v[draw_slice, None] for v in draws.params))
    if not spec.hierarchical:
        ti, tj = theta[:, arrays.model_i], theta[:, arrays.model_j]
        return np.asarray(log_outcome_probs(
            jnp.asarray(ti - tj), jnp.asarray(0.5 * (ti + tj)), ties=lik.ties,
            both_bad=lik.both_bad, params=p, link=lik.link))
    if spec.categories.enabled:
        # strength of every model on every tag set: (S, G, M)
        strength = theta[:, None, :] + np.einsum("gc,smc->sgm", arrays.tagsets,
                                                 draws.delta[draw_slice])
        s_i = strength[:, arrays.tagset, arrays.model_i]
        s_j = strength[:, arrays.tagset, arrays.model_j]
    else:
        s_i, s_j = theta[:, arrays.model_i], theta[:, arrays.model_j]
    d = s_i - s_j
    if spec.position.enabled:
        d = d + draws.position[draw_slice, None] * arrays.position[None, :]
    d = jnp.asarray(d)
    zeros = jnp.zeros_like(d)
    if lik.ties == "davidson":
        lp_dec, lp_tie = decisive_log_probs(d, p.log_nu)
        lp_bb = lp_tie
        if lik.both_bad == "modelled":
            lp_tie, lp_bb = bothbad_split(lp_tie, jnp.asarray(0.5 * (s_i + s_j)), p)
    else:  # ties dropped: the direction factor is the whole likelihood
        lp_dec = lp_tie = lp_bb = zeros
    y = d
    if spec.style.enabled:
        y = y + jnp.asarray(draws.style_coef[draw_slice] @ arrays.style.T)
    kappa = None
    if spec.voters.enabled:
        kappa = jnp.asarray(draws.discrimination[draw_slice][:, arrays.voter])
    lp_i, lp_j = direction_log_probs(y, kappa)
    return np.asarray(jnp.stack([lp_dec + lp_i, lp_dec + lp_j, lp_tie, lp_bb], axis=-1))


def _pick(log_probs: np.ndarray, outcome: np.ndarray, decisive_only: bool
          ) -> tuple[np.ndarray, np.ndarray]:
    """(likelihood term, predictive log density) of each atom's outcome, each ``(S, A)``."""
    cols = np.arange(log_probs.shape[1])
    full = log_probs[:, cols, outcome]
    if not decisive_only:
        return full, full
    return full, full - np.logaddexp(log_probs[..., 0], log_probs[..., 1])


# --------------------------------------------------------------------------------------------
# PSIS-LOO
# --------------------------------------------------------------------------------------------


def psis_loo_atoms(log_lik: np.ndarray, r_eff: float = 1.0, predictive: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PSIS-LOO of each atom: ``(elpd, p_loo, pareto_k)``, each ``(A,)``.

    ``log_lik`` is ``(A, S)`` (draws of every chain, chain-major, as ``arviz_stats`` flattens
    them); the smoothed weights are ``arviz_stats``' ``psislw``. ``predictive``, when given,
    is the log density being predicted (default ``log_lik``), weighted by the same ratios.
    """
    from arviz_stats.base import array_stats

    log_lik = np.asarray(log_lik, dtype=np.float64)
    target = log_lik if predictive is None else np.asarray(predictive, dtype=np.float64)
    n_atoms, n_draws = log_lik.shape
    elpd, p_loo = np.empty(n_atoms), np.empty(n_atoms)
    k = np.full(n_atoms, -np.inf)
    flat = np.ptp(log_lik, axis=1) <= 1e-12 * np.maximum(1.0, np.abs(log_lik).max(axis=1))
    lppd = logsumexp(target, axis=1) - math.log(n_draws)
    if flat.any():  # the vote does not move the posterior: LOO = full-data predictive
        elpd[flat], p_loo[flat] = lppd[flat], 0.0
    rows = ~flat
    if rows.any():
        try:
            lw, k_rows = array_stats.psislw(log_lik[rows], r_eff=r_eff, axis=-1)
        except ValueError as exc:
            raise BayesArenaError(f"Pareto smoothing failed ({exc}); use more posterior "
                                  "draws") from None
        lw = np.asarray(lw)
        elpd[rows] = logsumexp(lw + target[rows], axis=1)
        p_loo[rows] = lppd[rows] - elpd[rows]
        k[rows] = np.asarray(k_rows)
    return elpd, p_loo, k


def good_k_threshold(n_draws: int) -> float:
    """``min(1 - 1 / log10(S), 0.7)``: Pareto k threshold for ``S`` draws (``arviz_stats``)."""
    return min(1.0 - 1.0 / math.log10(n_draws), K_THRESHOLD) if n_draws > 1 else K_THRESHOLD


def weighted_se(values: np.ndarray, weights: np.ndarray, ddof: int = 1) -> float:
    """``sqrt(N var_w(values))``: the standard error of a sum over ``N = sum(weights)`` votes
    whose values are ``values`` repeated ``weights`` times (``ddof`` as for the expanded
    votes)."""
    n = float(weights.sum())
    if n - ddof <= 0:
        return 0.0
    mean = float(np.dot(weights, values)) / n
    var = float(np.dot(weights, (values - mean) ** 2)) / (n - ddof)
    return math.sqrt(n * var)


@dataclass(frozen=True)
class LooResult:
    """PSIS-LOO of one posterior over the votes (see the module docstring).

    ``pointwise`` has one row per atom (its key columns, ``n`` votes, ``elpd``, ``p_loo``,
    ``pareto_k``); per-vote values are the atom's.
    """

    spec: str
    elpd: float
    se: float
    p_loo: float
    n_votes: int
    n_atoms: int
    n_draws: int
    r_eff: float
    good_k: float
    votes_k_high: int  # votes whose k > 0.7
    votes_k_bad: int  # votes whose k > good_k
    max_k: float
    decisive_only: bool
    pointwise: pd.DataFrame = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "elpd_loo": self.elpd, "se": self.se, "p_loo": self.p_loo,
                "n_votes": self.n_votes, "n_atoms": self.n_atoms, "n_draws": self.n_draws,
                "r_eff": self.r_eff, "good_k": self.good_k,
                "votes_k_above_0.7": self.votes_k_high, "votes_k_above_good_k": self.votes_k_bad,
                "max_k": self.max_k, "decisive_only": self.decisive_only}


def _spec_pointwise(draws: Draws, atoms: pd.DataFrame, *, decisive_only: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """elpd, p_loo and k of every row of ``atoms`` (computed once per distinct key of this
    spec, then broadcast back)."""
    arrays = atom_arrays(atoms, draws)
    outcome = atoms["outcome"].to_numpy(np.int64)
    keys = pd.MultiIndex.from_arrays([*arrays.key_columns(draws.spec), outcome])
    codes, _ = keys.factorize()
    first = np.unique(codes, return_index=True)[1]  # a representative row per distinct key
    sub, sub_outcome = arrays.take(first), outcome[first]
    n_unique = len(first)
    elpd, p_loo, k = np.empty(n_unique), np.empty(n_unique), np.empty(n_unique)
    chunk = max(1, _BLOCK // max(draws.n_draws, 1))
    for start in range(0, n_unique, chunk):
        rows = np.arange(start, min(start + chunk, n_unique))
        lp = atom_log_probs(draws, sub.take(rows))
        full, pred = _pick(lp, sub_outcome[rows], decisive_only)
        elpd[rows], p_loo[rows], k[rows] = psis_loo_atoms(
            full.T, draws.r_eff, None if pred is full else pred.T)
    return elpd[codes], p_loo[codes], k[codes]


def _atoms_for(atoms: pd.DataFrame, decisive_only: bool) -> pd.DataFrame:
    if decisive_only:
        atoms = atoms[atoms["outcome"].isin(DECISIVE)].reset_index(drop=True)
    if atoms.empty:
        raise InputError("no votes to score" + (" (no decisive votes)" if decisive_only else ""))
    return atoms


def _summarise(name: str, draws: Draws, atoms: pd.DataFrame, elpd: np.ndarray,
               p_loo: np.ndarray, k: np.ndarray, decisive_only: bool) -> LooResult:
    w = atoms["n"].to_numpy(np.float64)
    good_k = good_k_threshold(draws.n_draws)
    pointwise = atoms.assign(elpd=elpd, p_loo=p_loo, pareto_k=k)
    return LooResult(
        spec=name, elpd=float(w @ elpd), se=weighted_se(elpd, w), p_loo=float(w @ p_loo),
        n_votes=int(w.sum()), n_atoms=len(atoms), n_draws=draws.n_draws, r_eff=draws.r_eff,
        good_k=good_k, votes_k_high=int(w[k > K_THRESHOLD].sum()),
        votes_k_bad=int(w[k > good_k].sum()), max_k=float(np.max(k)),
        decisive_only=decisive_only, pointwise=pointwise)


def loo(posterior: Posterior, votes: Votes | pd.DataFrame | str | Path, *,
        draws: int = DEFAULT_DRAWS, decisive_only: bool = False) -> LooResult:
    """PSIS-LOO of a fitted posterior, one vote per observation (see the module docstring).

    ``votes`` must be the votes the posterior was fitted to. ``draws`` caps the posterior draws
    used (thinned evenly within each chain). Specs that do not predict some observed outcome
    (ties under ``bt``, half-win ties) are refused unless ``decisive_only``.
    """
    votes = _as_votes(votes)
    _check_same_votes({posterior.spec.name: posterior}, votes)
    spec = posterior.spec
    atoms = vote_atoms(votes, AtomKeys.for_specs([spec]))
    check_comparable({spec.name: spec}, outcome_totals(atoms), decisive_only=decisive_only)
    atoms = _atoms_for(atoms, decisive_only)
    d = Draws.from_posterior(posterior, draws)
    elpd, p_loo, k = _spec_pointwise(d, atoms, decisive_only=decisive_only)
    return _summarise(spec.name, d, atoms, elpd, p_loo, k, decisive_only)


def log_likelihood(posterior: Posterior, votes: Votes | pd.DataFrame | str | Path, *,
                   draws: int = DEFAULT_DRAWS, decisive_only: bool = False
                   ) -> tuple[xr.DataArray, pd.DataFrame]:
    """The pointwise log-likelihood per atom, ``(chain, draw, atom)``, and the atom table
    (key columns and ``n`` votes). Expanding each atom ``n`` times gives the per-vote
    ``log_likelihood`` group ArviZ expects. With ``decisive_only`` the values are
    ``log P(winner | decisive)`` of the decisive votes."""
    votes = _as_votes(votes)
    spec = posterior.spec
    atoms = _atoms_for(vote_atoms(votes, AtomKeys.for_specs([spec])), decisive_only)
    d = Draws.from_posterior(posterior, draws)
    lp = atom_log_probs(d, atom_arrays(atoms, d))
    _, pred = _pick(lp, atoms["outcome"].to_numpy(np.int64), decisive_only)
    values = pred.reshape(d.chains, d.per_chain, -1)
    da = xr.DataArray(values, dims=("chain", "draw", "atom"),
                      coords={"chain": np.arange(d.chains), "draw": np.arange(d.per_chain),
                              "atom": np.arange(len(atoms))}, name="votes")
    return da, atoms


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Specs compared by PSIS-LOO on the same votes.

    ``table``: one row per spec, best first: ``elpd_loo``, ``se``, ``elpd_diff`` (vs the best,
    <= 0), ``se_diff`` (paired over votes), ``p_loo``, ``votes_k_high`` (votes with Pareto
    k > 0.7), ``votes_k_bad`` (k > ``good_k``), ``weight`` (stacking weights, Yao et al. 2018).
    """

    table: pd.DataFrame
    results: dict[str, LooResult]
    n_votes: int
    decisive_only: bool

    @property
    def best(self) -> str:
        return str(self.table.index[0])

    def sentences(self) -> list[str]:
        """"A is better than B by X ± SE elpd (Z SE)" for the best spec against each other."""
        out = []
        for name, row in self.table.iloc[1:].iterrows():
            diff, se = -float(row["elpd_diff"]), float(row["se_diff"])
            z = diff / se if se > 0 else math.inf
            out.append(f"{self.best} is better than {name} by {diff:.1f} ± {se:.1f} elpd "
                       f"({z:.1f} SE)")
        return out

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for name, row in self.table.iterrows():
            rows.append({"spec": str(name), **{c: _py(v) for c, v in row.items()},
                         "n_draws": self.results[str(name)].n_draws,
                         "good_k": self.results[str(name)].good_k,
                         "max_k": self.results[str(name)].max_k})
        return {"n_votes": self.n_votes, "decisive_only": self.decisive_only,
                "best": self.best, "specs": rows, "summary": self.sentences()}

    def __str__(self) -> str:
        return self.table.to_string() + "\n" + "\n".join(self.sentences())


def _py(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def compare_posteriors(posteriors: Mapping[str, Posterior] | Sequence[Posterior],
                       votes: Votes | pd.DataFrame | str | Path, *,
                       draws: int = DEFAULT_DRAWS, decisive_only: bool = False) -> Comparison:
    """Compare fitted posteriors by PSIS-LOO on the votes they were fitted to, paired vote by
    vote (names: the mapping's keys, or each posterior's spec name)."""
    if not isinstance(posteriors, Mapping):
        posteriors = list(posteriors)
        names = [p.spec.name for p in posteriors]
        if len(set(names)) != len(names):
            raise InputError(f"two posteriors share a spec name ({_names(names)}): pass a "
                             "mapping {name: posterior}")
        posteriors = dict(zip(names, posteriors, strict=True))
    if len(posteriors) < 2:
        raise InputError("compare needs at least two posteriors")
    votes = _as_votes(votes)
    _check_same_votes(posteriors, votes)
    specs = {name: p.spec for name, p in posteriors.items()}
    has_position = "position" in votes.optional_columns
    atoms = vote_atoms(votes, AtomKeys.for_specs(specs.values(),
                                                 has_position_column=has_position))
    check_comparable(specs, outcome_totals(atoms), decisive_only=decisive_only)
    atoms = _atoms_for(atoms, decisive_only)
    w = atoms["n"].to_numpy(np.float64)
    results, elpds = {}, {}
    for name, post in posteriors.items():
        d = Draws.from_posterior(post, draws)
        elpd, p_loo, k = _spec_pointwise(d, atoms, decisive_only=decisive_only)
        results[name] = _summarise(name, d, atoms, elpd, p_loo, k, decisive_only)
        elpds[name] = elpd
    order = sorted(results, key=lambda n: -results[n].elpd)
    best = order[0]
    weights = stacking_weights(np.column_stack([elpds[n] for n in order]), w)
    rows = []
    for name, weight in zip(order, weights, strict=True):
        r = results[name]
        diff = elpds[name] - elpds[best]
        rows.append({"elpd_loo": r.elpd, "se": r.se, "elpd_diff": float(w @ diff),
                     "se_diff": weighted_se(diff, w, ddof=0) if name != best else 0.0,
                     "p_loo": r.p_loo, "votes_k_high": r.votes_k_high,
                     "votes_k_bad": r.votes_k_bad, "weight": float(weight)})
    table = pd.DataFrame(rows, index=pd.Index(order, name="spec"))
    return Comparison(table=table, results=results, n_votes=int(w.sum()),
                      decisive_only=decisive_only)


def stacking_weights(elpd: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Stacking weights (Yao, Vehtari, Simpson & Gelman 2018) from pointwise elpd ``(A, K)``
    with vote weights ``(A,)``: maximise ``sum_a w_a log sum_k c_k exp(elpd_ak)`` over the
    simplex."""
    from scipy.optimize import Bounds, LinearConstraint, minimize

    n_models = elpd.shape[1]
    if n_models == 1:
        return np.ones(1)
    dens = np.exp(elpd - elpd.max(axis=1, keepdims=True))  # a per-atom factor: same argmax

    # a sum over votes, not a mean: SLSQP's default tolerance then resolves the weights
    def objective(c: np.ndarray) -> float:
        return -float(weights @ np.log(np.maximum(dens @ c, 1e-300)))

    def gradient(c: np.ndarray) -> np.ndarray:
        return -(weights / np.maximum(dens @ c, 1e-300)) @ dens

    start = np.full(n_models, 1.0 / n_models)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(objective, start, jac=gradient, method="SLSQP",
                       bounds=Bounds(np.zeros(n_models), np.ones(n_models)),
                       constraints=LinearConstraint(np.ones((1, n_models)), 1.0, 1.0))
    c = np.clip(res.x, 0.0, None)
    return c / c.sum()


def compare(data: Votes | pd.DataFrame | str | Path, specs: Sequence[str | Path | ModelSpec],
            *, draws: int = DEFAULT_DRAWS, decisive_only: bool = False, seed: int = 0,
            method: str = "nuts", progress: bool = False, warn: bool = True,
            **fit_options: Any) -> Comparison:
    """Fit each spec to the votes with :func:`bayesarena.fit` and compare them by PSIS-LOO.

    ``fit_options`` go to :func:`~bayesarena.fit.fit` (``chains``, ``warmup``,
    ``chain_method``, ``target_accept``, ``laplace_draws``; ``sampler_draws`` is the
    sampler's ``draws``); ``draws`` caps the posterior draws used for LOO. Outcome sets are
    checked before anything is fitted.
    """
    from bayesarena.fit import fit

    loaded = [load_spec(s) for s in specs]
    names = [s.name for s in loaded]
    if len(loaded) < 2:
        raise InputError("compare needs at least two specs")
    if len(set(names)) != len(names):
        raise InputError(f"spec names must differ, got {_names(names)}")
    votes = _as_votes(data)
    atoms = vote_atoms(votes, AtomKeys())  # pairs and outcomes only: cheap, before fitting
    check_comparable(dict(zip(names, loaded, strict=True)), outcome_totals(atoms),
                     decisive_only=decisive_only)
    if "sampler_draws" in fit_options:
        fit_options["draws"] = fit_options.pop("sampler_draws")
    posteriors = {s.name: fit(votes, s, method=method, seed=seed, progress=progress, warn=warn,
                              **fit_options) for s in loaded}  # type: ignore[arg-type]
    return compare_posteriors(posteriors, votes, draws=draws, decisive_only=decisive_only)


def _as_votes(data: Votes | pd.DataFrame | str | Path) -> Votes:
    if isinstance(data, Votes):
        return data
    from bayesarena.io import read_votes

    if isinstance(data, pd.DataFrame | str | Path):
        return read_votes(data)
    raise InputError(f"expected votes (a Votes, a DataFrame or a path), got "
                     f"{type(data).__name__}: LOO scores individual votes, not cells")


def _check_same_votes(posteriors: Mapping[str, Posterior], votes: Votes) -> None:
    for name, post in posteriors.items():
        fitted = post.data_summary.votes_used
        if fitted != votes.summary.votes_used:
            raise InputError(
                f"posterior {name!r} was fitted to {fitted:,} votes but "
                f"{votes.summary.votes_used:,} votes were given: LOO and predictive checks "
                "need the votes the posterior was fitted to")
