/**
 * `nnc torch --train`: the training script, run as users run it. `nnc torch spec -o model.py --train`
 * (the CLI as a process) writes the module and train_model.py; a JSON Lines file in the shared data
 * format (test/fixtures-free: made here) trains
 *  - a Bahdanau translator (seq2seq pairs, bos/eos from its decode statement; adam, clipping, cosine
 *    schedule, label smoothing) and
 *  - a pre-norm Transformer language model (the target is the input shifted by one; sgd, noam)
 * for a few steps twice: in one process, and under torchrun with 2 processes (DistributedDataParallel
 * on gloo, each process reading half of every global batch). The weights must agree within 1e-5, must
 * have moved, and nnc must load the torchrun run's safetensors and compute the PyTorch module's forward
 * with them (1e-5). A classifier and a tagger train in one process (their targets under the output
 * name), and a bad data line is refused with its file, line and field.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compileAndImport, FIXTURES, maxAbsDiff, prng, ROOT } from './helpers.ts';
import { type PyTensor, runPythonJobs, TORCH_OUT, torchPython } from './torch-helpers.ts';

const exec = promisify(execFile);
/** One thread per Python process (torchrun does the same): the suite runs beside other test files. */
const run = (file: string, args: string[]) => exec(file, args, { env: { ...process.env, OMP_NUM_THREADS: '1' } });
const python = torchPython();
const NNC = join(ROOT, 'bin/nnc.js');

/** Reads the tensors of a safetensors file (F32). */
function readSafetensors(bytes: Uint8Array): Map<string, Float32Array> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const out = new Map<string, Float32Array>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    const [b, e] = v.data_offsets;
    out.set(k, new Float32Array(Uint8Array.from(bytes.subarray(8 + n + b, 8 + n + e)).buffer));
  }
  return out;
}

function maxWeightDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let m = 0;
  for (const [k, v] of a) m = Math.max(m, maxAbsDiff(v, b.get(k)!));
  return m;
}

interface Case {
  name: string;
  fixture: string;
  lines: (r: () => number) => Record<string, unknown>;
  args: string[];
  torchrun: boolean;
}

const ids = (r: () => number, n: number, vocab: number) => Array.from({ length: n }, () => Math.floor(r() * vocab));
const len = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

const CASES: Case[] = [
  {
    name: 'seq2seq (Bahdanau, bridge)', fixture: 's2s_additive_bahdanau', torchrun: true,
    lines: (r) => ({ source: ids(r, len(r, 1, 7), 9), target: ids(r, len(r, 1, 5), 8) }),
    args: ['--optimizer', 'adam', '--lr', '0.01', '--clip', '0.5', '--schedule', 'cosine', '--label-smoothing', '0.1'],
  },
  {
    name: 'Transformer language model', fixture: 'tf_lm_prenorm_learned', torchrun: true,
    lines: (r) => ({ text: ids(r, len(r, 2, 12), 10) }),
    // sgd: the key bias of softmax attention has a gradient of exactly 0 in exact arithmetic, which
    // Adam would turn from float noise (different in 1 and 2 processes) into full steps
    args: ['--optimizer', 'sgd', '--momentum', '0.9', '--lr', '2', '--schedule', 'noam', '--warmup', '2', '--d-model', '8', '--weight-decay', '0.01'],
  },
  {
    name: 'classifier (pool max)', fixture: 'sentence_classifier', torchrun: false,
    lines: (r) => ({ text: ids(r, len(r, 1, 6), 16), label: Math.floor(r() * 3) }),
    args: ['--optimizer', 'sgd', '--lr', '0.5', '--momentum', '0.9', '--nesterov', '--schedule', 'step', '--step-size', '2'],
  },
  {
    name: 'tagger', fixture: 'pos_tagger', torchrun: false,
    lines: (r) => {
      const n = len(r, 1, 6);
      return { words: ids(r, n, 15), tags: ids(r, n, 7) };
    },
    args: ['--optimizer', 'adamw', '--lr', '0.01'],
  },
];

describe.skipIf(!python)('nnc torch --train: the training script', () => {
  const dir = join(TORCH_OUT, 'train');
  mkdirSync(dir, { recursive: true });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const work = join(dir, c.fixture);
    mkdirSync(work, { recursive: true });
    const spec = join(FIXTURES, c.fixture, 'model.nn');
    const cli = await run(process.execPath, [NNC, 'torch', spec, '-o', join(work, 'model.py'), '--train']);
    expect(cli.stdout).toContain('train_model.py');
    const r = prng(c.fixture.length * 7919);
    writeFileSync(join(work, 'train.jsonl'), Array.from({ length: 24 }, () => JSON.stringify(c.lines(r))).join('\n') + '\n');
    const init = join(FIXTURES, c.fixture, 'weights.safetensors');
    const common = [join(work, 'train_model.py'), '--data', join(work, 'train.jsonl'), '--batch', '8', '--steps', '4', '--epochs', '2', '--init', init, '--seed', '3', ...c.args];
    const one = join(work, 'one.safetensors');
    const single = await run(python!, [...common, '--out', one]);
    expect(single.stdout).toMatch(/epoch 1: step 3, loss \d/);
    const w1 = readSafetensors(readFileSync(one));
    expect(maxWeightDiff(w1, readSafetensors(readFileSync(init))), 'the weights moved').toBeGreaterThan(1e-3);
    let trained = one;
    if (c.torchrun) {
      const two = join(work, 'two.safetensors');
      // --redirects/--tee: Debian's torchrun 1.13 cannot parse their defaults under Python 3.11
      const t0 = Date.now();
      await run(python!, ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '--redirects', '1', '--tee', '1', ...common, '--out', two]);
      const diff = maxWeightDiff(readSafetensors(readFileSync(two)), w1);
      console.log(`${c.name}: torchrun (2 processes, gloo) took ${((Date.now() - t0) / 1000).toFixed(1)} s; max |2 processes - 1 process| = ${diff.toExponential(2)}`);
      expect(diff).toBeLessThanOrEqual(1e-5);
      trained = two;
    }
    // nnc loads what PyTorch wrote, and computes the PyTorch module's forward with it
    const fixture = JSON.parse(readFileSync(join(FIXTURES, c.fixture, 'case.json'), 'utf8')) as { inputs: Record<string, PyTensor> };
    const mod = await compileAndImport(`torch-train-${c.fixture}`, readFileSync(spec, 'utf8'), spec);
    const model = await mod.createModel({ backend: 'cpu' });
    let out: { data: Float32Array };
    try {
      model.loadWeights(readFileSync(trained));
      const inputs = Object.fromEntries(Object.entries(fixture.inputs).map(([k, v]) => [k, { data: Int32Array.from(v.data), shape: v.shape, lengths: v.lengths }]));
      out = Object.values(await model.forward(inputs))[0] as { data: Float32Array };
    } finally {
      model.dispose();
    }
    const py = (await runPythonJobs(python!, [{ id: c.fixture, module: join(work, 'model.py'), weights: trained, inputs: fixture.inputs }], `train-${c.fixture}`)).get(c.fixture)!;
    expect(py.error).toBeUndefined();
    expect(maxAbsDiff(py.output.data, out.data)).toBeLessThanOrEqual(1e-5);
  }, 600_000);

  it('refuses a bad data line with the file, the line and the field', async () => {
    const work = join(dir, 'bad');
    mkdirSync(work, { recursive: true });
    await run(process.execPath, [NNC, 'torch', join(FIXTURES, 'sentence_classifier', 'model.nn'), '-o', join(work, 'model.py'), '--train']);
    const data = join(work, 'bad.jsonl');
    writeFileSync(data, '{"text": [1, 2], "label": 0}\n\n{"text": [1, 2], "lable": 1}\n');
    const err = await run(python!, [join(work, 'train_model.py'), '--data', data]).then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain(`${data}:3: unknown key 'lable'; the keys are label, text`);
  }, 120_000);
});
