#!/usr/bin/env python3
"""Trains the model of a module written by `nnc torch`, on one process or many (torchrun).

@@HEADER@@

    torchrun --nproc_per_node=2 THIS.py --data train.jsonl --epochs 3 --batch 32 --out weights.safetensors
    python3 THIS.py --data train.jsonl ...          # one process, without torchrun

Under torchrun every process holds a copy of the model (DistributedDataParallel: gloo on CPUs, nccl on
GPUs) and reads its share of each global batch (DistributedSampler, seeded); a step's loss is the mean
over the global batch's valid target positions, so N processes take the very step one process would.
Data: JSON Lines as `nnc train` reads them (docs/torch.md): language models (the input alone; the
target is the input shifted by one), seq2seq pairs (bos and eos from the spec's decode statement),
and everything else with the target under the output's name. Losses, optimisers, clipping and
schedules are `nnc train`'s (nll | cross_entropy | mse with label smoothing; sgd | adam | adamw;
global-norm clipping; constant | step | cosine | noam). The weights are written as safetensors under
nnc's names, which nnc loads unchanged (and so does the module: load_safetensors).
"""

import argparse
import importlib.util
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DistributedSampler

MODULE = @@MODULE@@  # the model module, beside this script


class DataError(Exception):
    """A problem in a data file, named by file, line and field."""


def load_module():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), MODULE)
    spec = importlib.util.spec_from_file_location("nnc_torch_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ─── data ───

class Task:
    """What one line holds and what the model is trained to output, from the model's manifest."""

    def __init__(self, model_cls, first_line: dict) -> None:
        m = model_cls.MANIFEST
        self.inputs = m["inputs"]
        self.output = m["output"]["name"]
        shape = m["output"]["shape"]
        self.per_step = len(shape) == 3
        self.width = shape[-1]
        self.seq2seq = len(self.inputs) == 2
        decode = model_cls.DECODE
        if self.seq2seq:
            self.kind = "seq2seq"
            if decode.get("eos") is None:
                raise DataError(f"training a seq2seq model needs its bos and eos: add a decode statement to model "
                                f"{m['model']}, e.g. 'decode greedy, bos = 1, eos = 2' (the target lines hold neither)")
            self.bos, self.eos = decode.get("bos", 0), decode["eos"]
        elif self.output in first_line:
            self.kind = "target"
        elif self.inputs[0]["form"] == "tokens" and self.per_step and self.width == self.inputs[0]["vocab"]:
            self.kind = "lm"
        else:
            raise DataError(f"the lines must hold the target under the output's name '{self.output}' "
                            f"(model {m['model']} is not a language model)")
        self.keys = {i["name"] for i in self.inputs} | ({self.output} if self.kind == "target" else set())

    def parse(self, obj: dict, where: str):
        """One line -> (inputs: list per input, target)."""
        for k in obj:
            if k not in self.keys:
                raise DataError(f"{where}: unknown key '{k}'; the keys are {', '.join(sorted(self.keys))}")
        xs = []
        for inp in self.inputs:
            name = inp["name"]
            if name not in obj:
                raise DataError(f"{where}: missing input '{name}'")
            xs.append(self.input_value(inp, obj[name], f"{where}: '{name}'"))
        if self.kind == "lm":
            if len(xs[0]) < 2:
                raise DataError(f"{where}: '{self.inputs[0]['name']}' needs at least 2 tokens (the model reads x[:-1] and predicts x[1:])")
            return [xs[0][:-1]], xs[0][1:]
        if self.kind == "seq2seq":
            tgt = xs[1]
            return [xs[0], [self.bos] + tgt], tgt + [self.eos]
        return xs, self.target_value(obj[self.output], len(xs[0]), f"{where}: '{self.output}'")

    def input_value(self, inp: dict, v, where: str):
        if inp["form"] == "tokens":
            if isinstance(v, str):
                raise DataError(f"{where} is text, but the spec declares no vocabulary for it: give token ids")
            if not isinstance(v, list) or not v or not all(isinstance(t, int) and not isinstance(t, bool) for t in v):
                raise DataError(f"{where} must be a non-empty array of token ids")
            bad = [t for t in v if not 0 <= t < inp["vocab"]]
            if bad:
                raise DataError(f"{where}: id {bad[0]} is out of range [0, {inp['vocab']})")
            return v
        if not isinstance(v, list) or not v or not all(isinstance(s, list) and len(s) == inp["dim"] and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in s) for s in v):
            raise DataError(f"{where} must be a non-empty array of steps, each {inp['dim']} numbers")
        return v

    def target_value(self, v, steps: int, where: str):
        def ids(x):
            return isinstance(x, int) and not isinstance(x, bool)

        def nums(x):
            return isinstance(x, list) and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in x)
        if self.per_step:
            if not isinstance(v, list) or len(v) != steps:
                raise DataError(f"{where} must have one entry per step ({steps})")
            if all(ids(t) for t in v):
                for t in v:
                    if not 0 <= t < self.width:
                        raise DataError(f"{where}: class {t} is out of range [0, {self.width})")
                return v
            if all(nums(t) and len(t) == self.width for t in v):
                return v
            raise DataError(f"{where} must be class ids, or arrays of {self.width} numbers, one per step")
        if ids(v):
            if not 0 <= v < self.width:
                raise DataError(f"{where}: class {v} is out of range [0, {self.width})")
            return v
        if nums(v) and len(v) == self.width:
            return v
        raise DataError(f"{where} must be a class id or an array of {self.width} numbers")


def read_jsonl(path: str, task_of):
    """-> (task, examples). Every problem is reported with the file, the 1-based line and the field."""
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}")
    examples, task = [], None
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: not JSON ({e.msg})")
            if not isinstance(obj, dict):
                raise DataError(f"{where}: a line must be a JSON object keyed by input names")
            task = task or task_of(obj)
            examples.append(task.parse(obj, where))
    if not examples:
        raise DataError(f"{path}: no examples (the file is empty)")
    return task, examples


def batch_of(task: Task, examples, device):
    """Pads a list of examples: -> (model inputs and lengths, targets [B, T, ...] or [B, ...], valid mask)."""
    args, lengths = [], []
    for k, inp in enumerate(task.inputs):
        rows = [e[0][k] for e in examples]
        T = max(len(r) for r in rows)
        if inp["form"] == "tokens":
            x = torch.zeros(len(rows), T, dtype=torch.long)
            for b, r in enumerate(rows):
                x[b, :len(r)] = torch.tensor(r)
        else:
            x = torch.zeros(len(rows), T, inp["dim"])
            for b, r in enumerate(rows):
                x[b, :len(r)] = torch.tensor(r, dtype=torch.float32)
        args.append(x.to(device))
        lengths.append(torch.tensor([len(r) for r in rows], device=device))
    targets = [e[1] for e in examples]
    if task.per_step:
        T = args[-1].shape[1]
        valid = torch.arange(T, device=device)[None, :] < lengths[-1][:, None]
        float_targets = isinstance(targets[0][0], list)
        y = torch.zeros(len(targets), T, task.width) if float_targets else torch.zeros(len(targets), T, dtype=torch.long)
        for b, t in enumerate(targets):
            y[b, :len(t)] = torch.tensor(t)
    else:
        valid = torch.ones(len(targets), dtype=torch.bool, device=device)
        y = torch.tensor(targets)
    return args + lengths, y.to(device), valid


# ─── losses, optimisers, schedules ───

def log_probs(y, readout: str):
    """The output as log-probabilities, as generate() reads it."""
    if readout == "prob":
        return torch.log(y)
    if readout == "logprob":
        return y
    return torch.log_softmax(y, dim=-1)


def loss_sum(kind: str, y, target, valid, readout: str, smoothing: float):
    """-> (summed loss over the valid positions, how many terms the mean divides by, correct predictions).
    Padded positions are left out before anything is computed on them (log(0) there would poison gradients)."""
    y, target = y[valid], target[valid]
    if kind == "mse":
        err = (y - target.to(y.dtype)) ** 2
        return err.sum(), err.numel(), 0
    lp = log_probs(y, readout) if kind == "nll" else torch.log_softmax(y, dim=-1)
    per = -lp.gather(-1, target[:, None])[:, 0]
    if smoothing:
        per = (1 - smoothing) * per + smoothing * -lp.mean(-1)
    return per.sum(), per.numel(), int((lp.argmax(-1) == target).sum())


def make_optimizer(args, params):
    if args.optimizer == "sgd":
        return torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay or 0.0)
    cls = torch.optim.Adam if args.optimizer == "adam" else torch.optim.AdamW
    wd = args.weight_decay if args.weight_decay is not None else (0.01 if args.optimizer == "adamw" else 0.0)
    return cls(params, lr=args.lr, betas=tuple(args.betas), eps=args.eps, weight_decay=wd)


def lr_factor(args, total_steps: int):
    """The schedule as a factor of --lr at step t (0-based: the t-th optimiser step)."""
    if args.schedule == "constant":
        return lambda t: 1.0
    if args.schedule == "step":
        return lambda t: args.gamma ** (t // args.step_size)
    if args.schedule == "cosine":
        floor = args.min_lr / args.lr
        return lambda t: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, total_steps) / max(1, total_steps)))
    if args.d_model is None:
        raise SystemExit("train: --schedule noam needs --d-model (the model width)")
    return lambda t: args.d_model ** -0.5 * min((t + 1) ** -0.5, (t + 1) * args.warmup ** -1.5)


# ─── the loop ───

def options(argv=None):
    p = argparse.ArgumentParser(description="Train a model written by nnc torch (docs/torch.md).")
    p.add_argument("--data", required=True, help="training data, JSON Lines")
    p.add_argument("--valid", help="validation data, JSON Lines")
    p.add_argument("--model", help="which model of the file (default: the first)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, help="stop after this many optimiser steps")
    p.add_argument("--batch", type=int, default=32, help="global batch size (split evenly over the processes)")
    p.add_argument("--loss", choices=("nll", "cross_entropy", "mse"), help="default: nll for softmax / log_softmax outputs, cross_entropy for logits, mse for number targets")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--betas", type=float, nargs=2, default=(0.9, 0.999))
    p.add_argument("--eps", type=float, default=1e-8)
    p.add_argument("--clip", type=float, help="clip the global gradient norm to this")
    p.add_argument("--schedule", choices=("constant", "step", "cosine", "noam"), default="constant")
    p.add_argument("--step-size", type=int, default=1000, help="step schedule: steps between decays")
    p.add_argument("--gamma", type=float, default=0.5, help="step schedule: decay factor")
    p.add_argument("--min-lr", type=float, default=0.0, help="cosine schedule: the last learning rate")
    p.add_argument("--warmup", type=int, default=400, help="noam schedule: warm-up steps")
    p.add_argument("--d-model", type=int, help="noam schedule: the model width")
    p.add_argument("--init", help="start from these weights (safetensors) instead of PyTorch's initialisation")
    p.add_argument("--out", default="weights.safetensors", help="where the weights go (each epoch and at the end)")
    p.add_argument("--seed", type=int, default=0, help="initialisation, shuffling and dropout")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = options(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    lead = rank == 0

    def say(msg: str) -> None:
        if lead:
            print(msg, flush=True)

    module = load_module()
    if args.model is not None and args.model not in module.MODELS:
        raise SystemExit(f"train: no model '{args.model}' in {MODULE}; it has {', '.join(module.MODELS)}")
    model_cls = module.MODELS[args.model] if args.model else module.Model
    try:
        task, train = read_jsonl(args.data, lambda first: Task(model_cls, first))
        valid_set = read_jsonl(args.valid, lambda first: task)[1] if args.valid else None
    except DataError as e:
        print(f"train: {e}", file=sys.stderr)
        return 1
    if args.batch % world:
        raise SystemExit(f"train: --batch {args.batch} must be a multiple of the {world} processes")
    readout = model_cls.READOUT
    float_targets = task.kind == "target" and isinstance(train[0][1] if not task.per_step else train[0][1][0], list)
    loss_kind = args.loss or ("mse" if float_targets else "nll" if readout in ("prob", "logprob") else "cross_entropy")

    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts rank 0's)
    model = model_cls().to(device)
    if args.init:
        model.load_state_dict(module.load_safetensors(args.init))
    net = DistributedDataParallel(model) if world > 1 else model
    torch.manual_seed(args.seed + rank)  # dropout masks differ between processes
    per_rank = args.batch // world
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed, drop_last=True)
    batches = BatchSampler(sampler, per_rank, drop_last=True)
    if len(batches) == 0:
        raise SystemExit(f"train: {len(train)} examples do not fill one global batch of {args.batch}")
    total = args.steps if args.steps is not None else args.epochs * len(batches)
    opt = make_optimizer(args, model.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(args, total))

    def global_sum(*xs: float):
        t = torch.tensor(xs, dtype=torch.float64, device=device)
        if world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def evaluate(examples):
        net.eval()
        s = DistributedSampler(examples, num_replicas=world, rank=rank, shuffle=False)
        total_loss = count = correct = 0.0
        with torch.no_grad():
            for idx in BatchSampler(s, per_rank, drop_last=False):
                inputs, target, valid = batch_of(task, [examples[i] for i in idx], device)
                ls, n, c = loss_sum(loss_kind, net(*inputs), target, valid, readout, 0.0)
                total_loss, count, correct = total_loss + float(ls), count + n, correct + c
        net.train()
        return global_sum(total_loss, count, correct)

    step, t0 = 0, time.time()
    net.train()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        epoch_loss = epoch_count = 0.0
        for idx in batches:
            if step >= total:
                break
            inputs, target, valid = batch_of(task, [train[i] for i in idx], device)
            ls, n, _ = loss_sum(loss_kind, net(*inputs), target, valid, readout, args.label_smoothing)
            (count,) = global_sum(n)
            opt.zero_grad()
            # DDP averages gradients over processes: scaling by world / count makes that the gradient
            # of the mean over the global batch
            (ls * (world / max(count, 1.0))).backward()
            if args.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            schedule.step()
            step += 1
            epoch_loss, epoch_count = epoch_loss + float(ls), epoch_count + n
        loss, count = global_sum(epoch_loss, epoch_count)
        line = f"epoch {epoch + 1}: step {step}, loss {loss / max(count, 1):.4f}, lr {schedule.get_last_lr()[0]:.3g}, {time.time() - t0:.1f}s"
        if valid_set is not None:
            vl, vn, vc = evaluate(valid_set)
            line += f", valid loss {vl / max(vn, 1):.4f}" + (f", perplexity {math.exp(min(vl / max(vn, 1), 50)):.2f}, accuracy {vc / max(vn, 1):.3f}" if loss_kind != "mse" else "")
        say(line)
        if lead:
            save(module, model, model_cls, args.out)
        if step >= total:
            break
    if lead:
        save(module, model, model_cls, args.out)
        say(f"wrote {args.out} ({step} steps)")
    if world > 1:
        dist.destroy_process_group()
    return 0


def save(module, model, model_cls, path: str) -> None:
    """The weights in nnc's load order (the manifest's), as safetensors."""
    sd = model.state_dict()
    module.save_safetensors(path, {name: sd[name] for name, _ in model_cls.MANIFEST["weights"]})


if __name__ == "__main__":
    sys.exit(main())
