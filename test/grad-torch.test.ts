/**
 * Reverse mode against PyTorch: on every fixture spec, the backward graph (src/passes/grad), run on
 * the float64 IR interpreter with the fixture's cotangent, equals torch.autograd.grad
 * (test/fixtures/<case>/grads.safetensors, made by make_grad_fixtures.py) for every weight and float
 * input within 1e-5 of that tensor's largest gradient — padded batches included (the cotangent is
 * random over padded positions too) — as lowered (-O0), after merge-matmuls + hoist (-O1), and with
 * recomputation from every third state.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../src/ir/interp.ts';
import { gradModel } from '../src/passes/grad/index.ts';
import { hoistInputProjections } from '../src/passes/hoist.ts';
import { mergeMatmuls } from '../src/passes/merge-matmuls.ts';
import { runGrad } from './grad-helpers.ts';
import { FIXTURES } from './helpers.ts';
import { allFixtures, loadFixture, readTensors } from './interp-helpers.ts';

/**
 * The largest |ours - torch| of each tensor over its largest |torch| (at least 1e-8: a gradient that is
 * 0 in exact arithmetic — a score's bias under softmax — is float noise on both sides).
 */
export function torchErrors(name: string, level: 0 | 1, checkpoint?: number): Map<string, number> {
  const f = loadFixture(name);
  if (level) {
    mergeMatmuls(f.model.graph);
    hoistInputProjections(f.model.graph);
  }
  const want = readTensors(readFileSync(join(FIXTURES, name, 'grads.safetensors')));
  const out = f.model.output.name;
  const c = want.get(`cotangent:${out}`)!;
  const cot: Tensor = { shape: c.shape, data: Float64Array.from(c.data) };
  const { grads, nonFinite } = runGrad(gradModel(f.model, { checkpoint }), f.env, cot);
  expect(nonFinite, 'every backward value is finite (padded positions included)').toBeUndefined();
  const errors = new Map<string, number>();
  const expected = [...f.model.weights.map((w) => w.name), ...f.model.inputs.filter((i) => i.form === 'vectors').map((i) => `input:${i.name}`)];
  expect([...want.keys()].filter((k) => !k.startsWith('cotangent:')).sort()).toEqual([...expected].sort());
  for (const k of expected) {
    const t = want.get(k)!.data;
    const ours = grads[k].data;
    expect(ours.length, k).toBe(t.length);
    let scale = 1e-8;
    let err = 0;
    for (let i = 0; i < t.length; i++) {
      scale = Math.max(scale, Math.abs(t[i]));
      err = Math.max(err, Math.abs(ours[i] - t[i]));
    }
    errors.set(k, err / scale);
  }
  return errors;
}

describe.each(allFixtures())('%s', (name) => {
  it.each([[0, undefined], [1, undefined], [1, 3]] as const)('equals torch.autograd.grad at -O%d (recomputation every %s steps)', (level, checkpoint) => {
    for (const [k, e] of torchErrors(name, level, checkpoint)) expect(e, k).toBeLessThanOrEqual(1e-5);
  });
});
