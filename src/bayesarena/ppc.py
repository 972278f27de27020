"""Posterior predictive checks: replicate the votes from the posterior and compare.

For each posterior draw ``s`` the votes are replicated unit by unit, ``y_rep ~
Multinomial(n_u, p_s(u))``, where a *unit* is a group of votes with the same predictive
distribution and ``p_s(u)`` the spec's outcome probabilities at draw ``s``. Summary statistics
``T`` of the observed and replicated votes are compared: the posterior predictive mean, the
central ``prob`` interval of ``T(y_rep)`` and the two-sided posterior predictive p-value
``2 min(P(T_rep > T_obs), P(T_rep < T_obs))`` (ties between ``T_rep`` and ``T_obs`` count half:
a mid-p value, since counts are discrete). A p-value near 0 says the model cannot reproduce
that feature of the data (Gelman, Meng & Stern 1996; Gelman et al., BDA3 ch. 6).

Units
-----
* **With the votes** (``votes=`` / ``--data``), units are the distinct votes of
  :func:`bayesarena.loo.vote_atoms`: (pair, tag set, side shown first, and for hierarchical specs
  voter parameter and style vector). Every vote gets its own predictive distribution, exactly
  as in the likelihood (for the arena model: category deviations, position, style offset,
  voter discrimination).
* **Without the votes**, units are the posterior's fitted cells (``observed_data``). For
  non-hierarchical specs that is exact (every vote in a cell has the same distribution). For
  hierarchical specs the cells know the pair, tag set and position, but not the voters or the
  answers' style of their votes, so the direction of a decisive vote is replicated at zero
  style offset and with the crowd's discrimination kappa = 1; the decisive / tie / both-bad split is
  exact. The result's ``notes`` say so; pass the votes for the exact check.

Outcomes a spec does not predict are not replicated: under plain ``bt`` (ties dropped) only
decisive votes are replicated and the tie and both-bad rates are reported as not modelled;
``bt-ties-half`` scores ties as half wins (no tie probability), so likewise; with
``both_bad = "as_tie"`` both-bad votes count as ties.

Statistics
----------
* overall: tie rate (share of the modelled votes), both-bad rate, and with the votes the share of
  decisive votes won by the answer shown first (a position effect the model lacks shows here);
* per pair (the ``pairs`` pairs with the most votes): the share of decisive votes won by
  ``model_i``;
* per category tag and model: the share of the model's decisive votes in that tag that it won
  (a category effect the model lacks shows here).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bayesarena.errors import BayesArenaError
from bayesarena.loo import (
    AtomArrays,
    AtomKeys,
    Draws,
    atom_arrays,
    atom_log_probs,
    predicted_mask,
    tagset_arrays,
    vote_atoms,
)
from bayesarena.posterior import Posterior
from bayesarena.votes import Votes

#: Default cap on the posterior draws replicated.
DEFAULT_DRAWS = 500
#: Two-sided p-values below this are flagged.
FLAG_P = 0.01
#: Elements of one (draws x units) block of replicated counts.
_BLOCK = 250_000
#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000")
_TAG_SEP = "\x1f"
_NO_VOTER = "\x00(no voter)"  # never a voter id: io reads ids as text without NULs


@dataclass(frozen=True)
class PPCResult:
    """Posterior predictive checks of one posterior (see the module docstring).

    Each table has ``observed``, ``mean`` (posterior predictive mean), ``lower`` / ``upper``
    (central ``prob`` interval), ``p_value`` (two-sided mid-p) and ``flag`` (``p_value <
    0.01``); rows the spec cannot replicate have NaN predictions and a ``note``.
    """

    spec: str
    units: str  # "votes" or "cells"
    n_draws: int
    prob: float
    overall: pd.DataFrame
    pairs: pd.DataFrame
    categories: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> pd.DataFrame:
        """Every flagged statistic, one row each (``table``, ``statistic``, ``p_value``)."""
        rows = []
        for name, table in (("overall", self.overall), ("pairs", self.pairs),
                            ("categories", self.categories)):
            for _, r in table[table["flag"]].iterrows():
                rows.append({"table": name, "statistic": _label(name, r),
                             "observed": r["observed"], "mean": r["mean"],
                             "p_value": r["p_value"]})
        return pd.DataFrame(rows, columns=["table", "statistic", "observed", "mean", "p_value"])

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict]:
            return json.loads(df.to_json(orient="records"))

        return {"spec": self.spec, "units": self.units, "n_draws": self.n_draws,
                "prob": self.prob, "notes": list(self.notes),
                "overall": records(self.overall), "pairs": records(self.pairs),
                "categories": records(self.categories)}

    def figure(self, path: str | Path | None = None, *, categories: int = 24):
        """Three panels: overall rates, per-pair win rates and per-category win rates, each
        observed against the posterior predictive mean and interval. Written to ``path``
        (any matplotlib format) when given; returns the figure."""
        return plot_ppc(self, path, categories=categories)


def _label(table: str, row: pd.Series) -> str:
    if table == "overall":
        return str(row["statistic"])
    if table == "pairs":
        return f"{row['model_i']} beats {row['model_j']}"
    return f"{row['model']} wins in {row['category']}"


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Units:
    frame: pd.DataFrame  # model_i, model_j (names), tag list, first (+1/-1/0)
    counts: np.ndarray  # (U, 4) raw observed counts
    arrays: AtomArrays


def _units_from_votes(posterior: Posterior, votes: Votes, draws: Draws) -> _Units:
    spec = posterior.spec
    has_category = "category" in votes.optional_columns
    has_position = "position" in votes.optional_columns
    keys = AtomKeys.for_specs([spec], first_shown=True, has_position_column=has_position)
    if has_category and not keys.tags:
        keys = AtomKeys(tags=True, sign=keys.sign, shown=keys.shown, voter=keys.voter,
                        style=keys.style)
    atoms = vote_atoms(votes, keys)
    key_cols = [c for c in atoms.columns if c not in ("outcome", "n")]
    keyed = atoms[key_cols].copy()
    if "voter" in keyed:  # a missing voter id is a key value of its own (the pooled group)
        keyed["voter"] = keyed["voter"].fillna(_NO_VOTER)
    codes, _ = pd.MultiIndex.from_frame(keyed).factorize()
    first_rows = np.unique(codes, return_index=True)[1]
    counts = np.zeros((len(first_rows), 4), dtype=np.int64)
    np.add.at(counts, (codes, atoms["outcome"].to_numpy(np.int64)),
              atoms["n"].to_numpy(np.int64))
    frame = keyed.iloc[first_rows].reset_index(drop=True)
    arrays = atom_arrays(frame, draws)
    if "tags" in frame:
        frame["tag_list"] = [tuple(t for t in str(k).split(_TAG_SEP) if t) for k in frame["tags"]]
    else:
        frame["tag_list"] = [()] * len(frame)
    if "shown" in frame:
        frame["first"] = frame["shown"].astype(int)
    elif "sign" in frame:
        frame["first"] = frame["sign"].astype(int)
    else:
        frame["first"] = 0
    return _Units(frame, counts, arrays)


def _units_from_cells(posterior: Posterior, draws: Draws) -> _Units:
    spec = posterior.spec
    const = posterior.tree["constant_data"]
    counts = np.asarray(posterior.tree["observed_data"]["counts"].values, dtype=np.int64)
    labels = [str(t) for t in const["tagset"].values]
    tags = set(draws.categories) if spec.categories.enabled else set()
    tag_lists = [_split_label(label, tags) for label in labels]
    frame = pd.DataFrame({"model_i": [str(m) for m in const["model_i"].values],
                          "model_j": [str(m) for m in const["model_j"].values],
                          "tag_list": tag_lists})
    frame["first"] = (const["position"].values.astype(int) if "position" in const.data_vars
                      else 0)
    index = {m: k for k, m in enumerate(draws.models)}
    mi = frame["model_i"].map(index).to_numpy(np.int64)
    mj = frame["model_j"].map(index).to_numpy(np.int64)
    n = len(frame)
    tagset = np.zeros(n, dtype=np.int64)
    tagsets = np.zeros((1, max(len(draws.categories), 1)))
    if spec.categories.enabled:
        tagset, tagsets = tagset_arrays(pd.Series([_TAG_SEP.join(t) for t in tag_lists]),
                                        draws.categories, spec.name)
    position = frame["first"].to_numpy(np.float64) if spec.position.enabled else np.zeros(n)
    voter = np.full(n, len(draws.voters), dtype=np.int64)  # the crowd (kappa = 1)
    n_features = 0 if draws.style_coef is None else draws.style_coef.shape[1]
    arrays = AtomArrays(mi, mj, tagset, tagsets, position, voter, np.zeros((n, n_features)))
    if not spec.hierarchical:
        frame["first"] = 0  # the cells do not record who was shown first
    return _Units(frame, counts, arrays)


def _split_label(label: str, tags: set[str]) -> tuple[str, ...]:
    """Tags of a cell's tag-set label (``coding+math``; ``(untagged)``; ``all``)."""
    from bayesarena.arena_data import NO_TAGS

    if label in (NO_TAGS, "all", ""):
        return ()
    if label in tags or not tags:
        return (label,)
    parts = tuple(label.split("+"))
    return parts if all(p in tags for p in parts) else (label,)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


@dataclass
class _Stats:
    """Linear maps from unit counts to the numerators and denominators of every statistic."""

    names: list[dict]  # one description per statistic
    num: sp.csr_matrix  # (U * 4, K)
    den: sp.csr_matrix  # (U * 4, K)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """``counts`` (..., U, 4) -> statistics (..., K) (NaN where the denominator is 0)."""
        flat = counts.reshape(*counts.shape[:-2], -1).astype(np.float64)
        lead = flat.shape[:-1]
        flat2 = flat.reshape(-1, flat.shape[-1])
        num = np.asarray((self.num.T @ flat2.T).T)
        den = np.asarray((self.den.T @ flat2.T).T)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        return out.reshape(*lead, -1)


def _build_stats(units: _Units, modelled: np.ndarray, pairs: int, first: bool) -> _Stats:
    """Statistics over the units: overall rates, top pairs, (tag, model) win rates."""
    frame = units.frame
    n_units = len(frame)
    rows_num: list[np.ndarray] = []
    rows_den: list[np.ndarray] = []
    names: list[dict] = []

    def col(unit_weights: np.ndarray, outcomes: list[int]) -> np.ndarray:
        m = np.zeros((n_units, 4))
        m[:, outcomes] = unit_weights[:, None]
        return m.reshape(-1)

    ones = np.ones(n_units)
    all_outcomes = [k for k in range(4) if modelled[k]]
    if modelled[2]:
        names.append({"kind": "overall", "statistic": "tie_rate"})
        rows_num.append(col(ones, [2]))
        rows_den.append(col(ones, all_outcomes))
    if modelled[3]:
        names.append({"kind": "overall", "statistic": "bothbad_rate"})
        rows_num.append(col(ones, [3]))
        rows_den.append(col(ones, all_outcomes))
    first_side = frame["first"].to_numpy()
    if first and np.any(first_side != 0):
        names.append({"kind": "overall", "statistic": "first_shown_win_rate"})
        m = np.zeros((n_units, 4))
        m[first_side == 1, 0] = 1.0
        m[first_side == -1, 1] = 1.0
        rows_num.append(m.reshape(-1))
        rows_den.append(col((first_side != 0).astype(float), [0, 1]))

    decisive = units.counts[:, :2].sum(axis=1)
    pair_key = frame["model_i"].astype(str) + "\x00" + frame["model_j"].astype(str)
    votes_per_pair = (pd.Series(units.counts.sum(axis=1), index=pair_key).groupby(level=0).sum()
                      .sort_values(ascending=False, kind="stable"))
    top = [p for p in votes_per_pair.index
           if decisive[pair_key.to_numpy() == p].sum() > 0][:pairs]
    for p in top:
        inside = (pair_key.to_numpy() == p).astype(float)
        model_i, model_j = p.split("\x00")
        names.append({"kind": "pair", "model_i": model_i, "model_j": model_j,
                      "votes": int(units.counts[inside > 0].sum())})
        rows_num.append(col(inside, [0]))
        rows_den.append(col(inside, [0, 1]))

    tag_lists = frame["tag_list"].tolist()
    tags = sorted({t for ts in tag_lists for t in ts})
    if tags:
        models = sorted(set(frame["model_i"]) | set(frame["model_j"]))
        mi, mj = frame["model_i"].to_numpy(), frame["model_j"].to_numpy()
        for tag in tags:
            has = np.array([tag in ts for ts in tag_lists], dtype=float)
            for model in models:
                as_i, as_j = has * (mi == model), has * (mj == model)
                n_dec = float(decisive @ (as_i + as_j))
                if n_dec == 0:
                    continue
                names.append({"kind": "category", "category": tag, "model": model,
                              "decisive": int(n_dec)})
                m = np.zeros((n_units, 4))
                m[:, 0], m[:, 1] = as_i, as_j
                rows_num.append(m.reshape(-1))
                rows_den.append(col(as_i + as_j, [0, 1]))
    if not names:
        return _Stats([], sp.csr_matrix((n_units * 4, 0)), sp.csr_matrix((n_units * 4, 0)))
    return _Stats(names, sp.csr_matrix(np.column_stack(rows_num)),
                  sp.csr_matrix(np.column_stack(rows_den)))


def _summaries(observed: np.ndarray, replicated: np.ndarray, prob: float) -> pd.DataFrame:
    """Mean, interval and two-sided mid-p value of each statistic (replicated: (S, K))."""
    tail = (1.0 - prob) / 2
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(replicated)
        n_valid = valid.sum(axis=0)
        safe = np.where(n_valid > 0, n_valid, 1)
        above = np.where(valid, replicated > observed, False).sum(axis=0)
        equal = np.where(valid, np.isclose(replicated, observed, rtol=0, atol=1e-12),
                         False).sum(axis=0)
        p_hi = (above + 0.5 * equal) / safe
        p_two = np.minimum(1.0, 2 * np.minimum(p_hi, 1 - p_hi))
        if np.any(n_valid > 0):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(replicated, axis=0)
                lower = np.nanquantile(replicated, tail, axis=0)
                upper = np.nanquantile(replicated, 1 - tail, axis=0)
        else:
            mean = lower = upper = np.full(observed.shape, np.nan)
    p_two = np.where((n_valid > 0) & ~np.isnan(observed), p_two, np.nan)
    return pd.DataFrame({"observed": observed, "mean": mean, "lower": lower, "upper": upper,
                         "p_value": p_two, "flag": p_two < FLAG_P})


# --------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------


def ppc(posterior: Posterior | str | Path, votes: Votes | pd.DataFrame | str | Path | None = None,
        *, draws: int = DEFAULT_DRAWS, pairs: int = 20, prob: float = 0.95, seed: int = 0
        ) -> PPCResult:
    """Posterior predictive checks of ``posterior`` (see the module docstring).

    ``votes``: the votes it was fitted to, for per-vote replication (exact for every spec, and
    the only way to check the position effect); without them the fitted cells are replicated.
    ``draws`` caps the posterior draws replicated, ``pairs`` the pairs reported (most votes
    first), ``prob`` the interval level.
    """
    if not isinstance(posterior, Posterior):
        posterior = Posterior.load(posterior)
    if not 0 < prob < 1:
        raise BayesArenaError(f"prob must be in (0, 1), got {prob}")
    if pairs < 0:
        raise BayesArenaError(f"pairs must be >= 0, got {pairs}")
    spec = posterior.spec
    d = Draws.from_posterior(posterior, draws)
    notes: list[str] = []
    raw_totals: np.ndarray | None = None
    if votes is not None:
        from bayesarena.loo import _as_votes, _check_same_votes

        votes = _as_votes(votes)
        _check_same_votes({spec.name: posterior}, votes)
        units = _units_from_votes(posterior, votes, d)
        raw_totals = units.counts.sum(axis=0)
        unit_kind = "votes"
    else:
        units = _units_from_cells(posterior, d)
        unit_kind = "cells"
        if spec.hierarchical and (spec.voters.enabled or spec.style.enabled):
            notes.append(
                "replicated per fitted cell without the votes: the winner of a decisive vote "
                "is drawn at zero style offset and with the crowd's discrimination kappa = 1 (the "
                "cells do not record voters or style); pass the votes (--data) for the exact "
                "per-vote check")
        if not spec.hierarchical:
            notes.append("replicated per fitted cell: the side shown first is not recorded, "
                         "so the position check needs the votes (--data)")

    mask = predicted_mask(spec)
    lik = spec.likelihood
    observed_counts = units.counts.astype(np.int64).copy()
    if lik.both_bad == "as_tie" and mask[2]:
        observed_counts[:, 2] += observed_counts[:, 3]
    observed_counts = observed_counts * mask.astype(np.int64)
    notes += _outcome_notes(posterior, raw_totals)

    stats = _build_stats(_Units(units.frame, observed_counts, units.arrays), mask, pairs,
                         first=unit_kind == "votes")
    observed = stats(observed_counts[None])[0]
    n_units = len(units.frame)
    n = observed_counts.sum(axis=1)
    rng = np.random.default_rng(seed)
    replicated = np.empty((d.n_draws, len(stats.names)))
    chunk = max(1, _BLOCK // max(n_units, 1))
    for start in range(0, d.n_draws, chunk):
        sl = slice(start, min(start + chunk, d.n_draws))
        probs = np.exp(atom_log_probs(d, units.arrays, sl)) * mask
        probs /= probs.sum(axis=-1, keepdims=True)
        rep = rng.multinomial(n, probs)
        replicated[sl] = stats(rep)
    summary = _summaries(observed, replicated, prob)
    described = pd.concat([pd.DataFrame(stats.names), summary], axis=1)
    overall = _overall_table(described, posterior, raw_totals, mask)
    pair_table = _kind(described, "pair", ["model_i", "model_j", "votes"])
    cat_table = _kind(described, "category", ["category", "model", "decisive"])
    if not cat_table.empty:
        cat_table = cat_table.sort_values(["p_value", "category", "model"],
                                          kind="stable").reset_index(drop=True)
    return PPCResult(spec=spec.name, units=unit_kind, n_draws=d.n_draws, prob=prob,
                     overall=overall, pairs=pair_table, categories=cat_table, notes=notes)


def _kind(described: pd.DataFrame, kind: str, keys: list[str]) -> pd.DataFrame:
    cols = [*keys, "observed", "mean", "lower", "upper", "p_value", "flag"]
    if described.empty or "kind" not in described or not (described["kind"] == kind).any():
        return pd.DataFrame({c: pd.Series(dtype=bool if c == "flag" else object
                                          if c in ("model_i", "model_j", "category", "model")
                                          else float) for c in cols})
    out = described[described["kind"] == kind][cols].reset_index(drop=True)
    for k in ("votes", "decisive"):
        if k in out:
            out[k] = out[k].astype(int)
    out["flag"] = out["flag"].astype(bool)
    return out


def _outcome_notes(posterior: Posterior, raw_totals: np.ndarray | None) -> list[str]:
    spec = posterior.spec
    lik = spec.likelihood
    name = spec.name
    if raw_totals is not None:
        ties, bothbad = int(raw_totals[2]), int(raw_totals[3])
    else:
        dropped = posterior.votes_not_modelled
        ties, bothbad = dropped.get("tie", 0), dropped.get("tie_bothbad", 0)
    notes = []
    if lik.ties == "drop" and (ties or bothbad):
        notes.append(f"ties were not modelled by spec {name!r}: {ties:,} tie and {bothbad:,} "
                     "both-bad votes were dropped before fitting, so only decisive votes are "
                     "replicated and the tie and both-bad rates are not checked")
    elif lik.ties == "half":
        notes.append(f"spec {name!r} scores ties as half a win each side (a pseudo-likelihood "
                     "with no tie probability): only decisive votes are replicated and the tie "
                     "and both-bad rates are not checked")
    elif lik.both_bad == "as_tie":
        notes.append(f"spec {name!r} counts both-bad votes as ties: the tie rate includes "
                     "them and the both-bad rate is not checked")
    elif lik.both_bad == "drop" and bothbad:
        notes.append(f"both-bad votes were not modelled by spec {name!r} ({bothbad:,} dropped "
                     "before fitting): the both-bad rate is not checked")
    return notes


def _overall_table(described: pd.DataFrame, posterior: Posterior,
                   raw_totals: np.ndarray | None, mask: np.ndarray) -> pd.DataFrame:
    cols = ["statistic", "observed", "mean", "lower", "upper", "p_value", "flag", "note"]
    rows = []
    if not described.empty:
        for _, r in described[described["kind"] == "overall"].iterrows():
            note = ""
            if r["statistic"] == "tie_rate" and posterior.spec.likelihood.both_bad == "as_tie":
                note = "both-bad counted as ties"
            rows.append({**{c: r[c] for c in cols[:-1]}, "note": note})
    # outcomes present in the data but not replicated: observed rate only
    if raw_totals is None:
        dropped = posterior.votes_not_modelled
        total = posterior.data_summary.votes_used
        raw = {"tie": dropped.get("tie"), "tie_bothbad": dropped.get("tie_bothbad")}
    else:
        total = int(raw_totals.sum())
        raw = {"tie": int(raw_totals[2]), "tie_bothbad": int(raw_totals[3])}
    lik = posterior.spec.likelihood
    for k, stat, outcome in ((2, "tie_rate", "tie"), (3, "bothbad_rate", "tie_bothbad")):
        if mask[k] or (k == 3 and lik.both_bad == "as_tie" and mask[2]):
            continue
        count = raw[outcome]
        observed = count / total if count is not None and total else np.nan
        rows.append({"statistic": stat, "observed": observed, "mean": np.nan, "lower": np.nan,
                     "upper": np.nan, "p_value": np.nan, "flag": False,
                     "note": "not modelled by this spec"})
    out = pd.DataFrame(rows, columns=cols)
    out["flag"] = out["flag"].astype(bool)
    order = {"tie_rate": 0, "bothbad_rate": 1, "first_shown_win_rate": 2}
    return out.sort_values("statistic", key=lambda s: s.map(order), kind="stable"
                           ).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Figure
# --------------------------------------------------------------------------------------------


def plot_ppc(result: PPCResult, path: str | Path | None = None, *, categories: int = 24):
    """The three-panel figure of :meth:`PPCResult.figure` (matplotlib, Agg when saving)."""
    import matplotlib

    if path is not None and matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    blue, orange, red = OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[3]
    with plt.rc_context({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
                         "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8}):
        fig, axes = plt.subplots(1, 3, figsize=(11.0, 3.8),
                                 gridspec_kw={"width_ratios": [0.8, 1.1, 1.1]})
        level = f"{100 * result.prob:g}%"

        ax = axes[0]
        ov = result.overall
        labels = {"tie_rate": "tie rate", "bothbad_rate": "both-bad rate",
                  "first_shown_win_rate": "shown-first\nwin rate"}
        ys = np.arange(len(ov))[::-1]
        for y, (_, r) in zip(ys, ov.iterrows(), strict=True):
            if np.isfinite(r["mean"]):
                err = [[r["mean"] - r["lower"]], [r["upper"] - r["mean"]]]
                ax.errorbar(r["mean"], y + 0.12, xerr=err, fmt="o", color=blue, ms=5, capsize=3,
                            lw=1.5,
                            label=f"predictive mean, {level}" if y == ys[0] else None)
            ax.plot(r["observed"], y - 0.12, marker="D", ls="none", ms=6,
                    color=red if r["flag"] else orange,
                    label="observed" if y == ys[0] else None)
            if not np.isfinite(r["mean"]):
                ax.annotate("not modelled", (r["observed"], y - 0.12), xytext=(4, 6),
                            textcoords="offset points", fontsize=7)
        ax.set_yticks(ys, [labels.get(s, s) for s in ov["statistic"]])
        ax.set_ylim(-0.8, max(len(ov) - 0.2, 0.8))
        ax.set_xlabel("share of votes")
        ax.set_title("(a) overall rates")
        ax.legend(loc="lower right", frameon=False)

        ax = axes[1]
        pr = result.pairs
        if not pr.empty:
            colours = [red if f else blue for f in pr["flag"]]
            ax.errorbar(pr["observed"], pr["mean"],
                        yerr=[pr["mean"] - pr["lower"], pr["upper"] - pr["mean"]], fmt="none",
                        ecolor="0.6", lw=1, capsize=2)
            ax.scatter(pr["observed"], pr["mean"], c=colours, s=18, zorder=3)
            if pr["flag"].any():
                ax.scatter([], [], c=red, s=18, label=f"p < {FLAG_P:g}")
                ax.legend(frameon=False, loc="upper left")
            lo = float(np.nanmin([pr["observed"].min(), pr["lower"].min()]))
            hi = float(np.nanmax([pr["observed"].max(), pr["upper"].max()]))
            ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")
        ax.set_xlabel("observed share of decisive votes won by model_i")
        ax.set_ylabel(f"predicted (mean, {level})")
        ax.set_title(f"(b) {len(pr)} pairs with the most votes")

        ax = axes[2]
        ct = result.categories
        if not ct.empty:
            shown = ct.head(categories)
            tags = sorted(shown["category"].unique())
            palette = {t: OKABE_ITO[k % (len(OKABE_ITO) - 1)] for k, t in enumerate(tags)}
            markers = "osD^v<>P"
            for k, tag in enumerate(tags):
                part = shown[shown["category"] == tag]
                ax.errorbar(part["observed"], part["mean"],
                            yerr=[part["mean"] - part["lower"], part["upper"] - part["mean"]],
                            fmt=markers[k % len(markers)], color=palette[tag], ms=4, lw=0.8,
                            capsize=1.5, label=tag)
                flagged = part[part["flag"]]
                ax.scatter(flagged["observed"], flagged["mean"], s=70, facecolors="none",
                           edgecolors=red, linewidths=1.2, zorder=4,
                           label=f"p < {FLAG_P:g}" if k == 0 and shown["flag"].any() else None)
            lo = float(np.nanmin([shown["observed"].min(), shown["lower"].min()]))
            hi = float(np.nanmax([shown["observed"].max(), shown["upper"].max()]))
            ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")
            ax.legend(frameon=False, loc="upper left", ncol=1 if len(tags) < 5 else 2)
            title = "(c) model win rate per category"
            if len(ct) > len(shown):
                title += f" ({len(shown)} smallest p)"
            ax.set_title(title)
        else:
            ax.text(0.5, 0.5, "no category tags", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title("(c) model win rate per category")
        ax.set_xlabel("observed share of decisive votes won")
        ax.set_ylabel(f"predicted (mean, {level})")
        fig.suptitle(f"Posterior predictive checks: spec {result.spec!r} "
                     f"({result.n_draws} draws, replicated per {result.units[:-1]})",
                     fontsize=10)
        fig.tight_layout()
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=200)
        return fig

