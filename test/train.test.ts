/**
 * nnc/train's numeric core (src/train) against PyTorch (test/fixtures/make_train_fixtures.py: 20 steps
 * of torch.optim with clipping and schedules on small models):
 *
 * - replay: PyTorch's own gradients of every step through our clipping, schedule and optimiser give
 *   its gradient norms, learning rates and final weights (float32 emulated: within 1e-6);
 * - end to end: our loss, its gradient, reverse mode (src/passes/grad on the float64 IR interpreter)
 *   and our optimiser give PyTorch's losses, gradient norms and final weights within 1e-5;
 * - optimiser state saved at step 10 and restored into a fresh optimiser resumes bit-exactly;
 * - losses' gradients against central differences; dropout masks; option errors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lower } from '../src/driver.ts';
import { evaluate } from '../src/ir/interp.ts';
import { gradModel } from '../src/passes/grad/index.ts';
import { hoistInputProjections } from '../src/passes/hoist.ts';
import { mergeMatmuls } from '../src/passes/merge-matmuls.ts';
import {
  clipGradNorm, clipGradValue, computeLoss, createOptimizer, dropoutMask, dropoutUniform, learningRate, restoreOptimizerState,
  saveOptimizerState, checkSchedule, type LossOptions, type OptimizerOptions, type ScheduleOptions,
} from '../src/train/index.ts';
import { runGrad } from './grad-helpers.ts';
import { FIXTURES, indexNames, prng, type Case } from './helpers.ts';
import { envOf, readTensors } from './interp-helpers.ts';

interface TrainCase extends Case {
  targets: { dtype: string; shape: number[]; data: number[]; lengths?: number[] };
  loss: LossOptions;
  optimizer: OptimizerOptions;
  clip: { maxNorm?: number; value?: number } | null;
  schedule: ScheduleOptions | null;
  steps: { loss: number; gradNorm: number; lr: number }[];
  weights: { name: string; shape: number[] }[];
}

const names = indexNames('train-index.json');

function load(name: string) {
  const dir = join(FIXTURES, name);
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as TrainCase;
  const tensors = (file: string) => new Map([...readTensors(readFileSync(join(dir, file)))].map(([k, v]) => [k, v.data]));
  return { c, spec: readFileSync(join(dir, 'model.nn'), 'utf8'), initial: tensors('weights.safetensors'), grads: tensors('grads.safetensors'), final: tensors('final.safetensors') };
}

const copy = (m: ReadonlyMap<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

/**
 * Largest |ours - torch| over the tensor's largest |torch|, across all weights; `skip` leaves out
 * elements (name → flags).
 */
function weightError(ours: ReadonlyMap<string, Float32Array>, want: ReadonlyMap<string, Float32Array>, skip?: ReadonlyMap<string, Uint8Array>): { err: number; where: string } {
  let err = 0;
  let where = '';
  for (const [k, t] of want) {
    const o = ours.get(k)!;
    let scale = 0;
    let e = 0;
    for (let i = 0; i < t.length; i++) {
      scale = Math.max(scale, Math.abs(t[i]));
      if (!skip?.get(k)?.[i]) e = Math.max(e, Math.abs(o[i] - t[i]));
    }
    if (e / scale > err) [err, where] = [e / scale, k];
  }
  return { err, where };
}

/** Clipping as a training step applies it: value clipping, then global-norm clipping; the norm is measured before both. */
function clip(c: TrainCase, grads: Map<string, Float32Array>): number {
  const norm = clipGradNorm(grads);
  if (c.clip?.value !== undefined) clipGradValue(grads, c.clip.value);
  if (c.clip?.maxNorm !== undefined) clipGradNorm(grads, c.clip.maxNorm);
  return norm;
}

describe.each(names)('%s', (name) => {
  const { c, spec, initial, grads, final } = load(name);

  it("replays PyTorch's gradients: its gradient norms, learning rates and final weights (1e-6)", () => {
    const weights = copy(initial);
    const opt = createOptimizer(c.optimizer);
    c.steps.forEach((s, k) => {
      const g = new Map(c.weights.map((w) => [w.name, Float32Array.from(grads.get(`step${k}.${w.name}`)!)]));
      expect(rel(clip(c, g), s.gradNorm), `step ${k} norm`).toBeLessThan(1e-6);
      const lr = learningRate(c.optimizer.lr, c.schedule ?? undefined, k);
      expect(rel(lr, s.lr), `step ${k} lr`).toBeLessThan(1e-12);
      opt.step(weights, g, lr);
    });
    const { err, where } = weightError(weights, final);
    expect(err, where).toBeLessThan(1e-6);
  });

  it('resumes exactly from optimiser state saved at step 10', () => {
    const run = (resumeAt?: number) => {
      let weights = copy(initial);
      let opt = createOptimizer(c.optimizer);
      c.steps.forEach((_, k) => {
        if (k === resumeAt) {
          const bytes = saveOptimizerState(opt);
          weights = copy(weights);
          opt = createOptimizer(c.optimizer);
          restoreOptimizerState(opt, bytes);
          expect(opt.steps).toBe(k);
        }
        const g = new Map(c.weights.map((w) => [w.name, Float32Array.from(grads.get(`step${k}.${w.name}`)!)]));
        clip(c, g);
        opt.step(weights, g, learningRate(c.optimizer.lr, c.schedule ?? undefined, opt.steps));
      });
      return weights;
    };
    const straight = run();
    const resumed = run(10);
    for (const [k, w] of straight) expect([...resumed.get(k)!], k).toEqual([...w]);
  });

  it('end to end: our loss, reverse mode and optimiser give its losses, gradient norms and final weights (1e-5)', () => {
    const { models } = lower(spec, `${name}/model.nn`);
    const m = models![0];
    mergeMatmuls(m.graph);
    hoistInputProjections(m.graph);
    const gr = gradModel(m);
    const weights = copy(initial);
    const opt = createOptimizer(c.optimizer);
    const targets = { data: c.targets.dtype === 'int32' ? Int32Array.from(c.targets.data) : Float64Array.from(c.targets.data), shape: c.targets.shape, lengths: c.targets.lengths };
    c.steps.forEach((s, k) => {
      const env = envOf(m, c, weights);
      const y = evaluate(gr.forward.graph, env).outputs[m.output.name];
      const L = computeLoss(c.loss, y, targets);
      expect(rel(L.loss, s.loss), `step ${k} loss ${L.loss} vs ${s.loss}`).toBeLessThan(1e-5);
      const { grads: g64 } = runGrad(gr, env, { shape: y.shape, data: Float64Array.from(L.grad) });
      const g = new Map(c.weights.map((w) => [w.name, Float32Array.from(g64[w.name].data)]));
      expect(rel(clip(c, g), s.gradNorm), `step ${k} gradient norm`).toBeLessThan(1e-5);
      opt.step(weights, g, learningRate(c.optimizer.lr, c.schedule ?? undefined, k));
    });
    // A weight element whose gradient is 0 in exact arithmetic (the key bias of attention: a shift of
    // every score of a query, which softmax ignores) gets PyTorch's float32 rounding noise, ~1e-9, as
    // its gradient, and Adam normalises that noise into real steps; float64 noise is 1e-17. Those
    // elements' final values are PyTorch's noise, not a reference: they are left out here (the replay
    // test above, on PyTorch's own gradients, includes them).
    const noise = new Map(c.weights.map((w) => {
      const per = c.steps.map((_, k) => grads.get(`step${k}.${w.name}`)!);
      const top = Math.max(...per.map((g) => g.reduce((a, v) => Math.max(a, Math.abs(v)), 0)));
      return [w.name, Uint8Array.from(per[0], (_, i) => (per.every((g) => Math.abs(g[i]) <= 1e-6 * top) && per.some((g) => g[i] !== 0) ? 1 : 0))];
    }));
    const { err, where } = weightError(weights, final, noise);
    expect(err, where).toBeLessThan(1e-5);
  });
});

describe('losses', () => {
  const r = prng(3);
  const out = { shape: [2, 3, 4], data: Float64Array.from({ length: 24 }, () => 2 * r() - 1) };
  const lengths = [3, 2];
  const cases: [string, LossOptions, { data: Int32Array | Float64Array; shape: number[]; lengths?: number[] }][] = [
    ['nll', { kind: 'nll' }, { data: Int32Array.of(0, 3, 1, 2, 2, 0), shape: [2, 3], lengths }],
    ['cross_entropy', { kind: 'cross_entropy' }, { data: Int32Array.of(0, 3, 1, 2, 2, 0), shape: [2, 3], lengths }],
    ['cross_entropy, label smoothing 0.2', { kind: 'cross_entropy', labelSmoothing: 0.2 }, { data: Int32Array.of(0, 3, 1, 2, 2, 0), shape: [2, 3], lengths }],
    ['mse', { kind: 'mse' }, { data: Float64Array.from({ length: 24 }, () => r()), shape: [2, 3, 4], lengths }],
  ];
  it.each(cases)('%s: the gradient equals central differences, and padded positions get none', (_n, opts, t) => {
    const { grad } = computeLoss(opts, out, t);
    for (let i = 0; i < 24; i++) {
      const at = (d: number) => {
        const data = Float64Array.from(out.data);
        data[i] += d;
        return computeLoss(opts, { shape: out.shape, data }, t).loss;
      };
      const fd = (at(1e-6) - at(-1e-6)) / 2e-6;
      expect(Math.abs(grad[i] - fd), `element ${i}`).toBeLessThan(1e-6);
      if (i >= 4 * (3 + 2)) expect(grad[i]).toBe(0); // row 1, step 2 is padding
    }
  });
  it('counts valid positions and correct arg-maxes', () => {
    const r2 = computeLoss({ kind: 'nll' }, { shape: [1, 2, 2], data: [0, 1, 1, 0] }, { data: Int32Array.of(1, 1), shape: [1, 2], lengths: [2] });
    expect([r2.count, r2.correct]).toEqual([2, 1]);
  });
  it('says what is wrong with targets', () => {
    expect(() => computeLoss({ kind: 'nll' }, out, { data: Int32Array.of(0), shape: [1] })).toThrow('nll needs targets of shape [2, 3] for an output [2, 3, 4], got [1]');
    expect(() => computeLoss({ kind: 'nll' }, out, { data: Int32Array.of(0, 9, 1, 2, 2, 0), shape: [2, 3] })).toThrow('target 9 at row 0, step 1 is not a class in [0, 4)');
    expect(() => computeLoss({ kind: 'mse', labelSmoothing: 0.1 }, out, cases[3][2])).toThrow('label smoothing applies to cross_entropy, not mse');
  });
});

describe('options', () => {
  it('rejects what torch.optim rejects, naming the option', () => {
    expect(() => createOptimizer({ kind: 'sgd', lr: 0.1, nesterov: true })).toThrow('Nesterov momentum needs momentum > 0 and dampening = 0');
    expect(() => createOptimizer({ kind: 'adam', lr: -1 })).toThrow('adam: lr must be a finite number ≥ 0, got -1');
    expect(() => createOptimizer({ kind: 'adamw', lr: 1e-3, betas: [0.9, 1] })).toThrow('betas must be in [0, 1)');
    expect(() => checkSchedule({ kind: 'noam', warmup: 0, dModel: 64 })).toThrow('schedule noam: warmup must be a whole number > 0, got 0');
  });
  it('noam peaks at step = warmup with (dModel · warmup)^-0.5 · lr', () => {
    const s: ScheduleOptions = { kind: 'noam', warmup: 400, dModel: 64 };
    expect(learningRate(1, s, 399)).toBeCloseTo((64 * 400) ** -0.5, 15);
    expect(learningRate(1, s, 398)).toBeLessThan(learningRate(1, s, 399));
    expect(learningRate(1, s, 400)).toBeLessThan(learningRate(1, s, 399));
  });
});

describe('dropout masks', () => {
  it('are seeded, drop a fraction p, scale kept values by 1 / (1 - p)', () => {
    const n = 200_000;
    const m = dropoutMask(0.3, 42, 7, 1, n);
    expect([...dropoutMask(0.3, 42, 7, 1, 100)]).toEqual([...m.subarray(0, 100)]);
    const dropped = m.reduce((a, v) => a + (v === 0 ? 1 : 0), 0);
    // binomial: 5 standard deviations
    expect(Math.abs(dropped / n - 0.3)).toBeLessThan(5 * Math.sqrt((0.3 * 0.7) / n));
    expect(new Set(m)).toEqual(new Set([0, Math.fround(1 / 0.7)]));
    expect([...dropoutMask(0, 42, 7, 1, 1000)].every((v) => v === 1)).toBe(true);
  });
  it('differ across seeds, steps and layers, and any element can be drawn alone', () => {
    const a = dropoutMask(0.5, 1, 0, 0, 64);
    for (const other of [dropoutMask(0.5, 2, 0, 0, 64), dropoutMask(0.5, 1, 1, 0, 64), dropoutMask(0.5, 1, 0, 1, 64)]) expect([...other]).not.toEqual([...a]);
    expect(dropoutUniform(1, 0, 0, 37) >= 0.5 ? 2 : 0).toBe(a[37]);
  });
});
