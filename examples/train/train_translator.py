#!/usr/bin/python3
"""Train the date translator of examples/dates.nn (PyTorch, CPU, deterministic).

    /usr/bin/python3 examples/train/train_translator.py

Takes about 40 s on 2 idle cores (slower on a busy machine; the time budget is a safety stop).

Task: a date between 1900-01-01 and 2099-12-31 written the way people write it
("3 march 1987", "march 3, 1987", "tue 3 mar 1987", "1987.03.03", "the 3rd of march, 1987", ...)
-> the ISO 8601 date "1987-03-03". Every format is unambiguous: no day/month-first numeric
dates, no two-digit years. Character-level vocabularies:

    source: 0 = padding, 1..26 = 'a'..'z', 27..36 = '0'..'9', 37.. = ' ' ',' '-' '.' '/'
    target: 0 = padding, 1 = bos, 2 = eos, 3..12 = '0'..'9', 13 = '-'

The model is exactly docs/seq2seq.md for the spec (weight names as nnc prescribes):

    encoder {
      embedding dim = 16                   -> encoder.embedding0.weight
      lstm hidden = 32, bidirectional      -> encoder.lstm0.*  (pack_padded_sequence)
    }                                      memory M = [B, S, 64]
    decoder init = bridge {                h0 = tanh(decoder.bridge([h_fwd; h_bwd]))
      embedding dim = 16                   -> decoder.embedding0.weight
      attention score = additive           -> decoder.attention0.{key,query,v}.weight, .bias
                                              (Bahdanau: query = the GRU's previous state)
      gru hidden = 64                      -> decoder.gru0.*  (input [embedding; context])
      linear 14                            -> decoder.linear0.weight, .bias
      log_softmax
    }
    decode beam = 4, max_len = 12, bos = 1, eos = 2

Trained with teacher forcing until greedy exact-match accuracy on held-out dates (dates that
never occur in training, in any format) reaches 98 %, or the time budget runs out.

Writes examples/weights/dates.safetensors and examples/weights/dates.test.json: the
vocabularies and a dozen held-out examples, each with PyTorch's greedy and beam-4 decodes
over the same float32 weights (ids, summed log-probability, text) and the greedy decode's
attention weights [steps, S], decoded exactly as docs/seq2seq.md "Decoding" prescribes.
"""

import datetime
import json
import os
import random
import struct
import sys
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # examples/
OUT_DIR = os.path.join(ROOT, "weights")

# ----------------------------------------------------------------------------
# vocabularies and sizes (must match examples/dates.nn)
# ----------------------------------------------------------------------------

SRC_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789 ,-./"
SRC_IDS = {c: i + 1 for i, c in enumerate(SRC_CHARS)}          # 0 = padding
SRC_VOCAB = len(SRC_CHARS) + 1                                  # 42
SRC_MAX_LEN = 30

PAD, BOS, EOS = 0, 1, 2
TGT_CHARS = "0123456789-"
TGT_IDS = {c: i + 3 for i, c in enumerate(TGT_CHARS)}
TGT_VOCAB = len(TGT_CHARS) + 3                                  # 14
TGT_MAX_LEN = 12                                                # decode max_len: 10 chars + eos fit

EMB_SRC, ENC_HIDDEN = 16, 32        # encoder: embedding 16, biLSTM 32 per direction -> memory 64
EMB_TGT, DEC_HIDDEN = 16, 64        # decoder: embedding 16, GRU 64; attention dim = Dq = 64
BEAM = 4

TIME_BUDGET_S = 300.0   # safety stop only: on 2 idle cores the 98 % target is reached in ~40 s (200 steps)
TARGET_ACC = 0.98

# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
FIRST = datetime.date(1900, 1, 1).toordinal()
LAST = datetime.date(2099, 12, 31).toordinal()


def ordinal(d):
    if 11 <= d % 100 <= 13:
        return f"{d}th"
    return f"{d}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(d % 10, 'th') }"


# Every format names the month by word or puts the year first, so none is ambiguous.
FORMATS = [
    "{d} {month} {Y}",              # 3 march 1987
    "{month} {d}, {Y}",             # march 3, 1987
    "{d} {mon} {Y}",                # 3 mar 1987
    "{mon} {d} {Y}",                # mar 3 1987
    "{mon}. {d}, {Y}",              # mar. 3, 1987
    "{wd} {d} {mon} {Y}",           # tue 3 mar 1987
    "{wd}, {d} {mon} {Y}",          # tue, 3 mar 1987
    "{weekday}, {month} {d}, {Y}",  # tuesday, march 3, 1987
    "{weekday} {d} {month} {Y}",    # tuesday 3 march 1987
    "{weekday}, {th} {month} {Y}",  # tuesday, 3rd march 1987
    "{Y}.{MM}.{DD}",                # 1987.03.03
    "{Y}/{MM}/{DD}",                # 1987/03/03
    "{Y} {month} {d}",              # 1987 march 3
    "{DD}-{mon}-{Y}",               # 03-mar-1987
    "{d}. {month} {Y}",             # 3. march 1987
    "{th} of {month} {Y}",          # 3rd of march 1987
    "the {th} of {month}, {Y}",     # the 3rd of march, 1987
    "{month} the {th}, {Y}",        # march the 3rd, 1987
    "{month} {th} {Y}",             # march 3rd 1987
    "{th} {mon} {Y}",               # 3rd mar 1987
]


def render(date, fmt):
    return fmt.format(
        d=date.day, DD=f"{date.day:02d}", MM=f"{date.month:02d}", Y=f"{date.year:04d}",
        month=MONTHS[date.month - 1], mon=MONTHS[date.month - 1][:3],
        weekday=WEEKDAYS[date.weekday()], wd=WEEKDAYS[date.weekday()][:3], th=ordinal(date.day))


def longest_source():
    """The longest string any format can produce (checked against SRC_MAX_LEN)."""
    best = 0
    for fmt in FORMATS:
        for month in range(1, 13):
            for day in (1, 2, 3, 11, 22, 23, 28):
                for year in (1900, 2001):
                    for k in range(7):  # every weekday
                        date = datetime.date(year, month, day) + datetime.timedelta(days=k)
                        best = max(best, len(render(date, fmt)))
    return best


def iso(date):
    return date.isoformat()


def encode_source(strings):
    S = max(len(s) for s in strings)
    x = torch.zeros(len(strings), S, dtype=torch.int64)
    for b, s in enumerate(strings):
        x[b, :len(s)] = torch.tensor([SRC_IDS[c] for c in s])
    return x, torch.tensor([len(s) for s in strings], dtype=torch.int64)


def encode_target(isos):
    """Decoder input [bos, c1..c10] and the tokens it must predict [c1..c10, eos]."""
    y = torch.tensor([[BOS] + [TGT_IDS[c] for c in t] + [EOS] for t in isos], dtype=torch.int64)
    return y[:, :-1], y[:, 1:]


def decode_target(ids):
    return "".join(TGT_CHARS[i - 3] for i in ids if i >= 3)


def random_date(rng):
    return datetime.date.fromordinal(rng.randint(FIRST, LAST))


# ----------------------------------------------------------------------------
# model (submodule names = nnc weight names)
# ----------------------------------------------------------------------------

class AdditiveAttention(nn.Module):
    """e_s = vᵀ tanh(W₁ k_s + W₂ q + b); names: key.weight, query.weight, bias, v.weight."""

    def __init__(self, dk, dq, dim):
        super().__init__()
        self.key = nn.Linear(dk, dim, bias=False)
        self.query = nn.Linear(dq, dim, bias=False)
        self.bias = nn.Parameter(torch.empty(dim).uniform_(-dim ** -0.5, dim ** -0.5))
        self.v = nn.Linear(dim, 1, bias=False)

    def forward(self, keys_proj, memory, mask, q):
        """keys_proj = key(memory) [B, S, dim] (once per source), mask [B, S] True = valid."""
        e = self.v(torch.tanh(keys_proj + self.query(q)[:, None, :] + self.bias)).squeeze(-1)
        e = e.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(e, dim=-1)                       # exactly 0 at padded positions
        return torch.bmm(alpha[:, None, :], memory).squeeze(1), alpha


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("embedding0", nn.Embedding(SRC_VOCAB, EMB_SRC))
        self.add_module("lstm0", nn.LSTM(EMB_SRC, ENC_HIDDEN, bidirectional=True, batch_first=True))

    def forward(self, x, lengths):
        S = x.shape[1]
        packed = pack_padded_sequence(self.embedding0(x), lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm0(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        final = torch.cat([h_n[0], h_n[1]], dim=-1)            # [h_fwd; h_bwd] of the (only) layer
        return memory, final


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("bridge", nn.Linear(2 * ENC_HIDDEN, DEC_HIDDEN))
        self.add_module("embedding0", nn.Embedding(TGT_VOCAB, EMB_TGT))
        self.add_module("attention0", AdditiveAttention(2 * ENC_HIDDEN, DEC_HIDDEN, DEC_HIDDEN))
        self.add_module("gru0", nn.GRU(EMB_TGT + 2 * ENC_HIDDEN, DEC_HIDDEN, batch_first=True))
        self.add_module("linear0", nn.Linear(DEC_HIDDEN, TGT_VOCAB))

    def init_state(self, final):
        return torch.tanh(self.bridge(final))

    def step(self, tokens, h, memory, keys_proj, mask):
        """One decoder step: tokens [B] -> (log-probs [B, Vt], new h [B, H], attention [B, S])."""
        x = self.embedding0(tokens)
        context, alpha = self.attention0(keys_proj, memory, mask, h)   # query = previous GRU state
        out, h_new = self.gru0(torch.cat([x, context], dim=-1)[:, None, :], h[None])
        logp = torch.log_softmax(self.linear0(out[:, 0]), dim=-1)
        return logp, h_new[0], alpha


class Dates(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()

    def encode(self, x, lengths):
        memory, final = self.encoder(x, lengths)
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        keys_proj = self.decoder.attention0.key(memory)
        return memory, keys_proj, mask, self.decoder.init_state(final)

    def forward(self, x, lengths, target_in):
        """Teacher-forced: log-probs [B, T, Vt], output step i predicts target token i + 1."""
        memory, keys_proj, mask, h = self.encode(x, lengths)
        outs = []
        for i in range(target_in.shape[1]):
            logp, h, _ = self.decoder.step(target_in[:, i], h, memory, keys_proj, mask)
            outs.append(logp)
        return torch.stack(outs, dim=1)

    # -- decoding exactly as docs/seq2seq.md "Decoding" (one source row) --

    def greedy(self, ids, max_len=TGT_MAX_LEN):
        x = torch.tensor([ids], dtype=torch.int64)
        memory, keys_proj, mask, h = self.encode(x, torch.tensor([len(ids)]))
        tok, out, score, attn = BOS, [], 0.0, []
        for _ in range(max_len):
            logp, h, alpha = self.decoder.step(torch.tensor([tok]), h, memory, keys_proj, mask)
            tok = int(torch.argmax(logp[0]))                 # first maximum = lowest id on ties
            score += float(logp[0, tok])
            out.append(tok)
            attn.append(alpha[0].tolist())
            if tok == EOS:
                break
        return out, score, attn

    def beam(self, ids, K=BEAM, max_len=TGT_MAX_LEN):
        x = torch.tensor([ids], dtype=torch.int64)
        memory, keys_proj, mask, h0 = self.encode(x, torch.tensor([len(ids)]))
        alive = [([], 0.0, BOS, h0)]                # (ids, summed log-prob, last token, state)
        finished = []                               # (ids, score), in the order they finish
        for step in range(max_len):
            hs = torch.cat([a[3] for a in alive], dim=0)
            last = torch.tensor([a[2] for a in alive])
            n = len(alive)
            logp, h_new, _ = self.decoder.step(last, hs, memory.expand(n, -1, -1),
                                               keys_proj.expand(n, -1, -1), mask.expand(n, -1))
            # summed log-probabilities: float32 log-probs added up in float64 (JavaScript numbers)
            totals = torch.tensor([a[1] for a in alive], dtype=torch.float64)[:, None] + logp.double()
            cands = [(float(totals[r, t]), r, t) for r in range(n) for t in range(TGT_VOCAB)]
            cands.sort(key=lambda c: (-c[0], c[1], c[2]))      # score desc, parent rank, id
            nxt = []
            for rank, (score, r, t) in enumerate(cands):
                if t == EOS:
                    if rank < K:
                        finished.append((alive[r][0] + [t], score))
                    continue
                nxt.append((alive[r][0] + [t], score, t, h_new[r:r + 1]))
                if len(nxt) == K:
                    break
            alive = nxt
            if step == max_len - 1:
                finished.extend((a[0], a[1]) for a in alive)   # at maxLen, alive ones finish as is
                break
            best = max(f[1] for f in finished) if finished else None
            if best is not None and all(a[1] <= best for a in alive):
                break                                   # no alive hypothesis can beat it any more
        top = max(f[1] for f in finished)
        ids_out, score = next(f for f in finished if f[1] == top)  # first finished among ties
        return ids_out, score


# ----------------------------------------------------------------------------
# training
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


def batch_greedy(model, strings):
    """Greedy decode of a batch (for accuracy only; ties and stopping as in greedy())."""
    x, lengths = encode_source(strings)
    memory, keys_proj, mask, h = model.encode(x, lengths)
    tok = torch.full((len(strings),), BOS, dtype=torch.int64)
    out = []
    for _ in range(TGT_MAX_LEN):
        logp, h, _ = model.decoder.step(tok, h, memory, keys_proj, mask)
        tok = logp.argmax(-1)
        out.append(tok)
    out = torch.stack(out, dim=1).tolist()
    return [decode_target(row[:row.index(EOS)] if EOS in row else row) for row in out]


def accuracy(model, pairs, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(pairs), batch):
            chunk = pairs[i:i + batch]
            got = batch_greedy(model, [s for s, _ in chunk])
            correct += sum(g == t for g, (_, t) in zip(got, chunk))
    return correct / len(pairs)


def main():
    t0 = time.time()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = random.Random(0)

    longest = longest_source()
    assert longest <= SRC_MAX_LEN, f"a format produces {longest} characters > {SRC_MAX_LEN}"

    # held-out dates never occur in training, in any format
    heldout_dates = sorted({random_date(rng) for _ in range(1000)})
    held = set(heldout_dates)
    test_pairs = [(render(d, rng.choice(FORMATS)), iso(d)) for d in heldout_dates]
    print(f"source vocab {SRC_VOCAB} (longest source {longest} chars, max_len {SRC_MAX_LEN}), "
          f"target vocab {TGT_VOCAB}; {len(FORMATS)} formats; held-out {len(test_pairs)} dates")

    def train_batch(n):
        pairs = []
        while len(pairs) < n:
            d = random_date(rng)
            if d not in held:
                pairs.append((render(d, rng.choice(FORMATS)), iso(d)))
        return pairs

    model = Dates()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters")
    opt = torch.optim.Adam(model.parameters(), lr=4e-3)
    loss_fn = nn.NLLLoss()
    batch, eval_every, max_steps = 128, 100, 4000
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_steps, eta_min=2e-4)
    acc, total = 0.0, 0.0
    for step in range(1, max_steps + 1):
        model.train()
        pairs = train_batch(batch)
        x, lengths = encode_source([s for s, _ in pairs])
        y_in, y_out = encode_target([t for _, t in pairs])
        logp = model(x, lengths, y_in)
        loss = loss_fn(logp.reshape(-1, TGT_VOCAB), y_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        total += loss.item()
        if step % eval_every == 0:
            acc = accuracy(model, test_pairs)
            elapsed = time.time() - t0
            print(f"step {step}: loss {total / eval_every:.4f}, held-out exact match {acc:.1%}, "
                  f"{elapsed:.0f}s", flush=True)
            total = 0.0
            if acc >= TARGET_ACC or elapsed > TIME_BUDGET_S:
                break

    model.eval()
    acc = accuracy(model, test_pairs)
    print(f"held-out exact-match accuracy (greedy): {acc:.2%} on {len(test_pairs)} dates, "
          f"training took {time.time() - t0:.0f}s")

    os.makedirs(OUT_DIR, exist_ok=True)
    state = model.state_dict()
    write_safetensors(os.path.join(OUT_DIR, "dates.safetensors"), state)

    # A dozen held-out examples for the demo: one per format family, picked deterministically
    # (not by whether the model gets them right).
    demo_rng = random.Random(1)
    show = [0, 1, 7, 5, 16, 10, 13, 17, 9, 4, 11, 19]
    picks = demo_rng.sample(heldout_dates, len(show))
    examples = []
    with torch.no_grad():
        for d, f in zip(picks, show):
            src = render(d, FORMATS[f])
            ids = [SRC_IDS[c] for c in src]
            g_ids, g_score, g_attn = model.greedy(ids)
            b_ids, b_score = model.beam(ids)
            # teacher-forced forward on the greedy ids must give the same log-probs
            x = torch.tensor([ids])
            y_in = torch.tensor([[BOS] + g_ids[:-1]])
            tf = model(x, torch.tensor([len(ids)]), y_in)[0]
            tf_score = float(sum(tf[i, t] for i, t in enumerate(g_ids)))
            assert abs(tf_score - g_score) < 1e-4, (tf_score, g_score)
            examples.append({
                "source": src, "source_ids": ids, "expected": iso(d),
                "greedy": {"ids": g_ids, "score": float("%.9g" % g_score), "text": decode_target(g_ids),
                           "attention": {"shape": [len(g_ids), len(ids)],
                                         "data": [float("%.6g" % a) for row in g_attn for a in row]}},
                "beam": {"ids": b_ids, "score": float("%.9g" % b_score), "text": decode_target(b_ids)},
            })
    doc = {
        "spec": "examples/dates.nn",
        "weights": "examples/weights/dates.safetensors",
        "source_vocab": {"<pad>": 0, **SRC_IDS},
        "target_vocab": {"<pad>": PAD, "<bos>": BOS, "<eos>": EOS, **TGT_IDS},
        "decode": {"beam": BEAM, "max_len": TGT_MAX_LEN, "bos": BOS, "eos": EOS},
        "output": "next: log-probabilities [B, T, 14] (log_softmax), float32; scores are summed "
                  "natural-log probabilities of ids (eos included); attention rows are the greedy "
                  "decode's weights over source positions, one row per generated token",
        "heldout_accuracy": round(acc, 4),
        "heldout_size": len(test_pairs),
        "examples": examples,
    }
    with open(os.path.join(OUT_DIR, "dates.test.json"), "w") as f:
        f.write("{\n")
        items = list(doc.items())
        for k, v in items[:-1]:
            f.write(f"  {json.dumps(k)}: {json.dumps(v)},\n")
        f.write('  "examples": [\n')
        f.write(",\n".join("    " + json.dumps(e) for e in examples))
        f.write("\n  ]\n}\n")
    for e in examples:
        mark = "ok" if e["beam"]["text"] == e["expected"] else "WRONG"
        print(f"  {e['source']:<30} greedy {e['greedy']['text']:<10} {e['greedy']['score']:9.5f}   "
              f"beam {e['beam']['text']:<10} {e['beam']['score']:9.5f}  {mark}")
    size = os.path.getsize(os.path.join(OUT_DIR, "dates.safetensors"))
    print(f"wrote {OUT_DIR}/dates.safetensors ({size} bytes), dates.test.json "
          f"({time.time() - t0:.0f}s total)")
    if acc < TARGET_ACC:
        print(f"warning: held-out accuracy below {TARGET_ACC:.0%}", file=sys.stderr)


if __name__ == "__main__":
    main()
