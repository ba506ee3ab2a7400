/**
 * Shallow fusion (generate's lm, lmWeight, lengthBonus; docs/seq2seq.md): the date translator
 * (generated/dates.ts, weights from PyTorch) fused with an n-gram model of ISO dates
 * (generated/iso_dates.ts) over its target vocabulary. A brute-force decoder written here scores
 * every output of up to 3 tokens as Σ log p_model + λ·log p_lm + β from teacher-forced forward()
 * passes of both models; beam search wide enough to keep every hypothesis must find its best, and
 * greedy must take its step-by-step arg-max. λ = 0 is plain decoding; a language model over another
 * vocabulary is an error naming both sizes (or, for vocabularies of one size, the first id whose
 * tokens differ).
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { createModel as createDates, type Model as Dates } from '../generated/dates.ts';
import { createModel as createIso, type Model as Iso } from '../generated/iso_dates.ts';
import { createModel as createDocs } from '../generated/ngram.ts';
import { createModel as createTiny } from '../generated/tiny_lm.ts';
import { ROOT } from './helpers.ts';

const V = 14, BOS = 1, EOS = 2, L = 3;
const SOURCE = '5 may 3071'; // a year the language model (1950–2040) never saw
let dates: Dates;
let lm: Iso;
/** Log-probabilities after [bos, a, b] at positions 0..2, for every (a, b): model and language model. */
let model3: Float32Array;
let lm3: Float32Array;
const row = (a: number, b: number) => a * V + b;

beforeAll(async () => {
  dates = await createDates({ backend: 'cpu' });
  dates.loadWeights(readFileSync(join(ROOT, 'examples/weights/dates.safetensors')));
  lm = await createIso();
  lm.fit(Array.from({ length: 3000 }, (_, i) => new Date(Date.UTC(1950, 0, 1) + i * 86_400_000 * 11).toISOString().slice(0, 10)));
  const targets = Array.from({ length: V * V }, (_, r) => [BOS, Math.floor(r / V), r % V]);
  model3 = (await dates.forward({ source: Array.from({ length: V * V }, () => SOURCE), target: targets })).next.data;
  lm3 = (await lm.forward({ text: targets })).next.data;
}, 120_000);

/** log p(token at position t | bos, a, b up to t), fused. */
function step(prefix: number[], tok: number, lambda: number, beta: number): number {
  const r = row(prefix[0] ?? 0, prefix[1] ?? 0);
  const t = prefix.length;
  const o = (r * L + t) * V + tok;
  return model3[o]! + (lambda === 0 ? 0 : lambda * lm3[o]!) + beta;
}

/** The best output of up to L tokens (ending at eos, or L long) by summed fused score, brute force. */
function bruteForce(lambda: number, beta: number): { ids: number[]; score: number } {
  let best = { ids: [] as number[], score: -Infinity };
  const visit = (prefix: number[], score: number) => {
    for (let tok = 0; tok < V; tok++) {
      const s = score + step(prefix, tok, lambda, beta);
      const ids = [...prefix, tok];
      if (tok === EOS || ids.length === L) {
        if (s > best.score) best = { ids, score: s };
      } else visit(ids, s);
    }
  };
  visit([], 0);
  return best;
}

function greedyRef(lambda: number, beta: number): number[] {
  const ids: number[] = [];
  while (ids.length < L) {
    let bt = 0;
    for (let tok = 1; tok < V; tok++) if (step(ids, tok, lambda, beta) > step(ids, bt, lambda, beta)) bt = tok;
    ids.push(bt);
    if (bt === EOS) break;
  }
  return ids;
}

describe('shallow fusion', () => {
  it.each([[0.5, 0], [1, 0], [1, -0.3], [2, 0.4], [0.3, 1.5]])('λ = %s, β = %s: beam search finds the brute-force best, greedy takes the fused arg-max', async (lambda, beta) => {
    const want = bruteForce(lambda, beta);
    const r = await dates.generate({ source: SOURCE }, { strategy: 'beam', beam: V * V, maxLen: L, lm, lmWeight: lambda, lengthBonus: beta });
    expect(r.ids[0]).toEqual(want.ids);
    expect(Math.abs(r.scores[0]! - want.score)).toBeLessThan(1e-4);
    const g = await dates.generate({ source: SOURCE }, { strategy: 'greedy', maxLen: L, lm, lmWeight: lambda, lengthBonus: beta });
    expect(g.ids[0]).toEqual(greedyRef(lambda, beta));
  });

  it('the language model changes the answer here (so the test can tell fusion from plain decoding)', async () => {
    expect(bruteForce(2, 0.4).ids).not.toEqual(bruteForce(0, 0).ids);
  });

  it('λ = 0 is plain decoding (ids and scores)', async () => {
    for (const strategy of ['greedy', 'beam'] as const) {
      const plain = await dates.generate({ source: [SOURCE, 'tue, 17 jan 2073'] }, { strategy });
      const fused = await dates.generate({ source: [SOURCE, 'tue, 17 jan 2073'] }, { strategy, lm, lmWeight: 0 });
      expect(fused.ids).toEqual(plain.ids);
      expect(fused.scores).toEqual(plain.scores);
    }
  });

  it('a language model over another vocabulary is an error that names both sizes, or the first id they disagree on', async () => {
    const docs = await createDocs();
    docs.fit('some text\nmore text\n');
    await expect(dates.generate({ source: SOURCE }, { lm: docs })).rejects.toThrow(/'lm' has a vocabulary of 98 tokens, but the model generates from 14/);
    const tiny = await createTiny({ backend: 'cpu' });
    tiny.loadWeights(readFileSync(join(ROOT, 'examples/weights/tiny_lm.safetensors')));
    await expect(dates.generate({ source: SOURCE }, { lm: tiny })).rejects.toThrow(/'lm' has a vocabulary of 96 tokens, but the model generates from 14/);
    await expect(dates.generate({ source: SOURCE }, { lm: {} as never })).rejects.toThrow(/'lm' must be a language model/);
    // the same size, other tokens: '-' and '0' trade ids
    mkdirSync(join(ROOT, 'test/.out'), { recursive: true });
    const dir = mkdtempSync(join(ROOT, 'test/.out/fusion-'));
    const tokens = ['<pad>', '<bos>', '<eos>', '-', '1', '2', '3', '4', '5', '6', '7', '8', '9', '0'];
    writeFileSync(join(dir, 'v.json'), JSON.stringify({ nnc: 'vocab', level: 'char', specials: { pad: '<pad>', bos: '<bos>', eos: '<eos>' }, tokens }));
    const spec = 'model Other {\n  input text: tokens(vocab = "v.json")\n  output next\n  ngram order = 3\n}\n';
    writeFileSync(join(dir, 'other.ts'), compile(spec, join(dir, 'other.nn')).output!);
    const other = await ((await import(join(dir, 'other.ts'))) as { createModel: typeof createIso }).createModel();
    other.fit(['2021-03-04']);
    await expect(dates.generate({ source: SOURCE }, { lm: other })).rejects.toThrow(/'lm': id 3 is "-" in the language model's vocabulary but "0" in the one this model generates from/);
    const stream = dates.stream({ source: SOURCE }, { lm: other });
    await expect(stream.next()).rejects.toThrow(/shallow fusion needs one vocabulary/);
    await expect(lm.generate({ text: '20' }, { lm: other })).rejects.toThrow(/'lm': id 3 is "-"/);
    await expect(dates.generate({ source: SOURCE }, { lmWeight: 1 })).rejects.toThrow(/'lmWeight' weighs a language model/);
    // a neural language model fuses too: the tiny LM into itself doubles its log-probabilities, so greedy picks the same tokens
    const plain = await tiny.generate({ text: 'The model ' }, { strategy: 'greedy', maxLen: 8 });
    const self = await tiny.generate({ text: 'The model ' }, { strategy: 'greedy', maxLen: 8, lm: tiny, lmWeight: 0.01 });
    expect(self.text[0]).toBe(plain.text[0]);
    tiny.dispose();
  });
});
