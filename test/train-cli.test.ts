/**
 * `nnc train` on neural models, as a whole process (bin/nnc.js): bad data is refused before any
 * training with the file, the 1-based line and the field (exit 1, nothing written); bad flags are
 * usage errors (exit 2) with the nearest flag; a run interrupted by a real SIGINT mid-run and resumed
 * with --resume gives the very step losses, gradient norms, learning rates and final weights (bytes)
 * of a run that was not interrupted (cpu backend, with dropout: its masks follow the step); the loss
 * goes down. Weights trained by nnc load into the PyTorch module `nnc torch` writes for the same spec
 * and give nnc's outputs (1e-5). The data module itself (src/train/data.ts): the LM shift, seq2seq framing with the
 * spec's bos/eos, padding and lengths, and batches of similar lengths in a seeded order.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lower } from '../src/driver.ts';
import { batchOrder, parseExamples, toBatch, type TaskModel } from '../src/train/data.ts';
import { computeLoss } from '../src/train/losses.ts';
import { Random } from '../src/train/random.ts';
import { compileAndImport, maxAbsDiff, ROOT } from './helpers.ts';
import { emitPython, inputsFor, runPythonJobs, torchPython } from './torch-helpers.ts';

const BIN = join(ROOT, 'bin/nnc.js');
const nnc = (args: string[], cwd: string) => spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });

const LM = `model Tiny {
  input text: tokens(vocab = 10)
  output next
  embedding dim = 8
  dropout p = 0.2
  gru hidden = 12
  linear 10
  log_softmax
}
`;

const CLASSIFIER = `model Cls {
  input text: tokens(vocab = 5)
  output label
  embedding dim = 4
  gru hidden = 6
  pool max
  linear 2
  softmax
}
`;

/** Counting sequences x[t+1] = x[t] + 1 (mod 10) from a seeded start, 3 to 9 long: a language model learns them. */
function counting(n: number, seed: number): string {
  const r = new Random(seed);
  return Array.from({ length: n }, () => {
    const start = r.below(10);
    return JSON.stringify({ text: Array.from({ length: 3 + r.below(7) }, (_, i) => (start + i) % 10) });
  }).join('\n') + '\n';
}

function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nnc-train-'));
  writeFileSync(join(dir, 'lm.nn'), LM);
  writeFileSync(join(dir, 'cls.nn'), CLASSIFIER);
  return dir;
}

describe('nnc train: bad data and bad flags, before any training', () => {
  const dir = workdir();
  const good = '{"text": [1, 2, 3], "label": 1}';
  const cases: [string, string, RegExp][] = [
    ['not JSON', `${good}\n{"text": [1, 2], "label": 0\n`, /bad\.jsonl:2: not JSON/],
    ['an empty file', '\n\n', /bad\.jsonl: no examples \(the file is empty\)/],
    ['a missing input', `${good}\n\n{"label": 0}\n`, /bad\.jsonl:3: missing input 'text'/],
    ['an unknown key', `{"text": [1], "label": 0, "lable": 1}\n`, /bad\.jsonl:1: unknown field 'lable'; the fields are text, label/],
    ['an id out of range', `${good}\n{"text": [1, 5], "label": 0}\n`, /bad\.jsonl:2: field 'text'\[1\]: id 5 is out of range \[0, 5\)/],
    ['a class out of range', `{"text": [1], "label": 2}\n`, /bad\.jsonl:1: field 'label': class 2 is out of range \[0, 2\)/],
    ['a missing target', `{"text": [1, 2]}\n`, /bad\.jsonl:1: missing field 'label'/],
    ['text without a vocabulary', `{"text": "([])", "label": 1}\n`, /bad\.jsonl:1: field 'text' is text, but the spec declares no vocabulary/],
    ['a non-object line', `[1, 2]\n`, /bad\.jsonl:1: a line must be a JSON object/],
  ];
  it.each(cases)('%s: exit 1, the file, line and field named, nothing written', (_, text, message) => {
    writeFileSync(join(dir, 'bad.jsonl'), text);
    writeFileSync(join(dir, 'ok.jsonl'), `${good}\n`);
    // bad validation data is refused as well, before the first step
    for (const args of [['--data', 'bad.jsonl'], ['--data', 'ok.jsonl', '--valid', 'bad.jsonl']]) {
      const r = nnc(['train', 'cls.nn', ...args, '--out', 'w.safetensors', '--backend', 'cpu'], dir);
      expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(message)]);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stdout).not.toMatch(/epoch/);
      expect(existsSync(join(dir, 'w.safetensors'))).toBe(false);
    }
  });

  it('an LM line holds the input alone (one token is too few); with the output key, one target per step', () => {
    writeFileSync(join(dir, 'lm.jsonl'), '{"text": [1, 2]}\n{"text": [3]}\n');
    const r = nnc(['train', 'lm.nn', '--data', 'lm.jsonl'], dir);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/lm\.jsonl:2: field 'text' needs at least 2 tokens/)]);
    writeFileSync(join(dir, 'lm.jsonl'), '{"text": [1, 2], "next": [2, 3]}\n{"text": [1, 2], "next": [2]}\n');
    const t = nnc(['train', 'lm.nn', '--data', 'lm.jsonl'], dir);
    expect([t.status, t.stderr]).toEqual([1, expect.stringMatching(/lm\.jsonl:2: field 'next' must have one entry per step of the input \(2\), got 1/)]);
  });

  it.each([
    [['--optimiser', 'adam'], /unknown option '--optimiser' for train \(did you mean '--optimizer'\?\)/],
    [['--optimizer', 'adma'], /--optimizer must be one of sgd, adam, adamw; got 'adma' \(did you mean 'adam'\?\)/],
    [['--epochs', '0'], /--epochs must be a whole number ≥ 1, got '0'/],
    [['--lr', 'fast'], /--lr must be a number, got 'fast'/],
    [['--warmup', '10'], /--warmup and --d-model belong to --schedule noam/],
    [['--out', 'w.bin'], /--out names weights, a \.safetensors file/],
    [['--backend', 'gpu'], /--backend must be one of wasm, cpu; got 'gpu'/],
  ])('flags %j: exit 2', (flags, message) => {
    writeFileSync(join(dir, 'ok.jsonl'), `${good}\n`);
    const r = nnc(['train', 'cls.nn', '--data', 'ok.jsonl', ...flags], dir);
    expect([r.status, r.stderr]).toEqual([2, expect.stringMatching(message)]);
  });
});

/** Runs bin/nnc.js and sends SIGINT once `log` has `lines` lines: resolves with the exit code and output. */
function interruptAfter(args: string[], cwd: string, log: string, lines: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr, sent] = ['', '', false];
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const poll = setInterval(() => {
      if (!sent && existsSync(join(cwd, log)) && readFileSync(join(cwd, log), 'utf8').split('\n').length > lines) {
        sent = true;
        p.kill('SIGINT');
      }
    }, 5);
    p.on('error', reject);
    p.on('close', (code) => {
      clearInterval(poll);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('nnc train --resume', () => {
  it('a run interrupted by SIGINT and resumed equals one that was not (losses and weights, bitwise)', async () => {
    const dir = workdir();
    writeFileSync(join(dir, 'train.jsonl'), counting(600, 1));
    writeFileSync(join(dir, 'valid.jsonl'), counting(40, 2));
    const common = ['train', 'lm.nn', '--data', 'train.jsonl', '--epochs', '2', '--batch', '2', '--backend', 'cpu', '--seed', '7', '--lr', '0.01', '--clip', '1'];
    const a = nnc([...common, '--out', 'a.safetensors', '--checkpoint', 'a.ckpt', '--log', 'a.jsonl'], dir);
    expect(a.status, a.stderr).toBe(0);
    const b = await interruptAfter([...common, '--out', 'b.safetensors', '--checkpoint', 'b.ckpt', '--log', 'b.jsonl'], dir, 'b.jsonl', 20);
    expect([b.code, b.stderr]).toEqual([130, expect.stringMatching(/interrupted in epoch \d after step \d+; checkpoint written to b\.ckpt \(continue with --resume b\.ckpt\)/)]);
    const state = JSON.parse(readFileSync(join(dir, 'b.ckpt/state.json'), 'utf8'));
    expect(state.step).toBeGreaterThanOrEqual(20);
    expect(state.step).toBeLessThan(600); // stopped before the end (2 epochs of 300 steps)
    expect(existsSync(join(dir, 'b.safetensors'))).toBe(state.epoch > 0);
    // resuming with other training settings is refused; --epochs may change
    const lr = nnc(['train', 'lm.nn', '--resume', 'b.ckpt', '--lr', '0.1'], dir);
    expect([lr.status, lr.stderr]).toEqual([2, expect.stringMatching(/--lr 0\.1 differs from the checkpoint's 0\.01/)]);
    const r = nnc(['train', 'lm.nn', '--data', 'train.jsonl', '--resume', 'b.ckpt', '--out', 'b.safetensors', '--log', 'b.jsonl'], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resumed from b\.ckpt at epoch \d, step \d+/);
    const steps = (f: string) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const [sa, sb] = [steps('a.jsonl'), steps('b.jsonl')];
    expect(sa).toHaveLength(600);
    expect(sb).toEqual(sa);
    expect(Buffer.compare(readFileSync(join(dir, 'b.safetensors')), readFileSync(join(dir, 'a.safetensors')))).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, 'b.ckpt/optimizer.safetensors')), readFileSync(join(dir, 'a.ckpt/optimizer.safetensors')))).toBe(0);
    // the per-epoch lines agree too, and the model learned: epoch 2's loss is well below ln(10)
    const epochLine = (out: string, e: number) => out.match(new RegExp(`epoch ${e}/2: step \\d+, loss ([\\d.]+)`))?.[1];
    expect(epochLine(r.stdout, 2)).toBe(epochLine(a.stdout, 2));
    expect(Number(epochLine(a.stdout, 2))).toBeLessThan(0.5 * Math.log(10));
  }, 240_000);

  it('--patience stops when the validation loss stops improving; --out holds the best epoch', () => {
    const dir = workdir();
    writeFileSync(join(dir, 'train.jsonl'), counting(40, 3));
    // validation data the model cannot learn from the training data: the loss rises as it fits
    writeFileSync(join(dir, 'valid.jsonl'), Array.from({ length: 20 }, (_, i) => JSON.stringify({ text: [i % 10, (i + 5) % 10, i % 10, (i + 5) % 10] })).join('\n'));
    const r = nnc(['train', 'lm.nn', '--data', 'train.jsonl', '--valid', 'valid.jsonl', '--epochs', '30', '--batch', '4', '--lr', '0.03', '--backend', 'cpu', '--patience', '2'], dir);
    expect(r.status, r.stderr).toBe(0);
    const valid = [...r.stdout.matchAll(/valid loss ([\d.]+), perplexity ([\d.]+), token accuracy ([\d.]+)/g)].map((m) => Number(m[1]));
    expect(r.stdout).toMatch(/early stop: the validation loss has not improved for 2 epochs/);
    expect(valid.length).toBeLessThan(30);
    const best = Math.min(...valid);
    // the last two epochs did not improve on the best before them
    expect(valid.slice(-2).every((v) => v >= best)).toBe(true);
    expect(r.stdout).toContain(`the weights of the best validation loss, ${best.toFixed(4)}`);
  }, 120_000);
});

const python = torchPython();

describe.skipIf(!python)('weights trained by nnc train load into the PyTorch module of the same spec', () => {
  it.each([['lm.nn', 'counting'], ['cls.nn', 'brackets']])('%s: the same outputs (1e-5)', async (spec, data) => {
    const dir = workdir();
    writeFileSync(join(dir, 'train.jsonl'), data === 'counting' ? counting(24, 4) : Array.from({ length: 24 }, (_, i) => JSON.stringify({ text: [1 + (i % 4), 1 + ((i * 3) % 4), 2], label: i % 2 })).join('\n'));
    const r = nnc(['train', spec, '--data', 'train.jsonl', '--epochs', '2', '--batch', '8', '--lr', '0.05', '--backend', 'cpu', '--out', 'w.safetensors'], dir);
    expect(r.status, r.stderr).toBe(0);
    const text = readFileSync(join(dir, spec), 'utf8');
    writeFileSync(join(dir, 'model.py'), emitPython(text, spec));
    const ir = lower(text, spec).models![0]!;
    const inputs = inputsFor(ir, 11);
    const mod = await compileAndImport(`train-cli-${spec.replace('.nn', '')}`, text, spec);
    const model = await mod.createModel({ backend: 'cpu' });
    let out: { data: Float32Array };
    try {
      model.loadWeights(readFileSync(join(dir, 'w.safetensors')));
      out = Object.values(await model.forward(Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, { data: Int32Array.from(v.data), shape: v.shape, lengths: v.lengths }]))))[0] as { data: Float32Array };
    } finally {
      model.dispose();
    }
    const py = (await runPythonJobs(python!, [{ id: spec, module: join(dir, 'model.py'), weights: join(dir, 'w.safetensors'), inputs }], `train-cli-${spec}`)).get(spec)!;
    expect(py.error).toBeUndefined();
    expect(py.output.data).toHaveLength(out.data.length);
    expect(maxAbsDiff(py.output.data, out.data)).toBeLessThanOrEqual(1e-5);
  }, 240_000);
});

describe.skipIf(!python)('loss nll_prob (softmax outputs)', () => {
  it('equals torch.nn.functional.nll_loss(torch.log(p)) over the valid positions, and its gradient', () => {
    const r = new Random(3);
    const [B, T, C] = [2, 3, 4];
    const p = Float32Array.from({ length: B * T * C }, () => 0.05 + r.next());
    for (let i = 0; i < B * T; i++) {
      const s = p.slice(i * C, i * C + C).reduce((a, c) => a + c, 0);
      for (let c = 0; c < C; c++) p[i * C + c] = Math.fround(p[i * C + c]! / s);
    }
    const targets = { data: Int32Array.from({ length: B * T }, () => r.below(C)), shape: [B, T], lengths: [3, 2] };
    const ours = computeLoss({ kind: 'nll_prob' }, { data: p, shape: [B, T, C] }, targets);
    const script = `import json, sys, torch
d = json.load(sys.stdin)
p = torch.tensor(d["p"], dtype=torch.float32).reshape(${B}, ${T}, ${C}).requires_grad_()
t = torch.tensor(d["t"]).reshape(${B}, ${T})
valid = torch.arange(${T})[None, :] < torch.tensor(d["lengths"])[:, None]
loss = torch.nn.functional.nll_loss(torch.log(p)[valid], t[valid])
loss.backward()
print(json.dumps({"loss": loss.item(), "grad": p.grad.flatten().tolist()}))`;
    const py = spawnSync(python!, ['-c', script], { input: JSON.stringify({ p: Array.from(p), t: Array.from(targets.data), lengths: targets.lengths }), encoding: 'utf8' });
    expect(py.status, py.stderr).toBe(0);
    const want = JSON.parse(py.stdout) as { loss: number; grad: number[] };
    expect(Math.abs(ours.loss - want.loss)).toBeLessThan(1e-6);
    expect(maxAbsDiff(ours.grad, want.grad)).toBeLessThan(1e-5);
  });
});

describe('data module', () => {
  const vocab = (ids: Record<string, number>) => ({ encode: (t: string) => [...t].map((c) => ids[c]!), specials: { pad: 0 } });
  const seq2seq: TaskModel = {
    manifest: {
      model: 'S', inputs: [{ name: 'src', form: 'tokens', vocab: 6 }, { name: 'tgt', form: 'tokens', vocab: 5 }],
      output: { name: 'next', shape: ['B', 'T', 5] }, decode: { bos: 1, eos: 2 },
    },
    readout: 'logprob',
    vocabulary: (input) => (input === 'src' ? vocab({ a: 3, b: 4, c: 5 }) : undefined),
  };

  it('seq2seq: the decoder reads [bos, t…] and is scored on [t…, eos]; text through the vocabulary; padded with lengths', () => {
    const { task, examples } = parseExamples('{"src": "abc", "tgt": [3, 4]}\n{"src": [3], "tgt": [4]}\n', 'p.jsonl', seq2seq);
    expect([task.kind, task.loss]).toEqual(['seq2seq', 'nll']);
    expect(examples[0]).toEqual({ inputs: [[3, 4, 5], [1, 3, 4]], target: [3, 4, 2] });
    const b = toBatch(task, examples, [0, 1]);
    const src = (b.inputs as Record<string, { data: Int32Array; shape: number[]; lengths: number[] }>).src!;
    const tgt = (b.inputs as Record<string, { data: Int32Array; shape: number[]; lengths: number[] }>).tgt!;
    expect([Array.from(src.data), src.shape, src.lengths]).toEqual([[3, 4, 5, 3, 0, 0], [2, 3], [3, 1]]);
    expect([Array.from(tgt.data), tgt.shape, tgt.lengths]).toEqual([[1, 3, 4, 1, 4, 0], [2, 3], [3, 2]]);
    expect([Array.from(b.targets.data), b.targets.shape, b.targets.lengths]).toEqual([[3, 4, 2, 4, 2, 0], [2, 3], [3, 2]]);
  });

  it('seq2seq without bos/eos in the spec is an error naming the decode statement', () => {
    const m = { ...seq2seq, manifest: { ...seq2seq.manifest, decode: undefined } };
    expect(() => parseExamples('{"src": [3], "tgt": [4]}\n', 'p.jsonl', m)).toThrow(/add a decode statement, e\.g\. 'decode greedy, bos = 1, eos = 2'/);
  });

  it('batches group similar lengths, in an order that follows the seed alone', () => {
    const lm: TaskModel = { manifest: { model: 'L', inputs: [{ name: 'x', form: 'tokens', vocab: 50 }], output: { name: 'y', shape: ['B', 'T', 50] } }, readout: 'logits' };
    const lines = Array.from({ length: 64 }, (_, i) => JSON.stringify({ x: Array.from({ length: 2 + ((i * 7) % 30) }, () => 1) })).join('\n');
    const { task, examples } = parseExamples(lines, 'l.jsonl', lm);
    expect([task.kind, task.loss]).toEqual(['lm', 'cross_entropy']);
    const order = batchOrder(examples, 8, new Random(5));
    expect(batchOrder(examples, 8, new Random(5))).toEqual(order);
    expect(batchOrder(examples, 8, new Random(6))).not.toEqual(order);
    expect(order.flat().sort((a, b) => a - b)).toEqual(examples.map((_, i) => i));
    // padding: within a batch the lengths span far less than the data's 30
    const len = (i: number) => examples[i]!.inputs[0]!.length;
    for (const b of order) expect(Math.max(...b.map(len)) - Math.min(...b.map(len))).toBeLessThanOrEqual(4);
  });
});
