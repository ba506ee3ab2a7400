#!/usr/bin/python3
"""Train the character-level Transformer language model of examples/tiny_lm.nn (PyTorch, CPU, 2 threads).

    /usr/bin/python3 examples/train/train_tiny_lm.py

Data: the project's own documentation, read at run time — README.md followed by docs/*.md (sorted by
name), joined by a blank line. Case is kept. The vocabulary is fixed (96 ids, written into the output
JSON): id 0 = newline, ids 1..95 = the printable ASCII characters ' ' .. '~'. A few common non-ASCII
characters are transliterated ('—' -> '-', '→' -> '>', '×' -> 'x', ...); anything else becomes the
fallback '?'. The last 5 % of the text is held out (validation loss only).

The model is exactly the spec, under nnc's weight names (`nnc weights examples/tiny_lm.nn --json`):

    embedding dim = 64                                     -> embedding0.weight [96, 64]
    positional learned  (max_len 128)                      -> positional0.weight [128, 64], x + W[t]
    repeat 2 {                                             -> repeat0.<i>.
      residual { layernorm; attention self, heads = 4, causal }
          x + MHA(LN(x)): nn.LayerNorm(64) (residual0.layernorm0), nn.MultiheadAttention(64, 4,
          batch_first=True) (residual0.attention0) with an upper-triangular -inf attn_mask
      residual { layernorm; linear 256; gelu; linear 64 }
          x + W2 gelu(W1 LN(x) + b1) + b2, gelu = erf form (nn.GELU())
    }
    layernorm                                              -> layernorm0
    linear 96                                              -> linear0
    log_softmax

Training is deterministic (fixed seeds, fixed step count, 2 threads): 1500 steps of 8 random 128-character
windows of the training text, next-character cross-entropy at every position, AdamW (lr 8e-3, warm-up,
cosine decay); the position table starts as the sinusoidal encoding and is learned from there. About
105 s on 2 otherwise idle cores (many times that on busy ones); the linear maps are computed as 1x1
convolutions while training (oneDNN; Debian's PyTorch does matmul with the reference BLAS), checked
against the stock modules before anything is written.

Writes examples/weights/tiny_lm.safetensors and examples/weights/tiny_lm.json: the vocabulary, the
training summary, and for a few prompts PyTorch's greedy continuation of 40 characters, decoded as
docs/seq2seq.md says (the prompt is consumed, the first token comes from the prompt's last position,
arg-max with the lowest id on ties, no eos), each step recomputing the whole sequence from scratch;
with its ids, text, summed log-probability and the smallest top-1 / top-2 log-probability gap met on
the way (so a test can see that no decision is a near tie).
"""

import glob
import json
import math
import os
import struct
import time

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
OUT_DIR = os.path.join(ROOT, "examples", "weights")

# ----------------------------------------------------------------------------
# vocabulary and data
# ----------------------------------------------------------------------------

VOCAB = ["\n"] + [chr(c) for c in range(32, 127)]   # 96 ids
IDS = {ch: i for i, ch in enumerate(VOCAB)}
FALLBACK = "?"
TRANSLIT = {
    "—": "-", "–": "-", "−": "-", "→": ">", "×": "x", "≥": ">", "≤": "<", "·": ".", "…": "...",
    "‖": "|", "≈": "~", "±": "+", "µ": "u", "α": "a", "ᵀ": "T", "₀": "0", "₁": "1", "₂": "2",
    "²": "2", "½": "1/2", "√": "sqrt", "\t": "  ", "’": "'", "‘": "'", "“": '"', "”": '"',
}

V = len(VOCAB)
D, HEADS, FF, LAYERS, MAX_LEN = 64, 4, 256, 2, 128

STEPS, BATCH, WINDOW = 1500, 8, MAX_LEN   # 1.5 M characters seen (about 20 passes over the text)
LR, WARMUP = 8e-3, 60
GREEDY_MAX_LEN = 40
MIN_MARGIN = 2e-3   # prompts whose greedy path meets a closer top-1 / top-2 call are skipped
PROMPTS = [
    "The model ",
    "nnc compile ",
    "A language model ",
    "## Decoding\n\n",
    "The attention ",
    "Weights load from ",
    "The decoder ",
    "Each backend ",
    "The encoder runs ",
    "An LSTM ",
    "generate() ",
    "The compiler ",
]
N_PROMPTS = 6


def read_corpus():
    files = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    parts = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            parts.append(fh.read().strip("\n"))
    return [os.path.relpath(f, ROOT) for f in files], "\n\n".join(parts) + "\n"


def normalise(text):
    out, unknown = [], 0
    for ch in text:
        if ch in IDS:
            out.append(ch)
        elif ch in TRANSLIT:
            out.append(TRANSLIT[ch])
        else:
            out.append(FALLBACK)
            unknown += 1
    return "".join(out), unknown


def encode(s):
    return [IDS[ch] for ch in s]


def decode(ids):
    return "".join(VOCAB[i] for i in ids)


# ----------------------------------------------------------------------------
# model (submodule names = nnc weight names)
# ----------------------------------------------------------------------------

def conv_linear(x, weight, bias):
    """nn.functional.linear(x, weight, bias) computed as a 1x1 convolution: the same function, but
    it runs on oneDNN (mkldnn), which is several times faster on CPU than the reference BLAS that
    Debian's PyTorch calls for matmul. Used only while training (`fast = True`)."""
    s = x.shape
    y = nn.functional.conv1d(x.reshape(-1, s[-1]).t().unsqueeze(0), weight.unsqueeze(-1), bias)
    return y[0].t().reshape(*s[:-1], weight.shape[0])


class AttentionResidual(nn.Module):   # residual { layernorm; attention self, heads = 4, causal }
    def __init__(self):
        super().__init__()
        self.add_module("layernorm0", nn.LayerNorm(D))
        self.add_module("attention0", nn.MultiheadAttention(D, HEADS, batch_first=True))

    def forward(self, x, mask, fast=False):
        h = self.layernorm0(x)
        if not fast:
            a, _ = self.attention0(h, h, h, attn_mask=mask, need_weights=False)
            return x + a
        # nn.MultiheadAttention written out (in_proj, split heads, q.k / sqrt(d_head) + mask, softmax,
        # weighted values, merge heads, out_proj), with the projections on conv_linear
        B, T, _ = h.shape
        m = self.attention0
        q, k, v = conv_linear(h, m.in_proj_weight, m.in_proj_bias).chunk(3, dim=-1)
        heads = lambda t: t.reshape(B, T, HEADS, D // HEADS).transpose(1, 2).reshape(B * HEADS, T, D // HEADS)
        q, k, v = heads(q) * (D // HEADS) ** -0.5, heads(k), heads(v)
        w = torch.softmax(torch.baddbmm(mask, q, k.transpose(1, 2)), dim=-1)
        ctx = torch.bmm(w, v).reshape(B, HEADS, T, D // HEADS).transpose(1, 2).reshape(B, T, D)
        return x + conv_linear(ctx, m.out_proj.weight, m.out_proj.bias)


class FeedForwardResidual(nn.Module):   # residual { layernorm; linear 256; gelu; linear 64 }
    def __init__(self):
        super().__init__()
        self.add_module("layernorm0", nn.LayerNorm(D))
        self.add_module("linear0", nn.Linear(D, FF))
        self.add_module("linear1", nn.Linear(FF, D))
        self.gelu = nn.GELU()   # erf form; no parameters

    def forward(self, x, fast=False):
        lin = (lambda m, h: conv_linear(h, m.weight, m.bias)) if fast else (lambda m, h: m(h))
        return x + lin(self.linear1, self.gelu(lin(self.linear0, self.layernorm0(x))))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("residual0", AttentionResidual())
        self.add_module("residual1", FeedForwardResidual())

    def forward(self, x, mask, fast=False):
        return self.residual1(self.residual0(x, mask, fast), fast)


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("embedding0", nn.Embedding(V, D))
        self.add_module("positional0", nn.Embedding(MAX_LEN, D))
        self.add_module("repeat0", nn.ModuleList([Block() for _ in range(LAYERS)]))
        self.add_module("layernorm0", nn.LayerNorm(D))
        self.add_module("linear0", nn.Linear(D, V))
        # The position table starts as the sinusoidal encoding (Vaswani 3.5) and is then learned like
        # any weight: from a small random start, attention takes far longer to find the previous
        # characters (the loss sits at the bigram level for hundreds of steps).
        with torch.no_grad():
            pos = torch.arange(MAX_LEN, dtype=torch.float64)[:, None]
            angle = pos / 10000 ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
            self.positional0.weight[:, 0::2] = torch.sin(angle).float()
            self.positional0.weight[:, 1::2] = torch.cos(angle).float()

    def forward(self, x, fast=False):
        """x [B, T] token ids (T <= 128) -> log-probabilities of the next token [B, T, V]. `fast` computes
        the same function with the linear maps on oneDNN (training only); the stock modules
        (fast = False) give the references."""
        T = x.shape[1]
        mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)   # causal: key k > query q masked
        h = self.embedding0(x) + self.positional0.weight[:T]
        for block in self.repeat0:
            h = block(h, mask, fast)
        h = self.layernorm0(h)
        logits = conv_linear(h, self.linear0.weight, self.linear0.bias) if fast else self.linear0(h)
        return torch.log_softmax(logits, dim=-1)


# ----------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------

def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        arr = t.detach().cpu().contiguous().numpy().astype("<f4")
        b = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = {"format": "pt"}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


@torch.no_grad()
def greedy(model, prompt_ids, max_len):
    """docs/seq2seq.md greedy decoding, recomputing the whole sequence at every step (no cache)."""
    seq = list(prompt_ids)
    ids, score, margin = [], 0.0, math.inf
    for _ in range(max_len):
        logp = model(torch.tensor([seq]))[0, -1]          # the distribution after the last token
        best = logp.max()
        tok = int(torch.nonzero(logp == best)[0, 0])      # arg-max, lowest id on ties
        top2 = torch.topk(logp, 2).values
        margin = min(margin, float(top2[0] - top2[1]))
        score += float(logp[tok])
        ids.append(tok)
        seq.append(tok)
    return ids, score, margin


@torch.no_grad()
def mean_loss(model, data, T=MAX_LEN):
    """Mean next-character loss over consecutive non-overlapping windows of `data`."""
    total, n = 0.0, 0
    for i in range(0, len(data) - 1 - T + 1, T):
        x = data[i:i + T][None]
        y = data[i + 1:i + T + 1][None]
        total += float(nn.functional.nll_loss(model(x)[0], y[0], reduction="sum"))
        n += T
    return total / max(n, 1)


def main():
    t0, c0 = time.time(), time.process_time()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    files, raw = read_corpus()
    text, unknown = normalise(raw)
    data = torch.tensor(encode(text), dtype=torch.int64)
    split = int(len(data) * 0.95)
    train, val = data[:split], data[split:]
    print(f"corpus: {', '.join(files)}: {len(raw)} characters -> {len(data)} ids "
          f"({unknown} mapped to '{FALLBACK}'); train {len(train)}, held out {len(val)}")

    model = TinyLM()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: dim {D}, {LAYERS} pre-norm layers, {HEADS} heads, ff {FF}, vocab {V}, "
          f"max_len {MAX_LEN}: {n_params} parameters")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.98))
    lr_at = lambda s: min(1.0, (s + 1) / WARMUP) * 0.5 * (1 + math.cos(math.pi * min(s, STEPS) / STEPS)) * 0.95 + 0.05
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)

    T = WINDOW
    losses = []
    model.train()
    for step in range(STEPS):
        starts = torch.randint(0, len(train) - T - 1, (BATCH,), generator=gen)
        x = torch.stack([train[s:s + T] for s in starts.tolist()])
        y = torch.stack([train[s + 1:s + T + 1] for s in starts.tolist()])
        loss = nn.functional.nll_loss(model(x, fast=True).reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0 or step + 1 == STEPS or step + 1 == 10:
            recent = sum(losses[-100:]) / len(losses[-100:])
            print(f"step {step + 1}/{STEPS}: train loss {recent:.3f} nats/char, {time.time() - t0:.0f}s "
                  f"({time.process_time() - c0:.0f} CPU-s)", flush=True)
    train_s, train_cpu_s = time.time() - t0, time.process_time() - c0

    model.eval()
    with torch.no_grad():   # the training path and the stock modules compute the same function
        x = val[None, :MAX_LEN]
        gap = float((model(x, fast=True) - model(x)).abs().max())
    print(f"fast training path vs stock modules: max |diff| of log-probs {gap:.2e}")
    assert gap < 1e-4
    train_loss = sum(losses[-100:]) / len(losses[-100:])
    val_loss = mean_loss(model, val)
    print(f"trained in {train_s:.0f}s ({train_cpu_s:.0f} CPU-s): train loss {train_loss:.3f}, held-out loss {val_loss:.3f} nats/char "
          f"({val_loss / math.log(2):.2f} bits/char)")

    os.makedirs(OUT_DIR, exist_ok=True)
    write_safetensors(os.path.join(OUT_DIR, "tiny_lm.safetensors"), model.state_dict())

    prompts = []
    for p in PROMPTS:
        pid = encode(p)
        assert len(pid) + GREEDY_MAX_LEN <= MAX_LEN
        ids, score, margin = greedy(model, pid, GREEDY_MAX_LEN)
        ok = margin >= MIN_MARGIN
        print(f"  {p!r:24} -> {decode(ids)!r}  score {score:.4f}, min margin {margin:.4f}"
              + ("" if ok else "  (near tie: skipped)"))
        if ok and len(prompts) < N_PROMPTS:
            prompts.append({"prompt": p, "prompt_ids": pid,
                            "greedy": {"ids": ids, "text": decode(ids), "score": float("%.7g" % score),
                                       "min_margin": float("%.4g" % margin)}})
    assert len(prompts) == N_PROMPTS, "not enough prompts without near ties"

    doc = {
        "spec": "examples/tiny_lm.nn",
        "weights": "examples/weights/tiny_lm.safetensors",
        "vocab": VOCAB,
        "fallback": FALLBACK,
        "transliterated": TRANSLIT,
        "data": {"files": files, "characters": len(data), "train": len(train), "held_out": len(val),
                 "unknown": unknown},
        "training": {"steps": STEPS, "batch": BATCH, "window": T, "seconds": round(train_s, 1), "cpu_seconds": round(train_cpu_s, 1),
                     "train_loss": round(train_loss, 4), "held_out_loss": round(val_loss, 4)},
        "decode": {"strategy": "greedy", "maxLen": GREEDY_MAX_LEN, "eos": None,
                   "reference": "full recomputation of the sequence at every step, float32"},
        "prompts": prompts,
    }
    with open(os.path.join(OUT_DIR, "tiny_lm.json"), "w") as f:
        f.write("{\n")
        items = list(doc.items())
        for k, v in items[:-1]:
            f.write(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},\n")
        f.write('  "prompts": [\n')
        f.write(",\n".join("    " + json.dumps(e, ensure_ascii=False) for e in prompts))
        f.write("\n  ]\n}\n")
    print(f"wrote {OUT_DIR}/tiny_lm.safetensors, tiny_lm.json ({time.time() - t0:.0f}s total)")


if __name__ == "__main__":
    main()
