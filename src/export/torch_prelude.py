# The fixed part of every module that `nnc torch` writes: nnc's semantics (docs/language.md,
# docs/seq2seq.md) on top of stock torch.nn pieces. src/export/torch.ts copies the sections a spec
# needs into the emitted module, in this order; `# %% NAME (needs: A, B)` starts a section, and the
# import lines at the top of a section are gathered at the top of the emitted file.

# %% core
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

#: Per stateful layer (a recurrent layer, a causal self-attention's key cache), what a decoding step
#: carries to the next: tensors with the batch on axis 0.
State = Dict[nn.Module, Tuple[Tensor, ...]]


class Final:
    """A recurrent layer's final state (PyTorch's h_n and c_n), batch first: h [B, layers * directions, H]."""

    def __init__(self, h: Tensor, c: Optional[Tensor], layers: int, directions: int) -> None:
        self.h, self.c, self.layers, self.directions = h, c, layers, directions

    def per_layer(self, t: Tensor) -> Tensor:
        """[B, layers, directions * H]: per layer, the forward state next to the backward one ([fwd; bwd])."""
        return t.reshape(t.shape[0], self.layers, -1)


class Context:
    """What a chain's layers read besides their input x.

    lengths: [B] valid steps per row (steps past them are padding, which never affects valid steps);
    state: the decoding state (recurrent layers start from it and leave their final state in it);
    memory, memory_valid: a seq2seq decoder's encoder output [B, S, D] and its valid positions [B, S];
    offsets: [B] the position of each row's first step (0, except while generating);
    keep: whether causal self-attention keeps its keys in `state` (generate() does; forward() does not);
    final: the last recurrent layer's final state (a seq2seq decoder starts from the encoder's).
    """

    def __init__(self, lengths: Tensor, state: Optional[State] = None, memory: Optional[Tensor] = None,
                 memory_valid: Optional[Tensor] = None, offsets: Optional[Tensor] = None, keep: bool = False) -> None:
        self.lengths = lengths
        self.state: State = {} if state is None else state
        self.memory, self.memory_valid = memory, memory_valid
        self.offsets = torch.zeros_like(lengths) if offsets is None else offsets
        self.keep = keep
        self.final: Optional[Final] = None

    def valid(self, steps: int) -> Tensor:
        """[B, steps] bool: True at valid steps."""
        return steps_valid(self.lengths, steps)


def steps_valid(lengths: Tensor, steps: int) -> Tensor:
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def lengths_of(x: Tensor, lengths: Optional[Tensor], name: str) -> Tensor:
    """The valid length of each row (all of x's steps when not given), checked: 1 <= length <= steps."""
    if lengths is None:
        return torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=x.device)
    if lengths.shape != (x.shape[0],):
        raise ValueError(f"{name}_lengths must have one entry per row of {name} ({x.shape[0]}), got shape {tuple(lengths.shape)}")
    if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]):
        raise ValueError(f"{name}_lengths must be in [1, {x.shape[1]}] (the steps of {name}), got {lengths.tolist()}")
    return lengths


def tokens_in(x: Tensor, vocab: int, name: str) -> Tensor:
    """Token ids [B, T] as int64, checked against the vocabulary."""
    x = torch.as_tensor(x).long()
    if x.dim() != 2:
        raise ValueError(f"{name} must be token ids [B, T], got shape {tuple(x.shape)}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab):
        raise ValueError(f"{name} ids must be in [0, {vocab}), got values in [{int(x.min())}, {int(x.max())}]")
    return x


def vectors_in(x: Tensor, dim: int, name: str) -> Tensor:
    """Feature vectors [B, T, dim] as float32."""
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() != 3 or x.shape[2] != dim:
        raise ValueError(f"{name} must be vectors [B, T, {dim}], got shape {tuple(x.shape)}")
    return x


def zero_padded(y: Tensor, lengths: Tensor) -> Tensor:
    """A per-step output with its padded steps set to 0."""
    return y.masked_fill(~steps_valid(lengths, y.shape[1])[:, :, None], 0.0)


def merged(y: Tensor, hidden: int, merge: str) -> Tensor:
    """A bidirectional layer's output [B, T, 2H] with its directions combined (merge = concat | sum | mean)."""
    if merge == "concat":
        return y
    both = y[..., :hidden] + y[..., hidden:]
    return both if merge == "sum" else both * 0.5


# %% recurrent
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def initial(rnn: nn.RNNBase, ctx: Context) -> Optional[Tuple[Tensor, ...]]:
    """The layer's initial state as PyTorch's hx ([layers * directions, B, H]), or None for zeros."""
    s = ctx.state.get(rnn)
    if s is None:
        return None
    return tuple(t.transpose(0, 1).contiguous() for t in s)


def keep_final(rnn: nn.RNNBase, ctx: Context, hn: Tuple[Tensor, ...]) -> None:
    """Records the layer's final state (per row: at its last valid step) in ctx.state and ctx.final."""
    s = tuple(t.transpose(0, 1) for t in hn)
    ctx.state[rnn] = s
    ctx.final = Final(s[0], s[1] if len(s) > 1 else None, rnn.num_layers, 2 if rnn.bidirectional else 1)


def hx_arg(rnn: nn.RNNBase, hx: Optional[Tuple[Tensor, ...]]):
    if hx is None:
        return None
    return hx if isinstance(rnn, nn.LSTM) else hx[0]


def as_tuple(hn) -> Tuple[Tensor, ...]:
    return tuple(hn) if isinstance(hn, tuple) else (hn,)


def recurrent(rnn: nn.RNNBase, x: Tensor, ctx: Context, merge: str = "concat") -> Tensor:
    """rnn / gru / lstm over padded rows, as pack_padded_sequence runs it: each row stops at its length
    (a backward direction starts at the row's last valid step) and padded outputs are 0."""
    hx = initial(rnn, ctx)
    if hasattr(rnn, "scan"):  # a layer that runs its own recurrence (GRUResetBefore)
        y, hn = rnn.scan(x, ctx.lengths, hx)
    else:
        packed = pack_padded_sequence(x, ctx.lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h = rnn(packed, hx_arg(rnn, hx))
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        hn = as_tuple(h)
    keep_final(rnn, ctx, hn)
    return merged(y, rnn.hidden_size, merge) if rnn.bidirectional else y


# %% gru_before (needs: recurrent)
class GRUResetBefore(nn.GRU):
    """`gru reset = before` (Cho et al.): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), with nn.GRU's
    parameters. PyTorch has no such cell, so the recurrence is written out step by step."""

    def cell(self, x: Tensor, h: Tensor, layer: int, suffix: str) -> Tensor:
        w_ih, w_hh = getattr(self, f"weight_ih_l{layer}{suffix}"), getattr(self, f"weight_hh_l{layer}{suffix}")
        gi = x @ w_ih.t()
        if self.bias:
            gi = gi + getattr(self, f"bias_ih_l{layer}{suffix}")
        b_hh = getattr(self, f"bias_hh_l{layer}{suffix}") if self.bias else torch.zeros(w_hh.shape[0], dtype=x.dtype, device=x.device)
        H = self.hidden_size
        r = torch.sigmoid(gi[:, :H] + h @ w_hh[:H].t() + b_hh[:H])
        z = torch.sigmoid(gi[:, H:2 * H] + h @ w_hh[H:2 * H].t() + b_hh[H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + (r * h) @ w_hh[2 * H:].t() + b_hh[2 * H:])
        return (1 - z) * n + z * h

    def scan(self, x: Tensor, lengths: Tensor, hx: Optional[Tuple[Tensor, ...]]) -> Tuple[Tensor, Tuple[Tensor]]:
        """-> (outputs [B, T, directions * H], 0 at padded steps; (h_n [layers * directions, B, H],))."""
        B, T, _ = x.shape
        D = 2 if self.bidirectional else 1
        valid = steps_valid(lengths, T)
        h0 = hx[0] if hx is not None else x.new_zeros(self.num_layers * D, B, self.hidden_size)
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                h = h0[layer * D + d]
                ys = [x.new_zeros(B, self.hidden_size)] * T
                # the backward direction walks each row from its last valid step down to step 0
                order = range(T - 1, -1, -1) if d == 1 else range(T)
                for t in order:
                    m = valid[:, t:t + 1]
                    h = torch.where(m, self.cell(x[:, t], h, layer, "_reverse" if d == 1 else ""), h)
                    ys[t] = h * m
                outs.append(torch.stack(ys, 1))
                finals.append(h)
            x = torch.cat(outs, -1)
        return x, (torch.stack(finals),)


# %% bahdanau (needs: recurrent)
def attend_then_recurrent(attention: nn.Module, rnn: nn.RNNBase, x: Tensor, ctx: Context) -> Tensor:
    """Attention placed before a recurrent layer (Bahdanau): at step i the query is the layer's previous h
    (its first layer's), and the layer reads [x_i; context_i]. One step at a time; a row's state stops
    at its last valid step, and padded outputs are 0."""
    B, T, _ = x.shape
    valid = ctx.valid(T)
    hx = initial(rnn, ctx)
    if hx is None:
        hx = tuple(x.new_zeros(rnn.num_layers, B, rnn.hidden_size) for _ in range(2 if isinstance(rnn, nn.LSTM) else 1))
    outs = []
    for t in range(T):
        context = attention(hx[0][0][:, None, :], ctx.memory, ctx.memory_valid)
        step = torch.cat([x[:, t:t + 1], context], -1)
        if hasattr(rnn, "scan"):
            out, h = rnn.scan(step, torch.ones_like(ctx.lengths), hx)
        else:
            out, h = rnn(step, hx_arg(rnn, hx))
        m = valid[:, t]
        hx = tuple(torch.where(m[None, :, None], new, old) for new, old in zip(as_tuple(h), hx))
        outs.append(out[:, 0] * m[:, None])
    keep_final(rnn, ctx, hx)
    return torch.stack(outs, 1)


# %% initial_state (needs: core)
def final_state(final: Final, layers: int, lstm: bool) -> Tuple[Tensor, ...]:
    """`decoder init = final`: decoder layer l starts from encoder layer l's final state when both have the
    same number of layers, else every layer from the encoder's top layer. c too from an LSTM to an LSTM,
    else c0 = 0."""
    def pick(t: Tensor) -> Tensor:
        per = final.per_layer(t)
        return per if final.layers == layers else per[:, -1:].expand(-1, layers, -1)
    h = pick(final.h)
    if not lstm:
        return (h,)
    return (h, pick(final.c) if final.c is not None else torch.zeros_like(h))


def bridge_state(bridge: nn.Linear, final: Final, layers: int, lstm: bool) -> Tuple[Tensor, ...]:
    """`decoder init = bridge`: every layer starts from h0 = tanh(W f + b), f = the encoder's top layer's
    final h ([fwd; bwd]); an LSTM's c0 = 0."""
    h = torch.tanh(bridge(final.per_layer(final.h)[:, -1]))[:, None, :].expand(-1, layers, -1)
    return (h, torch.zeros_like(h)) if lstm else (h,)


# %% attention (needs: core)
import math

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


def allowed(key_valid: Tensor, queries: int, causal_start: Optional[int]) -> Tensor:
    """[B, Tq, S] bool: which keys each query may read (valid keys; with causal_start, the query at step i
    reads keys up to causal_start + i)."""
    m = key_valid[:, None, :].expand(-1, queries, -1)
    if causal_start is not None:
        S = key_valid.shape[1]
        q = torch.arange(queries, device=key_valid.device)[:, None] + causal_start
        m = m & (torch.arange(S, device=key_valid.device)[None, :] <= q)[None]
    return m


def weigh(e: Tensor, mask: Tensor, normalize: str) -> Tensor:
    """Scores -> weights: softmax over the allowed keys, or independent sigmoid gates; exactly 0 elsewhere."""
    if normalize == "softmax":
        return torch.softmax(e.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.sigmoid(e) * mask.to(e.dtype)


class Attention(nn.Module):
    """Attention without heads: context_q = sum_k weight(score(q, k)) k over the allowed keys (the values are
    the keys). Subclasses define the score (docs/seq2seq.md's table) and own its parameters."""

    def __init__(self, normalize: str = "softmax", act: str = "tanh") -> None:
        super().__init__()
        self.normalize = normalize
        self.act_name = act

    def act(self, x: Tensor) -> Tensor:
        return ACTIVATIONS[self.act_name](x)

    def reset_parameters(self) -> None:
        """Its own parameters uniform in +-1/sqrt(fan in), as nn.Linear starts (loaded weights replace them)."""
        for p in self._parameters.values():
            bound = 1 / math.sqrt(p.shape[-1])
            nn.init.uniform_(p, -bound, bound)

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        """q [B, Tq, Dq], k [B, S, Dk] -> e [B, Tq, S]."""
        raise NotImplementedError

    def forward(self, q: Tensor, keys: Tensor, key_valid: Tensor, causal_start: Optional[int] = None) -> Tensor:
        w = weigh(self.score(q, keys), allowed(key_valid, q.shape[1], causal_start), self.normalize)
        return w @ keys

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}, act={self.act_name!r}"


def pair(q: Tensor, k: Tensor) -> Tuple[Tensor, Tensor]:
    """Every (query, key) pair: q [B, Tq, D] -> [B, Tq, S, D]; k [B, S, D] -> [B, Tq, S, D]."""
    B, Tq, S = q.shape[0], q.shape[1], k.shape[1]
    return q[:, :, None, :].expand(B, Tq, S, q.shape[2]), k[:, None, :, :].expand(B, Tq, S, k.shape[2])


# %% score_dot (needs: attention)
class DotAttention(Attention):
    """score = dot: q . k (Luong)."""

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        return q @ k.transpose(1, 2)


# %% score_scaled (needs: attention)
class ScaledAttention(Attention):
    """score = scaled: q . k / sqrt(d) (Vaswani)."""

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        return q @ k.transpose(1, 2) / math.sqrt(k.shape[-1])


# %% score_cosine (needs: attention)
class CosineAttention(Attention):
    """score = cosine: q . k / max(|q| |k|, 1e-8)."""

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        norms = q.norm(dim=-1)[:, :, None] * k.norm(dim=-1)[:, None, :]
        return q @ k.transpose(1, 2) / torch.clamp(norms, min=1e-8)


# %% score_general (needs: attention)
class GeneralAttention(Attention):
    """score = general: q^T W k (Luong); weight [Dq, Dk]."""

    def __init__(self, dq: int, dk: int, normalize: str = "softmax") -> None:
        super().__init__(normalize)
        self.weight = nn.Parameter(torch.empty(dq, dk))

        self.reset_parameters()

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        return q @ (k @ self.weight.t()).transpose(1, 2)


# %% score_biased_general (needs: attention)
class BiasedGeneralAttention(Attention):
    """score = biased_general: k^T (W q + b); weight [Dk, Dq], bias [Dk]."""

    def __init__(self, dq: int, dk: int, normalize: str = "softmax") -> None:
        super().__init__(normalize)
        self.weight = nn.Parameter(torch.empty(dk, dq))
        self.bias = nn.Parameter(torch.empty(dk))

        self.reset_parameters()

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        return (q @ self.weight.t() + self.bias) @ k.transpose(1, 2)


# %% score_activated_general (needs: attention)
class ActivatedGeneralAttention(Attention):
    """score = activated_general: act(q^T W k + b); weight [Dq, Dk], bias [1]."""

    def __init__(self, dq: int, dk: int, normalize: str = "softmax", act: str = "tanh") -> None:
        super().__init__(normalize, act)
        self.weight = nn.Parameter(torch.empty(dq, dk))
        self.bias = nn.Parameter(torch.empty(1))

        self.reset_parameters()

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        return self.act(q @ (k @ self.weight.t()).transpose(1, 2) + self.bias)


# %% score_concat (needs: attention)
class ConcatAttention(Attention):
    """score = concat: v^T act(W [k; q] + b) (Luong); proj = nn.Linear(Dk + Dq, dim), v = nn.Linear(dim, 1)."""

    def __init__(self, pair_size: int, dim: int, normalize: str = "softmax", act: str = "tanh") -> None:
        super().__init__(normalize, act)
        self.proj = nn.Linear(pair_size, dim)
        self.v = nn.Linear(dim, 1, bias=False)

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        qq, kk = pair(q, k)
        return self.v(self.act(self.proj(torch.cat([kk, qq], -1))))[..., 0]


# %% score_additive (needs: attention)
class AdditiveAttention(Attention):
    """score = additive: v^T act(W1 k + W2 q + b) (Bahdanau); key, query, v: nn.Linear without bias; bias [dim]."""

    def __init__(self, dq: int, dk: int, dim: int, normalize: str = "softmax", act: str = "tanh") -> None:
        super().__init__(normalize, act)
        self.key = nn.Linear(dk, dim, bias=False)
        self.query = nn.Linear(dq, dim, bias=False)
        self.bias = nn.Parameter(torch.empty(dim))
        self.v = nn.Linear(dim, 1, bias=False)

        self.reset_parameters()

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        h = self.key(k)[:, None, :, :] + self.query(q)[:, :, None, :] + self.bias
        return self.v(self.act(h))[..., 0]


# %% score_deep (needs: attention)
class DeepAttention(Attention):
    """score = deep: E0 = [k; q], E_l = act(W_l E_(l-1) + b_l), e = v^T E_depth + v_b (Pavlopoulos et al.)."""

    def __init__(self, pair_size: int, dim: int, depth: int, normalize: str = "softmax", act: str = "tanh") -> None:
        super().__init__(normalize, act)
        self.layers = nn.ModuleList([nn.Linear(pair_size if l == 0 else dim, dim) for l in range(depth)])
        self.v = nn.Linear(dim, 1)

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        qq, kk = pair(q, k)
        e = torch.cat([kk, qq], -1)
        for layer in self.layers:
            e = self.act(layer(e))
        return self.v(e)[..., 0]


# %% score_location (needs: attention)
class LocationAttention(Attention):
    """score = location: e = (W q + b)[s], one learned score per key position s < max_len."""

    def __init__(self, dq: int, max_len: int, normalize: str = "softmax") -> None:
        super().__init__(normalize)
        self.weight = nn.Parameter(torch.empty(max_len, dq))
        self.bias = nn.Parameter(torch.empty(max_len))

        self.reset_parameters()

    def score(self, q: Tensor, k: Tensor) -> Tensor:
        S = k.shape[1]
        if S > self.weight.shape[0]:
            raise ValueError(f"score = location has {self.weight.shape[0]} positions (max_len), but there are {S} keys")
        return (q @ self.weight.t() + self.bias)[:, :, :S]


# %% heads (needs: attention)
class HeadsAttention(nn.MultiheadAttention):
    """`attention heads = N`: nn.MultiheadAttention (batch_first), whose own forward runs the default score
    (scaled, softmax). With score = dot or cosine per head, or normalize = sigmoid, the same parameters
    run the computation written out below."""

    def __init__(self, embed_dim: int, num_heads: int, kdim: int, score: str = "scaled", normalize: str = "softmax") -> None:
        super().__init__(embed_dim, num_heads, kdim=kdim, vdim=kdim, batch_first=True)
        self.score, self.normalize = score, normalize

    def forward(self, q: Tensor, keys: Tensor, key_valid: Tensor, causal_start: Optional[int] = None) -> Tensor:
        mask = allowed(key_valid, q.shape[1], causal_start)
        if self.score == "scaled" and self.normalize == "softmax":
            attn_mask = ~mask.repeat_interleave(self.num_heads, dim=0)  # [B * heads, Tq, S], True = masked
            out, _ = super().forward(q, keys, keys, attn_mask=attn_mask, need_weights=False)
            return out
        return self.by_hand(q, keys, mask)

    def by_hand(self, q: Tensor, k: Tensor, mask: Tensor) -> Tensor:
        E, N = self.embed_dim, self.num_heads
        d = E // N
        B, Tq, S = q.shape[0], q.shape[1], k.shape[1]
        if self._qkv_same_embed_dim:
            wq, wk, wv = self.in_proj_weight.chunk(3, 0)
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        bq, bk, bv = self.in_proj_bias.chunk(3, 0)
        qp = (q @ wq.t() + bq).reshape(B, Tq, N, d).transpose(1, 2)  # [B, heads, Tq, d]
        kp = (k @ wk.t() + bk).reshape(B, S, N, d).transpose(1, 2)
        vp = (k @ wv.t() + bv).reshape(B, S, N, d).transpose(1, 2)
        e = qp @ kp.transpose(-1, -2)
        if self.score == "scaled":
            e = e / math.sqrt(d)
        elif self.score == "cosine":
            e = e / torch.clamp(qp.norm(dim=-1)[..., :, None] * kp.norm(dim=-1)[..., None, :], min=1e-8)
        w = weigh(e, mask[:, None], self.normalize)
        return self.out_proj((w @ vp).transpose(1, 2).reshape(B, Tq, E))


# %% self_attention (needs: attention)
def self_attention(attention: nn.Module, x: Tensor, ctx: Context, causal: bool) -> Tensor:
    """`attention self`: queries, keys and values are x; padded keys masked, and with causal later keys too.
    While generating, a causal layer keeps its keys in ctx.state and each step appends its own."""
    keys, key_valid, start = x, ctx.valid(x.shape[1]), 0
    if causal and ctx.keep:
        past = ctx.state.get(attention)
        if past is not None:
            start = past[0].shape[1]
            keys, key_valid = torch.cat([past[0], keys], 1), torch.cat([past[1], key_valid], 1)
        ctx.state[attention] = (keys, key_valid)
    return attention(x, keys, key_valid, start if causal else None)


# %% positional (needs: core)
def positions(x: Tensor, ctx: Context) -> Tensor:
    """[B, T] absolute positions of x's steps."""
    return ctx.offsets[:, None] + torch.arange(x.shape[1], device=x.device)[None, :]


def sinusoid(pos: Tensor, dim: int) -> Tensor:
    """Vaswani's interleaved table at positions pos: PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...)
    (computed in float64)."""
    two_i = torch.arange(0, dim, 2, dtype=torch.float64, device=pos.device)
    angle = pos.to(torch.float64)[..., None] / torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=pos.device), two_i / dim)
    pe = torch.zeros(*pos.shape, dim, dtype=torch.float64, device=pos.device)
    pe[..., 0::2] = torch.sin(angle)
    pe[..., 1::2] = torch.cos(angle[..., :dim // 2])
    return pe.to(torch.float32)


def learned_positions(table: nn.Embedding, pos: Tensor) -> Tensor:
    if pos.numel() and int(pos.max()) >= table.num_embeddings:
        raise ValueError(f"position {int(pos.max())} is past the learned positions (positional learned, max_len = {table.num_embeddings})")
    return table(pos)


# %% pool (needs: core)
def pool(x: Tensor, lengths: Tensor, mode: str) -> Tensor:
    """[B, T, D] -> [B, D] over each row's valid steps: last | first | mean | max."""
    B, T, _ = x.shape
    if mode == "last":
        return x[torch.arange(B, device=x.device), lengths - 1]
    if mode == "first":
        return x[:, 0]
    valid = steps_valid(lengths, T)[:, :, None]
    if mode == "mean":
        return (x * valid.to(x.dtype)).sum(1) / lengths[:, None].to(x.dtype)
    return x.masked_fill(~valid, float("-inf")).max(1).values


def pool_last_bidirectional(final: Final, merge: str) -> Tensor:
    """`pool last` right after a bidirectional layer: PyTorch's h_n of its last layer, the forward state at
    the last valid step next to the backward state at step 0, merged as the layer merges."""
    hn = final.per_layer(final.h)[:, -1]
    return merged(hn, hn.shape[-1] // 2, merge)


# %% flatten (needs: core)
def flatten(x: Tensor, steps: int) -> Tensor:
    """[B, T, D] -> [B, T * D] for a fixed window of `steps` steps (the input's max_len)."""
    if x.shape[1] != steps:
        raise ValueError(f"flatten needs exactly {steps} steps (the input's max_len), got {x.shape[1]}")
    return x.reshape(x.shape[0], -1)


# %% decoding (needs: core)
import math
from typing import List

class Generated:
    """generate()'s result. ids[b]: the tokens of row b (bos excluded, eos included when produced);
    scores[b]: their summed natural-log probability; n_best[b] (beam with n_best): the N best finished
    hypotheses as (ids, score), best first."""

    def __init__(self, ids: List[List[int]], scores: List[float], n_best: Optional[List[List[Tuple[List[int], float]]]] = None) -> None:
        self.ids, self.scores, self.n_best = ids, scores, n_best

    def __repr__(self) -> str:
        return f"Generated(ids={self.ids}, scores={self.scores})"


OPTIONS = ("strategy", "beam", "max_len", "bos", "eos", "temperature", "top_k", "seed", "length_normalize", "n_best")


def resolve_options(options: Dict[str, object], defaults: Dict[str, object], vocab: int) -> Dict[str, object]:
    """generate()'s options, then the spec's decode statement, then the contract's defaults (greedy, beam 4,
    max_len 50, bos 0, no eos, temperature 1, all of top_k, seed 0), each checked."""
    for k in options:
        if k not in OPTIONS:
            raise ValueError(f"generate option '{k}' is unknown; the options are {', '.join(OPTIONS)}")
    o = {**{k: v for k, v in defaults.items() if v is not None}, **{k: v for k, v in options.items() if v is not None}}

    def integer(k: str, default: Optional[int], lo: int, hi: Optional[int] = None) -> Optional[int]:
        v = o.get(k, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v >= hi):
            raise ValueError(f"generate option '{k}' must be an integer in [{lo}, {hi if hi is not None else 'inf'}), got {v!r}")
        return v

    strategy = o.get("strategy", "greedy")
    if strategy not in ("greedy", "beam", "sample"):
        raise ValueError(f"generate option 'strategy' must be one of 'greedy', 'beam', 'sample', got {strategy!r}")
    temperature = o.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"generate option 'temperature' must be a finite number > 0, got {temperature!r}")
    r = {
        "strategy": strategy, "beam": integer("beam", 4, 1), "max_len": integer("max_len", 50, 1),
        "bos": integer("bos", 0, 0, vocab), "eos": integer("eos", None, 0, vocab), "temperature": float(temperature),
        "top_k": integer("top_k", None, 1), "seed": integer("seed", 0, -(2 ** 53) + 1, 2 ** 53),
        "length_normalize": bool(o.get("length_normalize", False)), "n_best": integer("n_best", None, 1),
    }
    if r["n_best"] is not None and strategy != "beam":
        raise ValueError(f"generate option 'n_best' needs strategy 'beam', got strategy {strategy!r}")
    return r


def mulberry32(seed: int):
    """nnc's sampling PRNG (src/runtime/decode.ts): uniform floats in [0, 1) from a 32-bit seed."""
    a = seed % 2 ** 32
    M = 0xFFFFFFFF

    def imul(x: int, y: int) -> int:
        return (x * y) & M

    def draw() -> float:
        nonlocal a
        a = (a + 0x6D2B79F5) & M
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & M
        return ((t ^ (t >> 14)) & M) / 4294967296
    return draw


def log_probs(out: Tensor, readout: str) -> List[List[float]]:
    """A step's output [N, V] read as log-probabilities: log(p) after softmax, as is after log_softmax, else
    log_softmax(logits); computed in float64 and rounded to float32, as nnc does."""
    x = out.detach().to(torch.float64)
    if readout == "prob":
        x = torch.log(x)
    elif readout == "logits":
        x = x - torch.logsumexp(x, dim=-1, keepdim=True)
    return x.to(torch.float32).to(torch.float64).cpu().tolist()


def lp(x: float) -> float:
    return x if x > -math.inf else -math.inf  # NaN reads as -inf


def sample_pick(logp: List[float], u: float, temperature: float, top_k: Optional[int]) -> int:
    """logp / temperature, keep the top_k largest (ties: lower id), softmax, and the first kept id whose
    cumulative probability exceeds u (nnc's Sampler)."""
    V = len(logp)
    x = [lp(v) / temperature for v in logp]
    keep = [True] * V
    if top_k is not None and top_k < V:
        tau = sorted(x)[V - top_k]
        ties = top_k - sum(1 for v in x if v > tau)
        for i in range(V):
            if x[i] > tau:
                continue
            keep[i] = x[i] == tau and ties > 0
            ties -= keep[i]
    kept = [i for i in range(V) if keep[i]]
    m = max(x[i] for i in kept)
    if m == -math.inf:
        return kept[0]
    e = {i: math.exp(x[i] - m) for i in kept}
    total = sum(e[i] for i in kept)
    cum = 0.0
    for i in kept:
        cum += e[i] / total
        if cum > u:
            return i
    return kept[-1]


def argmax(logp: List[float]) -> int:
    best, bv = 0, lp(logp[0])
    for i in range(1, len(logp)):
        if logp[i] > bv:
            best, bv = i, logp[i]
    return best


def decode(session, o: Dict[str, object]) -> Generated:
    """greedy, sample and beam search over a session (begin(k, bos) and step(tokens, parents) give the
    log-probabilities [rows, V] of the next token), exactly as docs/seq2seq.md "Decoding" says."""
    if o["strategy"] == "beam":
        return beam_search(session, o)
    B, eos = session.batch, o["eos"]
    filler = eos if eos is not None else o["bos"]
    ids: List[List[int]] = [[] for _ in range(B)]
    scores = [0.0] * B
    done = [False] * B
    rng = mulberry32(o["seed"]) if o["strategy"] == "sample" else None
    logp = session.begin(1, o["bos"])
    for t in range(o["max_len"]):
        for b in range(B):
            u = rng() if rng else 0.0  # one draw per row per step, finished rows included
            if done[b]:
                continue
            tok = sample_pick(logp[b], u, o["temperature"], o["top_k"]) if rng else argmax(logp[b])
            ids[b].append(tok)
            scores[b] += lp(logp[b][tok])
            done[b] = tok == eos or t + 1 >= o["max_len"]
        if all(done):
            break
        logp = session.step([filler if done[b] else ids[b][-1] for b in range(B)], None)
    return Generated(ids, scores)


def beam_search(session, o: Dict[str, object]) -> Generated:
    """beam = K per input row: candidates ranked by summed log-probability (ties: lower parent rank, then
    lower id); an eos candidate within the first K ranks finishes; others continue until K continue; at
    max_len the alive ones finish as they are; a row stops once no alive hypothesis can beat its
    n_best-th finished one (without length normalisation)."""
    B, K, eos = session.batch, o["beam"], o["eos"]
    filler = eos if eos is not None else o["bos"]
    keep_n = o["n_best"] or 1
    norm = o["length_normalize"]

    def key(h):  # h = (score, ids, row)
        return h[0] / len(h[1]) if norm else h[0]
    alive: List[List[Tuple[float, List[int], int]]] = [[(0.0, [], b * K)] for b in range(B)]
    finished: List[List[Tuple[float, List[int], int]]] = [[] for _ in range(B)]
    results: List[Optional[Tuple[float, List[int], int]]] = [None] * B
    logp = session.begin(K, o["bos"])
    for t in range(o["max_len"]):
        last = t + 1 >= o["max_len"]
        for b in range(B):
            if results[b] is not None:
                continue
            cand = []
            for j, (score, hyp, _) in enumerate(alive[b]):
                row = logp[b * K + j]
                for v in range(len(row)):
                    s = score + lp(row[v])
                    cand.append((-math.inf if s != s else s, j, v))
            cand.sort(key=lambda c: (-c[0], c[1], c[2]))
            nxt, continuing = [], 0
            for r, (s, j, v) in enumerate(cand):
                if continuing >= K:
                    break
                if v == eos and r >= K:
                    continue
                h = (s, alive[b][j][1] + [v], b * K + j)
                if v != eos:
                    continuing += 1
                if v == eos or last:
                    finished[b].append(h)
                else:
                    nxt.append(h)
            alive[b] = nxt
            fs = sorted((h[0] for h in finished[b]), reverse=True)
            if not nxt or (not norm and len(fs) >= keep_n and nxt[0][0] <= fs[keep_n - 1]):
                best = finished[b][0]
                for h in finished[b]:
                    if key(h) > key(best):
                        best = h
                results[b] = best
        if all(r is not None for r in results):
            break
        tokens, parents = [], []
        for b in range(B):
            for j in range(K):
                if results[b] is None and j < len(alive[b]):
                    tokens.append(alive[b][j][1][-1])
                    parents.append(alive[b][j][2])
                else:
                    tokens.append(filler)
                    parents.append(b * K + j)
        logp = session.step(tokens, parents)
    best = [results[b] for b in range(B)]
    n_best = None
    if o["n_best"] is not None:
        n_best = [[(h[1], h[0]) for h in sorted(finished[b], key=key, reverse=True)[:o["n_best"]]] for b in range(B)]
    return Generated([h[1] for h in best], [h[0] for h in best], n_best)


def reorder(state: State, rows: Tensor) -> State:
    return {k: tuple(t.index_select(0, rows) for t in v) for k, v in state.items()}


class LanguageModelSession:
    """A language model decoding: the prompt [B, P] (with lengths) is consumed first, the first token comes
    from each row's last valid prompt step, and each generated token is placed after its row's prompt."""

    def __init__(self, model: nn.Module, prompt: Tensor, lengths: Tensor) -> None:
        self.model, self.prompt, self.lengths, self.batch = model, prompt, lengths, prompt.shape[0]

    def begin(self, k: int, bos: int) -> List[List[float]]:
        ctx = Context(self.lengths, keep=True)
        y = self.model.run(self.prompt, ctx)
        last = y[torch.arange(self.batch, device=y.device), self.lengths - 1]
        rows = torch.arange(self.batch, device=y.device).repeat_interleave(k)
        self.state = reorder(ctx.state, rows)
        self.offsets = self.lengths.index_select(0, rows)
        return log_probs(last.index_select(0, rows), self.model.READOUT)

    def step(self, tokens: List[int], parents: Optional[List[int]]) -> List[List[float]]:
        x = torch.tensor(tokens, dtype=torch.long, device=self.offsets.device)[:, None]
        if parents is not None:
            self.state = reorder(self.state, torch.tensor(parents, device=x.device))
        ctx = Context(torch.ones_like(self.offsets), self.state, offsets=self.offsets, keep=True)
        y = self.model.run(x, ctx)
        self.state, self.offsets = ctx.state, self.offsets + 1
        return log_probs(y[:, 0], self.model.READOUT)


class Seq2SeqSession:
    """A seq2seq decoding: the encoder runs once; the decoder starts from `init` and is fed bos first."""

    def __init__(self, model: nn.Module, source: Tensor, lengths: Tensor) -> None:
        self.model, self.source, self.lengths, self.batch = model, source, lengths, source.shape[0]

    def begin(self, k: int, bos: int) -> List[List[float]]:
        memory, valid, state = self.model.encode(self.source, self.lengths)
        rows = torch.arange(self.batch, device=memory.device).repeat_interleave(k)
        self.memory, self.valid = memory.index_select(0, rows), valid.index_select(0, rows)
        self.state = reorder(state, rows)
        self.offsets = torch.zeros(len(rows), dtype=torch.long, device=memory.device)
        return self.step([bos] * len(rows), None)

    def step(self, tokens: List[int], parents: Optional[List[int]]) -> List[List[float]]:
        x = torch.tensor(tokens, dtype=torch.long, device=self.offsets.device)[:, None]
        if parents is not None:
            self.state = reorder(self.state, torch.tensor(parents, device=x.device))
        ctx = Context(torch.ones_like(self.offsets), self.state, self.memory, self.valid, self.offsets, keep=True)
        y = self.model.decoder(x, ctx)
        self.state, self.offsets = ctx.state, self.offsets + 1
        return log_probs(y[:, 0], self.model.READOUT)


# %% safetensors
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def load_safetensors(path: str) -> Dict[str, Tensor]:
    """The tensors of a safetensors file (what nnc loads and `nnc train` writes), as float32."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has dtype {info['dtype']}; float tensors only (F32, F64, F16)")
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float32))
    return out


def save_safetensors(path: str, tensors: Dict[str, Tensor]) -> None:
    """Writes float32 tensors as safetensors (8-byte little-endian header length, JSON header, raw
    little-endian data), in the given order."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().cpu().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = {"format": "pt"}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
