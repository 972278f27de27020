"""Rank-normalised split R-hat and bulk/tail ESS for many parameters at once.

Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16(2),
for draws ``x[chain, draw, parameter]``:

- split: each chain's first and last halves become two chains (``M = 2C`` chains of
  ``N = floor(D/2)`` draws);
- rank-normalise: ``z = Phi^-1((r - 3/8) / (S + 1/4))`` with ``r`` the average rank of a draw
  among all ``S = M N`` split draws (Blom 1958);
- R-hat: ``sqrt((B/W + N - 1) / N)`` with ``B = N var_m(mean_m)`` and ``W = mean_m var_m``;
  the reported value is the larger of the R-hats of ``z`` and of the rank-normalised folded
  draws ``|x - median(x)|``;
- ESS: ``S / tau`` with ``tau = -1 + 2 sum_t rho_t``, where ``rho_t = 1 - (W - mean_m
  acov_m(t)) / var_plus`` and the sum is cut by Geyer's (1992) initial positive and initial
  monotone sequences, as in Stan; bulk ESS is the ESS of ``z``, tail ESS the smaller of the
  ESSs of the indicators ``x <= q_0.05`` and ``x <= q_0.95``.

Why not ``arviz_stats.rhat``/``ess``, which compute the same quantities (and agree with
these to rounding; ``tests/test_convergence.py``): they loop in Python over every scalar
parameter. On draws of the full arena posterior's size (7,361 parameters, 4 x 800 draws) the
three calls took 18.6 s on 2 cores; here every step (ranks, FFT autocovariances, Geyer's
sequences) is one NumPy operation over a block of :data:`BLOCK` parameters, and blocks run on
all cores: 6.7 s in one thread, 4.1 s on 2 cores.
Tail ESS uses the 5% and 95% quantiles of the paper (and of Stan and the R package
``posterior``); ``arviz_stats.ess(method="tail")`` by default takes them from its
``stats.ci_prob`` setting (0.89: the 11% and 89% quantiles).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from scipy import fft, special

#: Parameters processed together (one thread's work): 512 x 3,200 draws is 13 MB per array.
BLOCK = 512
#: Tail ESS quantiles (Vehtari et al. 2021, Sec. 4.3).
TAIL_PROBS = (0.05, 0.95)


class Convergence(NamedTuple):
    """Per-parameter diagnostics, each of shape ``(parameters,)``."""

    rhat: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray


def convergence(draws: np.ndarray) -> Convergence:
    """Rank-normalised R-hat, bulk ESS and tail ESS of ``draws[chain, draw, parameter]``.

    A parameter with a NaN draw gets NaN everywhere; R-hat is NaN with fewer than 2 chains or
    4 draws, ESS with fewer than 4 draws (as in ``arviz_stats``)."""
    x = np.asarray(draws, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"draws must be (chain, draw, parameter); got shape {x.shape}")
    # parameters first and contiguous: every sort, scan and FFT below runs along rows
    blocks = (np.ascontiguousarray(np.moveaxis(x[:, :, i:i + BLOCK], 2, 0))
              for i in range(0, x.shape[2], BLOCK))
    # NumPy's sorts and SciPy's FFTs release the GIL: blocks run on every core
    with ThreadPoolExecutor(max_workers=_cores()) as pool:
        parts = list(pool.map(_block, blocks))
    if not parts:
        empty = np.empty(0)
        return Convergence(empty, empty, empty)
    return Convergence(*(np.concatenate(p) for p in zip(*parts, strict=True)))


def _cores() -> int:
    """CPU cores this process may use (all of them where the platform cannot say)."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _block(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three diagnostics of ``x[parameter, chain, draw]``."""
    n, chains, n_draws = x.shape
    nan = np.full(n, np.nan)
    if n_draws < 4:
        return nan, nan.copy(), nan.copy()
    bad = np.isnan(x).any(axis=(1, 2))
    split = split_chains(x)
    z = z_scale(split)
    if chains >= 2:
        median = np.median(split.reshape(n, -1), axis=1)[:, None, None]
        rhat = np.maximum(split_rhat(z), split_rhat(z_scale(np.abs(split - median))))
    else:
        rhat = nan.copy()
    bulk = ess(z)
    quantiles = np.quantile(x.reshape(n, -1), TAIL_PROBS, axis=1)  # one partition, both
    tail = np.minimum(*(ess(split_chains(x <= q[:, None, None]).astype(float))
                        for q in quantiles))
    for out in (rhat, bulk, tail):
        out[bad] = np.nan
    return rhat, bulk, tail


def split_chains(x: np.ndarray) -> np.ndarray:
    """``(n, C, D)`` -> ``(n, 2C, D // 2)``: each chain's first and last halves as separate
    chains (the middle draw of an odd ``D`` is left out)."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half:]], axis=1)


def z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise each parameter over all its chains and draws (Blom's offset 3/8)."""
    n, chains, n_draws = x.shape
    size = chains * n_draws
    ranks = average_ranks(x.reshape(n, size))
    return special.ndtri((ranks - 3 / 8) / (size - 2 * 3 / 8 + 1)).reshape(x.shape)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks within each row of ``x``, ties given their average rank:
    ``scipy.stats.rankdata(x, method="average", axis=1)`` for rows without NaN.

    Written out for speed (``rankdata`` took 4.4 s on 7,361 parameters x 3,200 draws): one
    sort per row, and each run of equal values at sorted positions ``a..b`` (0-based) gets
    ``(a + b) / 2 + 1``."""
    n, size = x.shape
    order = np.argsort(x, axis=1)
    ordered = np.take_along_axis(x, order, axis=1)
    position = np.arange(size)[None, :]
    differs = ordered[:, 1:] != ordered[:, :-1]
    edge = np.ones((n, 1), dtype=bool)
    first = np.maximum.accumulate(np.where(np.hstack([edge, differs]), position, 0), axis=1)
    last = np.minimum.accumulate(
        np.where(np.hstack([differs, edge]), position, size)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty(x.shape)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=1)
    return ranks


def split_rhat(x: np.ndarray) -> np.ndarray:
    """Potential scale reduction of already split chains ``x[parameter, chain, draw]``
    (Gelman et al. 2013, BDA3 Sec. 11.4)."""
    n_draws = x.shape[2]
    between = n_draws * np.var(x.mean(axis=2), axis=1, ddof=1)
    within = np.mean(np.var(x, axis=2, ddof=1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n_draws - 1) / n_draws)


def autocovariance(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each parameter and chain at every lag, by FFT: ``(n, C, D)``."""
    n_draws = x.shape[2]
    centred = x - x.mean(axis=2, keepdims=True)
    size = fft.next_fast_len(2 * n_draws)
    spectrum = fft.rfft(centred, n=size, axis=2)
    return fft.irfft(spectrum * np.conjugate(spectrum), n=size, axis=2)[..., :n_draws] / n_draws


def ess(x: np.ndarray) -> np.ndarray:
    """Effective sample size of each parameter of already split (or single) chains
    ``x[parameter, chain, draw]``, with Geyer's initial positive and monotone sequences.

    The loop of Stan's ``compute_effective_sample_size`` (and of ``arviz_stats``) written
    over all parameters: pair sums ``P_k = rho_2k + rho_2k+1`` are kept up to the first
    ``k >= 1`` with ``P_k <= 0`` (whose even term still counts when positive), and each kept
    ``P_k`` is capped by its predecessors (a running minimum)."""
    n, chains, n_draws = x.shape
    size = chains * n_draws
    acov = autocovariance(x)
    mean_var = acov[:, :, 0].mean(axis=1) * n_draws / (n_draws - 1.0)
    var_plus = mean_var * (n_draws - 1.0) / n_draws
    if chains > 1:
        var_plus = var_plus + np.var(x.mean(axis=2), axis=1, ddof=1)
    constant = (x.max(axis=(1, 2)) - x.min(axis=(1, 2))) < np.finfo(float).resolution
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]  # (n, D)
    rho[:, 0] = 1.0
    # pairs 0 .. (D - 3) // 2 are the ones Stan's loop reaches (only pair 0 when D < 5)
    n_pairs = max((n_draws - 3) // 2 + 1, 1)
    even, odd = rho[:, 0:2 * n_pairs:2], rho[:, 1:2 * n_pairs:2]
    pairs = even + odd  # (n, n_pairs)
    # the last pair looked at: the first k >= 1 whose sum is <= 0, else the last one
    # reached; pair 0 when P_0 <= 0 (the loop never starts)
    stop = np.hstack([np.zeros((n, 1), dtype=bool), pairs[:, 1:] <= 0])
    last = np.where(stop.any(axis=1), np.argmax(stop, axis=1), n_pairs - 1)
    last = np.where(pairs[:, 0] <= 0, 0, last)
    capped = np.minimum.accumulate(pairs, axis=1)
    kept = np.arange(n_pairs)[None, :] < last[:, None]
    rows = np.arange(n)
    last_even, last_sum = even[rows, last], pairs[rows, last]
    # the last pair's even term: always when positive; a non-positive one only where the pair
    # itself was kept (sum >= 0); pair 0's even term is rho_0 = 1
    tail_term = np.where((last_even > 0) | (last_sum >= 0) | (last == 0), last_even, 0.0)
    tau = -1.0 + 2.0 * np.sum(np.where(kept, capped, 0.0), axis=1) + tail_term
    tau = np.maximum(tau, 1.0 / np.log10(size))
    out = size / tau
    out[np.isnan(rho).any(axis=1)] = np.nan
    out[constant] = size
    return out
