/**
 * The float64 IR interpreter (src/ir/interp.ts) against PyTorch: every fixture's forward graph, as
 * lowered and after each optimisation level's rewrites, gives PyTorch's outputs within 1e-5 — the
 * stock-checkpoint cases too (stock nn.Transformer* modules' state_dicts, loaded as loadWeights does).
 */
import { describe, expect, it } from 'vitest';
import { optimize } from '../src/driver.ts';
import { evaluate } from '../src/ir/interp.ts';
import { maxAbsDiff } from './helpers.ts';
import { allFixtures, checkpointFixtures, loadFixture } from './interp-helpers.ts';

describe.each([...allFixtures(), ...checkpointFixtures()])('%s', (name) => {
  it.each([0, 1, 2] as const)('equals PyTorch at -O%d', (level) => {
    const f = loadFixture(name);
    if (level > 0) optimize(f.model, level, true);
    const out = evaluate(f.model.graph, f.env).outputs;
    for (const [key, want] of Object.entries(f.case.outputs)) {
      expect(out[key].shape).toEqual(want.shape);
      expect(maxAbsDiff(out[key].data, want.data), `max |interp - torch| for ${key}`).toBeLessThanOrEqual(1e-5);
    }
  });
});
