/**
 * model.vjp (docs/training.md) against PyTorch: on every fixture spec, compiled with the real
 * pipeline and run on the `cpu` and `wasm` backends, the gradient of Σ output ⊙ cotangent equals
 * torch.autograd.grad (test/fixtures/<case>/grads.safetensors, make_grad_fixtures.py) for every weight
 * and float input, within 1e-5 (cpu) / 1e-4 (wasm) of that tensor's largest gradient — padded rows
 * included (a gradient that is 0 in exact arithmetic is compared against the model's largest). Also: forward is unchanged by training code, and a wrong cotangent is an NncError.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NncError } from '../src/runtime/errors.ts';
import { createTrainer } from '../src/train/index.ts';
import { compileAndImport, FIXTURES, headlessGlAvailable, maxAbsDiff, toInputs } from './helpers.ts';
import { allFixtures, gradientOf, loadFixture, torchGradients } from './interp-helpers.ts';

const TOL = { cpu: 1e-5, wasm: 1e-4 } as const;
const GL = await headlessGlAvailable();

type Backend = 'cpu' | 'wasm' | 'webasm' | 'gpu';

async function modelFor(name: string, backend: Backend) {
  const f = loadFixture(name);
  const mod = await compileAndImport(`vjp_${name}`, readFileSync(join(FIXTURES, name, 'model.nn'), 'utf8'));
  const model = await mod.createModel(backend === 'cpu' || backend === 'wasm' ? { backend, threads: 1 } : { backend });
  model.loadWeights(Object.fromEntries(f.weights));
  return { f, model };
}

/** model.vjp of a fixture spec against torch.autograd.grad, within `tol` of each tensor's largest gradient. */
async function expectTorchGrads(name: string, backend: Backend, tol: number): Promise<void> {
  const { f, model } = await modelFor(name, backend);
  try {
    const { want, cotangents, names, scale } = torchGradients(f, name);
    const g = await model.vjp(toInputs(f.case), cotangents);
    for (const k of names) {
      const t = want.get(k)!;
      const ours = gradientOf(g, k);
      expect(ours.length, k).toBe(t.data.length);
      expect(maxAbsDiff(ours, t.data) / scale(k), `${k} (largest |grad| ${scale(k)})`).toBeLessThanOrEqual(tol);
    }
  } finally {
    model.dispose();
  }
}

describe.each(allFixtures())('%s', (name) => {
  it.each(['cpu', 'wasm'] as const)('vjp equals torch.autograd.grad on %s', (backend) => expectTorchGrads(name, backend, TOL[backend]));
});

// the gpu.js backends on a subset (an LM, a transformer, a bidirectional stack with float inputs, a
// seq2seq model with attention): 1e-3, as the issue asks; gpu under headless-gl (slow to compile kernels)
const GPU_SUBSET = ['char_lm', 'tf_self_deep', 'lstm_bidir_layers3_vectors'];
describe.each([...GPU_SUBSET, 's2s_additive_bahdanau'])('%s on webasm', (name) => {
  it('vjp equals torch.autograd.grad on webasm', () => expectTorchGrads(name, 'webasm', 1e-3));
});
describe.skipIf(!GL).each(GPU_SUBSET)('%s on gpu (headless-gl)', (name) => {
  it('vjp equals torch.autograd.grad on gpu', () => expectTorchGrads(name, 'gpu', 1e-3), 120_000);
});

describe.each(['tf_self_deep', 'char_lm', 'gru_bidir_layers2_after', 's2s_additive_bahdanau', 'lstm_bidir_layers3_vectors'])('%s at every optimisation level', (name) => {
  it('vjp of the module compiled at -O0 and -O1 equals -O2\'s and torch.autograd.grad on cpu', async () => {
    const f = loadFixture(name);
    const { want, cotangents, names, scale } = torchGradients(f, name);
    const grads = new Map<number, Record<string, Float32Array>>();
    for (const level of [2, 1, 0] as const) {
      const mod = await compileAndImport(`vjp_${name}`, readFileSync(join(FIXTURES, name, 'model.nn'), 'utf8'), undefined, level);
      const model = await mod.createModel({ backend: 'cpu' });
      try {
        model.loadWeights(Object.fromEntries(f.weights));
        const g = await model.vjp(toInputs(f.case), cotangents);
        grads.set(level, Object.fromEntries(names.map((k) => [k, gradientOf(g, k)])));
      } finally {
        model.dispose();
      }
    }
    for (const k of names) {
      for (const level of [0, 1]) {
        expect(maxAbsDiff(grads.get(level)![k]!, want.get(k)!.data) / scale(k), `-O${level} ${k} against torch`).toBeLessThanOrEqual(TOL.cpu);
        expect(maxAbsDiff(grads.get(level)![k]!, grads.get(2)![k]!) / scale(k), `-O${level} ${k} against -O2`).toBeLessThanOrEqual(TOL.cpu);
      }
    }
  });
});

describe('vjp and forward', () => {
  it('forward is the same before and after vjp, and a mis-shaped or misnamed cotangent is an NncError naming the output', async () => {
    const name = 'char_lm';
    const { f, model } = await modelFor(name, 'cpu');
    try {
      const inputs = toInputs(f.case);
      const before = await model.forward(inputs);
      const out = f.model.output.name;
      const y = before[out];
      await model.vjp(inputs, { [out]: { data: new Float32Array(y.data.length).fill(1), shape: y.shape } });
      const after = await model.forward(inputs);
      expect(Array.from(after[out].data)).toEqual(Array.from(y.data));
      await expect(model.vjp(inputs, { [out]: { data: new Float32Array(3), shape: [3] } })).rejects.toThrow(NncError);
      await expect(model.vjp(inputs, { [out]: { data: new Float32Array(3), shape: [3] } })).rejects.toThrow(/shape \[3\].*output has shape/);
      await expect(model.vjp(inputs, { nope: { data: y.data, shape: y.shape } })).rejects.toThrow(new RegExp(`output is '${out}'`));
    } finally {
      model.dispose();
    }
  });

  it.skipIf(!GL)('on the gpu backend, a trainer\'s step equals cpu\'s; saveWeights, synchronous, is an NncError naming the backends that can', async () => {
    const f = loadFixture('char_lm');
    const inputs = toInputs(f.case);
    const x = Object.values(inputs)[0] as { shape: number[]; lengths?: number[] };
    const targets = { data: Int32Array.from({ length: x.shape[0]! * x.shape[1]! }, (_, i) => (i * 7) % 5), shape: x.shape.slice(0, 2), lengths: x.lengths };
    const after: Record<string, { loss: number; weights: Float32Array[] }> = {};
    for (const backend of ['cpu', 'gpu'] as const) {
      const { model } = await modelFor('char_lm', backend);
      try {
        const trainer = createTrainer(model, { loss: 'nll', optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 }, clip: { maxNorm: 1 } });
        const r = await trainer.step({ inputs, targets });
        after[backend] = { loss: r.loss, weights: await model.readWeights() };
        if (backend === 'gpu') expect(() => model.saveWeights()).toThrow(/^saveWeights\(\) is synchronous and the gpu backend reads its buffers asynchronously: use backend 'wasm' or 'cpu'$/);
      } finally {
        model.dispose();
      }
    }
    expect(Math.abs(after.gpu!.loss - after.cpu!.loss) / after.cpu!.loss).toBeLessThan(1e-5);
    after.cpu!.weights.forEach((w, i) => expect(maxAbsDiff(after.gpu!.weights[i]!, w), f.model.weights[i]!.name).toBeLessThan(1e-4));
  }, 120_000);
});
