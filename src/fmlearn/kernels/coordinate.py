"""Coordinate-wise ALS and Gibbs sweeps for the second-order FM (Rendle, ACM TIST 2012, sec. 4-5).

Every parameter ``theta`` enters the score linearly, ``y_hat = g + theta * h`` with
``h = 1`` (w0), ``x_i`` (w_i) or ``x_i (q_f - v_if x_i)`` (v_if), where
``q_f = sum_j v_jf x_j``. With the residual ``e = y_hat - z`` and row weights ``s``,
the conditional of ``theta`` given everything else has precision
``alpha * sum s h^2 + lambda`` and mean
``(alpha * (theta * sum s h^2 - sum s h e) + mu * lambda) / precision``. ALS sets
``theta`` to that mean (the exact minimiser of ``sum s e^2 + lambda (theta - mu)^2``),
Gibbs sampling draws it. After each update ``e`` and ``q_f`` change in O(nnz) of the
column. Columns are taken in blocks that no row holds two of (one-hot fields): their
parameters are conditionally independent, so one pass over a block's entries in row
order serves all of them and reads ``e`` and ``q_f`` almost sequentially. ``q`` is
stored as (n_factors, n_rows) so that one factor layer is contiguous.

Random numbers come from numba's generator, seeded by ``seed_generator`` before
each sweep: every draw happens on the calling thread, so a seed fixes the whole sweep.
"""
import math

import numpy as np
from numba import njit, prange
from .._numba_cache import CACHE
from .posterior import posterior_value
from .relations import update_relations

_SQRT_2PI = math.sqrt(2.0 * math.pi)
PARALLEL_ENTRIES = 16384  # blocks with fewer entries are not worth splitting over threads
LANES = 4  # interleaved partial sums per thread (a power of two)


@njit(cache=CACHE)
def seed_generator(seed):
    """Seed numba's random generator of the calling thread."""
    np.random.seed(seed)


@njit(cache=CACHE)
def update_intercept(w0, e, s, weighted, alpha, lam, sample):
    """Update ``w0[0]`` (``h = 1`` on every row) and the residual; prior mean 0."""
    shh = 0.0
    she = 0.0
    for r in range(e.shape[0]):
        sr = s[r] if weighted else 1.0
        shh += sr
        she += sr * e[r]
    old = w0[0]
    w0[0] = posterior_value(old, shh, she, alpha, 0.0, lam, sample)
    delta = w0[0] - old
    for r in range(e.shape[0]):
        e[r] += delta


@njit(cache=CACHE, inline="always")
def _entry(p, base, rows, data):
    """Row and value of entry ``p`` of a block starting at entry ``base``: row ``p - base``
    when ``rows`` is None, value 1 when ``data`` is None."""
    if rows is None:
        r = np.uint64(p - base)
    else:
        r = rows[p]
    if data is None:
        x = 1.0
    else:
        x = np.float64(data[p])
    return r, x


@njit(cache=CACHE)
def gather_sums(first, last, base, rows, features, data, e, q_f, s, weighted, old, sums, lane0):
    """Add ``s h^2`` and ``s h e`` of entries ``first:last`` of a block to
    ``sums[lane0 + lane, i, 0]`` and ``sums[lane0 + lane, i, 1]`` (``i = features[p]``,
    counted from the block's first column), entries taking the ``LANES`` lanes in turn so
    that runs of one feature do not wait on each other's additions.

    ``h = x`` when ``q_f`` is None (the linear layer), else ``x (q_f - old_i x)``. ``rows``
    None means the block holds every row once, entry ``p`` on row ``p - base``; ``data``
    None means every value is 1. The None cases compile to loops of their own, which read
    less and run about twice as fast. Indices are unsigned, which spares numba's
    negative-index checks.
    """
    for p in range(first, last):
        r, x = _entry(p, base, rows, data)
        i = features[p]
        if q_f is None:
            h = x
        else:
            h = x * (q_f[r] - old[i] * x)
        sh = s[r] * h if weighted else h
        lane = lane0 + (np.uint64(p) & np.uint64(LANES - 1))
        sums[lane, i, 0] += sh * h
        sums[lane, i, 1] += sh * e[r]


@njit(cache=CACHE)
def apply_changes(first, last, base, rows, features, data, e, q_f, old, delta):
    """Move the residual ``e`` by ``delta_i h`` (and ``q_f`` by ``delta_i x``) over entries
    ``first:last`` of a block; arguments as in ``gather_sums``. Rows are distinct within a
    block. Values of 1 (``data`` None) are added in the dtype of ``old`` and ``delta``."""
    for p in range(first, last):
        r, x = _entry(p, base, rows, data)
        i = features[p]
        d = delta[i]
        if data is None:  # x = 1: in the dtype of ``delta`` (float32 halves the work)
            if q_f is None:
                e[r] += d
            else:
                e[r] += d * (q_f[r] - old[i])
                q_f[r] += d
        elif q_f is None:
            e[r] += d * x
        else:
            e[r] += d * x * (q_f[r] - old[i] * x)
            q_f[r] += d * x


@njit(cache=CACHE, parallel=True)
def _block_pass_parallel(start, end, rows, features, data, e, q_f, s, weighted, old, delta,
                         apply, sums):
    """``gather_sums`` (or ``apply_changes``) over ``sums.shape[0] // LANES`` row ranges of
    the block's entries ``start:end`` in parallel."""
    n_chunks = sums.shape[0] // LANES
    chunk = (end - start + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        first, last = start + t * chunk, min(end, start + (t + 1) * chunk)
        if apply:
            apply_changes(first, last, start, rows, features, data, e, q_f, old, delta)
        else:
            gather_sums(first, last, start, rows, features, data, e, q_f, s, weighted, old, sums,
                        t * LANES)


@njit(cache=CACHE)
def block_pass(start, end, rows, features, data, e, q_f, s, weighted, old, delta, apply, sums):
    """Gather the sums (or apply the changes) of a block's entries ``start:end``: in
    ``sums.shape[0] // LANES`` parallel row ranges when the block is large enough."""
    if sums.shape[0] > LANES and end - start >= PARALLEL_ENTRIES:
        _block_pass_parallel(start, end, rows, features, data, e, q_f, s, weighted, old, delta,
                             apply, sums)
    elif apply:
        apply_changes(start, end, start, rows, features, data, e, q_f, old, delta)
    else:
        gather_sums(start, end, start, rows, features, data, e, q_f, s, weighted, old, sums, 0)


@njit(cache=CACHE)
def draw_layer(values, c0, c1, sums, old, delta, alpha, mu, lam, groups, sample):
    """Set (or draw) ``values[c0:c1]`` from the statistics ``sums`` (n_lanes, c1 - c0, 2)
    summed over lanes; record the changes."""
    for i in range(c1 - c0):
        shh = 0.0
        she = 0.0
        for t in range(sums.shape[0]):
            shh += sums[t, i, 0]
            she += sums[t, i, 1]
        g = groups[c0 + i]
        values[c0 + i] = posterior_value(old[i], shh, she, alpha, mu[g], lam[g], sample)
        delta[i] = values[c0 + i] - old[i]


@njit(cache=CACHE)
def update_block(values, q_f, c0, c1, start, end, rows, features, data, s, weighted, e, groups,
                 alpha, mu, lam, sample, n_chunks):
    """Update one layer of the features ``c0 <= i < c1`` of a column block: ``values`` is
    ``w`` (``q_f`` None, ``h = x_i``) or a factor column ``V[:, f]`` whose row sums are
    ``q_f`` (``h = x_i (q_f - v_if x_i)``); the residual ``e`` (and ``q_f``) follow.

    The block's entries ``start:end`` are in row order and no row holds two of its
    features, so their conditionals are independent: one pass over the entries gathers
    every feature's sums, a second applies the changes. Blocks large enough are split in
    ``n_chunks`` row ranges run in parallel, each with its own ``LANES`` partial sums,
    added in a fixed order, so results depend on ``n_chunks`` only. ``rows`` and ``data``
    are the layout's, or None (see ``gather_sums``). The changes are in the model's dtype,
    as ``values``, ``e`` and ``q_f`` are.
    """
    nb = c1 - c0
    sums = np.zeros((n_chunks * LANES, nb, 2))
    old, delta = values[c0:c1].copy(), np.empty(nb, dtype=values.dtype)
    block_pass(start, end, rows, features, data, e, q_f, s, weighted, old, delta, False, sums)
    draw_layer(values, c0, c1, sums, old, delta, alpha, mu, lam, groups, sample)
    block_pass(start, end, rows, features, data, e, q_f, s, weighted, old, delta, True, sums)


@njit(cache=CACHE)
def update_layer(values, q_f, layout, s, weighted, e, groups, alpha, mu, lam, sample, n_chunks):
    """``update_block`` over every block of the layout, the blocks that hold every row
    once without their row indices."""
    bounds, entry_ptr, rows, features, data = layout
    for b in range(bounds.shape[0] - 1):
        start, end = entry_ptr[b], entry_ptr[b + 1]
        if end - start == e.shape[0]:
            update_block(values, q_f, bounds[b], bounds[b + 1], start, end, None, features, data,
                         s, weighted, e, groups, alpha, mu, lam, sample, n_chunks)
        else:
            update_block(values, q_f, bounds[b], bounds[b + 1], start, end, rows, features, data,
                         s, weighted, e, groups, alpha, mu, lam, sample, n_chunks)


@njit(cache=CACHE)
def exclusive_blocks(indptr, rows, n_rows):
    """Split the columns of a CSC matrix into runs of consecutive columns no row holds two of
    (one-hot fields, e.g. user ids); return the run boundaries ``0 = b_0 < ... < b_m = n_cols``.
    """
    n_cols = indptr.shape[0] - 1
    owner = np.full(n_rows, -1, dtype=np.int64)
    bounds = [0]
    block = 0
    for c in range(n_cols):
        for p in range(indptr[c], indptr[c + 1]):
            if owner[rows[p]] == block:
                block += 1
                bounds.append(c)
                break
        for p in range(indptr[c], indptr[c + 1]):
            owner[rows[p]] = block
    bounds.append(n_cols)
    return np.array(bounds, dtype=np.int64)


@njit(cache=CACHE)
def draw_group_prior(values, groups, mu, lam):
    """Gibbs step of the Normal-Gamma hyperprior of each group: first ``lam``, then ``mu``.

    ``lam_g ~ Gamma((1 + n_g + 1) / 2, rate=(1 + sum (theta - mu_g)^2 + mu_g^2) / 2)`` and
    ``mu_g ~ N(sum theta / (n_g + 1), 1 / ((n_g + 1) lam_g))`` (libFM's alpha_lambda =
    beta_lambda = gamma_0 = 1, mu_0 = 0).
    """
    n_groups = mu.shape[0]
    count = np.zeros(n_groups)
    total = np.zeros(n_groups)
    squares = np.zeros(n_groups)
    for i in range(values.shape[0]):
        g = groups[i]
        d = values[i] - mu[g]
        count[g] += 1.0
        total[g] += values[i]
        squares[g] += d * d
    for g in range(n_groups):
        rate = 0.5 * (1.0 + squares[g] + mu[g] * mu[g])
        if not rate < np.inf:  # diverged parameters: NaN, for the epoch loop's check
            lam[g] = mu[g] = np.nan
            continue
        lam[g] = np.random.gamma(0.5 * (2.0 + count[g]), 1.0 / rate)
        spread = 1.0 / math.sqrt((count[g] + 1.0) * lam[g])
        mu[g] = total[g] / (count[g] + 1.0) + spread * np.random.standard_normal()


@njit(cache=CACHE)
def draw_noise_precision(e, s, weighted):
    """Draw the noise precision ``alpha ~ Gamma((1 + sum s) / 2, rate=(1 + sum s e^2) / 2)``."""
    n = 0.0
    sse = 0.0
    for r in range(e.shape[0]):
        sr = s[r] if weighted else 1.0
        n += sr
        sse += sr * e[r] * e[r]
    return noise_precision(n, sse)


@njit(cache=CACHE)
def noise_precision(n, sse):
    """A draw of ``alpha`` from the weight ``n`` and the weighted squared error ``sse`` of
    the rows (``draw_noise_precision``; the Dask driver's, from the workers' sums)."""
    if not sse < np.inf:  # diverged residuals: NaN, for the epoch loop's check
        return np.nan
    return np.random.gamma(0.5 * (1.0 + n), 2.0 / (1.0 + sse))


@njit(cache=CACHE)
def coordinate_sweep(layout, s, weighted, e, q, w0, w, V, groups, hyper, reg_intercept, sample,
                     sample_alpha, sample_priors, n_chunks, fit_intercept=True, fit_linear=True,
                     relations=None):
    """One pass over every parameter: ``alpha``, ``w0``, then layer by layer (``w``, then
    ``V[:, f]`` for each f) its group priors and, block by block, its values
    (``update_layer``) — libFM's order, which mixes faster than going block by block
    through all layers.

    ``layout`` is ``(bounds, entry_ptr, rows, features, data)``: the column blocks of
    ``exclusive_blocks`` and the matrix entries ordered by block, then row; block ``b``
    covers columns ``bounds[b]:bounds[b + 1]`` and entries ``entry_ptr[b]:entry_ptr[b + 1]``;
    ``rows`` and ``features`` (the column less the block's first) are uint32; ``data`` is
    None when every value is 1.
    ``hyper`` holds ``alpha`` (shape (1,)), ``mu_w``/``lam_w`` (n_groups,) and
    ``mu_v``/``lam_v`` (n_groups, n_factors). ``sample`` draws the parameters instead of
    setting them to their conditional means; ``sample_alpha`` and ``sample_priors`` draw
    ``alpha`` and each layer's group priors, otherwise they stay fixed (ALS: ``alpha = 1``
    and ``lam`` is the L2 penalty). ``e`` and ``q`` must hold the residual and factor sums
    of the current parameters; ``s`` are row weights, read only when ``weighted``. Large
    blocks are split over ``n_chunks`` threads. ``fit_intercept`` and ``fit_linear`` off
    leave ``w0`` and ``w`` (and the priors of ``w``) as they are. ``relations`` (see
    ``fmlearn.kernels.relations``) adds block columns after the layout's, updated in each
    layer after them.
    """
    alpha_arr, mu_w, lam_w, mu_v, lam_v = hyper
    if sample_alpha:
        alpha_arr[0] = draw_noise_precision(e, s, weighted)
    alpha = alpha_arr[0]
    if fit_intercept:
        update_intercept(w0, e, s, weighted, alpha, reg_intercept, sample)
    for layer in range(0 if fit_linear else 1, V.shape[1] + 1):
        # Layer 0 is w, layer f + 1 is V[:, f]; its group priors are drawn just before it.
        linear = layer == 0
        values = w if linear else V[:, layer - 1]
        mu = mu_w if linear else mu_v[:, layer - 1]
        lam = lam_w if linear else lam_v[:, layer - 1]
        if sample_priors:
            draw_group_prior(values, groups, mu, lam)
        if linear:
            update_layer(values, None, layout, s, weighted, e, groups, alpha, mu, lam, sample,
                         n_chunks)
            if relations is not None:
                update_relations(values, None, relations, s, weighted, e, groups, alpha, mu,
                                 lam, sample)
        else:
            update_layer(values, q[layer - 1], layout, s, weighted, e, groups, alpha, mu, lam,
                         sample, n_chunks)
            if relations is not None:
                update_relations(values, q[layer - 1], relations, s, weighted, e, groups, alpha,
                                 mu, lam, sample)


@njit(cache=CACHE, parallel=True)
def scores_and_sums(indptr, indices, data, w0, w, V, out, q):
    """Scores of CSR rows into ``out`` and their factor sums into ``q`` (n_factors, n_rows).

    The squares ``sum_i x_i^2 |v_i|^2`` come from each feature's ``|v_i|^2``, computed
    first, so that an entry adds one term to them instead of ``n_factors`` in a chain;
    indices are read unsigned, which spares numba's negative-index checks. Rows go in tiles
    of 64 whose sums are built in a local buffer and written one factor at a time, so each
    write to ``q`` is a contiguous run.
    """
    n_rows = indptr.shape[0] - 1
    k = V.shape[1]
    norms = np.empty(V.shape[0])
    for i in range(V.shape[0]):
        norm = 0.0
        for f in range(k):
            norm += np.float64(V[i, f]) * V[i, f]
        norms[i] = norm
    tile = 64
    for t in prange((n_rows + tile - 1) // tile):
        first = t * tile
        last = min(n_rows, first + tile)
        buf = np.zeros((tile, k))
        for r in range(first, last):
            total = w0
            squares = 0.0
            b = buf[r - first]
            for p in range(np.uint64(indptr[r]), np.uint64(indptr[r + 1])):
                i = np.uint64(indices[p])
                x = np.float64(data[p])
                total += w[i] * x
                squares += norms[i] * x * x
                for f in range(k):
                    b[f] += V[i, f] * x
            pairs = 0.0
            for f in range(k):
                pairs += b[f] * b[f]
            out[r] = total + 0.5 * (pairs - squares)
        for f in range(k):
            for r in range(first, last):
                q[f, r] = buf[r - first, f]


@njit(cache=CACHE)
def _mills_ratio(t):
    """``phi(t) / Phi(t)``, stable for very negative ``t``."""
    if t < -35.0:  # asymptotic series: Phi underflows further out
        u = 1.0 / (t * t)
        return -t / (1.0 - u + 3.0 * u * u - 15.0 * u * u * u)
    return math.exp(-0.5 * t * t) / _SQRT_2PI / (0.5 * math.erfc(-t / math.sqrt(2.0)))


@njit(cache=CACHE)
def _positive_truncated_normal(mean, first):
    """A draw of ``z ~ N(mean, 1)`` conditioned on ``z > 0`` (Robert 1995); ``first`` is a
    standard normal draw tried first where the mean is above ``-0.45`` (rejection from the
    untruncated normal; NaN: none), numba's generator giving any further draws.

    A non-finite ``mean`` comes back as it is (the rejection loops would never end),
    and one so far below 0 that ``a * a`` overflows gives the limit ``mean + a + 1 / a``.
    """
    a = -mean
    if not abs(a) < np.inf:
        return mean
    if a > 1e150:
        return mean + a + 1.0 / a
    if a < 0.45:
        z = first
        while not z > a:
            z = np.random.standard_normal()
        return mean + z
    rate = 0.5 * (a + math.sqrt(a * a + 4.0))
    while True:
        z = a + np.random.exponential(1.0 / rate)
        if np.random.random() <= math.exp(-0.5 * (z - rate) * (z - rate)):
            return mean + z


@njit(cache=CACHE)
def probit_targets(scores, labels, z, normals):
    """Latent targets of the probit link for labels in {-1, +1}.

    ``z ~ N(score, 1)`` truncated to the label's side (Gibbs, Albert & Chib 1993), each
    row's first try being ``normals[r]`` (standard normal draws: numpy's generator draws
    them many times faster than numba's one at a time); or, with ``normals`` None, its
    expectation ``score + label * phi(score) / Phi(label * score)`` (ALS, as libFM).
    """
    for r in range(scores.shape[0]):
        m = labels[r] * scores[r]
        if normals is not None:
            z[r] = labels[r] * _positive_truncated_normal(m, normals[r])
        else:
            z[r] = labels[r] * (m + _mills_ratio(m))
