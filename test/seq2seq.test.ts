/**
 * Encoder–decoder fixtures (PyTorch ground truth from test/fixtures/make_seq2seq_fixtures.py; the
 * semantics are docs/seq2seq.md) compiled by nnc and driven only through the documented surface:
 * `createModel({ backend })`, `loadWeights(bytes)`, the teacher-forced `forward({ source, target })`
 * (cpu within 2e-5 of PyTorch, webasm and gpu within 2e-4) and `generate({ source }, opts)` (ids
 * exactly equal on every backend, scores within 1e-4; the references' decisions all win by a clear
 * margin, so float noise cannot flip them). The tiny `s2s_bruteforce` case checks that a beam of 64
 * finds the exhaustive best sequence. The `gpu` backend runs only where headless-gl is available.
 */
import { describe, expect, it } from 'vitest';
import { type Case, decodingRuns, DECODE_TOL, fixtureModels, indexNames, maxAbsDiff, plainResult, SCORE_TOL, toInputs } from './helpers.ts';

interface GenerateOpts {
  strategy: 'greedy' | 'beam';
  beam?: number;
  maxLen: number;
  bos: number;
  eos: number;
  lengthNormalize?: boolean;
}
interface GenerateRef {
  opts: GenerateOpts;
  ids: number[][];
  scores: number[];
}
interface BruteForceRef {
  maxLen: number;
  bos: number;
  eos: number;
  ids: number[][];
  scores: number[];
}
interface Seq2SeqCase extends Case {
  generate?: GenerateRef[];
  bruteforce?: BruteForceRef;
}

const TOL = DECODE_TOL;
const runs = await decodingRuns();

const plain = plainResult;

describe.each(indexNames('seq2seq-index.json'))('%s', (name) => {
  const { case: raw, withModel } = fixtureModels(name);
  const c = raw as Seq2SeqCase;
  const inputs = toInputs(c);
  const source = inputs.source;

  it.each(runs)('forward({ source, target }) matches PyTorch on %s at -O%d', async (backend, level) => {
    await withModel(backend, level, async (model) => {
      const out = await model.forward(inputs);
      for (const [key, want] of Object.entries(c.outputs)) {
        expect(out[key].shape).toEqual(want.shape);
        const err = maxAbsDiff(out[key].data, want.data);
        expect(err, `max |nnc - torch| for ${key}`).toBeLessThanOrEqual(TOL[backend]);
      }
    });
  });

  if (c.generate) {
    const refs = c.generate;
    it.each(runs)('generate() matches the PyTorch decoding loop on %s at -O%d', async (backend, level) => {
      await withModel(backend, level, async (model) => {
        for (const ref of refs) {
          const what = JSON.stringify(ref.opts);
          const got = plain(await model.generate({ source }, ref.opts));
          expect(got.ids, `ids for ${what}`).toEqual(ref.ids);
          expect(got.scores.length, `scores for ${what}`).toBe(ref.scores.length);
          expect(maxAbsDiff(got.scores, ref.scores), `max |score - torch| for ${what}`).toBeLessThanOrEqual(SCORE_TOL);
        }
      });
    });
  }

  if (c.bruteforce) {
    const br = c.bruteforce;
    it.each(runs)('a beam of 64 finds the exhaustive best sequence on %s at -O%d', async (backend, level) => {
      await withModel(backend, level, async (model) => {
        const got = plain(await model.generate({ source }, { strategy: 'beam', beam: 64, maxLen: br.maxLen, bos: br.bos, eos: br.eos }));
        expect(got.ids).toEqual(br.ids);
        expect(maxAbsDiff(got.scores, br.scores)).toBeLessThanOrEqual(SCORE_TOL);
      });
    });
  }
});
