"""Declarative model specifications (``models/NAME.toml``): load, validate, and name bad keys.

A spec says which likelihood to use, how ties and both-bad votes are treated, the priors and
their hyper-parameters, and the sampler defaults. A methodology paper cites a spec file; a user
copies one and edits priors without touching Python.

Example (``models/bt-davidson.toml``)::

    name = "bt-davidson"
    description = "Bradley-Terry with Davidson ties and a modelled both-bad share"

    [likelihood]
    ties = "davidson"        # "drop" | "davidson" | "half"
    both_bad = "modelled"    # "drop" | "as_tie" | "modelled"

    [strength]
    parametrization = "auto"   # "auto" | "centered" | "noncentered"

    [priors]
    sigma = { family = "half_normal", scale = 1.0 }
    log_nu = { family = "normal", loc = -0.5, scale = 1.0 }
    bothbad_intercept = { family = "normal", loc = 0.0, scale = 1.5 }
    bothbad_slope = { family = "normal", loc = 0.0, scale = 1.0 }

    [sampler]
    chains = 4
    warmup = 500
    draws = 1000
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bayesarena.errors import SpecError

#: Prior families and their required hyper-parameters.
PRIOR_FAMILIES: Mapping[str, tuple[str, ...]] = {
    "normal": ("loc", "scale"),
    "half_normal": ("scale",),
    "half_cauchy": ("scale",),
    "exponential": ("rate",),
    "student_t": ("df", "loc", "scale"),
}

LINKS = ("logit", "probit")
TIE_MODES = ("drop", "davidson", "half", "rao_kupper")
BOTH_BAD_MODES = ("drop", "as_tie", "modelled")
PARAMETRIZATIONS = ("auto", "centered", "noncentered")
CHAIN_METHODS = ("auto", "sequential", "vectorized", "parallel")
INIT_STRATEGIES = ("laplace", "prior_median")
#: likelihood arithmetic during NUTS (bayesarena.precision)
PRECISIONS = ("double", "mixed")
#: MCMC transition kernels: NUTS, HMC with a jittered integration time
#: (:mod:`bayesarena.jittered_hmc`), the same split around a Gaussian
#: (:mod:`bayesarena.split_hmc`), or "auto" (:func:`bayesarena.fit.resolve_kernel`).
KERNELS = ("auto", "nuts", "jittered_hmc", "split_hmc")
METRICS = ("auto", "diagonal", "laplace")
CATEGORY_PARAMETRIZATIONS = ("auto", "centered", "noncentered")
POSITION_SOURCES = ("model_a", "column")

#: Which priors each likelihood choice needs, with the defaults used when a spec omits them.
DEFAULT_PRIORS: Mapping[str, Mapping[str, Any]] = {
    "sigma": {"family": "half_normal", "scale": 1.0},
    "log_nu": {"family": "normal", "loc": -0.5, "scale": 1.0},
    "bothbad_intercept": {"family": "normal", "loc": 0.0, "scale": 1.5},
    "bothbad_slope": {"family": "normal", "loc": 0.0, "scale": 1.0},
    # threshold t > 0 of Rao-Kupper / Glenn-David ties: P(tie | d = 0) = 1 - 2 F(-t)
    "tie_threshold": {"family": "half_normal", "scale": 1.0},
    # hierarchical components (models/arena.toml documents each)
    "category_scale": {"family": "half_normal", "scale": 0.5},
    "voter_discrimination_scale": {"family": "half_normal", "scale": 0.5},
    "style_coef": {"family": "normal", "loc": 0.0, "scale": 0.5},
    "position": {"family": "normal", "loc": 0.0, "scale": 0.5},
}


@dataclass(frozen=True)
class Prior:
    """A prior distribution: ``family`` and its hyper-parameters (all floats)."""

    family: str
    params: Mapping[str, float]

    def describe(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.family}({args})"


@dataclass(frozen=True)
class LikelihoodSpec:
    """How a vote's outcome depends on the strengths.

    ``link``: ``logit`` (Bradley-Terry) or ``probit`` (Thurstone-Mosteller). ``ties``: ``drop``
    (ties are dropped from the data and accounted in the summary), ``davidson`` (Davidson 1970;
    logit only), ``rao_kupper`` (a threshold ``t``: Rao & Kupper 1967 under the logit link,
    Glenn & David 1960 under the probit link), ``half`` (a tie counts as half a win for each
    side, LMArena's convention). ``both_bad``: ``drop``, ``as_tie`` (an
    ordinary tie), ``modelled`` (its share among ties depends on the pair's mean strength).
    """

    link: str = "logit"
    ties: str = "davidson"
    both_bad: str = "modelled"


@dataclass(frozen=True)
class StrengthSpec:
    """Strengths: sum-to-zero ``theta ~ ZeroSumNormal(sigma)``, centred or non-centred.

    ``auto``: decided from the curvature at the (non-centred) Laplace mode, centred when the
    votes pin the strengths more tightly than the prior does even at the low end of sigma's
    range (:func:`bayesarena.arena_model.centre_group`); centred without a Laplace
    step and for hierarchical specs (arenas with many votes per model).
    """

    parametrization: str = "auto"


@dataclass(frozen=True)
class CategorySpec:
    """Prompt categories with partial pooling: model ``m`` on a prompt tagged ``T`` has
    strength ``theta_m + sum_{c in T} delta_mc`` with ``delta_{.c} ~ ZeroSumNormal(tau_c)``.

    ``parametrization``: ``centered`` samples ``delta`` directly, ``noncentered`` samples
    ``z ~ N(0, 1)`` and sets ``delta = tau z``; ``auto`` decides per (model, category): centred
    where the votes pin the deviation more tightly than the prior does, i.e. where
    ``n_mc * 0.2 * tau_c^2 >= 1`` (``n_mc`` votes of model ``m`` in category ``c``, 0.2 about
    the Fisher information of one vote near an even gap, ``tau_c`` at the Laplace mode),
    non-centred elsewhere (Papaspiliopoulos, Roberts & Skold 2007).
    """

    enabled: bool = False
    parametrization: str = "auto"


@dataclass(frozen=True)
class VoterSpec:
    """Voter discrimination: a decisive vote by voter ``v`` goes to ``i`` with probability
    ``sigmoid(kappa_v (d + e))``, ``kappa_v ~ N(1, s_kappa)`` (1: like the crowd; near 0:
    random; negative: adversarial). Voters with fewer than ``min_votes`` votes (and votes
    without a voter id) share the crowd's reference ``kappa = 1``, so the parameter count is
    bounded by the number of heavy voters. Grouping is by vote count only, never by the
    outcomes being fitted."""

    enabled: bool = False
    min_votes: int = 20


@dataclass(frozen=True)
class StyleSpec:
    """Style control as LMArena does it: features ``(s_a - s_b) / (s_a + s_b + 1)`` for answer
    length and markdown header, list and bold counts from ``conv_metadata``, z-scored, with
    coefficients ``beta_f``; the style offset ``beta . x`` moves who wins a decisive vote."""

    enabled: bool = False


@dataclass(frozen=True)
class PositionSpec:
    """Position effect ``gamma``: the gap gains ``gamma`` for the answer shown first. ``source
    = "model_a"``: LMArena's convention (model_a is shown first); ``"column"``: a ``position``
    column names the side shown first (``"a"`` or ``"b"``)."""

    enabled: bool = False
    source: str = "model_a"


@dataclass(frozen=True)
class SamplerSpec:
    """MCMC defaults. ``kernel``: ``"nuts"``, ``"jittered_hmc"`` (HMC whose integration time
    ``trajectory_length * u``, ``u ~ U(1 - trajectory_jitter, 1 + trajectory_jitter)``, is drawn
    each iteration; :mod:`bayesarena.jittered_hmc`), ``"split_hmc"`` (the same with an
    integrator that solves a Gaussian around the posterior mean exactly and steps only the
    rest; :mod:`bayesarena.split_hmc`) or ``"auto"`` (split HMC for posteriors
    of thousands of parameters, NUTS below; :func:`bayesarena.fit.resolve_kernel`).
    ``init = "laplace"`` starts chains from draws of the Laplace approximation and seeds the
    mass matrix with its variances, which shortens warmup. ``pool_adaptation``: after warmup
    all chains sample with the chains' mean mass matrix and median step size
    (:mod:`bayesarena.adaptation`). ``precision = "mixed"``: the sampler evaluates per-vote
    likelihood terms in float32 and their sums in float64 (:mod:`bayesarena.precision`)."""

    chains: int = 4
    # warmup iterations, or "auto": bayesarena.fit.resolve_warmup (fewer where the metric is
    # the Laplace approximation's and only the step size is tuned)
    warmup: int | str = 500
    draws: int = 1000
    target_accept: float = 0.8
    # NUTS's cap on tree doublings (at most 2^depth - 1 leapfrog steps), or "auto":
    # bayesarena.fit.resolve_max_tree_depth (4 for posteriors of thousands of parameters)
    max_tree_depth: int | str = 10
    kernel: str = "nuts"
    # jittered (and split) HMC's integration time in the mass matrix's units, about a quarter
    # period of a round Gaussian (pi / 2: decorrelates x and x^2 alike; on the 7,361-d
    # standard normal of benchmarks/tree_depth.py, smallest ESS per 1,000 gradients 27.8 at
    # 1.6, 26.8 at 1.2 with half the bulk ESS of x and a larger max R-hat, 16.7 at 2.0), and
    # the half-width of its uniform jitter relative to it
    trajectory_length: float = 1.6
    trajectory_jitter: float = 0.5
    # jittered (and split) HMC's integration time during warmup's adaptation windows, as a share of
    # trajectory_length (the terminal buffer, which tunes the step size last, runs at full length)
    warmup_trajectory_scale: float = 1.0
    chain_method: str = "auto"  # parallel when there are enough devices, else sequential
    init: str = "laplace"
    dense_mass: bool = False
    # one dense mass-matrix block for the strengths and hyper-parameters (diagonal elsewhere)
    dense_globals: bool = False
    # true: after warmup, every chain samples with the chains' mean mass matrix and median step
    # size (bayesarena.adaptation); false: each chain keeps its own, as NumPyro does
    pool_adaptation: bool = False
    # "mixed": NUTS evaluates per-vote likelihood terms in float32 and sums them in float64
    # (bayesarena.precision; a full-size arena gradient with 4 chains in parallel 5.6 ms
    # against 9.9 ms in float64, benchmarks/results/arena_gradient.json); "double": float64
    # throughout. Laplace steps always run in float64.
    precision: str = "mixed"
    # "laplace": split HMC samples in the coordinates the exact (blocked) Laplace
    # approximation makes round (bayesarena.whitening; a dense mass matrix, the Laplace
    # precision); "diagonal": a diagonal mass matrix adapted in warmup; "auto": "laplace" for a
    # hierarchical spec sampled with split HMC, "diagonal" otherwise (bayesarena.fit.resolve_metric)
    metric: str = "diagonal"


@dataclass(frozen=True)
class ModelSpec:
    """A validated model specification."""

    name: str
    description: str = ""
    likelihood: LikelihoodSpec = field(default_factory=LikelihoodSpec)
    strength: StrengthSpec = field(default_factory=StrengthSpec)
    priors: Mapping[str, Prior] = field(default_factory=dict)
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    categories: CategorySpec = field(default_factory=CategorySpec)
    voters: VoterSpec = field(default_factory=VoterSpec)
    style: StyleSpec = field(default_factory=StyleSpec)
    position: PositionSpec = field(default_factory=PositionSpec)
    source: str = ""  # the TOML text it was read from ("" when built in Python)

    @property
    def hierarchical(self) -> bool:
        """Whether any component beyond the strengths is on (categories, voters, style,
        position): such specs are fitted by :func:`bayesarena.arena_model.arena_model`."""
        return any(getattr(self, name).enabled for name in COMPONENTS)

    @property
    def outcome_parameters(self) -> tuple[str, ...]:
        """The tie and both-bad parameters of the likelihood (fields of
        :class:`~bayesarena.likelihood.OutcomeParams`), in a fixed order."""
        names = []
        if self.likelihood.ties == "davidson":
            names.append("log_nu")
        if self.likelihood.ties == "rao_kupper":
            names.append("tie_threshold")
        if self.likelihood.both_bad == "modelled":
            names += ["bothbad_intercept", "bothbad_slope"]
        return tuple(names)

    @property
    def required_priors(self) -> tuple[str, ...]:
        """Names of the priors this likelihood uses."""
        names = ["sigma", *self.outcome_parameters]
        if self.categories.enabled:
            names.append("category_scale")
        if self.voters.enabled:
            names.append("voter_discrimination_scale")
        if self.style.enabled:
            names.append("style_coef")
        if self.position.enabled:
            names.append("position")
        return tuple(names)

    def with_sampler(self, **changes: Any) -> ModelSpec:
        """A copy with some sampler settings changed (``None`` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        sampler = replace(self.sampler, **changes)
        _validate_sampler(sampler, where="sampler")
        return replace(self, sampler=sampler)

    def to_toml(self) -> str:
        """The spec as TOML (its source text when it was read from a file)."""
        return self.source or _to_toml(self)


#: Spec sections of the hierarchical components.
COMPONENTS = ("categories", "voters", "style", "position")


def spec_dirs() -> list[Path]:
    """Directories searched for named specs: the installed package data, then the source
    checkout's top-level ``models/``."""
    dirs = []
    packaged = Path(__file__).resolve().parent / "models"  # wheel: force-included package data
    if packaged.is_dir():
        dirs.append(packaged)
    checkout = Path(__file__).resolve().parents[2] / "models"
    if checkout.is_dir():
        dirs.append(checkout)
    return dirs


def available_specs() -> list[str]:
    """Names of the shipped specs."""
    return sorted({p.stem for d in spec_dirs() for p in d.glob("*.toml")})


def load_spec(name_or_path: str | Path | ModelSpec) -> ModelSpec:
    """Load a spec by shipped name (``"bt-davidson"``) or path (``"models/bt.toml"``)."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    path = Path(name_or_path)
    if path.suffix != ".toml" or not path.exists():
        for d in spec_dirs():
            candidate = d / f"{path.stem if path.suffix == '.toml' else name_or_path}.toml"
            if candidate.exists():
                path = candidate
                break
        else:
            raise SpecError(
                f"no model spec {str(name_or_path)!r}: not a file, and not one of the shipped "
                f"specs {available_specs()}"
            )
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(raw, source=text, where=str(path))


def parse_spec(raw: Mapping[str, Any], *, source: str = "", where: str = "spec") -> ModelSpec:
    """Validate a spec given as a mapping (the parsed TOML) and build a :class:`ModelSpec`."""
    allowed = {"name", "description", "likelihood", "strength", "priors", "sampler",
               *COMPONENTS}
    _no_unknown_keys(raw, allowed, where)
    if "name" not in raw or not isinstance(raw["name"], str) or not raw["name"]:
        raise SpecError(f"{where}: key 'name' must be a non-empty string")
    likelihood = _section(raw, "likelihood", LikelihoodSpec, where)
    _check_choice(likelihood.link, LINKS, f"{where}: likelihood.link")
    _check_choice(likelihood.ties, TIE_MODES, f"{where}: likelihood.ties")
    _check_choice(likelihood.both_bad, BOTH_BAD_MODES, f"{where}: likelihood.both_bad")
    if likelihood.ties == "drop" and likelihood.both_bad != "drop":
        raise SpecError(
            f"{where}: likelihood.both_bad = {likelihood.both_bad!r} needs a tie model; with "
            "ties = 'drop' set both_bad = 'drop'"
        )
    if likelihood.ties == "half" and likelihood.both_bad == "modelled":
        raise SpecError(
            f"{where}: likelihood.both_bad = 'modelled' needs a tie model ('davidson' or "
            "'rao_kupper'; half-win ties have no tie probability to split); use both_bad = "
            "'as_tie' or 'drop'"
        )
    if likelihood.link == "probit" and likelihood.ties == "davidson":
        raise SpecError(
            f"{where}: ties = 'davidson' is defined for the logit link only; with link = "
            "'probit' use ties = 'rao_kupper' (Glenn-David thresholds), 'half' or 'drop'"
        )
    strength = _section(raw, "strength", StrengthSpec, where)
    _check_choice(strength.parametrization, PARAMETRIZATIONS, f"{where}: strength.parametrization")
    sampler = _section(raw, "sampler", SamplerSpec, where)
    _validate_sampler(sampler, where=f"{where}: sampler")
    categories = _section(raw, "categories", CategorySpec, where)
    _check_choice(categories.parametrization, CATEGORY_PARAMETRIZATIONS,
                  f"{where}: categories.parametrization")
    voters = _section(raw, "voters", VoterSpec, where)
    if voters.min_votes < 1:
        raise SpecError(f"{where}: voters.min_votes must be >= 1, got {voters.min_votes}")
    style = _section(raw, "style", StyleSpec, where)
    position = _section(raw, "position", PositionSpec, where)
    _check_choice(position.source, POSITION_SOURCES, f"{where}: position.source")
    components = {"categories": categories, "voters": voters, "style": style,
                  "position": position}
    enabled = [name for name, c in components.items() if c.enabled]
    if enabled and (likelihood.ties not in ("davidson", "drop") or likelihood.link != "logit"):
        raise SpecError(
            f"{where}: the hierarchical components {enabled} need link = 'logit' and ties = "
            f"'davidson' or 'drop' (the arena likelihood factorises Davidson's model); found "
            f"link = {likelihood.link!r}, ties = {likelihood.ties!r}"
        )

    spec = ModelSpec(
        name=raw["name"],
        description=str(raw.get("description", "")),
        likelihood=likelihood,
        strength=strength,
        sampler=sampler,
        source=source,
        **components,
    )
    raw_priors = raw.get("priors", {})
    if not isinstance(raw_priors, Mapping):
        raise SpecError(f"{where}: 'priors' must be a table")
    _no_unknown_keys(raw_priors, set(spec.required_priors), f"{where}: priors", hint=(
        "this likelihood uses only these priors"))
    priors = {
        name: _parse_prior(raw_priors.get(name, DEFAULT_PRIORS[name]), f"{where}: priors.{name}")
        for name in spec.required_priors
    }
    return replace(spec, priors=priors)


def _parse_prior(raw: Any, where: str) -> Prior:
    if not isinstance(raw, Mapping) or "family" not in raw:
        raise SpecError(f"{where}: expected a table with 'family' and its parameters, got {raw!r}")
    family = raw["family"]
    _check_choice(family, tuple(PRIOR_FAMILIES), f"{where}.family")
    needed = PRIOR_FAMILIES[family]
    _no_unknown_keys(raw, {"family", *needed}, where)
    params = {}
    for key in needed:
        if key not in raw:
            raise SpecError(f"{where}: family {family!r} needs key {key!r}")
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{where}.{key}: expected a number, got {value!r}")
        if key in ("scale", "rate", "df") and not value > 0:
            raise SpecError(f"{where}.{key}: must be > 0, got {value!r}")
        params[key] = float(value)
    return Prior(family=family, params=params)


def _section(raw: Mapping[str, Any], key: str, cls: type, where: str) -> Any:
    section = raw.get(key, {})
    if not isinstance(section, Mapping):
        raise SpecError(f"{where}: '{key}' must be a table")
    names = {f.name: f for f in fields(cls)}
    _no_unknown_keys(section, set(names), f"{where}: {key}")
    defaults = cls()
    for name, value in section.items():
        expected = type(getattr(defaults, name))
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if name in AUTO_SETTINGS and value == "auto":
            ok = True
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            also = ' or "auto"' if name in AUTO_SETTINGS else ""
            raise SpecError(
                f"{where}: {key}.{name} must be {expected.__name__}{also}, got {value!r}"
            )
    return cls(**{k: (float(v) if isinstance(getattr(defaults, k), float) else v)
                  for k, v in section.items()})


#: Settings that also take the value "auto".
AUTO_SETTINGS = ("max_tree_depth", "warmup")


def _validate_sampler(s: SamplerSpec, where: str) -> None:
    for name in ("chains", "warmup", "draws", "max_tree_depth"):
        value = getattr(s, name)
        if name in AUTO_SETTINGS and value == "auto":
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where}.{name} must be an integer, got {value!r}")
        if value < (0 if name == "warmup" else 1):
            raise SpecError(f"{where}.{name} must be positive, got {value}")
    if not 0 < s.target_accept < 1:
        raise SpecError(f"{where}.target_accept must be in (0, 1), got {s.target_accept}")
    if not s.trajectory_length > 0:
        raise SpecError(f"{where}.trajectory_length must be positive, got {s.trajectory_length}")
    if not 0 <= s.trajectory_jitter < 1:
        raise SpecError(f"{where}.trajectory_jitter must be in [0, 1), got "
                        f"{s.trajectory_jitter}")
    if not 0 < s.warmup_trajectory_scale <= 1:
        raise SpecError(f"{where}.warmup_trajectory_scale must be in (0, 1], got "
                        f"{s.warmup_trajectory_scale}")
    _check_choice(s.kernel, KERNELS, f"{where}.kernel")
    _check_choice(s.chain_method, CHAIN_METHODS, f"{where}.chain_method")
    _check_choice(s.init, INIT_STRATEGIES, f"{where}.init")
    _check_choice(s.precision, PRECISIONS, f"{where}.precision")
    _check_choice(s.metric, METRICS, f"{where}.metric")


def _check_choice(value: Any, choices: tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise SpecError(f"{where}: expected one of {list(choices)}, got {value!r}")


def _no_unknown_keys(raw: Mapping[str, Any], allowed: set[str], where: str, hint: str = "") -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        extra = f" ({hint})" if hint else ""
        raise SpecError(
            f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}{extra}"
        )


def _to_toml(spec: ModelSpec) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)

    lines = [f"name = {fmt(spec.name)}", f"description = {fmt(spec.description)}", ""]
    for section in ("likelihood", "strength", "sampler", *COMPONENTS):
        lines.append(f"[{section}]")
        obj = getattr(spec, section)
        lines += [f"{f.name} = {fmt(getattr(obj, f.name))}" for f in fields(obj)]
        lines.append("")
    lines.append("[priors]")
    for name, prior in spec.priors.items():
        body = ", ".join([f'family = "{prior.family}"'] + [f"{k} = {v!r}" for k, v in
                                                           prior.params.items()])
        lines.append(f"{name} = {{ {body} }}")
    return "\n".join(lines) + "\n"
