/**
 * Attention over sequences longer than a key tile (issue 19 item 5), against PyTorch
 * (test/fixtures/make_long_attention_fixtures.py: stock nn.MultiheadAttention / nn.Transformer* layers where
 * they exist, rows of 1 to 300 tokens, causal and padding masks, per-head and head-less scores, an
 * encoder–decoder Transformer). nnc computes these contexts in tiles with a running softmax, never
 * holding the weights [B, heads, T, S] (docs/ARCHITECTURE.md, "Attention in tiles"); forward must match
 * PyTorch within 1e-5 on cpu and 1e-4 on wasm, generate() must decode as PyTorch's loop does, and
 * `attention: true` must still report the weights (computed the old way, only then).
 */
import { describe, expect, it } from 'vitest';
import type { Plan, Size } from '../src/runtime/plan.ts';
import { type Case, fixtureModels, indexNames, maxAbsDiff, plainResult, SCORE_TOL, toInputs } from './helpers.ts';

interface LongCase extends Case {
  generate?: { opts: Record<string, unknown>; ids: number[][]; scores: number[] }[];
}

const TOL: Record<string, number> = { cpu: 1e-5, wasm: 1e-4 };
const BACKENDS = ['wasm', 'cpu'] as const;
const SEQ = new Set(['T', 'S', 'K']);

/** Whether a buffer size has two sequence lengths (T × S, T × K…): an attention score or weight tensor. */
const quadratic = (size: Size) => size.filter((d) => typeof d === 'string' && SEQ.has(d)).length >= 2;

describe.each(indexNames('long-attention-index.json'))('%s', (name) => {
  const { case: raw, withModel } = fixtureModels(name);
  const c = raw as LongCase;
  const inputs = toInputs(c);
  const names = Object.keys(c.inputs);
  const outName = Object.keys(c.outputs)[0]!;

  it.each(BACKENDS)('forward matches PyTorch on %s', async (backend) => {
    await withModel(backend, 2, async (model) => {
      const out = await model.forward(inputs);
      const want = c.outputs[outName]!;
      expect(out[outName].shape).toEqual(want.shape);
      expect(maxAbsDiff(out[outName].data, want.data), `max |nnc - torch| for ${outName}`).toBeLessThanOrEqual(TOL[backend]!);
    });
  });

  it('no buffer forward or an unreported decoding step makes is as large as the keys times the queries', async () => {
    await withModel('cpu', 2, async (model) => {
      const plan = model.internals().plan as Plan;
      const runs = [...plan.encode, ...plan.decode].flatMap((i) => (i.op === 'run' ? [i] : i.body));
      expect(runs.some((i) => i.weights), 'only a seq2seq decoder reports attention weights').toBe(names.length === 2);
      const big = runs.filter((i) => !i.weights && quadratic(i.size)).map((i) => `${i.size.join('×')}`);
      expect(big).toEqual([]);
    });
  });

  if (c.generate) {
    const first = { [names[0]!]: inputs[names[0]!] };
    const source = c.inputs[names[0]!]!;

    it.each(BACKENDS)('generate() matches the PyTorch decoding loop on %s, and attention: true reports the weights', async (backend) => {
      await withModel(backend, 2, async (model) => {
        for (const ref of c.generate!) {
          const what = JSON.stringify(ref.opts);
          const got = plainResult(await model.generate(first, ref.opts));
          expect(got.ids, `ids for ${what}`).toEqual(ref.ids);
          expect(maxAbsDiff(got.scores, ref.scores), `max |score - torch| for ${what}`).toBeLessThanOrEqual(SCORE_TOL);
          // with attention: true the same decoding, and per generated token a distribution over the row's source
          const withA = await model.generate(first, { ...ref.opts, attention: true });
          expect(plainResult(withA).ids, `ids with attention for ${what}`).toEqual(ref.ids);
          const S = source.shape[1]!;
          withA.attention.forEach((a: { data: Float32Array; shape: number[] }, b: number) => {
            expect(a.shape).toEqual([ref.ids[b]!.length, S]);
            const len = source.lengths![b]!;
            for (let t = 0; t < a.shape[0]!; t++) {
              const row = a.data.subarray(t * S, (t + 1) * S);
              expect(row.subarray(len).every((x) => x === 0), `row ${b} step ${t}: padded source positions weigh 0`).toBe(true);
              expect(Math.abs(row.reduce((s, x) => s + x, 0) - 1), `row ${b} step ${t}: the weights sum to 1`).toBeLessThan(1e-4);
            }
          });
        }
      });
    });
  }
});
