/**
 * The Transformer language-model example (examples/tiny_lm.nn, compiled to generated/tiny_lm.ts) on
 * its trained weights (examples/weights/tiny_lm.safetensors, examples/train/train_tiny_lm.py):
 * nnc's greedy continuations — generate() with its key/value cache, one token per step — equal
 * PyTorch's, which recomputes the whole sequence at every step (examples/weights/tiny_lm.json):
 * ids exactly, summed log-probabilities within 1e-3, on cpu and webasm. The references record the
 * smallest top-1 / top-2 gap on their path, so an exact-ids check is not decided by rounding. Each
 * prompt is decoded alone, then all of them at once as one padded batch (per-row lengths, so each
 * row's positions and cache continue after its own prompt).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createModel } from '../generated/tiny_lm.ts';
import { ROOT } from './helpers.ts';

interface Reference {
  vocab: string[];
  decode: { strategy: 'greedy'; maxLen: number };
  prompts: { prompt: string; prompt_ids: number[]; greedy: { ids: number[]; text: string; score: number; min_margin: number } }[];
}
const ref = JSON.parse(readFileSync(join(ROOT, 'examples/weights/tiny_lm.json'), 'utf8')) as Reference;
const weights = readFileSync(join(ROOT, 'examples/weights/tiny_lm.safetensors'));
const SCORE_TOL = 1e-3;

describe('examples/tiny_lm.nn: greedy continuations match PyTorch', () => {
  it('has references worth checking', () => {
    expect(ref.vocab.length).toBe(96);
    expect(ref.prompts.length).toBeGreaterThanOrEqual(3);
    for (const p of ref.prompts) {
      expect(p.prompt_ids).toEqual([...p.prompt].map((ch) => ref.vocab.indexOf(ch)));
      expect(p.greedy.ids.length).toBe(ref.decode.maxLen);
      expect(p.greedy.ids.map((i) => ref.vocab[i]).join('')).toBe(p.greedy.text);
      expect(p.greedy.min_margin).toBeGreaterThan(SCORE_TOL);
    }
  });

  it.each(['wasm', 'cpu', 'webasm'] as const)('on %s', async (backend) => {
    const model = await createModel({ backend });
    try {
      expect(model.backend).toBe(backend);
      model.loadWeights(weights);
      for (const p of ref.prompts) {
        const P = p.prompt_ids.length;
        const r = await model.generate(
          { text: { data: Int32Array.from(p.prompt_ids), shape: [1, P], lengths: [P] } },
          { strategy: 'greedy', maxLen: ref.decode.maxLen },
        );
        expect(Array.from(r.ids[0]), `ids after ${JSON.stringify(p.prompt)}`).toEqual(p.greedy.ids);
        expect(Math.abs(r.scores[0] - p.greedy.score), `|score - PyTorch's| after ${JSON.stringify(p.prompt)}`).toBeLessThanOrEqual(SCORE_TOL);
      }
      const B = ref.prompts.length;
      const lengths = ref.prompts.map((p) => p.prompt_ids.length);
      const T = Math.max(...lengths);
      const data = new Int32Array(B * T);
      ref.prompts.forEach((p, b) => data.set(p.prompt_ids, b * T));
      const r = await model.generate({ text: { data, shape: [B, T], lengths } }, { strategy: 'greedy', maxLen: ref.decode.maxLen });
      ref.prompts.forEach((p, b) => {
        expect(Array.from(r.ids[b]), `batched: ids after ${JSON.stringify(p.prompt)}`).toEqual(p.greedy.ids);
        expect(Math.abs(r.scores[b] - p.greedy.score), `batched: |score - PyTorch's| after ${JSON.stringify(p.prompt)}`).toBeLessThanOrEqual(SCORE_TOL);
      });
    } finally {
      model.dispose();
    }
  });
});
