"""One training step in PyTorch CPU (2 threads) on the module `nnc torch` writes, from the same
initial weights and batch as bench/train.ts: prints the first step's loss and the times of the next
steps (Adam, lr 1e-3; cross-entropy on logits, or mse). Usage: train_torch.py MODULE.py CLASS
WEIGHTS.safetensors BATCH.safetensors LOSS STEPS"""
import importlib.util
import json
import sys
import time

import torch
import torch.nn.functional as F

path, cls, weights, batch, loss_kind, steps = sys.argv[1:7]
torch.set_num_threads(2)
spec = importlib.util.spec_from_file_location("bench_module", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
model = getattr(mod, cls)()
model.load_state_dict(mod.load_safetensors(weights))
model.train()
data = mod.load_safetensors(batch)
x = data["x"].long() if loss_kind == "cross_entropy" else data["x"]
y = data["y"].long() if loss_kind == "cross_entropy" else data["y"]
opt = torch.optim.Adam(model.parameters(), lr=1e-3)


def step() -> float:
    opt.zero_grad()
    out = model(x)
    loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)) if loss_kind == "cross_entropy" else F.mse_loss(out, y)
    loss.backward()
    opt.step()
    return loss.item()


first = step()
times = []
for _ in range(int(steps)):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"first": first, "times": times, "torch": torch.__version__}))
