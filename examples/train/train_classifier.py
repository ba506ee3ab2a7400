#!/usr/bin/python3
"""Train the bracket classifier of examples/brackets.nn (PyTorch, CPU, a couple of minutes).

    /usr/bin/python3 examples/train/train_classifier.py

Task: is a string over ( ) [ ] of length 2..16 balanced and properly nested?
Token ids: 0 = padding, 1 = '(', 2 = ')', 3 = '[', 4 = ']'.

The model is exactly the spec (weight names as nnc prescribes):

    embedding dim = 16                                  -> embedding0.weight
    gru hidden = 32, layers = 2, bidirectional          -> gru0.*
    pool max                                            (over valid steps only)
    linear 2                                            -> linear0.weight, linear0.bias
    softmax

Writes examples/weights/brackets.safetensors and examples/weights/brackets.test.json
(held-out strings, true labels and this model's float32 probabilities).
"""

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

CHARS = "()[]"
IDS = {c: i + 1 for i, c in enumerate(CHARS)}
PAIR = {")": "(", "]": "["}
MIN_LEN, MAX_LEN = 2, 16
TIME_BUDGET_S = 170.0  # safety stop; the fixed schedule normally ends well before


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------

def balanced(s):
    stack = []
    for c in s:
        if c in "([":
            stack.append(c)
        elif not stack or stack.pop() != PAIR[c]:
            return False
    return not stack


def random_balanced(rng, n):
    """A random properly nested string of even length n."""
    out, stack = [], []
    for i in range(n):
        remaining = n - i
        if not stack or (remaining > len(stack) and rng.random() < 0.5):
            c = rng.choice("([")
            out.append(c)
            stack.append(c)
        else:
            out.append(")" if stack.pop() == "(" else "]")
    return "".join(out)


def hard_negative(rng):
    """Near misses: a balanced string with one small corruption."""
    n = rng.randrange(MIN_LEN, MAX_LEN + 1, 2)
    s = list(random_balanced(rng, n))
    k = rng.randrange(6)
    if k == 0:    # change the type of one bracket: "([)]"-style mismatches
        i = rng.randrange(n)
        s[i] = {"(": "[", "[": "(", ")": "]", "]": ")"}[s[i]]
    elif k == 1:  # swap two adjacent characters
        i = rng.randrange(n - 1)
        s[i], s[i + 1] = s[i + 1], s[i]
    elif k == 2:  # swap two arbitrary characters
        i, j = rng.randrange(n), rng.randrange(n)
        s[i], s[j] = s[j], s[i]
    elif k == 3:  # shuffle: same bracket counts, usually wrong order
        rng.shuffle(s)
    elif k == 4:  # crossing pairs inserted somewhere: "([)]" / "[(])"
        i = rng.randrange(n + 1)
        cross = rng.choice(["([)]", "[(])"])
        s = s[:i] + list(cross) + s[i:]
        s = s[:MAX_LEN] if len(s) > MAX_LEN else s
    else:         # drop or add one character (odd length, or unmatched)
        if rng.random() < 0.5 and n > 2:
            del s[rng.randrange(n)]
        elif n < MAX_LEN:
            s.insert(rng.randrange(n + 1), rng.choice(CHARS))
        else:
            s[rng.randrange(n)] = rng.choice(CHARS)
    return "".join(s)


def random_string(rng):
    n = rng.randint(MIN_LEN, MAX_LEN)
    return "".join(rng.choice(CHARS) for _ in range(n))


def sample(rng):
    """~50/50 positives and negatives; negatives are mostly hard."""
    if rng.random() < 0.5:
        return random_balanced(rng, rng.randrange(MIN_LEN, MAX_LEN + 1, 2))
    while True:
        s = hard_negative(rng) if rng.random() < 0.8 else random_string(rng)
        if MIN_LEN <= len(s) <= MAX_LEN and not balanced(s):
            return s


def make_set(rng, n, exclude=()):
    out, seen = [], set(exclude)
    while len(out) < n:
        s = sample(rng)
        if len(s) >= 8 and s in seen:   # keep long held-out strings unseen in training
            continue
        out.append(s)
    return out


def encode(strings):
    T = max(len(s) for s in strings)
    x = torch.zeros(len(strings), T, dtype=torch.int64)
    for b, s in enumerate(strings):
        x[b, :len(s)] = torch.tensor([IDS[c] for c in s])
    lengths = torch.tensor([len(s) for s in strings], dtype=torch.int64)
    y = torch.tensor([1 if balanced(s) else 0 for s in strings], dtype=torch.int64)
    return x, lengths, y


# ----------------------------------------------------------------------------
# model (submodule names = nnc weight names)
# ----------------------------------------------------------------------------

class Brackets(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("embedding0", nn.Embedding(5, 16))
        self.add_module("gru0", nn.GRU(16, 32, num_layers=2, bidirectional=True, batch_first=True))
        self.add_module("linear0", nn.Linear(64, 2))

    def logits(self, x, lengths):
        B, T = x.shape
        h = self.embedding0(x)
        packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.gru0(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        mask = (torch.arange(T)[None, :] < lengths[:, None])[:, :, None]
        h = h.masked_fill(~mask, float("-inf")).max(dim=1).values   # pool max over valid steps
        return self.linear0(h)

    def forward(self, x, lengths):
        return torch.softmax(self.logits(x, lengths), dim=-1)


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


def accuracy(model, strings, batch=512):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(strings), batch):
            x, lengths, y = encode(strings[i:i + batch])
            correct += (model.logits(x, lengths).argmax(-1) == y).sum().item()
    return correct / len(strings)


def main():
    t0 = time.time()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = random.Random(0)

    test_strings = make_set(rng, 2000)
    train_strings = make_set(rng, 24000, exclude=test_strings)
    pos = sum(balanced(s) for s in train_strings) / len(train_strings)
    print(f"train {len(train_strings)} strings ({pos:.1%} balanced), held-out {len(test_strings)}")

    model = Brackets()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    loss_fn = nn.CrossEntropyLoss()
    batch = 128
    max_epochs = 2
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs * (len(train_strings) // batch))
    for epoch in range(max_epochs):
        model.train()
        rng.shuffle(train_strings)
        total = 0.0
        for i in range(0, len(train_strings) - batch + 1, batch):
            x, lengths, y = encode(train_strings[i:i + batch])
            loss = loss_fn(model.logits(x, lengths), y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item()
            if time.time() - t0 > TIME_BUDGET_S:
                break
        acc = accuracy(model, test_strings)
        elapsed = time.time() - t0
        print(f"epoch {epoch + 1}: loss {total / (len(train_strings) // batch):.4f}, "
              f"held-out accuracy {acc:.2%}, {elapsed:.0f}s", flush=True)
        if acc >= 0.995 or elapsed > TIME_BUDGET_S:
            break

    model.eval()
    acc = accuracy(model, test_strings)
    print(f"held-out accuracy: {acc:.2%} on {len(test_strings)} strings")

    os.makedirs(OUT_DIR, exist_ok=True)
    write_safetensors(os.path.join(OUT_DIR, "brackets.safetensors"), model.state_dict())

    # ~40 held-out strings for the demo / tests: half balanced, negatives incl. hard ones,
    # a spread of lengths, always including the classic "([)]".
    demo_rng = random.Random(1)
    pos_s = [s for s in test_strings if balanced(s)]
    neg_s = [s for s in test_strings if not balanced(s)]
    picks = ["([)]", "()", "[(])", "(([]))[]"]
    picks += demo_rng.sample(sorted(set(pos_s) - set(picks)), 18)
    picks += demo_rng.sample(sorted(set(neg_s) - set(picks)), 18)
    x, lengths, y = encode(picks)
    with torch.no_grad():
        probs = model(x, lengths)
        for b, s in enumerate(picks):   # padded batch == each string alone
            alone = model(x[b:b + 1, :len(s)], lengths[b:b + 1])
            assert (alone[0] - probs[b]).abs().max() < 1e-5
    examples = []
    for b, s in enumerate(picks):
        p = [float("%.9g" % v) for v in probs[b].tolist()]
        examples.append({"text": s, "ids": [IDS[c] for c in s], "label": int(y[b]),
                         "probs": p, "predicted": int(probs[b].argmax())})
    doc = {
        "spec": "examples/brackets.nn",
        "weights": "examples/weights/brackets.safetensors",
        "tokens": {"<pad>": 0, **IDS},
        "output": "label: probabilities [p(unbalanced), p(balanced)], softmax, float32",
        "heldout_accuracy": round(acc, 4),
        "heldout_size": len(test_strings),
        "examples": examples,
    }
    with open(os.path.join(OUT_DIR, "brackets.test.json"), "w") as f:
        f.write("{\n")
        items = list(doc.items())
        for k, v in items[:-1]:
            f.write(f"  {json.dumps(k)}: {json.dumps(v)},\n")
        f.write('  "examples": [\n')
        f.write(",\n".join("    " + json.dumps(e) for e in examples))
        f.write("\n  ]\n}\n")
    demo_acc = sum(e["predicted"] == e["label"] for e in examples) / len(examples)
    print(f"demo strings: {demo_acc:.0%} correct; wrote {OUT_DIR}/brackets.safetensors, "
          f"brackets.test.json ({time.time() - t0:.0f}s total)")
    if acc < 0.95:
        print("warning: held-out accuracy below 95%", file=sys.stderr)


if __name__ == "__main__":
    main()
