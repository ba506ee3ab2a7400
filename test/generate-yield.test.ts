/**
 * generate() gives the event loop turns between steps (issue 18, item 2): during a long generation a
 * 10 ms setInterval fires, AbortSignal.timeout(100) aborts it, and setTimeout(() =>
 * model.dispose(), 50) stops it with an error that says the model was disposed — on every backend.
 * The model is the char-rnn language model (examples/char_lm.nn: 2-layer LSTM, 256 wide) with seeded
 * weights, generating greedily without eos, so that nothing but the three events can end it early.
 */
import { describe, expect, it } from 'vitest';
import { createModel } from '../generated/char_lm.ts';
import { decodingRuns, prng } from './helpers.ts';

const backends = [...new Set((await decodingRuns()).map(([b]) => b))];
/** Tokens each backend generates in the interval test (a few seconds at most). */
const LONG: Record<string, number> = { wasm: 3000, cpu: 1000, webasm: 300, gpu: 300 };

async function model(backend: string) {
  const m = await createModel({ backend: backend as 'cpu' });
  const r = prng(3);
  const w: Record<string, Float32Array> = {};
  for (const wi of m.manifest.weights) w[wi.name] = Float32Array.from({ length: wi.shape.reduce((a, c) => a * c, 1) }, () => (r() - 0.5) * 0.2);
  m.loadWeights(w);
  return m;
}
const prompt = { data: Int32Array.from([40, 69, 76, 76, 79]), shape: [1, 5] as [number, number] };

describe.each(backends)('generate() on %s', (backend) => {
  it('lets a 10 ms setInterval fire during a long generation', async () => {
    const m = await model(backend);
    try {
      const fires: number[] = [];
      const timer = setInterval(() => fires.push(performance.now()), 10);
      const t0 = performance.now();
      let r;
      try {
        r = await m.generate({ text: prompt }, { strategy: 'greedy', maxLen: LONG[backend] });
      } finally {
        clearInterval(timer);
      }
      const ms = performance.now() - t0;
      expect(r.ids[0]).toHaveLength(LONG[backend]!);
      // before: 0 fires in 0.6–0.7 s; now about one per 10 ms (at least one per 50 ms on a busy
      // machine), or one per step where a step itself takes longer (gpu under load: 80 ms a step)
      expect(fires.length).toBeGreaterThanOrEqual(Math.max(3, Math.min(Math.floor(ms / 50), Math.floor(LONG[backend]! / 2))));
    } finally {
      m.dispose();
    }
  });

  it('is aborted by AbortSignal.timeout(100)', async () => {
    const m = await model(backend);
    try {
      const t0 = performance.now();
      const err = await m.generate({ text: prompt }, { strategy: 'greedy', maxLen: 65_536, signal: AbortSignal.timeout(100) }).then(() => undefined, (e: unknown) => e);
      expect((err as Error)?.name).toBe('AbortError');
      expect(performance.now() - t0).toBeLessThan(10_000);
    } finally {
      m.dispose();
    }
  });

  it('is stopped by setTimeout(() => model.dispose(), 50), with an error that says so', async () => {
    const m = await model(backend);
    const timer = setTimeout(() => m.dispose(), 50);
    const err = await m.generate({ text: prompt }, { strategy: 'beam', beam: 2, maxLen: 65_536 }).then(() => undefined, (e: unknown) => e);
    clearTimeout(timer);
    expect((err as Error)?.name).toBe('NncError');
    expect((err as Error).message).toMatch(/disposed/);
    expect((err as Error).message).not.toMatch(/loadWeights/);
  });
});
