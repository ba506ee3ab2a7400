/**
 * Encoder–decoder fixtures (PyTorch ground truth from test/fixtures/make_seq2seq_fixtures.py; the
 * semantics are docs/seq2seq.md) compiled by nnc and driven only through the documented surface:
 * `createModel({ backend })`, `loadWeights(bytes)`, the teacher-forced `forward({ source, target })`
 * (cpu within 2e-5 of PyTorch, webasm and gpu within 2e-4) and `generate({ source }, opts)` (ids
 * exactly equal on every backend, scores within 1e-4; the references' decisions all win by a clear
 * margin, so float noise cannot flip them). The tiny `s2s_bruteforce` case checks that a beam of 64
 * finds the exhaustive best sequence. The `gpu` backend runs only where headless-gl is available.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Case, compileAndImport, FIXTURES, headlessGlAvailable, loadCase, maxAbsDiff, toInputs } from './helpers.ts';

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

/** The cases listed in test/fixtures/seq2seq-index.json (directory names, `s2s_*`). */
function seq2seqNames(): string[] {
  const index = JSON.parse(readFileSync(join(FIXTURES, 'seq2seq-index.json'), 'utf8')) as { cases: { name: string; notes: string }[] };
  return index.cases.map((c) => c.name);
}

const TOL: Record<string, number> = { cpu: 2e-5, webasm: 2e-4, gpu: 2e-4 };
const SCORE_TOL = 1e-4;
const gl = await headlessGlAvailable();
if (process.env.NNC_REQUIRE_GPU && !gl) throw new Error('NNC_REQUIRE_GPU is set but headless-gl is unavailable (is the gl package built, and is this run under xvfb-run?)');
// [backend, optimisation level]: every backend fully optimised, plus cpu unfused (each pass keeps the numbers)
const runs: [string, 0 | 2][] = [['cpu', 2], ['cpu', 0], ['webasm', 2], ...(gl ? [['gpu', 2] as [string, 2]] : [])];

/** `{ ids, scores }` from generate(), with rows as plain arrays (typed rows compare by value too). */
function plain(r: { ids: ArrayLike<number>[]; scores: ArrayLike<number> }): { ids: number[][]; scores: number[] } {
  return { ids: Array.from(r.ids, (row) => Array.from(row)), scores: Array.from(r.scores) };
}

describe.each(seq2seqNames())('%s', (name) => {
  const { spec, weights, case: raw } = loadCase(name);
  const c = raw as Seq2SeqCase;
  const modules = new Map<number, Promise<Record<string, any>>>();
  const compiled = (level: 0 | 2) => {
    if (!modules.has(level)) modules.set(level, compileAndImport(name, spec, `test/fixtures/${name}/model.nn`, level));
    return modules.get(level)!;
  };
  async function withModel(backend: string, level: 0 | 2, body: (model: any) => Promise<void>): Promise<void> {
    const mod = await compiled(level);
    const model = await mod.createModel({ backend });
    try {
      expect(model.backend).toBe(backend);
      model.loadWeights(weights);
      await body(model);
    } finally {
      model.dispose();
    }
  }
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
