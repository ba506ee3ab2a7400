#!/usr/bin/python3
"""Reference data for `npm run bench` (bench/peers/run.ts): run with /usr/bin/python3 (torch 1.13, CPU).

For each workload W1..W5 this builds the PyTorch module with seeded random weights and writes, under
bench/.cache/peers/ (or the directory given as the first argument):

  wN.safetensors          the module's state_dict, under the names nnc's spec bench/peers/specs/wN.nn
                          expects (the module is wrapped so that its attribute is named like nnc's layer,
                          e.g. `lstm0.weight_ih_l0`); written by hand, as torch 1.13 has no safetensors
  wN_bB.onnx              torch.onnx.export of the module at batch size B (opset 14, static shapes)
  wN_bB.input.f32         the seeded input x [B, T, D], raw little-endian float32
  wN_bB.output.f32        PyTorch's output [B, T, H'] for that input, raw little-endian float32
  manifest.json           shapes, file names, FLOP formulas and counts, versions, and this file's sha256
                          (the runner re-runs setup when the hash differs or a file is missing)

Weights: every parameter uniform(-k, k) with k = 1/sqrt(hidden) — PyTorch's own initialisation of
nn.LSTM / nn.GRU / nn.RNN; for nn.MultiheadAttention the same rule with hidden = d (instead of its
xavier weights and zero biases, so that the biases are exercised by the cross-check).
"""
import hashlib
import json
import math
import os
import platform
import struct
import sys
import time

import torch
import torch.nn as nn
import warnings

warnings.filterwarnings("ignore")  # the ONNX exporter's TracerWarnings and shape-inference notes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", ".cache", "peers")
SEED = 20261122
OPSET = 14

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def write_safetensors(path, tensors):
    """tensors: ordered dict name -> float32 tensor. Header in that order, data contiguous
    (the same writer as test/fixtures/make_fixtures.py)."""
    header = {}
    blobs = []
    offset = 0
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


def write_f32(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().cpu().contiguous().numpy().astype("<f4").tobytes())


# ───────────── the modules, wrapped so that state_dict names equal nnc's ─────────────


class Recurrent(nn.Module):
    """`<name>` = nn.LSTM / nn.GRU / nn.RNN (batch_first); forward returns the hidden sequence."""

    def __init__(self, name, layer):
        super().__init__()
        self.name = name
        self.add_module(name, layer)

    def forward(self, x):
        return getattr(self, self.name)(x)[0]


class SelfAttention(nn.Module):
    """attention0 = nn.MultiheadAttention(d, heads, batch_first=True); self-attention, no mask."""

    def __init__(self, d, heads):
        super().__init__()
        self.attention0 = nn.MultiheadAttention(d, heads, batch_first=True)

    def forward(self, x):
        return self.attention0(x, x, x, need_weights=False)[0]


def rnn_flops(B, T, layers):
    """layers: list of (gates·H, D_in, H) per layer and direction: 2·B·T·G·H·(D_in + H)."""
    return sum(2 * B * T * gh * (d + h) for gh, d, h in layers)


WORKLOADS = [
    {
        "id": "W1",
        "title": "LSTM 256→512, hidden sequence",
        "spec": "bench/peers/specs/w1.nn",
        "make": lambda: Recurrent("lstm0", nn.LSTM(256, 512, batch_first=True)),
        "hidden": 512,
        "D": 256, "T": 100, "out": 512, "batches": [1, 32],
        "flops_formula": "2·B·T·4H·(D+H), D=256, H=512 (input projection + recurrent matmul, every step)",
        "flops": lambda B, T: rnn_flops(B, T, [(4 * 512, 256, 512)]),
        "onnx_op": "LSTM",
    },
    {
        "id": "W2",
        "title": "GRU 256→512 (PyTorch form), hidden sequence",
        "spec": "bench/peers/specs/w2.nn",
        "make": lambda: Recurrent("gru0", nn.GRU(256, 512, batch_first=True)),
        "hidden": 512,
        "D": 256, "T": 100, "out": 512, "batches": [1, 32],
        "flops_formula": "2·B·T·3H·(D+H), D=256, H=512",
        "flops": lambda B, T: rnn_flops(B, T, [(3 * 512, 256, 512)]),
        "onnx_op": "GRU",
    },
    {
        "id": "W3",
        "title": "2-layer bidirectional LSTM 256→256 per direction, last layer's sequence",
        "spec": "bench/peers/specs/w3.nn",
        "make": lambda: Recurrent("lstm0", nn.LSTM(256, 256, num_layers=2, bidirectional=True, batch_first=True)),
        "hidden": 256,
        "D": 256, "T": 100, "out": 512, "batches": [8],
        "flops_formula": "Σ over 2 layers × 2 directions of 2·B·T·4H·(D_l+H), H=256, D_0=256, D_1=512",
        "flops": lambda B, T: rnn_flops(B, T, [(1024, 256, 256)] * 2 + [(1024, 512, 256)] * 2),
        "onnx_op": "LSTM",
    },
    {
        "id": "W4",
        "title": "multi-head self-attention d=512, 8 heads (nn.MultiheadAttention, no mask)",
        "spec": "bench/peers/specs/w4.nn",
        "make": lambda: SelfAttention(512, 8),
        "hidden": 512,
        "D": 512, "T": 128, "out": 512, "batches": [1, 8],
        "flops_formula": "2·B·T·d·3d (q/k/v) + 2·B·T·T·d (scores, all heads) + 2·B·T·T·d (weights·V) + 2·B·T·d·d (out), d=512",
        "flops": lambda B, T: 2 * B * T * 512 * 1536 + 2 * B * T * T * 512 + 2 * B * T * T * 512 + 2 * B * T * 512 * 512,
        "onnx_op": "MatMul",
    },
    {
        "id": "W5",
        "title": "tanh RNN 128→256, hidden sequence",
        "spec": "bench/peers/specs/w5.nn",
        "make": lambda: Recurrent("rnn0", nn.RNN(128, 256, nonlinearity="tanh", batch_first=True)),
        "hidden": 256,
        "D": 128, "T": 200, "out": 256, "batches": [1],
        "flops_formula": "2·B·T·H·(D+H), D=128, H=256",
        "flops": lambda B, T: rnn_flops(B, T, [(256, 128, 256)]),
        "onnx_op": "RNN",
    },
]


def onnx_ops(path):
    """The op types in an ONNX file, read without the onnx package (a scan for NodeProto op_type strings
    is not exact; this only lists known names that occur in the bytes)."""
    with open(path, "rb") as f:
        raw = f.read()
    known = ["LSTM", "GRU", "RNN", "MatMul", "Gemm", "Softmax", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Add", "Mul", "Div", "Sqrt", "Slice", "Split", "Concat", "Gather"]
    return [op for op in known if (b"\x12" + bytes([len(op)]) + op.encode()) in raw or (b"\"" + bytes([len(op)]) + op.encode()) in raw]


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.abspath(__file__), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    t0 = time.time()
    manifest = {
        "setup_sha256": digest,
        "seed": SEED,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "opset": OPSET,
        "init": "every parameter uniform(-k, k), k = 1/sqrt(hidden) (hidden = d for attention); inputs uniform(-1, 1)",
        "workloads": [],
    }
    for wi, w in enumerate(WORKLOADS):
        torch.manual_seed(SEED + 101 * wi)
        model = w["make"]().eval()
        k = 1.0 / math.sqrt(w["hidden"])
        with torch.no_grad():
            for p in model.parameters():
                p.uniform_(-k, k)
        sd = model.state_dict()
        key = w["id"].lower()
        weights_file = f"{key}.safetensors"
        write_safetensors(os.path.join(OUT, weights_file), sd)
        entry = {
            "id": w["id"],
            "title": w["title"],
            "spec": w["spec"],
            "weights": weights_file,
            "weight_shapes": {n: list(t.shape) for n, t in sd.items()},
            "D": w["D"], "T": w["T"], "out": w["out"],
            "flops_formula": w["flops_formula"],
            "cases": [],
        }
        for B in w["batches"]:
            g = torch.Generator().manual_seed(SEED + 1000 * wi + B)
            x = torch.rand(B, w["T"], w["D"], generator=g) * 2 - 1
            with torch.no_grad():
                y = model(x)
            assert list(y.shape) == [B, w["T"], w["out"]], (w["id"], list(y.shape))
            stem = f"{key}_b{B}"
            write_f32(os.path.join(OUT, f"{stem}.input.f32"), x)
            write_f32(os.path.join(OUT, f"{stem}.output.f32"), y)
            onnx_file = f"{stem}.onnx"
            # exported with autograd on: nn.MultiheadAttention then takes its composite path (linear,
            # matmul, softmax), which exports; under no_grad it takes the fused fast path
            # (aten::_native_multi_head_attention), which has no ONNX form. Same function.
            y_slow = model(x).detach()
            diff = (y_slow - y).abs().max().item()
            assert diff < 1e-5, f"{stem}: composite and fast paths differ by {diff}"
            torch.onnx.export(model, (x,), os.path.join(OUT, onnx_file), opset_version=OPSET,
                              input_names=["x"], output_names=["y"], do_constant_folding=True)
            ops = onnx_ops(os.path.join(OUT, onnx_file))
            assert w["onnx_op"] in ops, f"{stem}.onnx has no {w['onnx_op']} op (found {ops})"
            entry["cases"].append({
                "B": B,
                "input": f"{stem}.input.f32", "input_shape": [B, w["T"], w["D"]],
                "output": f"{stem}.output.f32", "output_shape": [B, w["T"], w["out"]],
                "onnx": onnx_file, "onnx_ops": ops,
                "flops": w["flops"](B, w["T"]),
            })
            print(f"setup: {stem}: flops {w['flops'](B, w['T']) / 1e9:.3f} G, onnx ops {', '.join(ops)}", flush=True)
        manifest["workloads"].append(entry)
    manifest["setup_s"] = round(time.time() - t0, 1)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(f"setup: wrote {OUT} in {manifest['setup_s']} s", flush=True)


if __name__ == "__main__":
    main()
