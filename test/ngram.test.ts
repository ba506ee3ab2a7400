/**
 * N-gram language models (src/runtime/ngram, docs/ngram.md) against other implementations, on the corpus
 * of test/fixtures/ngram (make_ngram_fixtures.py):
 *  - NLTK 3.8's nltk.lm (Laplace, Lidstone, WittenBellInterpolated, KneserNeyInterpolated,
 *    StupidBackoff) fed the same n-grams: every stored probability and the perplexity;
 *  - reference formulas in Python (ngram_reference.py): Katz, modified Kneser–Ney, Jelinek–Mercer;
 *  - KenLM: the ARPA file lmplz wrote for the same corpus (order 3, modified Kneser–Ney) loads, and
 *    nnc's own modified Kneser–Ney fit gives the same probabilities;
 *  - every distribution sums to 1 (stupid back-off excepted); ARPA files round-trip.
 * The largest differences are printed (the report quotes them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NgramLM, type NgramVocab } from '../src/runtime/ngram/lm.ts';
import type { NgramOptions } from '../src/runtime/ngram/smooth.ts';
import { ROOT } from './helpers.ts';

const DIR = join(ROOT, 'test/fixtures/ngram');
const vocabFile = JSON.parse(readFileSync(join(DIR, 'vocab.json'), 'utf8')) as { tokens: string[] };
const words = vocabFile.tokens;
const ids = new Map(words.map((w, i) => [w, i]));
const vocab: NgramVocab = { size: words.length, bos: ids.get('<s>')!, eos: ids.get('</s>')!, unk: ids.get('<unk>')!, token: (i) => words[i]!, id: (t) => ids.get(t) };
const sentences = (file: string) => readFileSync(join(DIR, file), 'utf8').trim().split('\n').map((l) => l.split(' ').map((w) => ids.get(w)!));
const train = sentences('train.txt');
const test = sentences('test.txt');
const idsOf = (ws: string[]) => ws.map((w) => ids.get(w)!);

interface Case {
  nltk?: string;
  reference?: string;
  order: number;
  nnc: { order: number; smoothing: NgramOptions['smoothing']; alpha?: number; discount?: number; unigram?: 'ml'; k?: number; lambdas?: string };
  full_context_only?: boolean;
  queries: { context: string[]; word: string; p: number }[];
  distributions: { context: string[]; p: Record<string, number> }[];
  perplexity: number | null;
}
const options = ({ lambdas, ...c }: Case['nnc']): NgramOptions => ({ ...c, ...(lambdas ? { lambdas: lambdas.split(' ').map(Number) } : {}) });

function compare(cases: Case[], label: (c: Case) => string): Map<string, number> {
  const worst = new Map<string, number>();
  for (const c of cases) {
    const name = label(c);
    const { lm } = NgramLM.fit(train, options(c.nnc), vocab);
    let max = worst.get(name) ?? 0;
    for (const q of c.queries) {
      const p = lm.prob(ids.get(q.word)!, idsOf(q.context));
      max = Math.max(max, Math.abs(p - q.p));
      expect(p, `${name} order ${c.order}: p(${q.word} | ${q.context.join(' ')})`).toBeCloseTo(q.p, 12);
    }
    const out = new Float64Array(vocab.size);
    for (const d of c.distributions) {
      const ctx = idsOf(d.context);
      lm.distribution(ctx, ctx.length, out);
      for (const [w, p] of Object.entries(d.p)) {
        max = Math.max(max, Math.abs(out[ids.get(w)!]! - p));
        expect(out[ids.get(w)!], `${name} order ${c.order}: p(${w} | ${d.context.join(' ')})`).toBeCloseTo(p, 12);
      }
    }
    // perplexity over the same positions as the other implementation
    let ppl: number;
    if (c.full_context_only) {
      let ln = 0, n = 0;
      for (const s of test) {
        const padded = [vocab.bos, ...s, vocab.eos];
        for (let t = c.order - 1; t < padded.length; t++) {
          if (t < 1) continue;
          ln += Math.log(lm.prob(padded[t]!, padded, t));
          n++;
        }
      }
      ppl = Math.exp(-ln / n);
    } else ppl = lm.perplexity(test).perplexity;
    if (c.perplexity === null) expect(ppl, `${name} order ${c.order}: perplexity`).toBe(Infinity);
    else expect(Math.abs(ppl - c.perplexity) / c.perplexity, `${name} order ${c.order}: perplexity ${ppl} vs ${c.perplexity}`).toBeLessThan(1e-9);
    worst.set(name, max);
  }
  return worst;
}

describe('n-gram models against NLTK 3.8 (nltk.lm)', () => {
  const { cases } = JSON.parse(readFileSync(join(DIR, 'nltk.json'), 'utf8')) as { cases: Case[] };
  it('covers the five NLTK models at orders 2 and 3', () => {
    expect(new Set(cases.map((c) => c.nltk)).size).toBe(5);
    expect(cases.every((c) => c.queries.length >= 50)).toBe(true);
  });
  it('gives the same probabilities and perplexities', () => {
    const worst = compare(cases, (c) => c.nltk!);
    console.log(`max |p_nnc − p_NLTK| per model: ${[...worst].map(([k, v]) => `${k} ${v.toExponential(1)}`).join('; ')}`);
  });
});

describe('n-gram models against the reference formulas (ngram_reference.py)', () => {
  const { cases } = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as { cases: Case[] };
  it('gives the same probabilities and perplexities: Katz, modified Kneser–Ney, Jelinek–Mercer', () => {
    const worst = compare(cases, (c) => c.reference!);
    console.log(`max |p_nnc − p_reference| per model: ${[...worst].map(([k, v]) => `${k} ${v.toExponential(1)}`).join('; ')}`);
  });
});

const METHODS: NgramOptions[] = [
  { order: 3, smoothing: 'additive' },
  { order: 3, smoothing: 'additive', alpha: 0.01 },
  { order: 3, smoothing: 'interpolated', lambdas: [0.5, 0.3, 0.15, 0.05] },
  { order: 3, smoothing: 'interpolated' },
  { order: 4, smoothing: 'katz' },
  { order: 3, smoothing: 'katz', k: 2 },
  { order: 3, smoothing: 'kneser_ney' },
  { order: 4, smoothing: 'kneser_ney', discount: 0.7 },
  { order: 3, smoothing: 'witten_bell' },
  { order: 3, smoothing: 'witten_bell', unigram: 'ml' },
  { order: 1, smoothing: 'kneser_ney' },
];
/** Contexts: seen, unseen, with the unknown word, with a word never in the corpus, empty, sentence starts. */
const CONTEXTS = [[], [vocab.bos], [vocab.bos, ...test[0]!.slice(0, 1)], test[1]!.slice(0, 3), idsOf(['zebra', 'quartz']), idsOf(['<unk>', 'the']), idsOf(['the', 'the', 'the']), [vocab.eos]];

describe('every distribution sums to 1', () => {
  it.each(METHODS.map((o) => [`${o.smoothing} order ${o.order} ${JSON.stringify(o)}`, o] as const))('%s', (_, o) => {
    const { lm } = NgramLM.fit(train, o, vocab);
    const out = new Float64Array(vocab.size);
    for (const ctx of CONTEXTS) {
      lm.distribution(ctx, ctx.length, out);
      const sum = out.reduce((s, x) => s + x, 0);
      expect(Math.abs(sum - 1), `context ${ctx.map((i) => words[i]).join(' ')}`).toBeLessThan(1e-9);
      expect(out[vocab.bos], '<s> is never predicted').toBe(0);
      for (let w = 0; w < vocab.size; w++) expect(lm.prob(w, ctx)).toBeCloseTo(out[w]!, 14);
    }
  });

  it('stupid back-off gives scores that do not sum to 1 (they are not probabilities)', () => {
    const { lm } = NgramLM.fit(train, { order: 3, smoothing: 'stupid_backoff' }, vocab);
    const out = new Float64Array(vocab.size);
    const ctx = test[1]!.slice(0, 2);
    lm.distribution(ctx, ctx.length, out);
    expect(Math.abs(out.reduce((s, x) => s + x, 0) - 1)).toBeGreaterThan(1e-3);
    expect(() => lm.toArpa()).toThrow(/not probabilities/);
  });
});

describe('ARPA files', () => {
  const kenlm = readFileSync(join(DIR, 'kenlm_o3.arpa'), 'utf8');

  it('loads the file KenLM (lmplz -o 3) wrote, and nnc fits the same modified Kneser–Ney model', () => {
    // KenLM's vocabulary is the corpus's words (with <s>, </s>, <unk>): the uniform distribution is over those
    const seen = words.filter((w) => w !== 'zebra' && w !== 'quartz');
    const seenIds = new Map(seen.map((w, i) => [w, i]));
    const kv: NgramVocab = { size: seen.length, bos: seenIds.get('<s>')!, eos: seenIds.get('</s>')!, unk: seenIds.get('<unk>')!, token: (i) => seen[i]!, id: (t) => seenIds.get(t) };
    const re = (ss: number[][]) => ss.map((s) => s.map((i) => seenIds.get(words[i]!)!));
    const [train, test] = [re(sentences('train.txt')), re(sentences('test.txt'))];
    const loaded = NgramLM.fromArpa(kenlm, kv, 'kenlm_o3.arpa');
    const { lm } = NgramLM.fit(train, { order: 3, smoothing: 'kneser_ney' }, kv);
    expect(loaded.order).toBe(3);
    let worst = 0;
    for (const s of test) {
      const padded = [vocab.bos, ...s, vocab.eos];
      for (let t = 1; t < padded.length; t++) {
        const a = Math.log10(loaded.prob(padded[t]!, padded, t));
        const b = Math.log10(lm.prob(padded[t]!, padded, t));
        worst = Math.max(worst, Math.abs(a - b));
      }
    }
    console.log(`max |log10 p_nnc − log10 p_KenLM| over the test set: ${worst.toExponential(1)}`);
    // KenLM writes log10 values as float32 with 7-8 digits
    expect(worst).toBeLessThan(1e-5);
    expect(Math.abs(loaded.perplexity(test).perplexity - lm.perplexity(test).perplexity) / lm.perplexity(test).perplexity).toBeLessThan(1e-5);
    // KenLM's model is normalised too (within its float precision)
    const out = new Float64Array(kv.size);
    for (const ctx of re(CONTEXTS.filter((c) => !c.includes(ids.get('zebra')!)))) {
      loaded.distribution(ctx, ctx.length, out);
      expect(Math.abs(out.reduce((s, x) => s + x, 0) - 1), ctx.map((i) => seen[i]).join(' ')).toBeLessThan(1e-5);
    }
  });

  it.each(METHODS.map((o) => [`${o.smoothing} order ${o.order} ${JSON.stringify(o)}`, o] as const))('round trip: %s', (_, o) => {
    const { lm } = NgramLM.fit(train, o, vocab);
    const text = lm.toArpa();
    const back = NgramLM.fromArpa(text, vocab);
    expect(back.order).toBe(o.order);
    for (const ctx of CONTEXTS) {
      for (let w = 0; w < vocab.size; w++) {
        const p = lm.prob(w, ctx);
        const q = back.prob(w, ctx);
        if (p === 0) expect(q).toBe(0);
        else expect(Math.abs(Math.log(q / p)), `p(${words[w]} | ${ctx.map((i) => words[i]).join(' ')})`).toBeLessThan(5e-6);
      }
    }
    expect(back.toArpa(), 'writing the file read back gives the same file').toBe(text);
  });

  it('refuses malformed files with the line and the problem', () => {
    expect(() => NgramLM.fromArpa('hello', vocab)).toThrow(/line 1: expected \\data\\/);
    expect(() => NgramLM.fromArpa('\\data\\\nngram 1=2\n\n\\1-grams:\n-1\tthe\n\n\\end\\\n', vocab)).toThrow(/announces 2 1-grams, but 1 are listed/);
    expect(() => NgramLM.fromArpa('\\data\\\nngram 1=1\n\n\\1-grams:\n-1\tgiraffe\n\n\\end\\\n', vocab)).toThrow(/"giraffe"/);
    expect(() => NgramLM.fromArpa('\\data\\\nngram 1=1\n\n\\1-grams:\nx\tthe\n\n\\end\\\n', vocab)).toThrow(/line 5: bad log10 probability "x"/);
    expect(() => NgramLM.fromArpa('\\data\\\nngram 1=1\n\n\\1-grams:\n-1\tthe\n', vocab)).toThrow(/expected \\end\\/);
  });
});

describe('interpolated weights tuned on held-out data', () => {
  it('are a local maximum of the held-out likelihood', () => {
    const heldout = test;
    const { lm, report } = NgramLM.fit(train, { order: 3, smoothing: 'interpolated' }, vocab, { heldout });
    const tuned = report.lambdas!;
    expect(tuned.length).toBe(4);
    expect(Math.abs(tuned.reduce((s, x) => s + x, 0) - 1)).toBeLessThan(1e-9);
    const ll = (lambdas: number[]) => -Math.log(NgramLM.fit(train, { order: 3, smoothing: 'interpolated', lambdas }, vocab).lm.perplexity(heldout).perplexity);
    const best = ll(tuned);
    expect(best).toBeCloseTo(-Math.log(lm.perplexity(heldout).perplexity), 12);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        if (i === j) continue;
        const moved = [...tuned];
        const step = Math.min(0.02, moved[i]!);
        moved[i]! -= step;
        moved[j]! += step;
        expect(ll(moved), `moving ${step} of weight from order ${3 - i} to ${3 - j}`).toBeLessThanOrEqual(best + 1e-9);
      }
    }
  });
});
