"""The :class:`Posterior`: an xarray DataTree with named dims plus the questions users ask of it.

Groups (ArviZ 1.x conventions):
- ``posterior``: ``theta (chain, draw, model)``, ``sigma``, and the tie/both-bad parameters;
- ``sample_stats`` (NUTS): ``diverging``, ``n_steps``, ``acceptance_rate``, ``energy``, ``lp``,
  ``step_size`` (the same for every chain when the warmup adaptation is pooled);
- ``observed_data``: the cells' ``counts (cell, outcome)``;
- ``constant_data``: each cell's ``model_i``, ``model_j``, ``tagset`` (names: the cell's
  category, or its tags joined by ``+``) and ``votes`` per model; for hierarchical specs also
  each cell's ``position`` sign, ``voter_votes`` and ``model_category_votes``.
Root attributes hold the spec (TOML text), the data summary (JSON), the fitting method, seed
and diagnostics, so a saved file is self-describing. Files are netCDF (``.nc``, via h5netcdf)
or zarr (``.zarr``); never pickle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesarena.arena_data import ArenaCells
from bayesarena.diagnostics import Diagnostics, compute_diagnostics
from bayesarena.errors import BayesArenaError, InputError
from bayesarena.leaderboard import leaderboard as build_leaderboard
from bayesarena.likelihood import OutcomeParams, outcome_probs
from bayesarena.ranking import prob_stronger
from bayesarena.scale import DEFAULT_BASE, to_elo
from bayesarena.spec import ModelSpec, parse_spec
from bayesarena.validation import check_models
from bayesarena.votes import CELL_OUTCOMES, Cells, ReadSummary

FORMAT_VERSION = 2


class Posterior:
    """Posterior draws of a fitted arena model, with names as coordinates."""

    def __init__(self, tree: xr.DataTree, *, diagnostics: Diagnostics | None = None):
        if "posterior" not in tree.children or "theta" not in tree["posterior"].data_vars:
            raise InputError("not a bayesarena posterior: no posterior/theta in the DataTree")
        self.tree = tree
        if diagnostics is not None:  # already computed by the fit: do not compute it twice
            self.__dict__["diagnostics"] = diagnostics

    # ---- identity -----------------------------------------------------------------------
    @property
    def models(self) -> tuple[str, ...]:
        return tuple(str(m) for m in self.tree["posterior"]["model"].values)

    @cached_property
    def spec(self) -> ModelSpec:
        import tomllib

        text = str(self.tree.attrs["spec"])
        return parse_spec(tomllib.loads(text), source=text, where="saved spec")

    @property
    def method(self) -> str:
        return str(self.tree.attrs.get("method", "nuts"))

    @property
    def data_summary(self) -> ReadSummary:
        return ReadSummary.from_dict(json.loads(str(self.tree.attrs["data_summary"])))

    @property
    def votes_not_modelled(self) -> dict[str, int]:
        """Votes read but not used by this spec's likelihood (e.g. ties under plain BT)."""
        return json.loads(str(self.tree.attrs.get("votes_not_modelled", "{}")))

    @cached_property
    def diagnostics(self) -> Diagnostics:
        return compute_diagnostics(self.tree)

    @property
    def votes_per_model(self) -> pd.Series:
        votes = self.tree["constant_data"]["votes"]
        return pd.Series(votes.values, index=self.models, name="votes")

    def __repr__(self) -> str:
        post = self.tree["posterior"]
        return (f"<Posterior spec={self.spec.name!r} method={self.method} "
                f"models={len(self.models)} chains={post.sizes['chain']} "
                f"draws={post.sizes['draw']}>")

    # ---- draws --------------------------------------------------------------------------
    def theta_draws(self) -> np.ndarray:
        """Strength draws with chains stacked, shape ``(n_chains * n_draws, n_models)``."""
        theta = self.tree["posterior"]["theta"].transpose("chain", "draw", "model").values
        return theta.reshape(-1, theta.shape[-1])

    def outcome_param_draws(self) -> OutcomeParams:
        """Tie and both-bad parameter draws (chains stacked), ``None`` where unused."""
        post = self.tree["posterior"]

        def get(name: str) -> np.ndarray | None:
            return post[name].values.reshape(-1) if name in post.data_vars else None

        return OutcomeParams(*(get(name) for name in OutcomeParams._fields))

    @property
    def categories(self) -> tuple[str, ...]:
        """Category tags with their own deviations (empty without a categories component)."""
        post = self.tree["posterior"]
        if "category_deviation" not in post.data_vars:
            return ()
        return tuple(str(c) for c in post["category"].values)

    def strength_draws(self, category: str | None = None) -> np.ndarray:
        """Strength draws (chains stacked), ``(n_draws, n_models)``: ``theta``, or for a
        category ``c`` the strength on a prompt tagged ``c`` alone, ``theta + delta[:, c]``."""
        theta = self.theta_draws()
        if category is None:
            return theta
        if category not in self.categories:
            from bayesarena.validation import check_categories

            if not self.categories:
                raise InputError(f"no category boards: spec {self.spec.name!r} has no "
                                 "categories component")
            check_categories([category], list(self.categories))
        delta = self.tree["posterior"]["category_deviation"].sel(category=category)
        return theta + delta.transpose("chain", "draw", "model").values.reshape(theta.shape)

    def category_votes(self, category: str) -> pd.Series:
        """Votes each model had in ``category`` (a multi-tag vote counts in each tag)."""
        votes = self.tree["constant_data"]["model_category_votes"].sel(category=category)
        return votes.to_series().rename("votes")

    def style_inclusive_draws(self) -> np.ndarray | None:
        """``theta_m + beta . xbar_m`` per draw, ``xbar_m`` the mean style of model ``m``'s
        answers against its opponents': the strength with the model's usual style advantage
        left in (what a fit without style control estimates), centred to mean zero. ``None``
        without a style component."""
        post, const = self.tree["posterior"], self.tree["constant_data"]
        if "style_coef" not in post.data_vars:
            return None
        beta = post["style_coef"].transpose("chain", "draw", "style_feature").values
        beta = beta.reshape(-1, beta.shape[-1])
        xbar = const["model_style"].transpose("model", "style_feature").values
        draws = self.theta_draws() + beta @ xbar.T
        return draws - draws.mean(axis=1, keepdims=True)

    def voter_reliability(self, *, prob: float = 0.95) -> pd.DataFrame:
        """Per heavy voter: votes, posterior mean and ``prob`` interval of the discrimination
        ``kappa_v`` (1: votes like the crowd of light voters; 0: a coin flip; negative: against
        the stronger model), ``p_negative = P(kappa_v < 0)`` and a flag: ``adversarial`` when
        ``P(kappa_v < 0) >= 0.95``, ``random`` when ``P(kappa_v < 0.5) >= 0.95`` (the votes
        carry less than half the crowd's signal), else ``""``. Least discerning first."""
        post = self.tree["posterior"]
        if "voter_discrimination_scale" not in post.data_vars:
            raise InputError(f"spec {self.spec.name!r} has no voters component")
        if "voter_discrimination" not in post.data_vars:  # every voter is light: none to rate
            return pd.DataFrame(columns=["voter", "votes", "kappa", "kappa_lower",
                                         "kappa_upper", "p_negative", "flag"])
        kappa = post["voter_discrimination"].transpose("chain", "draw", "voter").values
        kappa = kappa.reshape(-1, kappa.shape[-1])
        tail = (1.0 - prob) / 2
        p_negative = (kappa < 0).mean(axis=0)
        p_weak = (kappa < 0.5).mean(axis=0)
        flag = np.where(p_negative >= 0.95, "adversarial",
                        np.where(p_weak >= 0.95, "random", ""))
        table = pd.DataFrame({
            "voter": [str(v) for v in post["voter"].values],
            "votes": self.tree["constant_data"]["voter_votes"].values,
            "kappa": kappa.mean(axis=0),
            "kappa_lower": np.quantile(kappa, tail, axis=0),
            "kappa_upper": np.quantile(kappa, 1 - tail, axis=0),
            "p_negative": p_negative,
            "flag": flag,
        })
        return table.sort_values("kappa", kind="stable").reset_index(drop=True)

    def style_coefficients(self, *, prob: float = 0.95) -> pd.DataFrame:
        """Posterior mean, sd and ``prob`` interval of each style coefficient (logit change
        per standard deviation of the feature)."""
        post = self.tree["posterior"]
        if "style_coef" not in post.data_vars:
            raise InputError(f"spec {self.spec.name!r} has no style component")
        beta = post["style_coef"].transpose("chain", "draw", "style_feature").values
        beta = beta.reshape(-1, beta.shape[-1])
        tail = (1.0 - prob) / 2
        return pd.DataFrame({
            "mean": beta.mean(axis=0), "sd": beta.std(axis=0, ddof=1),
            "lower": np.quantile(beta, tail, axis=0), "upper": np.quantile(beta, 1 - tail, axis=0),
        }, index=pd.Index([str(f) for f in post["style_feature"].values], name="feature"))

    def ratings(self, *, base: float = DEFAULT_BASE, anchor: str | None = None) -> xr.DataArray:
        """Elo-scale rating draws ``(chain, draw, model)``; see :func:`bayesarena.scale.to_elo`."""
        theta = self.tree["posterior"]["theta"].transpose("chain", "draw", "model")
        values = to_elo(theta.values, self.models, base=base, anchor=anchor)
        return theta.copy(data=values).rename("rating")

    def cells(self) -> Cells:
        """The cells the model was fitted to (counts after the spec's dropped outcomes)."""
        const, obs = self.tree["constant_data"], self.tree["observed_data"]
        index = {m: k for k, m in enumerate(self.models)}
        tagset = const["tagset"].values
        cats = tuple(str(c) for c in np.unique(tagset))
        cat_index = {c: k for k, c in enumerate(cats)}
        return Cells(
            models=self.models,
            categories=cats,
            model_i=np.array([index[str(m)] for m in const["model_i"].values], dtype=np.int32),
            model_j=np.array([index[str(m)] for m in const["model_j"].values], dtype=np.int32),
            category=np.array([cat_index[str(c)] for c in tagset], dtype=np.int32),
            counts=np.asarray(obs["counts"].values, dtype=np.int64),
            summary=self.data_summary,
        )

    # ---- questions ----------------------------------------------------------------------
    def outcome_probabilities(self, model_a: str, model_b: str) -> pd.Series:
        """Posterior mean probability of each outcome of one vote between ``model_a`` and
        ``model_b`` (``win_a, win_b, tie, tie_bothbad``) under the fitted likelihood."""
        check_models([model_a, model_b], self.models)
        if model_a == model_b:
            raise InputError(f"a model cannot be compared with itself: {model_a!r}")
        theta = self.theta_draws()
        a, b = self.models.index(model_a), self.models.index(model_b)
        probs = self.outcome_probs_from_draws(theta[:, a], theta[:, b])
        return pd.Series(probs.mean(axis=0), index=["win_a", "win_b", "tie", "tie_bothbad"],
                         name=f"{model_a} vs {model_b}")

    def win_probability(self, model_a: str, model_b: str) -> float:
        """Posterior mean probability that ``model_a`` wins one vote against ``model_b``."""
        return float(self.outcome_probabilities(model_a, model_b)["win_a"])

    def win_matrix(self) -> xr.DataArray:
        """``P[i, j]``: posterior mean probability that model i wins a vote against model j
        (a tie is not a win; the diagonal is NaN)."""
        theta = self.theta_draws()
        n = theta.shape[1]
        out = np.full((n, n), np.nan)
        for i in range(n):
            p = self.outcome_probs_from_draws(theta[:, [i]], theta)[..., 0].mean(axis=0)
            out[i] = p
        np.fill_diagonal(out, np.nan)
        return xr.DataArray(out, dims=("model", "opponent"),
                            coords={"model": list(self.models), "opponent": list(self.models)},
                            name="p_win")

    def prob_stronger_matrix(self) -> xr.DataArray:
        """``P[i, j] = P(theta_i > theta_j | data)`` from joint draws (diagonal NaN)."""
        return xr.DataArray(prob_stronger(self.theta_draws()), dims=("model", "opponent"),
                            coords={"model": list(self.models), "opponent": list(self.models)},
                            name="p_stronger")

    def leaderboard(self, **kwargs) -> pd.DataFrame:
        """The leaderboard table; see :func:`bayesarena.leaderboard.leaderboard`."""
        return build_leaderboard(self, **kwargs)

    def outcome_probs_from_draws(
        self, theta_i: np.ndarray, theta_j: np.ndarray, params: OutcomeParams | None = None
    ) -> np.ndarray:
        """Outcome probabilities ``(..., 4)`` per draw for strength draws ``theta_i, theta_j``
        (draws on axis 0), with the fitted tie/both-bad parameters of the same draws (or the
        ``params`` given, e.g. a subset of draws)."""
        params = self.outcome_param_draws() if params is None else params
        shape = np.broadcast_shapes(theta_i.shape, theta_j.shape)
        expand = (slice(None),) + (None,) * (len(shape) - 1)
        params = OutcomeParams(*(None if p is None else p[expand] for p in params))
        lik = self.spec.likelihood
        return np.asarray(outcome_probs(theta_i - theta_j, 0.5 * (theta_i + theta_j),
                                        ties=lik.ties, both_bad=lik.both_bad, params=params,
                                        link=lik.link))

    # ---- storage ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write to netCDF (``.nc``) or zarr (``.zarr``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".nc":
            self.tree.to_netcdf(path, engine="h5netcdf")
        elif path.suffix == ".zarr":
            self.tree.to_zarr(path, mode="w", consolidated=False)  # zarr v3 has no consolidation
        else:
            raise InputError(f"unsupported posterior file {path}: use a .nc or .zarr suffix")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Posterior:
        """Read a posterior written by :meth:`save`."""
        path = Path(path)
        if not path.exists():
            raise BayesArenaError(f"no posterior file at {path}")
        if path.suffix == ".zarr":
            tree = xr.open_datatree(path, engine="zarr", consolidated=False).load()
        elif path.suffix == ".nc":
            with xr.open_datatree(path, engine="h5netcdf") as opened:
                tree = opened.load()
        else:
            raise InputError(f"unsupported posterior file {path}: use a .nc or .zarr suffix")
        if "spec" not in tree.attrs or "data_summary" not in tree.attrs:
            raise InputError(f"{path} is not a bayesarena posterior (missing spec/data summary)")
        return cls(tree)


#: Named dims of the sample sites beyond ``(chain, draw)``.
SITE_DIMS: dict[str, tuple[str, ...]] = {
    "theta": ("model",),
    "theta_z": ("model",),
    "category_deviation": ("model", "category"),
    "category_scale": ("category",),
    "style_coef": ("style_feature",),
    "voter_discrimination": ("voter",),
}
#: Sites that only re-parametrise a stored one (``category_deviation`` holds them): not kept.
INTERNAL_SITES = ("category_deviation_centred", "category_deviation_z",
                  "category_deviation_model_mean", "category_deviation_contrast",
                  "theta_category_mean", "voter_discrimination_centred", "voter_discrimination_z")


def build_tree(
    samples: dict[str, np.ndarray],
    *,
    cells: Cells,
    spec: ModelSpec,
    method: str,
    seed: int,
    sample_stats: dict[str, np.ndarray] | None = None,
    attrs: dict[str, str | int | float] | None = None,
    arena: ArenaCells | None = None,
) -> xr.DataTree:
    """Assemble the DataTree from ``(chain, draw, ...)`` arrays keyed by site name.

    With ``arena`` (hierarchical specs) the tree also names the category tags, voters and
    style features, and ``constant_data`` holds each cell's tag set and position and each
    voter's number of votes.
    """
    model_coord = {"model": list(cells.models)}
    posterior = {}
    for name, values in samples.items():
        if name in INTERNAL_SITES:
            continue
        extra = SITE_DIMS.get(name, tuple(f"{name}_dim_{k}" for k in range(values.ndim - 2)))
        posterior[name] = (("chain", "draw", *extra[:values.ndim - 2]), np.asarray(values))
    n_chain, n_draw = next(iter(samples.values())).shape[:2]
    coords = {"chain": np.arange(n_chain), "draw": np.arange(n_draw)}
    arena_coords: dict[str, list[str]] = {}
    arena_const: dict[str, tuple] = {}
    if arena is not None:
        arena_coords = {"category": list(arena.tags),
                        "voter": list(arena.voters),
                        "style_feature": list(arena.style_features)}
        arena_const = {
            "position": ("cell", arena.position.astype(np.int8)),
            "voter_votes": ("voter", arena.voter_votes[:-1]),
            "model_category_votes": (("model", "category"), arena.model_tag_votes()),
        }
        if spec.voters.enabled:
            attrs = {**(attrs or {}), "pooled_voter_votes": int(arena.voter_votes[-1])}
        if arena.style_features:
            arena_const["style_mean"] = ("style_feature", arena.style_mean)
            arena_const["style_sd"] = ("style_feature", arena.style_sd)
            arena_const["model_style"] = (("model", "style_feature"), arena.model_style)
        arena_coords = {k: v for k, v in arena_coords.items()
                        if any(k in dims for dims, _ in [*posterior.values(),
                                                         *arena_const.values()])}
    groups = {
        "posterior": xr.Dataset(posterior, coords={**coords, **model_coord, **arena_coords}),
        "observed_data": xr.Dataset(
            {"counts": (("cell", "outcome"), cells.counts)},
            coords={"cell": np.arange(cells.n_cells), "outcome": list(CELL_OUTCOMES)},
        ),
        "constant_data": xr.Dataset(
            {
                "model_i": ("cell", _names(cells.models, cells.model_i)),
                "model_j": ("cell", _names(cells.models, cells.model_j)),
                "tagset": ("cell", _names(cells.categories, cells.category)),
                "votes": ("model", cells.votes_per_model()),
                **arena_const,
            },
            coords={"cell": np.arange(cells.n_cells), **model_coord, **arena_coords},
        ),
    }
    if sample_stats:
        groups["sample_stats"] = xr.Dataset(
            {k: (("chain", "draw"), np.asarray(v)) for k, v in sample_stats.items()},
            coords=coords,
        )
    tree = xr.DataTree.from_dict(groups)
    from bayesarena import __version__

    tree.attrs.update({
        "format": "bayesarena-posterior",
        "format_version": FORMAT_VERSION,
        "bayesarena_version": __version__,
        "spec": spec.to_toml(),
        "spec_name": spec.name,
        "method": method,
        "seed": int(seed),
        "data_summary": cells.summary.to_json(),
        **(attrs or {}),
    })
    return tree


def _names(names: Sequence[str], index: np.ndarray) -> np.ndarray:
    return np.asarray(names, dtype=object)[index].astype(str)
