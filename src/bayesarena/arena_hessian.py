"""The arena model's exact Hessian in blocks, assembled from each cell's and row's own second
derivatives instead of one Hessian-vector product per global element.

The potential in unconstrained coordinates ``u`` is ``U(u) = P(u) - l(w(u))``: ``P`` the
priors (with the transforms' log Jacobians), ``w`` the :class:`~bayesarena.arena_model.VoteTerms`
the votes read (strengths, category deviations, position, style, outcome parameters, the
voters' discriminations) and ``l`` the votes' log-likelihood. By the chain rule

    nabla^2 U = [nabla^2 P - sum_k g_k nabla^2 w_k] + J' (-nabla^2 l) J,
    g = nabla l(w(u)),   J = dw / du.

The bracket is the Hessian of the *surrogate* potential ``P(u) - g . w(u)`` (``g`` held),
which reads no votes: its blocked Hessian (:func:`~bayesarena.laplace.blocked_curvature`)
costs ``n_g + 2`` products of a function of a few thousand numbers. The second term is where
the votes are, and ``-nabla^2 l`` in ``w`` is sparse: a cell reads the two strengths
``s_i, s_j`` of its tag set (``s_T = theta + sum_{c in T} delta_c``), the position bonus and
the outcome parameters, through ``d = s_i - s_j + gamma p`` and ``(s_i + s_j) / 2``; a direction
row reads its cell's ``d``, the style coefficients through ``y = d + beta . x`` and one voter's
``kappa``. So each cell's and each row's Hessian in those few scalars (``vmap`` of
``jax.hessian`` of the model's own :func:`~bayesarena.arena_model.cell_log_likelihood` and
:func:`~bayesarena.arena_model.row_log_likelihood`: no derivative is written by hand) is
scattered into ``w`` (sparse sums) and mapped to ``u`` with ``J`` (products of ``w(u)``, which
reads no votes either). This is the structure a Gauss-Newton or Fisher-scoring step uses
(McCullagh & Nelder 1989, ch. 2.5), kept exact by the surrogate's term. Graph-colouring
sparse Hessians (Gebremedhin, Manne & Pothen 2005), which libraries such as ``sparsejac``
offer, do not apply: in the sampled coordinates the zero-sum transform makes every strength
read every coordinate of its group, so no two global columns can share a probe.

At 150 models x 1M votes (1,659 global coordinates, 5,691 voters) the
products route costs 1,661 passes over the 400k cells and 700k rows (about 20 s); this one,
one gradient and one pass of second derivatives over them plus the surrogate's products: 3.7 s
with its programs compiled (the sparse sums 1.0 s, the products and ``J`` 1.1 s, the rest
dense products of ``J``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import constrain_fn, potential_energy

from bayesarena.arena_model import (
    VoteTerms,
    cell_log_likelihood,
    flat_strengths,
    row_log_likelihood,
    votes_log_likelihood,
)
from bayesarena.laplace import (
    blocked_curvature,
    check_local_block,
    in_chunks,
    rademacher_signs,
)

Blocks = tuple[np.ndarray, np.ndarray, np.ndarray]


def vote_terms(model: Callable[..., None], kwargs: dict[str, jax.Array],
               params: dict[str, jax.Array]) -> VoteTerms:
    """The :class:`~bayesarena.arena_model.VoteTerms` of the arena ``model`` (a
    ``functools.partial`` of :func:`~bayesarena.arena_model.arena_model`) at the
    unconstrained ``params``; traceable (the votes are not read)."""
    box: list[VoteTerms] = []

    def capture(terms: VoteTerms) -> jax.Array:
        box.append(terms)
        return jnp.zeros(())

    constrain_fn(functools.partial(model, vote_likelihood=capture), (), kwargs, params)
    return box[0]


def _dot(a: VoteTerms, b: VoteTerms) -> jax.Array:
    """``sum_k a_k b_k`` over the leaves of two :class:`VoteTerms`."""
    return sum(jnp.sum(x * y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                               strict=True))


def arena_blocked_hessian(model: Callable[..., None], kwargs: dict[str, jax.Array],
                          key: jax.Array, local_sites: tuple[str, ...] = ()
                          ) -> Callable[[np.ndarray, Callable, np.ndarray], Blocks]:
    """``hessian(x, unravel, local) -> (A, B, d)``: the blocked Hessian of the arena
    ``model``'s potential (the module docstring) at the flat unconstrained point ``x``
    (``unravel``: flat to sites), with the globals (``~local``) and the locals (``local``, the
    flat mask of the voters' sites ``local_sites``) in flat order, as
    :func:`~bayesarena.laplace.blocked_curvature` gives it from products. ``model`` is a
    ``functools.partial`` of :func:`~bayesarena.arena_model.arena_model` in float64; for
    :func:`~bayesarena.laplace.laplace_approximation`'s ``blocked_hessian``."""
    spec = model.keywords["spec"]
    curvatures = jax.jit(functools.partial(local_curvatures, spec=spec))

    @jax.jit
    def gradient(terms: VoteTerms, data: dict) -> VoteTerms:
        return jax.grad(lambda t: votes_log_likelihood(t, spec=spec, **data))(terms)

    def hessian(x: np.ndarray, unravel: Callable[[jax.Array], dict], local: np.ndarray
                ) -> Blocks:
        g_idx, l_idx = np.flatnonzero(~local), np.flatnonzero(local)

        def flat_terms(y: jax.Array, data: dict) -> jax.Array:
            return ravel_pytree(vote_terms(model, data, unravel(y)))[0]

        @jax.jit
        def surrogate_products(y: jax.Array, g: VoteTerms, data: dict, probes: jax.Array
                               ) -> jax.Array:
            linear = functools.partial(model, vote_likelihood=lambda t: _dot(g, t))
            grad = jax.grad(lambda z: potential_energy(linear, (), data, unravel(z)))
            return jax.vmap(lambda v: jax.jvp(grad, (y,), (v,))[1])(probes)

        @jax.jit
        def jacobian_rows(y: jax.Array, data: dict, probes: jax.Array) -> jax.Array:
            """Rows ``(dw/du) v`` for each probe ``v``, ``w`` flattened."""
            return jax.vmap(lambda v: jax.jvp(lambda z: flat_terms(z, data), (y,), (v,))[1]
                            )(probes)

        @jax.jit
        def transpose_rows(y: jax.Array, data: dict, cotangents: jax.Array) -> jax.Array:
            """Rows ``c' (dw/du)`` for each row ``c`` of ``cotangents`` (over flat ``w``)."""
            _, pullback = jax.vjp(lambda z: flat_terms(z, data), y)
            return jax.vmap(lambda c: pullback(c)[0])(cotangents)

        xj = jnp.asarray(x, dtype=jnp.float64)
        terms = jax.jit(lambda y, data: vote_terms(model, data, unravel(y)))(xj, kwargs)
        g = gradient(terms, kwargs)
        a, b, d = blocked_curvature(
            lambda probes: in_chunks(lambda p: surrogate_products(xj, g, kwargs, p), probes),
            local, key, local_sites)
        w_flat, unravel_w = ravel_pytree(terms)
        index = jax.tree.map(lambda v: np.asarray(v, dtype=np.int64),
                             unravel_w(jnp.arange(w_flat.size, dtype=jnp.float64)))
        hc, hr = (np.asarray(h) for h in curvatures(terms, kwargs))
        h_ww, h_wk, h_kk = _vote_curvature_in_terms(index, hc, hr, kwargs, w_flat.size)
        kappa = _leaf(index.discrimination)
        w_g = np.setdiff1d(np.arange(w_flat.size), kappa)
        probes = np.zeros((g_idx.size, x.size))
        probes[np.arange(g_idx.size), g_idx] = 1.0
        jac_g = in_chunks(lambda p: jacobian_rows(xj, kwargs, p), probes)  # (n_g, n_w) = J_g'
        jg = jac_g[:, w_g]
        a = a + jg @ (h_ww @ jg.T)
        if h_kk is None:
            return a, b, d
        jk = jac_g[:, kappa]  # the globals' effect on kappa: the (held) voters' scale
        cols = np.flatnonzero(np.any(jk != 0.0, axis=1))
        cross = jg @ h_wk  # J_gg' H_wk, (n_g, V + 1)
        if cols.size:
            every = np.arange(g_idx.size)
            a[np.ix_(cols, every)] += jk[cols] @ cross.T
            a[np.ix_(every, cols)] += cross @ jk[cols].T
            a[np.ix_(cols, cols)] += (jk[cols] * h_kk) @ jk[cols].T
            cross[cols] += jk[cols] * h_kk
        # B = (J_g' H_wk + J_kg' H_kk) J_kl; d = diag(J_kl' H_kk J_kl) (one kappa per local)
        full = np.zeros((g_idx.size, w_flat.size))
        full[:, kappa] = cross
        b = b + in_chunks(lambda c: transpose_rows(xj, kwargs, c), full)[:, l_idx]
        probes = np.zeros((2, x.size))
        probes[0, l_idx] = 1.0
        rademacher = rademacher_signs(key, l_idx.size, stream=1)
        probes[1, l_idx] = rademacher
        tangents = np.asarray(jacobian_rows(xj, kwargs, jnp.asarray(probes)))
        weighted = np.zeros_like(tangents)
        weighted[:, kappa] = tangents[:, kappa] * h_kk
        back = np.asarray(transpose_rows(xj, kwargs, jnp.asarray(weighted)))[:, l_idx]
        check_local_block(back[1], back[0], rademacher, l_idx, local_sites)
        return a, b, d + back[0]

    return hessian


def _leaf(index: jax.Array | np.ndarray | None) -> np.ndarray:
    return np.zeros(0, dtype=np.int64) if index is None else np.ravel(index)


def local_curvatures(terms: VoteTerms, data: dict[str, jax.Array], *, spec
                     ) -> tuple[jax.Array, jax.Array]:
    """Second derivatives of the votes' negative log-likelihood in each cell's and each row's
    own scalars: ``(cells, 2 + k, 2 + k)`` in ``(d, (s_i + s_j) / 2, outcome leaves)`` (``k`` of
    them; zeros without Davidson ties, whose cells carry no term) and ``(rows, r, r)`` in
    ``(y, kappa)`` (``r = 1`` without voters)."""
    flat = flat_strengths(terms, data["tagsets"])
    s_i, s_j = flat[data["flat_i"]], flat[data["flat_j"]]
    d = s_i - s_j
    if terms.position is not None:
        d = d + terms.position * data["position"]
    outcome, unravel_o = ravel_pytree(terms.outcome)
    z = jnp.concatenate([jnp.stack([d, 0.5 * (s_i + s_j)], axis=1),
                         jnp.broadcast_to(outcome, (d.size, outcome.size))], axis=1)

    def cell(zc: jax.Array, counts: jax.Array) -> jax.Array:
        return -cell_log_likelihood(zc[0], zc[1], unravel_o(zc[2:]), counts, spec)

    if spec.likelihood.ties == "davidson":
        hc = jax.vmap(jax.hessian(cell))(z, data["counts"].T)
    else:
        hc = jnp.zeros((d.size, z.shape[1], z.shape[1]))
    y = d[data["row_cell"]]
    if terms.style is not None:
        y = y + data["row_style"] @ terms.style
    cols = [y]
    if terms.discrimination is not None:
        cols.append(terms.discrimination[data["row_voter"]])

    def row(q: jax.Array, counts: jax.Array) -> jax.Array:
        return -row_log_likelihood(q[0], q[1] if q.size > 1 else None, counts)

    hr = jax.vmap(jax.hessian(row))(jnp.stack(cols, axis=1), data["row_counts"].T)
    return hc, hr


def _vote_curvature_in_terms(index: VoteTerms, hc: np.ndarray, hr: np.ndarray,
                             data: dict[str, jax.Array], n_w: int
                             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``-nabla^2 l`` in the flat :class:`VoteTerms` ``w`` (``index``: each term's flat
    position) from the cells' and rows' own Hessians (:func:`local_curvatures`): the block
    over every term but the discriminations (dense), its block against them ``(., V + 1)`` and
    their diagonal (``None`` without voters).

    With directions ``e_d = (s_i: 1, s_j: -1, gamma: p)``, ``e_m = (s_i: 1/2, s_j: 1/2)``, the
    outcome leaves' and the style coefficients' unit vectors, a cell with Hessian ``h`` and rows
    ``r`` (Hessian ``q_r`` in ``(y, kappa)``, ``e_y = e_d + x_r . e_beta``) adds
    ``sum_ab h_ab e_a e_b' + sum_r q_r,yy e_y e_y'`` to the non-voter block and
    ``q_r,y kappa e_y e_kappa'`` against voter ``v_r``. The strengths ``s_T,m`` are then mapped
    to ``theta_m`` and ``delta[m, c]`` for the tags ``c`` of ``T`` (a sparse product).
    """
    flat_i = np.asarray(data["flat_i"], dtype=np.int64)
    flat_j = np.asarray(data["flat_j"], dtype=np.int64)
    position = np.asarray(data["position"], dtype=float)
    row_cell = np.asarray(data["row_cell"], dtype=np.int64)
    row_style = np.asarray(data["row_style"], dtype=float)
    tagsets = np.asarray(data["tagsets"], dtype=float)
    theta = _leaf(index.theta)
    n_models, n_cells = theta.size, flat_i.size
    n_s = tagsets.shape[0] * n_models if index.deviation is not None else n_models
    # extras: position, style, outcome leaves (flat w positions)
    gamma, style = _leaf(index.position), _leaf(index.style)
    outcome = np.concatenate([np.zeros(0, dtype=np.int64),
                              *(np.ravel(v) for v in jax.tree.leaves(index.outcome))])
    extras = np.concatenate([gamma, style, outcome])
    n_e, n_o, n_f = extras.size, outcome.size, style.size
    # per-cell coefficients over the directions (d, m, outcome..., style...)
    n_dir = 2 + n_o + n_f
    coef = np.zeros((n_cells, n_dir, n_dir))
    coef[:, :2 + n_o, :2 + n_o] = hc
    q_yy = hr[:, 0, 0]
    coef[:, 0, 0] += np.bincount(row_cell, q_yy, minlength=n_cells)
    for f in range(n_f):
        x_f = np.bincount(row_cell, q_yy * row_style[:, f], minlength=n_cells)
        coef[:, 0, 2 + n_o + f] += x_f
        coef[:, 2 + n_o + f, 0] += x_f
        for f2 in range(n_f):
            coef[:, 2 + n_o + f, 2 + n_o + f2] += np.bincount(
                row_cell, q_yy * row_style[:, f] * row_style[:, f2], minlength=n_cells)
    # loadings of each direction on (s_i, s_j), and on the extras: e_d's on gamma is the
    # cell's position p, the others' are constant (units)
    on_s = np.zeros((n_dir, 2))
    on_s[0], on_s[1] = (1.0, -1.0), (0.5, 0.5)
    on_e = np.zeros((n_dir, n_e))
    for k in range(n_o):
        on_e[2 + k, gamma.size + n_f + k] = 1.0
    for f in range(n_f):
        on_e[2 + n_o + f, gamma.size + f] = 1.0
    s_coef = on_s.T @ coef  # (cells, 2, n_dir): on_s' C
    q_ss = s_coef @ on_s  # (cells, 2, 2)
    q_se = s_coef @ on_e  # (cells, 2, n_e)
    q_ee = on_e.T @ coef.sum(axis=0) @ on_e
    if gamma.size:
        q_se[:, :, 0] += position[:, None] * s_coef[:, :, 0]
        v = (position[:, None] * coef[:, 0, :]).sum(axis=0) @ on_e
        q_ee[0] += v
        q_ee[:, 0] += v
        q_ee[0, 0] += float(np.sum(position**2 * coef[:, 0, 0]))
    pairs = np.stack([flat_i, flat_j], axis=1)
    h_ss = sp.coo_matrix((q_ss.ravel(), (np.repeat(pairs, 2, axis=1).ravel(),
                                         np.tile(pairs, 2).ravel())), shape=(n_s, n_s)).tocsr()
    h_se = np.zeros((n_s, n_e))
    for e in range(n_e):
        h_se[:, e] = np.bincount(pairs.ravel(), q_se[:, :, e].ravel(), minlength=n_s)
    strengths_to_w = _strength_map(index, tagsets, n_s, n_w)  # (n_s, n_w)
    extras_to_w = sp.csr_matrix((np.ones(n_e), (np.arange(n_e), extras)), shape=(n_e, n_w))
    h_full = (strengths_to_w.T @ h_ss @ strengths_to_w
              + strengths_to_w.T @ sp.csr_matrix(h_se) @ extras_to_w
              + extras_to_w.T @ sp.csr_matrix(h_se.T) @ strengths_to_w
              + extras_to_w.T @ sp.csr_matrix(q_ee) @ extras_to_w)
    kappa = _leaf(index.discrimination)
    w_g = np.setdiff1d(np.arange(n_w), kappa)
    h_ww = h_full[w_g][:, w_g].toarray()
    if not kappa.size:
        return h_ww, None, None
    voter = np.asarray(data["row_voter"], dtype=np.int64)
    n_v = kappa.size
    q_yk, q_kk = hr[:, 0, 1], hr[:, 1, 1]
    cell_s = pairs[row_cell]  # (rows, 2) strengths each row reads
    s_k = sp.coo_matrix((np.stack([q_yk, -q_yk], axis=1).ravel(),
                         (cell_s.ravel(), np.repeat(voter, 2))), shape=(n_s, n_v)).tocsr()
    e_k = np.zeros((n_e, n_v))
    if gamma.size:
        e_k[0] = np.bincount(voter, q_yk * position[row_cell], minlength=n_v)
    for f in range(n_f):
        e_k[gamma.size + f] = np.bincount(voter, q_yk * row_style[:, f], minlength=n_v)
    h_wk = (strengths_to_w.T @ s_k + extras_to_w.T @ sp.csr_matrix(e_k))[w_g].toarray()
    return h_ww, h_wk, np.bincount(voter, q_kk, minlength=n_v)


def _strength_map(index: VoteTerms, tagsets: np.ndarray, n_s: int, n_w: int) -> sp.csr_matrix:
    """The sparse ``d s / d w``: ``s[T * M + m] = theta_m + sum_c tagsets[T, c] delta[m, c]``."""
    theta = _leaf(index.theta)
    n_models = theta.size
    s = np.arange(n_s)
    rows, cols, vals = [s], [theta[s % n_models]], [np.ones(n_s)]
    if index.deviation is not None:
        dev = np.asarray(index.deviation)  # (M, C) flat positions
        t, c = np.nonzero(tagsets)
        for tag_set, tag in zip(t, c, strict=True):
            m = np.arange(n_models)
            rows.append(tag_set * n_models + m)
            cols.append(dev[m, tag])
            vals.append(np.full(n_models, tagsets[tag_set, tag]))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_s, n_w))
