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
import { compileAndImport, FIXTURES, headlessGlAvailable, maxAbsDiff, toInputs } from './helpers.ts';
import { allFixtures, loadFixture, readTensors } from './interp-helpers.ts';

const TOL = { cpu: 1e-5, wasm: 1e-4 } as const;
const GL = await headlessGlAvailable();

async function modelFor(name: string, backend: 'cpu' | 'wasm') {
  const f = loadFixture(name);
  const mod = await compileAndImport(`vjp_${name}`, readFileSync(join(FIXTURES, name, 'model.nn'), 'utf8'));
  const model = await mod.createModel({ backend, threads: 1 });
  model.loadWeights(Object.fromEntries(f.weights));
  return { f, model };
}

describe.each(allFixtures())('%s', (name) => {
  it.each(['cpu', 'wasm'] as const)('vjp equals torch.autograd.grad on %s', async (backend) => {
    const { f, model } = await modelFor(name, backend);
    try {
      const want = readTensors(readFileSync(join(FIXTURES, name, 'grads.safetensors')));
      const out = f.model.output.name;
      const c = want.get(`cotangent:${out}`)!;
      const g = await model.vjp(toInputs(f.case), { [out]: { data: c.data, shape: [...c.shape] } });
      const names = [...f.model.weights.map((w) => w.name), ...f.model.inputs.filter((i) => i.form === 'vectors').map((i) => `input:${i.name}`)];
      const largest = (k: string) => want.get(k)!.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const top = Math.max(...names.map(largest));
      for (const k of names) {
        const t = want.get(k)!;
        const ours: Float32Array = k.startsWith('input:') ? g.inputs[k.slice(6)].data : g.weights[k];
        expect(ours.length, k).toBe(t.data.length);
        // a gradient that is 0 in exact arithmetic (a score's bias under softmax: torch's is float
        // noise below 1e-6 of the model's largest) is float32 noise here too: measured against the model's largest
        const scale = largest(k) < 1e-6 * top ? top : largest(k);
        expect(maxAbsDiff(ours, t.data) / scale, `${k} (largest |grad| ${scale})`).toBeLessThanOrEqual(TOL[backend]);
      }
    } finally {
      model.dispose();
    }
  });
});

describe.each(['tf_self_deep', 'char_lm', 'gru_bidir_layers2_after', 's2s_additive_bahdanau', 'lstm_bidir_layers3_vectors'])('%s at every optimisation level', (name) => {
  it('vjp of the module compiled at -O0 and -O1 equals -O2\'s and torch.autograd.grad on cpu', async () => {
    const f = loadFixture(name);
    const want = readTensors(readFileSync(join(FIXTURES, name, 'grads.safetensors')));
    const out = f.model.output.name;
    const c = want.get(`cotangent:${out}`)!;
    const names = [...f.model.weights.map((w) => w.name), ...f.model.inputs.filter((i) => i.form === 'vectors').map((i) => `input:${i.name}`)];
    const largest = (k: string) => want.get(k)!.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const top = Math.max(...names.map(largest));
    const grads = new Map<number, Record<string, Float32Array>>();
    for (const level of [2, 1, 0] as const) {
      const mod = await compileAndImport(`vjp_${name}`, readFileSync(join(FIXTURES, name, 'model.nn'), 'utf8'), undefined, level);
      const model = await mod.createModel({ backend: 'cpu' });
      try {
        model.loadWeights(Object.fromEntries(f.weights));
        const g = await model.vjp(toInputs(f.case), { [out]: { data: c.data, shape: [...c.shape] } });
        grads.set(level, Object.fromEntries(names.map((k) => [k, k.startsWith('input:') ? g.inputs[k.slice(6)].data : g.weights[k]])));
      } finally {
        model.dispose();
      }
    }
    for (const k of names) {
      const scale = largest(k) < 1e-6 * top ? top : largest(k);
      for (const level of [0, 1]) {
        expect(maxAbsDiff(grads.get(level)![k]!, want.get(k)!.data) / scale, `-O${level} ${k} against torch`).toBeLessThanOrEqual(TOL.cpu);
        expect(maxAbsDiff(grads.get(level)![k]!, grads.get(2)![k]!) / scale, `-O${level} ${k} against -O2`).toBeLessThanOrEqual(TOL.cpu);
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

  it.skipIf(!GL)('on a gpu.js backend, vjp and training are an NncError naming the backend and the ones that train', async () => {
    const f = loadFixture('char_lm');
    const mod = await compileAndImport('vjp_char_lm', readFileSync(join(FIXTURES, 'char_lm', 'model.nn'), 'utf8'));
    const model = await mod.createModel({ backend: 'gpu' });
    try {
      model.loadWeights(Object.fromEntries(f.weights));
      const y = (await model.forward(toInputs(f.case)))[f.model.output.name];
      const call = model.vjp(toInputs(f.case), { [f.model.output.name]: { data: y.data, shape: y.shape } });
      await expect(call).rejects.toThrow(NncError);
      await expect(model.vjp(toInputs(f.case), { [f.model.output.name]: { data: y.data, shape: y.shape } })).rejects.toThrow(/not supported on the gpu backend.*'wasm' or 'cpu'/);
    } finally {
      model.dispose();
    }
  });
});
