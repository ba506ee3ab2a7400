"""
A character-level neural probabilistic language model (Bengio et al. 2003) on the project's docs,
for the perplexity comparison in docs/ngram.md (n-gram models vs this NPLM vs the Transformer of
examples/tiny_lm.nn, all on the same held-out text).

  /usr/bin/python3 examples/train/train_nplm.py        (13 minutes on a busy 2-core machine: Debian's reference BLAS)

1. Writes the frozen corpus examples/data/docs.train.txt and docs.heldout.txt: README.md and
   docs/*.md as they were when examples/weights/tiny_lm.safetensors was trained (git commit
   9a40535), normalised and split exactly as train_tiny_lm.py does (transliteration, '?' for any
   other character; the last 5 % held out). The split is by character, so the held-out text starts
   mid-line.
2. Trains examples/nplm_docs.nn (8 characters of context → embedding 24 → flatten → linear 256,
   tanh → linear 96 → log_softmax; the vocabulary is the tiny LM's, examples/vocab/tiny_lm.json)
   with Adam on the training text, and writes examples/weights/nplm_docs.safetensors under nnc's
   weight names, and its held-out perplexity (PyTorch) to examples/weights/nplm_docs.json.
   Each character is predicted from the 8 before it; before the start of a text the context is
   newline characters.
"""
import json
import math
import os
import subprocess
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from train_tiny_lm import IDS, normalise, write_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
COMMIT = "9a40535"
WINDOW, EMB, HIDDEN, V = 8, 24, 256, 96
EPOCHS, BATCH, LR = 6, 256, 3e-3


def corpus():
    files = ["README.md"] + sorted(
        f for f in subprocess.run(["git", "ls-tree", "--name-only", COMMIT, "docs/"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        if f.endswith(".md"))
    parts = [subprocess.run(["git", "show", f"{COMMIT}:{f}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip("\n") for f in files]
    data, _ = normalise("\n\n".join(parts) + "\n")
    split = int(len(data) * 0.95)
    return data[:split], data[split:]


def windows(text):
    ids = [IDS["\n"]] * WINDOW + [IDS[c] for c in text]
    x = torch.tensor([ids[i:i + WINDOW] for i in range(len(text))])
    y = torch.tensor(ids[WINDOW:])
    return x, y


class NPLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.add_module("embedding0", nn.Embedding(V, EMB))
        self.add_module("linear0", nn.Linear(WINDOW * EMB, HIDDEN))
        self.add_module("linear1", nn.Linear(HIDDEN, V))

    def forward(self, x):
        h = torch.tanh(self.linear0(self.embedding0(x).flatten(1)))
        return torch.log_softmax(self.linear1(h), dim=-1)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    train, held = corpus()
    os.makedirs(os.path.join(ROOT, "examples", "data"), exist_ok=True)
    for name, text in (("docs.train.txt", train), ("docs.heldout.txt", held)):
        with open(os.path.join(ROOT, "examples", "data", name), "w") as f:
            f.write(text)
    x, y = windows(train)
    hx, hy = windows(held)
    model = NPLM()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    t0 = time.time()
    for epoch in range(EPOCHS):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            b = perm[i:i + BATCH]
            loss = nn.functional.nll_loss(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            held_loss = nn.functional.nll_loss(model(hx), hy).item()
        print(f"epoch {epoch + 1}: held-out loss {held_loss:.4f} nats/char (perplexity {math.exp(held_loss):.3f})")
    write_safetensors(os.path.join(ROOT, "examples", "weights", "nplm_docs.safetensors"), model.state_dict())
    with open(os.path.join(ROOT, "examples", "weights", "nplm_docs.json"), "w") as f:
        json.dump({"spec": "examples/nplm_docs.nn", "corpus_commit": COMMIT, "train_chars": len(train), "heldout_chars": len(held),
                   "epochs": EPOCHS, "seconds": round(time.time() - t0, 1), "heldout_loss": round(held_loss, 6),
                   "heldout_perplexity": round(math.exp(held_loss), 6)}, f, indent=1)
        f.write("\n")
    print(f"wrote examples/weights/nplm_docs.safetensors ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
