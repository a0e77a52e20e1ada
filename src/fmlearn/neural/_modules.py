"""The networks, as torch modules over the mini-batches of :mod:`fmlearn.neural._data`.

Bag models take ``(indices, values, rows, n_rows)``, field models ``(ids, values)`` of
shape ``(batch, n_fields)``; ``values`` None means every value is 1 (one-hot rows, spared a
product forward and backward). Each returns one score per row (before the link).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _times(e, values):
    """``e`` (entries first, then any dimensions) times each entry's value; ``values`` None:
    every value is 1.

    Examples
    --------
    >>> import torch
    >>> _times(torch.ones(2, 3), torch.tensor([2.0, 3.0]))[:, 0].tolist(), _times(1.0, None)
    ([2.0, 3.0], 1.0)
    """
    if values is None:
        return e
    return e * values.reshape(values.shape + (1,) * (e.dim() - values.dim()))


class _Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask on CPU comes from ``torch.rand`` compared with ``p``: the same
    Bernoulli(1 - p) mask, scaled by 1 / (1 - p), as torch's ``bernoulli_`` draws, which
    takes 3.4x as long on CPU (torch 2.13, 2048 x 400: 11.1 against 3.2 ms; in DeepFM's MLP
    its three dropouts took half of a step's CPU time). Other devices keep torch's fused
    kernel.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> out = _Dropout(0.5)(torch.ones(10000))
    >>> sorted(set(out.tolist())), round(out.mean().item(), 1)
    ([0.0, 2.0], 1.0)
    >>> _Dropout(0.5).eval()(torch.ones(2)).tolist()
    [1.0, 1.0]
    """

    def forward(self, x):
        if not self.training or self.p in (0.0, 1.0) or x.device.type != "cpu":
            return super().forward(x)
        return x * torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))


def _bag_sums(emb: nn.Embedding, indices, values, rows, n_rows):
    """Per row, ``sum_i v_i x_i`` and ``sum_i (v_i x_i)^2`` over its stored entries."""
    e = _times(emb(indices), values)
    s = e.new_zeros(n_rows, e.shape[1]).index_add_(0, rows, e)
    s2 = e.new_zeros(n_rows, e.shape[1]).index_add_(0, rows, e * e)
    return s, s2


class _Linear(nn.Module):
    """``w0 + sum_i w_i x_i``: the bias and the first-order weights, an embedding of width 1."""

    def __init__(self, n_features: int, sparse: bool) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))
        self.weight = nn.Embedding(n_features, 1, sparse=sparse)
        nn.init.zeros_(self.weight.weight)

    def bags(self, indices, values, rows, n_rows):
        w = _times(self.weight(indices)[:, 0], values)
        return self.bias + w.new_zeros(n_rows).index_add_(0, rows, w)

    def slots(self, ids, values):
        return self.bias + _times(self.weight(ids)[..., 0], values).sum(1)


def _embedding(n_features: int, n_factors: int, sparse: bool, init_std: float) -> nn.Embedding:
    emb = nn.Embedding(n_features, n_factors, sparse=sparse)
    nn.init.normal_(emb.weight, 0.0, init_std)
    return emb


def _mlp(n_in: int, sizes: Sequence[int], dropout: float, batch_norm: bool,
         n_out: int = 1) -> nn.Sequential:
    """Linear -> [BatchNorm] -> ReLU -> Dropout per hidden layer, then a linear output."""
    layers: list[nn.Module] = []
    for size in sizes:
        layers.append(nn.Linear(n_in, size))
        if batch_norm:
            layers.append(nn.BatchNorm1d(size))
        layers += [nn.ReLU(), _Dropout(dropout)]
        n_in = size
    layers.append(nn.Linear(n_in, n_out, bias=False))
    return nn.Sequential(*layers)


class FMNet(nn.Module):
    """Rendle's FM in O(k nnz): ``w0 + sum_i w_i x_i + 1/2 sum_f ((sum_i v_if x_i)^2 -
    sum_i v_if^2 x_i^2)``.

    Examples
    --------
    >>> import torch
    >>> net = FMNet(3, 2, sparse=False, init_std=0.1)
    >>> net(torch.tensor([0, 2]), torch.tensor([1.0, 1.0]), torch.tensor([0, 0]), 1).shape
    torch.Size([1])
    """

    bag = True

    def __init__(self, n_features: int, n_factors: int, *, sparse: bool, init_std: float) -> None:
        super().__init__()
        self.linear = _Linear(n_features, sparse)
        self.factors = _embedding(n_features, n_factors, sparse, init_std)

    def embeddings(self) -> list[nn.Embedding]:
        return [self.linear.weight, self.factors]

    def forward(self, indices, values, rows, n_rows):
        s, s2 = _bag_sums(self.factors, indices, values, rows, n_rows)
        return self.linear.bags(indices, values, rows, n_rows) + 0.5 * (s * s - s2).sum(1)


class NFMNet(nn.Module):
    """He & Chua's NFM: ``w0 + sum_i w_i x_i + h^T MLP(f_BI(x))`` with the bi-interaction
    pooling ``f_BI = 1/2 ((sum_i v_i x_i)^2 - sum_i (v_i x_i)^2)``, batch norm and dropout
    on it and on each hidden layer.

    Examples
    --------
    >>> import torch
    >>> net = NFMNet(3, 4, (8,), (0.2, 0.5), True, sparse=False, init_std=0.1).eval()
    >>> net(torch.tensor([0, 2]), torch.tensor([1.0, 1.0]), torch.tensor([0, 0]), 1).shape
    torch.Size([1])
    """

    bag = True

    def __init__(self, n_features: int, n_factors: int, hidden: Sequence[int],
                 dropout: Sequence[float], batch_norm: bool, *, sparse: bool,
                 init_std: float) -> None:
        super().__init__()
        self.linear = _Linear(n_features, sparse)
        self.factors = _embedding(n_features, n_factors, sparse, init_std)
        pool: list[nn.Module] = [nn.BatchNorm1d(n_factors)] if batch_norm else []
        self.pool = nn.Sequential(*pool, _Dropout(dropout[0]))
        self.mlp = _mlp(n_factors, hidden, dropout[1], batch_norm)

    def embeddings(self) -> list[nn.Embedding]:
        return [self.linear.weight, self.factors]

    def forward(self, indices, values, rows, n_rows):
        s, s2 = _bag_sums(self.factors, indices, values, rows, n_rows)
        deep = self.mlp(self.pool(0.5 * (s * s - s2)))[:, 0]
        return self.linear.bags(indices, values, rows, n_rows) + deep


class DeepFMNet(nn.Module):
    """Guo et al.'s DeepFM: the FM over the field embeddings ``e_j = v_i x_i`` (feature ``i``
    of field ``j``) plus an MLP (ReLU, dropout) over their concatenation ``[e_1, ..., e_m]``,
    both sharing the embeddings.

    Examples
    --------
    >>> import torch
    >>> net = DeepFMNet(4, 2, 3, (8,), 0.5, sparse=False, init_std=0.1).eval()
    >>> net(torch.tensor([[0, 2]]), torch.tensor([[1.0, 1.0]])).shape
    torch.Size([1])
    """

    bag = False

    def __init__(self, n_features: int, n_fields: int, n_factors: int, hidden: Sequence[int],
                 dropout: float, *, sparse: bool, init_std: float) -> None:
        super().__init__()
        self.linear = _Linear(n_features, sparse)
        self.factors = _embedding(n_features, n_factors, sparse, init_std)
        self.mlp = _mlp(n_fields * n_factors, hidden, dropout, False)

    def embeddings(self) -> list[nn.Embedding]:
        return [self.linear.weight, self.factors]

    def start_as_fm(self) -> None:
        """Zero the MLP's output layer: the network computes its FM part alone."""
        nn.init.zeros_(self.mlp[-1].weight)

    def forward(self, ids, values):
        e = _times(self.factors(ids), values)
        s = e.sum(1)
        fm = self.linear.slots(ids, values) + 0.5 * (s * s - (e * e).sum(1)).sum(1)
        return fm + self.mlp(e.flatten(1))[:, 0]


class AFMNet(nn.Module):
    """Xiao et al.'s AFM: ``w0 + sum_i w_i x_i + p^T sum_{i<j} a_ij (e_i * e_j)`` over the
    field embeddings ``e_j = v_i x_i``, the attention ``a = softmax_{pairs}(h^T ReLU(W (e_i *
    e_j) + b))``, dropout on the pooled pairs.

    Examples
    --------
    >>> import torch
    >>> net = AFMNet(4, 3, 2, 5, 0.5, sparse=False, init_std=0.1).eval()
    >>> net(torch.tensor([[0, 2, 3]]), torch.tensor([[1.0, 1.0, 1.0]])).shape
    torch.Size([1])
    """

    bag = False

    def __init__(self, n_features: int, n_fields: int, n_factors: int, attention_size: int,
                 dropout: float, *, sparse: bool, init_std: float) -> None:
        super().__init__()
        self.linear = _Linear(n_features, sparse)
        self.factors = _embedding(n_features, n_factors, sparse, init_std)
        self.attention = nn.Sequential(nn.Linear(n_factors, attention_size), nn.ReLU(),
                                       nn.Linear(attention_size, 1, bias=False))
        self.dropout = _Dropout(dropout)
        self.projection = nn.Linear(n_factors, 1, bias=False)

    def embeddings(self) -> list[nn.Embedding]:
        return [self.linear.weight, self.factors]

    def forward(self, ids, values):
        e = _times(self.factors(ids), values)
        # the pairs i < j, i-major: slices and a concatenation (whose backward is cheap)
        pairs = torch.cat([e[:, i:i + 1] * e[:, i + 1:] for i in range(e.shape[1] - 1)]
                          or [e[:, :0]], 1)
        weights = torch.softmax(self.attention(pairs)[..., 0], dim=1)   # (batch, pairs)
        pooled = self.dropout(torch.einsum("bp,bpk->bk", weights, pairs))
        return self.linear.slots(ids, values) + self.projection(pooled)[:, 0]


class FFMNet(nn.Module):
    """Juan et al.'s field-aware FM: ``w0 + sum_i w_i x_i + sum_{i<j} <v_{i,f(j)}, v_{j,f(i)}>
    x_i x_j`` over the one feature of each field, ``v_{i,g}`` feature ``i``'s factor toward
    field ``g``.

    Examples
    --------
    >>> import torch
    >>> net = FFMNet(4, 2, 3, sparse=False, init_std=0.1)
    >>> net(torch.tensor([[0, 2]]), torch.tensor([[1.0, 1.0]])).shape
    torch.Size([1])
    """

    bag = False

    def __init__(self, n_features: int, n_fields: int, n_factors: int, *, sparse: bool,
                 init_std: float) -> None:
        super().__init__()
        self.n_fields, self.n_factors = n_fields, n_factors
        self.linear = _Linear(n_features, sparse)
        self.factors = _embedding(n_features, n_fields * n_factors, sparse, init_std)

    def embeddings(self) -> list[nn.Embedding]:
        return [self.linear.weight, self.factors]

    def forward(self, ids, values):
        e = self.factors(ids).view(*ids.shape, self.n_fields, self.n_factors)
        e = _times(e, values)
        dots = (e * e.transpose(1, 2)).sum(-1)          # [a, b]: <v_{a's feature, b}, v_{b's, a}>
        pairs = (dots.sum((1, 2)) - dots.diagonal(dim1=1, dim2=2).sum(1)) / 2
        return self.linear.slots(ids, values) + pairs


class IFMNet(nn.Module):
    """Yu et al.'s input-aware FM: the factor estimating network (FEN) reads the field
    embeddings ``e_j = v_i x_i`` (feature ``i`` of field ``j``) concatenated, ``U = P
    MLP([e_1, ..., e_m])``, and gives every field the input-aware factor ``m_j = m
    softmax(U)_j``; then the FM over the reweighted terms: ``w0 + sum_j m_j w_i x_i +
    sum_j<l <m_j e_j, m_l e_l>``, dropout on the pooled pairs ``sum_j<l m_j e_j * m_l e_l``.

    Examples
    --------
    >>> import torch
    >>> net = IFMNet(4, 2, 3, (8,), (0.3, 0.2), True, sparse=False, init_std=0.1).eval()
    >>> net(torch.tensor([[0, 2]]), torch.tensor([[1.0, 1.0]])).shape
    torch.Size([1])
    """

    bag = False

    def __init__(self, n_features: int, n_fields: int, n_factors: int, hidden: Sequence[int],
                 dropout: Sequence[float], batch_norm: bool, *, sparse: bool,
                 init_std: float) -> None:
        super().__init__()
        self.linear = _Linear(n_features, sparse)
        self.factors = _embedding(n_features, n_factors, sparse, init_std)
        self.fen = _mlp(n_fields * n_factors, hidden, dropout[0], batch_norm, n_out=n_fields)
        self.dropout = _Dropout(dropout[1])

    def embeddings(self) -> list[nn.Embedding]:
        return [self.linear.weight, self.factors]

    def start_as_fm(self) -> None:
        """Zero the FEN's output layer: every factor ``m_j`` is 1, the network an FM."""
        nn.init.zeros_(self.fen[-1].weight)

    def forward(self, ids, values):
        e = _times(self.factors(ids), values)
        m = ids.shape[1] * torch.softmax(self.fen(e.flatten(1)), dim=1)   # (batch, n_fields)
        e = e * m[..., None]
        s = e.sum(1)
        pooled = self.dropout(0.5 * (s * s - (e * e).sum(1)))
        linear = self.linear.bias + (_times(self.linear.weight(ids)[..., 0], values) * m).sum(1)
        return linear + pooled.sum(1)


class CFMNet(nn.Module):
    """Xin et al.'s convolutional FM: the outer products ``e_a e_b^T`` of the field
    embeddings ``e_j = v_i x_i`` (``a < b``) stacked into an interaction cube of shape
    ``(pairs, k, k)``, read by ``log2 k`` 3-D convolutions with ReLU (kernels 2x2 over the
    embedding dimensions with stride 2; 2 deep with stride 1 along the pairs while more than
    one pair is left, 1 deep in the last layer, as the authors' code does) down to ``(pairs
    left, 1, 1)`` per channel; dropout on that vector, a linear prediction layer, plus
    ``w0 + sum_i w_i x_i``. With ``groups`` (the group of every field), the fields of a
    group are first pooled into one embedding by self-attention, ``e_g = sum_{j in g} a_j
    e_j`` with ``a = softmax_{j in g}(h^T tanh(W e_j))``, and the cube pairs the groups.

    Examples
    --------
    >>> import torch
    >>> net = CFMNet(4, 3, 4, 2, 0.0, None, 8, sparse=False, init_std=0.1)
    >>> net(torch.tensor([[0, 2, 3]]), torch.tensor([[1.0, 1.0, 1.0]])).shape
    torch.Size([1])
    """

    bag = False

    def __init__(self, n_features: int, n_fields: int, n_factors: int, n_channels: int,
                 dropout: float, groups: torch.Tensor | None, attention_size: int, *,
                 sparse: bool, init_std: float) -> None:
        super().__init__()
        self.linear = _Linear(n_features, sparse)
        self.factors = _embedding(n_features, n_factors, sparse, init_std)
        self.attention = None
        if groups is not None:
            members = torch.arange(int(groups.max()) + 1)[:, None] == groups[None, :]
            self.register_buffer("members", members, persistent=False)   # (groups, fields)
            self.attention = nn.Sequential(nn.Linear(n_factors, attention_size, bias=False),
                                           nn.Tanh(), nn.Linear(attention_size, 1, bias=False))
            n_fields = members.shape[0]
        left, right = torch.triu_indices(n_fields, n_fields, offset=1)
        self.register_buffer("left", left, persistent=False)
        self.register_buffer("right", right, persistent=False)
        layers: list[nn.Module] = []
        depth, c_in, n_layers = len(left), 1, n_factors.bit_length() - 1
        for layer in range(n_layers):
            deep = 2 if depth > 1 and layer < n_layers - 1 else 1
            conv = nn.Conv3d(c_in, n_channels, (deep, 2, 2), stride=(1, 2, 2))
            nn.init.trunc_normal_(conv.weight, std=0.1, a=-0.2, b=0.2)   # the authors' start:
            nn.init.constant_(conv.bias, 0.1)                           # every ReLU alive
            layers += [conv, nn.ReLU()]
            depth, c_in = depth - deep + 1, n_channels
        self.conv = nn.Sequential(*layers)
        self.dropout = _Dropout(dropout)
        self.projection = nn.Linear(depth * n_channels, 1, bias=False)

    def embeddings(self) -> list[nn.Embedding]:
        return [self.linear.weight, self.factors]

    def forward(self, ids, values):
        e = _times(self.factors(ids), values)                          # (batch, fields, k)
        if self.attention is not None:
            logits = self.attention(e)[..., 0][:, None, :]                  # (batch, 1, fields)
            weights = torch.softmax(logits.masked_fill(~self.members, -torch.inf), dim=2)
            e = weights @ e                                                 # (batch, groups, k)
        cube = torch.einsum("bpi,bpj->bpij", e[:, self.left], e[:, self.right])
        out = self.dropout(self.conv(cube[:, None]).flatten(1))
        return self.linear.slots(ids, values) + self.projection(out)[:, 0]
