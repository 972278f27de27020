"""Laplace approximation: the posterior mode plus a Gaussian with the inverse Hessian.

Works in NumPyro's unconstrained space (``sigma`` on the log scale, ``theta`` through the
zero-sum transform), where the potential energy ``U(x) = -log p(x | data)`` includes the
Jacobian. We minimise ``U`` with scipy's L-BFGS on a jitted value-and-gradient, then take the
exact Hessian ``H = nabla^2 U(x*)`` with JAX and approximate ``p(x | data) ~ N(x*, H^{-1})``
(Laplace 1774; Tierney & Kadane 1986).

Above :data:`FULL_HESSIAN_MAX_DIM` parameters (the hierarchical arena model has thousands:
category deviations, voter logits) the dense Hessian costs one Hessian-vector product per
parameter, so only its diagonal is estimated, by Hutchinson's (1990) estimator
``diag(H) ~ mean_k v_k * (H v_k)`` with Rademacher probes ``v_k`` (Bekas, Kokiopoulou & Saad
2007), a site at a time (:func:`site_probes`). That Gaussian ignores correlations; it serves
to start NUTS chains near the mode and to seed the mass matrix, not as a posterior.

As a posterior (``fit(method="laplace")``) a large hierarchical model takes the exact Hessian
in blocks (``hessian="blocked"``, :class:`BlockedPrecision`): the voters' parameters
interact with no other voter's, so with the ``n_g`` global coordinates (strengths, category
deviations, hyper-parameters) first, ``H = [[A, B], [B^T, D]]`` with ``D`` diagonal. The
``n_g`` Hessian-vector products ``H e_k`` give ``A`` and ``B``, and one product with the
voters' indicator gives ``D`` (and one probe checks it is diagonal): ``n_g + 2`` products
instead of one per coordinate (1,661 instead of 7,350 at 150 models x 1M votes), and the
Gaussian is sampled exactly through the Schur complement ``S = A - B D^-1 B^T`` (the
precision of the globals' marginal) and the voters' conditional ``N(-D^-1 B^T x_g, D^-1)``,
never forming or factoring the full matrix. The arena model's fits take the same blocks by a
cheaper route (``blocked_hessian``: :mod:`bayesarena.arena_hessian` assembles them from each
cell's own second derivatives, 3.7 s instead of about 20 s for the products at full size).

Why not NumPyro's ``AutoLaplaceApproximation``: it finds the mode by stochastic optimisation
(SVI with Adam), which needs tuning of steps and learning rate and stops short of the mode on
well-identified arena posteriors; a deterministic quasi-Newton solve converges to
gradient-norm tolerance in tens of iterations here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.distributions.transforms import biject_to
from numpyro.handlers import seed, substitute, trace
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.util import constrain_fn, potential_energy
from scipy.linalg import solve_triangular
from scipy.optimize import minimize
from tqdm.auto import tqdm

FULL_HESSIAN_MAX_DIM = 2000
HUTCHINSON_PROBES = 32
#: Probes per site for the preconditioning diagonal at the start: it only scales the
#: coordinates L-BFGS moves in. The curvature returned at the mode takes HUTCHINSON_PROBES.
PRECONDITION_PROBES = 8
#: Hessian-vector products per call for a Hutchinson diagonal (one compiled shape for both
#: probe counts).
DIAGONAL_CHUNK = 32
#: Hessian-vector products per call when the Hessian is taken in blocks: chunks of one
#: compiled shape (the last padded with zeros), so that a progress bar can follow the
#: products (1,661 at 150 models x 1M votes, about 20 s by this route).
HVP_CHUNK = 128


class BlockedPrecision(NamedTuple):
    """A precision matrix ``H = [[A, B], [B^T, diag(d)]]`` over the global coordinates
    (``global_index`` in the flat order) and the local ones (``local_index``: elements that
    interact with no other local element), with the lower Cholesky factor of the Schur
    complement ``S = A - B diag(d)^-1 B^T``, the precision of the globals' marginal."""

    global_index: np.ndarray
    local_index: np.ndarray
    a: np.ndarray  # (n_g, n_g)
    b: np.ndarray  # (n_g, n_l)
    d: np.ndarray  # (n_l,)
    schur_chol: np.ndarray  # (n_g, n_g)
    regularised: bool = False  # S was not positive definite and was shifted

    @property
    def size(self) -> int:
        return self.global_index.size + self.local_index.size

    def diagonal(self) -> np.ndarray:
        """``diag(H)`` in the flat order."""
        out = np.empty(self.size)
        out[self.global_index] = np.diag(self.a)
        out[self.local_index] = self.d
        return out

    def schur_inverse_factor(self) -> np.ndarray:
        """``L_S^-1`` (lower triangular): ``S^-1 = L_S^-T L_S^-1``, the globals' marginal
        covariance; its transpose maps standard normals to draws of the globals."""
        return solve_triangular(self.schur_chol, np.eye(len(self.a)), lower=True)

    def marginal_variances(self) -> np.ndarray:
        """``diag(H^-1)``: ``diag(S^-1)`` for the globals and, with ``W = L_S^-1 B D^-1``,
        ``1 / d + sum_k W_k^2`` for the locals (``Cov_ll = D^-1 + D^-1 B^T S^-1 B D^-1``)."""
        inv_l = self.schur_inverse_factor()
        w = solve_triangular(self.schur_chol, self.b / self.d, lower=True)
        out = np.empty(self.size)
        out[self.global_index] = np.sum(inv_l**2, axis=0)
        out[self.local_index] = 1.0 / self.d + np.sum(w**2, axis=0)
        return out

    def offsets(self, eps: np.ndarray) -> np.ndarray:
        """Map standard normal rows ``eps`` (``(n, dim)``) to draws of ``N(0, H^-1)``:
        ``x_g = L_S^-T eps_g`` (precision ``S``), ``x_l = -D^-1 B^T x_g + D^-1/2 eps_l``."""
        # in place: at 4,000 draws of 7,350 coordinates every temporary is 235 MB, and the
        # expression form took 2.5-3.6 s against 1.4 s (the same numbers to the bit)
        x = np.empty_like(eps)
        x_g = solve_triangular(self.schur_chol.T, eps[:, self.global_index].T, lower=False,
                               overwrite_b=True).T
        x[:, self.global_index] = x_g
        x_l = eps[:, self.local_index]
        x_l *= np.sqrt(self.d)
        x_l -= x_g @ self.b
        x_l /= self.d
        x[:, self.local_index] = x_l
        return x


def blocked_precision(a: np.ndarray, b: np.ndarray, d: np.ndarray, global_index: np.ndarray,
                      local_index: np.ndarray) -> BlockedPrecision:
    """Assemble :class:`BlockedPrecision`, factoring ``S = A - B diag(d)^-1 B^T`` (shifted to
    positive definite, and marked ``regularised``, when it is not)."""
    if np.any(d <= 0):
        raise ValueError(f"{int(np.sum(d <= 0))} local curvatures are not positive: the point "
                         "is not a mode in those coordinates")
    a = 0.5 * (a + a.T)
    s = a - (b / d) @ b.T
    s = 0.5 * (s + s.T)
    regularised = False
    try:
        chol = np.linalg.cholesky(s)
    except np.linalg.LinAlgError:
        chol, regularised = _regularised_cholesky(s), True
    return BlockedPrecision(np.asarray(global_index), np.asarray(local_index), a, b,
                            np.asarray(d, dtype=float), chol, regularised)


def _regularised_cholesky(h: np.ndarray) -> np.ndarray:
    """Cholesky factor of ``h`` shifted just enough to be positive definite."""
    jitter = 1e-6 * max(1.0, float(np.max(np.abs(np.diag(h)))))
    evals = np.linalg.eigvalsh(h)
    return np.linalg.cholesky(h + (jitter - min(0.0, float(evals.min()))) * np.eye(len(h)))


class LaplaceResult(NamedTuple):
    """Mode and curvature of the log posterior in unconstrained space."""

    mode: np.ndarray  # flat unconstrained mode x*
    precision_chol: np.ndarray | None  # lower Cholesky factor L of H = L L^T (full Hessian)
    unravel: Callable[[jax.Array], dict[str, jax.Array]]
    postprocess: Callable[[dict[str, jax.Array]], dict[str, jax.Array]]
    converged: bool
    iterations: int
    grad_norm: float
    potential: float
    precision_diag: np.ndarray | None = None  # estimated diag(H) when H was not formed
    precision_blocks: BlockedPrecision | None = None  # exact H in blocks (hessian="blocked")

    @property
    def curvature(self) -> np.ndarray:
        """Diagonal of the Hessian ``H`` at the mode (estimated or exact)."""
        if self.precision_blocks is not None:
            return self.precision_blocks.diagonal()
        if self.precision_chol is None:
            return self.precision_diag
        return np.sum(self.precision_chol**2, axis=1)

    @property
    def marginal_variances(self) -> np.ndarray:
        """Diagonal of ``H^{-1}`` (the Gaussian's marginal variances; ``1 / diag(H)`` when
        only the diagonal was estimated)."""
        if self.precision_blocks is not None:
            return self.precision_blocks.marginal_variances()
        if self.precision_chol is None:
            return 1.0 / self.precision_diag
        inv_l = np.linalg.inv(self.precision_chol)
        return np.sum(inv_l**2, axis=0)


class ModelFunctions(NamedTuple):
    """What the Laplace step (and the whitened model) needs of a NumPyro model with array
    arguments: a starting point and the potential and postprocess functions of the
    arguments, as ``numpyro.infer.util.initialize_model(..., dynamic_args=True)`` gives them
    (``param_info.z``, ``potential_fn``, ``postprocess_fn``)."""

    z: dict[str, jax.Array]  # unconstrained starting values, per latent site
    potential_fn: Callable[..., Callable[[dict], jax.Array]]  # (**kwargs) -> (z -> U)
    postprocess_fn: Callable[..., Callable[[dict], dict]]  # (**kwargs) -> (z -> constrained)


def model_functions(model: Callable[..., None], model_kwargs: dict[str, jax.Array],
                    rng_key: jax.Array, init_strategy: Callable | None = init_to_uniform
                    ) -> ModelFunctions:
    """:class:`ModelFunctions` of ``model`` without running it eagerly.

    ``initialize_model`` runs the model and its gradient op by op outside ``jit``, and JAX
    compiles each operation on its first use: 11.4 s of a cold full-size arena Laplace fit
    (150 models x 1M votes, two models), 2.2 s with the compilation cache warm. Here the start
    comes from one jitted trace (the init strategy's values, mapped to the unconstrained
    space by the support's bijection as ``potential_energy`` maps them back), and the
    potential and postprocess functions are NumPyro's own (``potential_energy``,
    ``constrain_fn``) with the model's arguments bound, as ``initialize_model`` builds them
    for a model with deterministic sites. Unlike ``initialize_model`` it does not search for
    a start with a finite potential: the caller's optimiser or sampler reports a non-finite
    one. ``init_strategy=None``: the caller has its own start, and ``z`` is zeros of the
    sites' shapes, from an abstract trace (nothing compiled or run)."""

    def start(kwargs: dict[str, jax.Array]) -> dict[str, jax.Array]:
        tr = trace(substitute(seed(model, rng_key), substitute_fn=init_strategy or init_to_uniform)
                   ).get_trace(**kwargs)
        return {name: biject_to(site["fn"].support).inv(site["value"])
                for name, site in tr.items()
                if site["type"] == "sample" and not site["is_observed"]}

    def potential_fn(**kwargs: jax.Array) -> Callable[[dict], jax.Array]:
        return functools.partial(potential_energy, model, (), kwargs)

    def postprocess_fn(**kwargs: jax.Array) -> Callable[[dict], dict]:
        return functools.partial(constrain_fn, model, (), kwargs, return_deterministic=True)

    if init_strategy is None:
        z = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                         jax.eval_shape(start, model_kwargs))
    else:
        z = jax.jit(start)(model_kwargs)
    return ModelFunctions(z, potential_fn, postprocess_fn)


def laplace_approximation(
    model: Callable[..., None], model_kwargs: dict[str, jax.Array], rng_key: jax.Array,
    *, max_iter: int = 2000, gtol: float = 1e-6, hessian: str = "auto",
    init_values: dict[str, float] | None = None,
    start: dict[str, jax.Array] | None = None, fixed: tuple[str, ...] = (),
    precondition: bool = False, local_sites: tuple[str, ...] = (),
    blocked_hessian: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    progress: bool = False,
) -> LaplaceResult:
    """Find the mode of ``model`` given ``model_kwargs`` and the Hessian there.

    ``hessian``: ``"full"``, ``"diagonal"`` (Hutchinson estimate), ``"auto"`` (full up to
    :data:`FULL_HESSIAN_MAX_DIM` parameters), or ``"blocked"``: exact, by one
    Hessian-vector product per element outside ``local_sites`` plus two (sites whose elements
    interact with no element of any of them, the voters'; :class:`BlockedPrecision`; an
    error names them when a probe shows that they do). ``init_values``: starting values of
    some sites (the others start uniformly in ``[-0.5, 0.5]`` on the unconstrained scale).
    ``start``: the
    unconstrained starting point of every site instead; ``fixed``: sites held at their
    starting values (the optimum is then the mode of the others given them, and the Hessian is
    taken there, with the held elements decoupled from the rest and their curvature floored
    at :data:`HELD_CURVATURE_FLOOR`: not being at a mode in their own directions, they could
    make it indefinite; :func:`with_site_precisions` gives them their precision).
    ``blocked_hessian``: ``(x, unravel, local) -> (A, B, d)``, the ``"blocked"`` Hessian's
    blocks at the flat point ``x`` (``local``: the flat mask of ``local_sites``) by a
    cheaper route than the products (the arena model's:
    :func:`bayesarena.arena_hessian.arena_blocked_hessian`). ``progress``: a progress bar over
    the blocked Hessian's products.

    ``model_kwargs`` must all be arrays (bind static settings with ``functools.partial``), so
    the jitted functions are compiled once per shape, not once per data set.
    """
    info = model_functions(model, model_kwargs, rng_key, init_strategy=None if start is not None
                           else functools.partial(_init_to_value_or_uniform,
                                                  values=init_values or {}))
    x0, unravel = ravel_pytree(info.z)
    if start is not None:
        missing = set(info.z) ^ set(start)
        if missing:
            raise ValueError(f"start must give every site of the model; mismatched: {missing}")
        x0 = ravel_pytree({k: jnp.reshape(jnp.asarray(start[k], dtype=x0.dtype), jnp.shape(z))
                           for k, z in info.z.items()})[0]
    held = site_mask(info.z, fixed)
    potential_gen = info.potential_fn

    @jax.jit
    def value(x: jax.Array, kwargs: dict[str, jax.Array]) -> jax.Array:
        return potential_gen(**kwargs)(unravel(x))

    @jax.jit
    def grad(x: jax.Array, kwargs: dict[str, jax.Array]) -> jax.Array:
        return jax.grad(lambda y: potential_gen(**kwargs)(unravel(y)))(x)

    def value_and_grad(x: jax.Array, kwargs: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        # two programs: XLA compiled jax.value_and_grad of the float64 arena potential into
        # one that took 59 ms at 150 models x 1M votes, against 15.9 ms for the value and
        # 18.5 ms for the gradient apart (mixed precision: 16.4 against 6.4 + 12.2)
        return value(x, kwargs), grad(x, kwargs)

    @jax.jit
    def full_hessian(x: jax.Array, kwargs: dict[str, jax.Array]) -> jax.Array:
        return jax.hessian(lambda y: potential_gen(**kwargs)(unravel(y)))(x)

    hessian_vector_products = _hessian_vector_products(potential_gen, unravel)

    def diagonal_at(x: np.ndarray, per_site: int = HUTCHINSON_PROBES) -> np.ndarray:
        probes = site_probes(info.z, rng_key, per_site)
        hv = in_chunks(lambda block: hessian_vector_products(
            jnp.asarray(x), model_kwargs, jnp.asarray(block)), probes, chunk=DIAGONAL_CHUNK)
        return _floor_by_site(np.sum(probes * hv, axis=0) / np.sum(probes**2, axis=0), unravel)

    # precondition: optimise u = x / scale with scale = diag(H(x0))^(-1/2), so L-BFGS starts
    # from curvatures of order one (the arena's range over four orders of magnitude)
    scale = (1.0 / np.sqrt(diagonal_at(x0, PRECONDITION_PROBES)) if precondition
             else np.ones(np.size(x0)))

    def fun(u: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = value_and_grad(jnp.asarray(u * scale), model_kwargs)
        return float(v), np.asarray(g, dtype=float) * scale

    u0 = np.asarray(x0, dtype=float) / scale
    bounds = ([(float(u), float(u)) if h else (None, None) for u, h in zip(u0, held, strict=True)]
              if held.any() else None)  # a fixed site: both bounds at its start
    res = minimize(fun, u0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": max_iter, "gtol": gtol, "maxcor": 30})
    x_opt, gradient = res.x * scale, res.jac / scale
    postprocess_gen = info.postprocess_fn

    @jax.jit  # compiled, the likelihood the deterministic sites do not need is dead code
    def postprocess_jit(z: dict[str, jax.Array], kwargs: dict[str, jax.Array]) -> dict:
        return postprocess_gen(**kwargs)(z)

    def postprocess(z: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return postprocess_jit(z, model_kwargs)

    common = dict(mode=x_opt, unravel=unravel, postprocess=postprocess,
                  iterations=int(res.nit), grad_norm=float(np.max(np.abs(gradient[~held]))),
                  potential=float(res.fun))
    if hessian == "blocked":
        local = site_mask(info.z, local_sites)
        if blocked_hessian is not None:
            a, b, d = blocked_hessian(x_opt, unravel, local)
        else:
            a, b, d = blocked_curvature(
                lambda probes: in_chunks(lambda block: np.asarray(hessian_vector_products(
                    jnp.asarray(x_opt), model_kwargs, jnp.asarray(block))), probes, progress),
                local, rng_key, local_sites)
        blocks = _held_decoupled(a, b, d, local, held)
        return LaplaceResult(precision_chol=None, precision_blocks=blocks,
                             converged=bool(res.success) and not blocks.regularised, **common)
    if hessian == "diagonal" or (hessian == "auto" and x_opt.size > FULL_HESSIAN_MAX_DIM):
        return LaplaceResult(precision_chol=None, converged=bool(res.success),
                             precision_diag=diagonal_at(x_opt), **common)
    h = np.asarray(full_hessian(jnp.asarray(x_opt), model_kwargs), dtype=float)
    h = 0.5 * (h + h.T)
    if held.any():  # see _held_decoupled
        held_index = np.flatnonzero(held)
        _decouple(h, held_index, np.maximum(np.diag(h)[held_index], HELD_CURVATURE_FLOOR))
    try:
        chol = np.linalg.cholesky(h)
    except np.linalg.LinAlgError:  # not positive definite: regularise and say so via converged
        chol = _regularised_cholesky(h)
        res.success = False
    return LaplaceResult(precision_chol=chol, converged=bool(res.success), **common)


def _hessian_vector_products(potential_gen: Callable, unravel: Callable
                             ) -> Callable[[jax.Array, dict, jax.Array], jax.Array]:
    """Jitted ``(x, kwargs, probes) -> rows H probes_k`` by forward-over-reverse products, one
    probe at a time (``lax.map``: low memory; vectorising several probes at a time was slower
    on the full-size arena: its refined Laplace step with 1,661 products took 40.5 s one at a
    time, 42 s two at a time, 45 s four, 53 s eight, 82 s sixteen)."""

    @jax.jit
    def products(x: jax.Array, kwargs: dict[str, jax.Array], probes: jax.Array) -> jax.Array:
        grad = jax.grad(lambda y: potential_gen(**kwargs)(unravel(y)))
        return jax.lax.map(lambda v: jax.jvp(grad, (x,), (v,))[1], probes)

    return products


def in_chunks(apply: Callable[[np.ndarray], np.ndarray], probes: np.ndarray,
              progress: bool = False, chunk: int = HVP_CHUNK) -> np.ndarray:
    """``apply`` (rows of probes to rows of products) over ``probes`` in chunks of ``chunk``
    rows (fewer when there are fewer), the last padded with zero rows: one compiled shape."""
    n, chunk = len(probes), min(chunk, max(len(probes), 1))
    out = []
    with tqdm(total=n, desc="Laplace Hessian", unit="product", disable=not progress) as bar:
        for start in range(0, n, chunk):
            block = probes[start:start + chunk]
            m = len(block)
            if m < chunk:
                block = np.concatenate([block, np.zeros((chunk - m, *probes.shape[1:]))])
            out.append(np.asarray(apply(block))[:m])
            bar.update(m)
    return np.concatenate(out) if out else np.zeros((0, *probes.shape[1:]))


#: Relative tolerance of the check that the local block is diagonal: a Rademacher probe's
#: product must match ``d * v`` to this share of the largest local curvature. Products in
#: float64 agree to ~1e-12 and in mixed precision to ~1e-6 (float32 terms summed in float64);
#: a coupling between voters would show at the size of a curvature.
LOCAL_BLOCK_RTOL = 1e-4


#: Curvature kept for a held (``fixed``) element: it is not at a mode in its own direction,
#: where the curvature may be negative; callers set its precision (:func:`with_site_precisions`).
HELD_CURVATURE_FLOOR = 1e-8


def blocked_curvature(hvp: Callable[[np.ndarray], np.ndarray], local: np.ndarray,
                      key: jax.Array, local_sites: tuple[str, ...] = ()
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact Hessian's blocks ``(A, B, d)`` from ``n_g + 2`` products ``hvp(probes)``
    (rows of ``probes`` to rows of ``H probes``): unit vectors on the globals (``~local``, flat
    mask) give ``A`` and ``B`` (``H`` is symmetric), the locals' indicator gives ``d`` when the
    local block is diagonal, and a Rademacher probe on the locals checks that it is."""
    g_idx, l_idx = np.flatnonzero(~local), np.flatnonzero(local)
    probes = np.zeros((g_idx.size + 2, local.size))
    probes[np.arange(g_idx.size), g_idx] = 1.0
    probes[g_idx.size, l_idx] = 1.0
    rademacher = rademacher_signs(key, l_idx.size)
    probes[g_idx.size + 1, l_idx] = rademacher
    hv = hvp(probes)
    d = hv[g_idx.size, l_idx]
    check_local_block(hv[g_idx.size + 1, l_idx], d, rademacher, l_idx, local_sites)
    columns = hv[:g_idx.size]  # row k = H e_{g_k} = column g_k of H
    return columns[:, g_idx], columns[:, l_idx], d


def check_local_block(product: np.ndarray, d: np.ndarray, signs: np.ndarray,
                      local_index: np.ndarray, local_sites: tuple[str, ...]) -> None:
    """Raise unless the local block is diagonal: its product with the Rademacher ``signs``
    must be ``d * signs`` (``d``: its product with the locals' indicator) to
    :data:`LOCAL_BLOCK_RTOL` of the largest local curvature."""
    if not local_index.size:
        return
    off = np.abs(product - d * signs)
    if off.max() > LOCAL_BLOCK_RTOL * max(1.0, float(np.abs(d).max())):
        raise ValueError(f"sites {list(local_sites)} are not local: their elements interact "
                         f"(Hessian probe off by {off.max():.3g} at flat index "
                         f"{int(local_index[np.argmax(off)])}); take hessian='full'")


def _held_decoupled(a: np.ndarray, b: np.ndarray, d: np.ndarray, local: np.ndarray,
                    held: np.ndarray) -> BlockedPrecision:
    """:class:`BlockedPrecision` of the blocks with the held elements (``held``, flat mask)
    decoupled from the rest and their curvature floored at :data:`HELD_CURVATURE_FLOOR`, as
    for the full Hessian: the point is a mode of the others only, and their rows would
    otherwise make the matrix indefinite."""
    g_idx, l_idx = np.flatnonzero(~local), np.flatnonzero(local)
    diag = np.empty(local.size)
    diag[g_idx], diag[l_idx] = np.diag(a), d
    held_index = np.flatnonzero(held)
    diag[held_index] = np.maximum(diag[held_index], HELD_CURVATURE_FLOOR)
    return _decoupled(a, b, d, g_idx, l_idx, diag, held_index)


def site_mask(sites: dict[str, jax.Array], names: tuple[str, ...]) -> np.ndarray:
    """Boolean mask over the flat parameter vector (:func:`~jax.flatten_util.ravel_pytree`
    order) that is true on the elements of the sites in ``names``."""
    return np.asarray(ravel_pytree({k: jnp.full(jnp.shape(v), k in names)
                                    for k, v in sites.items()})[0], dtype=bool)


def with_site_precisions(result: LaplaceResult, precisions: dict[str, np.ndarray]
                         ) -> LaplaceResult:
    """``result`` with the Gaussian's precision for some sites raised to at least
    ``precisions[site]`` (per element) and, where the full Hessian was taken, their couplings
    to every other parameter removed, so that these sites' variances are ``1 / precision``
    and the others' conditional precisions are unchanged. For sites whose curvature at the
    point is known to understate how well the posterior pins them (a hierarchical scale held
    while its elements are held too: :func:`bayesarena.fit._refine_in_sampling_coordinates`).
    """
    sites = result.unravel(jnp.zeros(result.mode.size))
    index = {k: np.flatnonzero(site_mask(sites, (k,))) for k in precisions}
    diag = np.array(result.curvature, dtype=float)
    for k, p in precisions.items():
        diag[index[k]] = np.maximum(diag[index[k]], np.ravel(p))
    flat = np.concatenate([np.zeros(0, dtype=int), *index.values()])
    if result.precision_blocks is not None:
        blocks = result.precision_blocks
        return result._replace(precision_blocks=_decoupled(
            blocks.a, blocks.b, blocks.d, blocks.global_index, blocks.local_index, diag, flat))
    if result.precision_chol is None:
        return result._replace(precision_diag=diag)
    h = result.precision_chol @ result.precision_chol.T
    _decouple(h, flat, diag[flat])
    return result._replace(precision_chol=np.linalg.cholesky(h))


def _decouple(h: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """Couple the elements ``index`` of the symmetric ``h`` to nothing, with diagonal
    ``values`` (in place)."""
    h[index, :], h[:, index] = 0.0, 0.0
    h[index, index] = values


def _decoupled(a: np.ndarray, b: np.ndarray, d: np.ndarray, global_index: np.ndarray,
               local_index: np.ndarray, diag: np.ndarray, flat: np.ndarray
               ) -> BlockedPrecision:
    """:func:`blocked_precision` of ``[[A, B], [B^T, diag(d)]]`` with the elements at flat
    indices ``flat`` coupled to nothing and precision ``diag[flat]`` (what
    :func:`with_site_precisions` does to a full Hessian; the inputs are not modified)."""
    a, b, d = a.copy(), b.copy(), d.copy()
    g = np.flatnonzero(np.isin(global_index, flat))
    loc = np.flatnonzero(np.isin(local_index, flat))
    _decouple(a, g, diag[global_index[g]])
    b[g, :], b[:, loc] = 0.0, 0.0
    d[loc] = diag[local_index[loc]]
    return blocked_precision(a, b, d, global_index, local_index)


#: A Hutchinson entry is floored at this share of its site's median entry: probes make an
#: entry small or negative where the row's off-diagonal terms are large against its diagonal
#: (a voter's standardised discrimination, curvature >= 1 from its N(0, 1) prior, estimated
#: at 0.016 among the strengths' curvatures of thousands), while the elements of one site are
#: exchangeable and of one order of magnitude.
SITE_FLOOR = 0.25


def rademacher_signs(key: jax.Array, shape: int | tuple[int, ...], stream: int = 0
                     ) -> np.ndarray:
    """Independent signs +-1 of ``shape`` from NumPy's generator seeded by the JAX ``key``
    and ``stream``: the probes of a Laplace step are made on the host, where
    ``jax.random`` outside ``jit`` compiles each call's operations on first use (1.5 s of
    a cold full-size arena fit for the per-site probes)."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    seed = np.asarray(jax.random.key_data(key) if typed else key).ravel().tolist()
    return np.random.default_rng([*seed, stream]).choice(np.array([-1.0, 1.0]), size=shape)


def site_probes(sites: dict[str, jax.Array], key: jax.Array,
                per_site: int = HUTCHINSON_PROBES) -> np.ndarray:
    """Probe vectors for the Hessian diagonal, one site at a time, shape ``(probes, dim)``
    in :func:`~jax.flatten_util.ravel_pytree` order: unit vectors for every element of a site
    of at most ``per_site`` elements (exact columns), ``per_site`` Rademacher vectors
    supported on each larger site. With ``diag(H) ~ sum_k v_k * (H v_k) / sum_k v_k^2`` the
    estimate of a site's entries is disturbed only by the site's own off-diagonal terms, not
    by the couplings to other sites (a voter's discrimination to the strengths it judged),
    and is exact where the site's block is diagonal (voters do not interact).
    """
    sizes = {k: int(np.size(v)) for k, v in sites.items()}
    dim = sum(sizes.values())
    blocks, start = [], 0
    for index, name in enumerate(sorted(sizes)):  # ravel_pytree's order
        n = sizes[name]
        if n <= per_site:
            block = np.zeros((n, dim))
            block[np.arange(n), start + np.arange(n)] = 1.0
        else:
            block = np.zeros((per_site, dim))
            block[:, start:start + n] = rademacher_signs(key, (per_site, n), stream=index)
        blocks.append(block)
        start += n
    return np.concatenate(blocks)


def _floor_by_site(diag: np.ndarray, unravel: Callable[[jax.Array], dict]) -> np.ndarray:
    """Floor each entry of an estimated Hessian diagonal at :data:`SITE_FLOOR` times the
    median of its site's entries (and at a tiny positive value)."""
    sites = unravel(jnp.asarray(diag))
    floored = {k: np.maximum(np.asarray(v), SITE_FLOOR * float(np.median(np.abs(v))))
               for k, v in sites.items()}
    return np.maximum(np.asarray(ravel_pytree(floored)[0]), 1e-8)


def _init_to_value_or_uniform(site: dict, values: dict[str, float], radius: float = 0.5):
    """NumPyro init strategy: the given value, else uniform in ``[-radius, radius]`` on the
    unconstrained scale (``init_to_value`` falls back to a fixed radius of 2)."""
    if site["type"] == "sample" and not site["is_observed"] and site["name"] in values:
        return jnp.asarray(values[site["name"]])
    return init_to_uniform(site, radius=radius)


def sample_unconstrained(
    result: LaplaceResult, rng_key: jax.Array, num_draws: int, *, inflate: float = 1.0
) -> np.ndarray:
    """Draws ``x = x* + inflate * L^{-T} eps`` from the Gaussian, shape ``(num_draws, dim)``."""
    eps = np.asarray(jax.random.normal(rng_key, (num_draws, result.mode.size)), dtype=float)
    if result.precision_blocks is not None:
        x = result.precision_blocks.offsets(eps)
        if inflate != 1.0:
            x *= inflate
        x += result.mode[None, :]
        return x
    if result.precision_chol is None:
        return result.mode[None, :] + inflate * eps / np.sqrt(result.precision_diag)[None, :]
    # x - x* = L^{-T} eps has covariance (L L^T)^{-1} = H^{-1}
    offsets = solve_triangular(result.precision_chol.T, eps.T, lower=False).T
    return result.mode[None, :] + inflate * offsets


#: Draws mapped to the constrained sites at once (bounds the deterministic sites' memory).
CONSTRAIN_BATCH = 1000


def constrained_draws(result: LaplaceResult, flat: np.ndarray) -> dict[str, np.ndarray]:
    """Map unconstrained flat draws to constrained sample and deterministic sites, in
    batches of :data:`CONSTRAIN_BATCH` draws."""
    constrain = jax.vmap(lambda x: result.postprocess(result.unravel(x)))
    parts = [{k: np.asarray(v) for k, v in constrain(jnp.asarray(flat[i:i + CONSTRAIN_BATCH]))
              .items()} for i in range(0, len(flat), CONSTRAIN_BATCH)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
