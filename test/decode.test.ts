/**
 * The decoding engine behind generate() and stream() (src/runtime/decode.ts; semantics in
 * docs/seq2seq.md "Decoding", the contract in README.md), driven by mock sessions:
 * hand-written probability tables, and random models whose distribution is a hash of the whole
 * prefix (so a beam that continues the wrong parent row reads the wrong distributions and scores).
 * Expected values come from hand-computed tables or brute-force enumeration, never from the engine.
 */
import { describe, expect, it } from 'vitest';
import {
  decode,
  decodeStream,
  resolveOptions,
  type DecodeSession,
  type GenerateOptions,
  type GenerateResult,
  type StepEvent,
  type StepOut,
} from '../src/runtime/decode.ts';

// ───────────── mock sessions ─────────────

/** Natural-log probabilities of the next token of input row b after `prefix` (generated tokens, bos excluded). */
type LogpFn = (b: number, prefix: readonly number[]) => ArrayLike<number>;
/** Attention weights [S] of the step that reads `prefix`. */
type AttnFn = (b: number, prefix: readonly number[]) => ArrayLike<number>;

/** A session that keeps, per row, the whole prefix it has been fed, and really applies `parents`. */
class MockSession implements DecodeSession {
  k = 0;
  prefixes: number[][] = [];
  begins: { k: number; bos: number; want: boolean }[] = [];
  steps: { tokens: number[]; parents: number[] | undefined }[] = [];
  /** Called after each step is computed (abort tests). */
  onStep?: () => void;
  constructor(
    readonly batch: number,
    readonly vocab: number,
    private readonly fn: LogpFn,
    private readonly attn?: AttnFn,
    private readonly S = 0,
  ) {}
  get rows(): number {
    return this.batch * this.k;
  }
  async begin(k: number, bos: number, want: boolean): Promise<StepOut> {
    this.begins.push({ k, bos, want });
    this.k = k;
    this.prefixes = Array.from({ length: this.batch * k }, () => []);
    return this.out(want);
  }
  async step(tokens: Int32Array, parents: Int32Array | undefined, want: boolean): Promise<StepOut> {
    const R = this.rows;
    if (tokens.length !== R) throw new Error(`mock: ${tokens.length} tokens for ${R} rows`);
    if (parents && parents.length !== R) throw new Error(`mock: ${parents.length} parents for ${R} rows`);
    this.steps.push({ tokens: Array.from(tokens), parents: parents && Array.from(parents) });
    const next: number[][] = [];
    for (let r = 0; r < R; r++) {
      const p = parents ? parents[r] : r;
      if (!(p >= 0 && p < R) || Math.floor(p / this.k) !== Math.floor(r / this.k)) throw new Error(`mock: row ${r} continues row ${p}`);
      if (!(tokens[r] >= 0 && tokens[r] < this.vocab)) throw new Error(`mock: token ${tokens[r]} fed to row ${r}`);
      next.push([...this.prefixes[p], tokens[r]]);
    }
    this.prefixes = next;
    const out = this.out(want);
    this.onStep?.();
    return out;
  }
  private out(want: boolean): StepOut {
    const R = this.rows;
    const V = this.vocab;
    const logp = new Float32Array(R * V);
    for (let r = 0; r < R; r++) logp.set(this.fn(Math.floor(r / this.k), this.prefixes[r]), r * V);
    if (!want || !this.attn) return { logp };
    const attention = new Float32Array(R * this.S);
    for (let r = 0; r < R; r++) attention.set(this.attn(Math.floor(r / this.k), this.prefixes[r]), r * this.S);
    return { logp, attention, srcLen: this.S };
  }
}

// ───────────── models ─────────────

/** The test's own mulberry32 (the published form, with the unwrapped accumulator). */
function mulberry32Ref(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    let t = (a += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(xs: readonly number[]): number {
  let h = 2166136261;
  for (const x of xs) {
    h = Math.imul(h ^ (x + 0x9e37), 16777619);
    h ^= h >>> 13;
  }
  return h >>> 0;
}

function logSoftmax(z: number[]): number[] {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
}

/** A random model: the distribution is a hash of (seed, row, the whole prefix). */
function randomModel(seed: number, V: number, scale = 2.5): LogpFn {
  return (b, prefix) => {
    const rnd = mulberry32Ref(hash([seed, b, prefix.length, ...prefix]));
    return logSoftmax(Array.from({ length: V }, () => (rnd() * 2 - 1) * scale));
  };
}

function randomAttn(seed: number, S: number): AttnFn {
  return (b, prefix) => {
    const rnd = mulberry32Ref(hash([seed ^ 0x7777, b, prefix.length, ...prefix]));
    return logSoftmax(Array.from({ length: S }, () => rnd() * 3)).map(Math.exp);
  };
}

/** Markov tables: probs[b][prev] with prev = 'start' before the first generated token; missing entries are uniform. */
function markov(probs: Record<string, number[]>[], V = 4): LogpFn {
  return (b, prefix) => (probs[b][prefix.length ? String(prefix[prefix.length - 1]) : 'start'] ?? new Array(V).fill(1 / V)).map(Math.log);
}

/** A table keyed by the whole prefix ('' = before the first token); unknown prefixes are uniform. */
function prefixTable(V: number, table: Record<string, number[]>): LogpFn {
  return (_b, prefix) => (table[prefix.join(',')] ?? new Array(V).fill(1 / V)).map(Math.log);
}

/** The score the session's float32 log-probabilities give a token sequence, summed in order. */
function scoreOf(fn: LogpFn, b: number, ids: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < ids.length; i++) s += Math.fround(fn(b, ids.slice(0, i))[ids[i]]);
  return s;
}

/** Every finished sequence of input row b (ends at eos, or has maxLen tokens), best first by key. */
function bruteForce(fn: LogpFn, b: number, V: number, maxLen: number, eos: number | undefined, normalize = false): { ids: number[]; score: number; key: number }[] {
  const all: { ids: number[]; score: number; key: number }[] = [];
  const walk = (prefix: number[], score: number): void => {
    const l = fn(b, prefix);
    for (let v = 0; v < V; v++) {
      const ids = [...prefix, v];
      const s = score + Math.fround(l[v]);
      if (v === eos || ids.length === maxLen) all.push({ ids, score: s, key: normalize ? s / ids.length : s });
      else walk(ids, s);
    }
  };
  walk([], 0);
  return all.sort((x, y) => y.key - x.key);
}

/** Greedy path computed directly from the model (arg-max, lowest id on ties). */
function greedyRef(fn: LogpFn, b: number, V: number, maxLen: number, eos: number | undefined): number[] {
  const ids: number[] = [];
  while (ids.length < maxLen) {
    const l = Array.from(fn(b, ids), Math.fround);
    let best = 0;
    for (let v = 1; v < V; v++) if (l[v] > l[best]) best = v;
    ids.push(best);
    if (best === eos) break;
  }
  return ids;
}

async function collect(session: DecodeSession, opts?: GenerateOptions): Promise<{ events: StepEvent[]; result: GenerateResult }> {
  const it = decodeStream(session, opts);
  const events: StepEvent[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { events, result: r.value };
    events.push(r.value);
  }
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return e as Error;
  }
  throw new Error('expected a rejection');
}

// ───────────── greedy ─────────────

// V = 4, eos = 3. Row 0: tie 1/2 at the start → 1, then eos. Row 1: 0 forever (runs to maxLen).
// Row 2: eos at once.
const TABLES: Record<string, number[]>[] = [
  { start: [0.1, 0.4, 0.4, 0.1], 1: [0.2, 0.1, 0.3, 0.4] },
  { start: [0.5, 0.2, 0.2, 0.1], 0: [0.4, 0.3, 0.2, 0.1] },
  { start: [0.1, 0.1, 0.1, 0.7] },
];
const L = (p: number) => Math.fround(Math.log(p));

describe('greedy', () => {
  it('takes the arg-max with the lowest id on ties and stops each row at eos or maxLen', async () => {
    const s = new MockSession(3, 4, markov(TABLES));
    const r = await decode(s, { eos: 3, maxLen: 5 });
    expect(r.ids).toEqual([[1, 3], [0, 0, 0, 0, 0], [3]]);
    expect(r.scores[0]).toBeCloseTo(L(0.4) + L(0.4), 12);
    expect(r.scores[1]).toBeCloseTo(L(0.5) + 4 * L(0.4), 12);
    expect(r.scores[2]).toBeCloseTo(L(0.7), 12);
    expect(r.attention).toBeUndefined();
    expect(r.nBest).toBeUndefined();
    // one session row per input row; bos goes to begin; finished rows are fed eos; 5 tokens = begin + 4 steps
    expect(s.begins).toEqual([{ k: 1, bos: 0, want: false }]);
    expect(s.steps.map((c) => c.tokens)).toEqual([[1, 0, 3], [3, 0, 3], [3, 0, 3], [3, 0, 3]]);
    expect(s.steps.every((c) => c.parents === undefined)).toBe(true);
  });

  it('stops stepping as soon as every row is done', async () => {
    const s = new MockSession(3, 4, markov(TABLES));
    const r = await decode(s, { eos: 3, maxLen: 5, bos: 2 });
    expect(s.begins[0].bos).toBe(2);
    expect(r.ids[0]).toEqual([1, 3]);
    const s2 = new MockSession(1, 4, markov([TABLES[0]]));
    expect((await decode(s2, { eos: 3, maxLen: 50 })).ids).toEqual([[1, 3]]);
    expect(s2.steps.length).toBe(1);
    const s3 = new MockSession(1, 4, markov([TABLES[2]]));
    expect((await decode(s3, { eos: 3 })).ids).toEqual([[3]]);
    expect(s3.steps.length).toBe(0);
  });

  it('without eos runs every row to maxLen (eos-valued tokens included)', async () => {
    const s = new MockSession(3, 4, markov([TABLES[0], TABLES[1], { start: [0.1, 0.1, 0.1, 0.7], 3: [0.1, 0.1, 0.1, 0.7] }]));
    const r = await decode(s, { maxLen: 3 });
    expect(r.ids).toEqual([[1, 3, 0], [0, 0, 0], [3, 3, 3]]);
    expect(r.scores[0]).toBeCloseTo(L(0.4) + L(0.4) + L(0.25), 12);
    expect(r.scores[2]).toBeCloseTo(3 * L(0.7), 12);
    expect(s.steps.length).toBe(2);
  });

  it('maxLen 1 reads one distribution and never steps', async () => {
    const s = new MockSession(3, 4, markov(TABLES));
    const r = await decode(s, { maxLen: 1, eos: 3 });
    expect(r.ids).toEqual([[1], [0], [3]]);
    expect(s.steps.length).toBe(0);
  });

  it('matches the arg-max path of random models', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const V = 2 + (seed % 5);
      const fn = randomModel(seed, V);
      const eos = seed % 3 === 0 ? undefined : seed % V;
      const r = await decode(new MockSession(3, V, fn), { eos, maxLen: 6 });
      for (let b = 0; b < 3; b++) {
        expect(r.ids[b]).toEqual(greedyRef(fn, b, V, 6, eos));
        expect(r.scores[b]).toBeCloseTo(scoreOf(fn, b, r.ids[b]), 10);
      }
    }
  });
});

// ───────────── beam ─────────────

describe('beam', () => {
  it('beam = 1 equals greedy (ids, scores, attention, events) on many random models', async () => {
    for (let seed = 0; seed < 40; seed++) {
      const V = 2 + (seed % 6);
      const fn = randomModel(100 + seed, V, 1 + (seed % 4));
      const attn = randomAttn(seed, 3);
      const eos = seed % 4 === 0 ? undefined : (seed * 7) % V;
      const maxLen = 1 + (seed % 8);
      const g = await collect(new MockSession(3, V, fn, attn, 3), { eos, maxLen, attention: true });
      const bs = new MockSession(3, V, fn, attn, 3);
      const b1 = await collect(bs, { strategy: 'beam', beam: 1, eos, maxLen, attention: true });
      expect(b1.result.ids, `seed ${seed}`).toEqual(g.result.ids);
      expect(b1.result.scores).toEqual(g.result.scores);
      expect(b1.result.attention).toEqual(g.result.attention);
      expect(b1.events).toEqual(g.events);
      expect(bs.begins[0].k).toBe(1);
      for (let b = 0; b < 3; b++) expect(g.result.ids[b]).toEqual(greedyRef(fn, b, V, maxLen, eos));
    }
  });

  // K ≥ V^maxLen keeps every candidate, so the result must be the brute-force best.
  const WIDE: [number, number, number][] = [
    [3, 3, 27],
    [3, 4, 81],
    [4, 3, 64],
    [4, 4, 256],
    [2, 2, 5],
  ];
  for (const [V, maxLen, K] of WIDE) {
    for (const withEos of [false, true]) {
      for (const lengthNormalize of [false, true]) {
        it(`a wide beam equals brute force (V ${V}, maxLen ${maxLen}, K ${K}, ${withEos ? 'eos' : 'no eos'}${lengthNormalize ? ', length-normalised' : ''})`, async () => {
          for (let seed = 0; seed < 3; seed++) {
            const fn = randomModel(1000 * V + 10 * maxLen + seed, V, 2);
            const attn = randomAttn(seed, 2);
            const eos = withEos ? (seed + 1) % V : undefined;
            const B = 2;
            const s = new MockSession(B, V, fn, attn, 2);
            const nBest = Math.min(6, K); // at most the beam width
            const r = await decode(s, { strategy: 'beam', beam: K, maxLen, eos, lengthNormalize, nBest, attention: true });
            expect(s.begins[0].k).toBe(K);
            for (let b = 0; b < B; b++) {
              const all = bruteForce(fn, b, V, maxLen, eos, lengthNormalize);
              expect(all[0].key - all[1].key, 'test model has a tie at the top').toBeGreaterThan(1e-9);
              expect(r.ids[b]).toEqual(all[0].ids);
              expect(r.scores[b]).toBeCloseTo(all[0].score, 10);
              // the attention rows of the returned hypothesis: step i reads the prefix ids[0..i)
              const want = r.ids[b].flatMap((_, i) => Array.from(attn(b, r.ids[b].slice(0, i)), Math.fround));
              expect(r.attention![b].shape).toEqual([r.ids[b].length, 2]);
              expect(Array.from(r.attention![b].data)).toEqual(want);
              // the n best: the brute-force top n, best first, distinct
              const top = all.slice(0, nBest);
              expect(r.nBest![b].map((h) => h.ids)).toEqual(top.map((h) => h.ids));
              r.nBest![b].forEach((h, i) => expect(h.score).toBeCloseTo(top[i].score, 10));
            }
          }
        });
      }
    }
  }

  it('narrow beams: every hypothesis is scored along its own prefix, and nBest is sorted and distinct', async () => {
    for (let seed = 0; seed < 30; seed++) {
      const V = 3 + (seed % 5);
      const K = 2 + (seed % 4);
      const fn = randomModel(5000 + seed, V, 1.5);
      const eos = seed % 5 === 0 ? undefined : seed % V;
      const lengthNormalize = seed % 2 === 1;
      const s = new MockSession(3, V, fn);
      const r = await decode(s, { strategy: 'beam', beam: K, maxLen: 7, eos, nBest: Math.min(4, K), lengthNormalize });
      for (let b = 0; b < 3; b++) {
        expect(r.scores[b]).toBeCloseTo(scoreOf(fn, b, r.ids[b]), 10);
        const nb = r.nBest![b];
        expect(nb.length).toBeGreaterThanOrEqual(1);
        expect(nb.length).toBeLessThanOrEqual(4);
        expect(nb[0].ids).toEqual(r.ids[b]);
        const keys = nb.map((h) => (lengthNormalize ? h.score / h.ids.length : h.score));
        for (let i = 1; i < keys.length; i++) expect(keys[i]).toBeLessThanOrEqual(keys[i - 1]);
        expect(new Set(nb.map((h) => h.ids.join(','))).size).toBe(nb.length);
        for (const h of nb) {
          expect(h.score).toBeCloseTo(scoreOf(fn, b, h.ids), 10);
          expect(h.ids.length).toBeLessThanOrEqual(7);
          if (eos !== undefined) {
            expect(h.ids.slice(0, -1)).not.toContain(eos);
            if (h.ids.length < 7) expect(h.ids[h.ids.length - 1]).toBe(eos);
          }
        }
      }
      // the session holds B·K rows, and row b*K + j only ever continues a row of input row b (the mock checks)
      expect(s.begins[0].k).toBe(K);
      for (const c of s.steps) expect(c.tokens.length).toBe(3 * K);
    }
  });

  it('ranks ties by lower parent rank, then lower id', async () => {
    // V = 3, no eos, maxLen 2, K = 2. Start: tokens 0 and 1 tie at 0.4 (2 gets 0.2): rank 0 = [0], rank 1 = [1].
    // After [0] and after [1] every token has probability 1/3: all six candidates tie, so the
    // beam keeps (parent rank 0, id 0) then (parent rank 0, id 1).
    const fn = prefixTable(3, { '': [0.4, 0.4, 0.2] });
    const r = await decode(new MockSession(1, 3, fn), { strategy: 'beam', beam: 2, maxLen: 2, nBest: 2 });
    expect(r.nBest![0].map((h) => h.ids)).toEqual([[0, 0], [0, 1]]);
    expect(r.ids[0]).toEqual([0, 0]);
    expect(r.scores[0]).toBeCloseTo(L(0.4) + L(1 / 3), 12);
  });

  it('finishes eos only within the first K ranks, and stops once nothing alive can beat the best finished', async () => {
    // V = 3, eos = 2, K = 2. Start: [0.5, 0.3, 0.2]: ranks 0 → [0], 1 → [1], 2 → [eos] (rank 2 ≥ K: dropped).
    // After [0]: [0.1, 0.1, 0.8]: [0, eos] finishes at ln 0.4; [0,0] and [0,1] ln 0.05.
    // After [1]: [0.9, 0.05, 0.05]: [1, 0] ln 0.27 continues; it is the best alive, 0.27 < 0.4 → stop.
    const fn = prefixTable(3, { '': [0.5, 0.3, 0.2], '0': [0.1, 0.1, 0.8], '1': [0.9, 0.05, 0.05] });
    const s = new MockSession(1, 3, fn);
    const r = await decode(s, { strategy: 'beam', beam: 2, maxLen: 10, eos: 2, nBest: 1 });
    expect(r.ids[0]).toEqual([0, 2]);
    expect(r.scores[0]).toBeCloseTo(L(0.5) + L(0.8), 12);
    expect(r.nBest![0].map((h) => h.ids)).toEqual([[0, 2]]);
    expect(s.steps.length).toBe(1);
    // the second step fed the two alive hypotheses, both continuing the one live row of the first step
    expect(s.steps[0]).toEqual({ tokens: [0, 1], parents: [0, 0] });
    // nBest = 2 searches on until two finished ones beat everything alive; the best is unchanged.
    // With [1, 0] → [0.2, 0.2, 0.6], [1,0,eos] = 0.162 finishes second (rank 0 of step 2), and the
    // alive ones (0.054) cannot beat it: two steps.
    const s2 = new MockSession(1, 3, prefixTable(3, { '': [0.5, 0.3, 0.2], '0': [0.1, 0.1, 0.8], '1': [0.9, 0.05, 0.05], '1,0': [0.2, 0.2, 0.6] }));
    const r2 = await decode(s2, { strategy: 'beam', beam: 2, maxLen: 10, eos: 2, nBest: 2 });
    expect(r2.ids[0]).toEqual([0, 2]);
    expect(r2.nBest![0].map((h) => h.ids)).toEqual([[0, 2], [1, 0, 2]]);
    expect(r2.nBest![0][1].score).toBeCloseTo(L(0.3) + L(0.9) + L(0.6), 12);
    expect(s2.steps.length).toBe(2);
    expect(s2.steps[1]).toEqual({ tokens: [0, 0], parents: [1, 0] });
  });

  it('an eos candidate ranked K or lower does not finish, even when the walk reaches it', async () => {
    // V = 3, eos = 2, K = 2, maxLen 2. Step 0: [0] 0.5, [1] 0.3 continue. Step 1 ranking:
    // [0,eos] 0.4 (rank 0: finishes), [1,0] 0.15 (continues), [1,eos] 0.12 (rank 2: dropped),
    // [0,0] 0.05 (continues). At maxLen the two alive ones finish as they are.
    const fn = prefixTable(3, { '': [0.5, 0.3, 0.2], '0': [0.1, 0.1, 0.8], '1': [0.5, 0.1, 0.4] });
    const r = await decode(new MockSession(1, 3, fn), { strategy: 'beam', beam: 2, maxLen: 2, eos: 2, nBest: 2 });
    expect(r.nBest![0].map((h) => h.ids)).toEqual([[0, 2], [1, 0]]);
    expect(r.nBest![0].map((h) => h.score)).toEqual([L(0.5) + L(0.8), L(0.3) + L(0.5)]);
  });

  it('stream events: a row whose best hypothesis finished at an earlier step shows -1 when it stops', async () => {
    // V = 3, eos = 2, K = 2. Step 0: [0] 0.5 continues, [eos] 0.4 finishes (rank 1), [1] 0.1 continues;
    // 0.5 > 0.4 so the search goes on. Step 1: [0,0] and [0,1] 0.225 continue; 0.225 ≤ 0.4: done,
    // and the result [eos] chose no token at this step.
    const fn = prefixTable(3, { '': [0.5, 0.1, 0.4], '0': [0.45, 0.45, 0.1] });
    const { events, result } = await collect(new MockSession(1, 3, fn), { strategy: 'beam', beam: 2, maxLen: 10, eos: 2 });
    expect(events).toEqual([
      { step: 0, tokens: [0], ids: [[0]], done: [false] },
      { step: 1, tokens: [-1], ids: [[2]], done: [true] },
    ]);
    expect(result.ids).toEqual([[2]]);
    expect(result.scores).toEqual([L(0.4)]);
  });

  it('length normalisation changes the winner', async () => {
    // V = 3, eos = 2. [eos] has probability 0.5 (score −0.69); [1, 1, eos] has 0.45·0.9·0.9 = 0.3645
    // (score −1.01, but −0.34 per token).
    const fn = prefixTable(3, { '': [0.05, 0.45, 0.5], '1': [0.05, 0.9, 0.05], '1,1': [0.05, 0.05, 0.9] });
    for (const beam of [2, 3, 27]) {
      const plain = await decode(new MockSession(1, 3, fn), { strategy: 'beam', beam, maxLen: 3, eos: 2 });
      expect(plain.ids[0]).toEqual([2]);
      expect(plain.scores[0]).toBeCloseTo(L(0.5), 12);
      const norm = await decode(new MockSession(1, 3, fn), { strategy: 'beam', beam, maxLen: 3, eos: 2, lengthNormalize: true });
      expect(norm.ids[0]).toEqual([1, 1, 2]);
      // scores stay the summed log-probability
      expect(norm.scores[0]).toBeCloseTo(L(0.45) + L(0.9) + L(0.9), 12);
    }
  });

  it('feeds finished input rows and unused beam rows without disturbing the others', async () => {
    // B = 3 with rows finishing at different steps; compare each row with the same row decoded alone.
    for (let seed = 0; seed < 10; seed++) {
      const V = 4;
      const fn = randomModel(9000 + seed, V, 3);
      const together = await decode(new MockSession(3, V, fn), { strategy: 'beam', beam: 3, maxLen: 6, eos: 1 });
      for (let b = 0; b < 3; b++) {
        const alone = await decode(new MockSession(1, V, (_b, p) => fn(b, p)), { strategy: 'beam', beam: 3, maxLen: 6, eos: 1 });
        expect(together.ids[b]).toEqual(alone.ids[0]);
        expect(together.scores[b]).toBe(alone.scores[0]);
      }
    }
  });
});

// ───────────── sample ─────────────

describe('sample', () => {
  it('follows the spec exactly: logp / T, top k, float64 softmax, one mulberry32 draw per row per step', async () => {
    // One step, rows with known distributions. The expected id is the inverse CDF of the test's own
    // mulberry32 stream (draws in row order), over the kept ids in increasing id order.
    const probs = [
      [0.1, 0.2, 0.3, 0.4],
      [0.25, 0.25, 0.25, 0.25],
      [0.7, 0.1, 0.1, 0.1],
      [0.05, 0.45, 0.05, 0.45],
      [0.4, 0.3, 0.2, 0.1],
    ];
    const fn: LogpFn = (b) => probs[b].map(Math.log);
    for (const [T, topK] of [[1, undefined], [0.5, undefined], [2, 2], [1.5, 3], [1, 1]] as [number, number | undefined][]) {
      for (const seed of [0, 1, 42, 123456789]) {
        const r = await decode(new MockSession(5, 4, fn), { strategy: 'sample', seed, temperature: T, topK, maxLen: 1 });
        const rnd = mulberry32Ref(seed);
        for (let b = 0; b < 5; b++) {
          const z = probs[b].map((p) => Math.fround(Math.log(p)) / T);
          const order = z.map((v, i) => [v, i]).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
          const kept = new Set(order.slice(0, topK ?? 4).map((x) => x[1]));
          const m = Math.max(...[...kept].map((i) => z[i]));
          const sum = [...kept].reduce((s, i) => s + Math.exp(z[i] - m), 0);
          const u = rnd();
          let cum = 0;
          let want = -1;
          for (let i = 0; i < 4 && want < 0; i++) {
            if (!kept.has(i)) continue;
            cum += Math.exp(z[i] - m) / sum;
            if (cum > u) want = i;
          }
          expect(r.ids[b], `T ${T} topK ${topK} seed ${seed} row ${b}`).toEqual([want]);
          expect(r.scores[b]).toBeCloseTo(Math.fround(Math.log(probs[b][want])), 12);
        }
      }
    }
  });

  it('is reproducible for a seed and differs across seeds', async () => {
    const fn = randomModel(77, 6, 0.5);
    const run = (seed?: number) => decode(new MockSession(2, 6, fn), { strategy: 'sample', seed, maxLen: 10 });
    const a = await run(7);
    expect((await run(7)).ids).toEqual(a.ids);
    expect((await run(undefined)).ids).toEqual((await run(0)).ids);
    const distinct = new Set<string>();
    for (let seed = 0; seed < 10; seed++) distinct.add(JSON.stringify((await run(seed)).ids));
    expect(distinct.size).toBeGreaterThanOrEqual(9);
    for (let b = 0; b < 2; b++) expect(a.scores[b]).toBeCloseTo(scoreOf(fn, b, a.ids[b]), 10);
  });

  it('topK = 1 equals greedy', async () => {
    for (let seed = 0; seed < 15; seed++) {
      const V = 2 + (seed % 6);
      const fn = randomModel(300 + seed, V);
      const eos = seed % 3 === 0 ? undefined : seed % V;
      const g = await decode(new MockSession(3, V, fn), { eos, maxLen: 6 });
      const s = await decode(new MockSession(3, V, fn), { strategy: 'sample', topK: 1, temperature: 3, seed, eos, maxLen: 6 });
      expect(s).toEqual(g);
    }
  });

  it('a tiny temperature approximates greedy', async () => {
    for (let seed = 0; seed < 15; seed++) {
      const V = 3 + (seed % 5);
      const fn = randomModel(600 + seed, V);
      const g = await decode(new MockSession(3, V, fn), { eos: 0, maxLen: 6 });
      const s = await decode(new MockSession(3, V, fn), { strategy: 'sample', temperature: 1e-6, seed, eos: 0, maxLen: 6 });
      expect(s.ids).toEqual(g.ids);
    }
  });

  it('draws with the model probabilities (empirical frequencies over many rows)', async () => {
    const p = [0.1, 0.2, 0.3, 0.4];
    const N = 20000;
    const fn: LogpFn = () => p.map(Math.log);
    const count = async (opts: GenerateOptions): Promise<number[]> => {
      const r = await decode(new MockSession(N, 4, fn), { strategy: 'sample', maxLen: 1, ...opts });
      const c = [0, 0, 0, 0];
      for (const ids of r.ids) c[ids[0]]++;
      return c.map((x) => x / N);
    };
    const near = (got: number[], want: number[]) =>
      want.forEach((q, i) => expect(Math.abs(got[i] - q), `token ${i}: ${got[i]} vs ${q}`).toBeLessThan(4.5 * Math.sqrt((q * (1 - q)) / N) + 1e-9));
    near(await count({ seed: 3 }), p);
    // temperature 2 → p^(1/2), renormalised; topK 3 drops token 0 entirely
    const sq = [0.2, 0.3, 0.4].map(Math.sqrt);
    const z = sq.reduce((a, b) => a + b, 0);
    near(await count({ seed: 4, temperature: 2, topK: 3 }), [0, ...sq.map((v) => v / z)]);
    // and two-token sequences: the second token's distribution depends on the first
    const fn2 = prefixTable(2, { '': [0.3, 0.7], '0': [0.9, 0.1], '1': [0.2, 0.8] });
    const r = await decode(new MockSession(N, 2, fn2), { strategy: 'sample', maxLen: 2, seed: 5 });
    const c: Record<string, number> = {};
    for (const ids of r.ids) c[ids.join(',')] = (c[ids.join(',')] ?? 0) + 1;
    const want: Record<string, number> = { '0,0': 0.27, '0,1': 0.03, '1,0': 0.14, '1,1': 0.56 };
    for (const k of Object.keys(want)) expect(Math.abs((c[k] ?? 0) / N - want[k]), k).toBeLessThan(4.5 * Math.sqrt((want[k] * (1 - want[k])) / N));
  });

  it('row b draws u[step·B + b] whether or not other rows have finished', async () => {
    // Row 0 ends at once (eos certain), row 1 samples uniformly over 4 tokens for 3 steps.
    const fn: LogpFn = (b) => (b === 0 ? [0, -Infinity, -Infinity, -Infinity] : [0.25, 0.25, 0.25, 0.25].map(Math.log));
    const r = await decode(new MockSession(2, 4, fn), { strategy: 'sample', eos: 0, maxLen: 3, seed: 9 });
    const rnd = mulberry32Ref(9);
    const want: number[] = [];
    for (let t = 0; t < 3; t++) {
      rnd(); // row 0's draw
      const tok = Math.floor(rnd() * 4);
      want.push(tok);
      if (tok === 0) break;
    }
    expect(r.ids).toEqual([[0], want]);
  });
});

// ───────────── stream ─────────────

describe('stream', () => {
  it('yields one event per step (hand-computed greedy events) and returns the decode() result', async () => {
    const { events, result } = await collect(new MockSession(3, 4, markov(TABLES)), { eos: 3, maxLen: 5 });
    const F = false;
    const T = true;
    expect(events).toEqual([
      { step: 0, tokens: [1, 0, 3], ids: [[1], [0], [3]], done: [F, F, T] },
      { step: 1, tokens: [3, 0, -1], ids: [[1, 3], [0, 0], [3]], done: [T, F, T] },
      { step: 2, tokens: [-1, 0, -1], ids: [[1, 3], [0, 0, 0], [3]], done: [T, F, T] },
      { step: 3, tokens: [-1, 0, -1], ids: [[1, 3], [0, 0, 0, 0], [3]], done: [T, F, T] },
      { step: 4, tokens: [-1, 0, -1], ids: [[1, 3], [0, 0, 0, 0, 0], [3]], done: [T, T, T] },
    ]);
    expect(result).toEqual(await decode(new MockSession(3, 4, markov(TABLES)), { eos: 3, maxLen: 5 }));
  });

  it('for every strategy: events = distributions read, the last event shows the result, and it equals decode()', async () => {
    const fn = randomModel(31337, 5);
    const attn = randomAttn(5, 4);
    const cases: GenerateOptions[] = [
      { eos: 2, maxLen: 7, attention: true },
      { strategy: 'beam', beam: 3, eos: 2, maxLen: 7, nBest: 3, attention: true },
      { strategy: 'beam', beam: 4, maxLen: 5, lengthNormalize: true },
      { strategy: 'sample', seed: 11, eos: 2, maxLen: 7, temperature: 0.7, topK: 3, attention: true },
    ];
    for (const opts of cases) {
      const s = new MockSession(3, 5, fn, attn, 4);
      const { events, result } = await collect(s, opts);
      expect(events.length).toBe(s.steps.length + 1);
      events.forEach((e, i) => expect(e.step).toBe(i));
      const lastEv = events[events.length - 1];
      expect(lastEv.done).toEqual([true, true, true]);
      expect(lastEv.ids).toEqual(result.ids);
      for (let b = 0; b < 3; b++) {
        expect(result.ids[b].length).toBeLessThanOrEqual(events.length);
        // a row's done flag never goes back, and tokens are -1 exactly after it is done
        const firstDone = events.findIndex((e) => e.done[b]);
        events.forEach((e, i) => {
          expect(e.done[b]).toBe(i >= firstDone);
          if (i > firstDone) expect(e.tokens[b]).toBe(-1);
          if (i < firstDone) expect(e.tokens[b]).toBe(e.ids[b][i]);
        });
      }
      expect(result).toEqual(await decode(new MockSession(3, 5, fn, attn, 4), opts));
      if (opts.attention) {
        for (let b = 0; b < 3; b++) {
          const want = result.ids[b].flatMap((_, i) => Array.from(attn(b, result.ids[b].slice(0, i)), Math.fround));
          expect(result.attention![b].shape).toEqual([result.ids[b].length, 4]);
          expect(Array.from(result.attention![b].data)).toEqual(want);
        }
      }
    }
  });

  it('a consumer that stops early stops the decoding', async () => {
    const s = new MockSession(2, 4, randomModel(1, 4));
    for await (const ev of decodeStream(s, { maxLen: 20 })) if (ev.step === 2) break;
    expect(s.steps.length).toBe(2);
  });
});

// ───────────── abort ─────────────

describe('abort', () => {
  it('an already aborted signal rejects before the session is used', async () => {
    const c = new AbortController();
    c.abort();
    const s = new MockSession(1, 4, randomModel(1, 4));
    const e = await rejection(decode(s, { signal: c.signal }));
    expect(e.name).toBe('AbortError');
    expect(s.begins.length).toBe(0);
  });

  it('aborting between steps of a stream throws AbortError and steps no further', async () => {
    const c = new AbortController();
    const s = new MockSession(1, 4, randomModel(2, 4));
    const seen: number[] = [];
    const e = await rejection(
      (async () => {
        for await (const ev of decodeStream(s, { strategy: 'beam', beam: 2, maxLen: 20, signal: c.signal })) {
          seen.push(ev.step);
          if (ev.step === 1) c.abort();
        }
      })(),
    );
    expect(e.name).toBe('AbortError');
    expect(seen).toEqual([0, 1]);
    expect(s.steps.length).toBe(1);
  });

  it.each(['greedy', 'beam', 'sample'] as const)('an abort during a session step is reported when the step returns (%s)', async (strategy) => {
    const c = new AbortController();
    const s = new MockSession(2, 4, randomModel(3, 4));
    s.onStep = () => {
      if (s.steps.length === 3) c.abort();
    };
    const seen: number[] = [];
    const e = await rejection(
      (async () => {
        for await (const ev of decodeStream(s, { strategy, maxLen: 20, signal: c.signal })) seen.push(ev.step);
      })(),
    );
    expect(e.name).toBe('AbortError');
    expect(seen).toEqual([0, 1, 2]); // the step that was aborted yields no event
    expect(s.steps.length).toBe(3);
    const e2 = await rejection(decode(new MockSession(2, 4, randomModel(3, 4)), { strategy, maxLen: 20, signal: c.signal }));
    expect(e2.name).toBe('AbortError');
  });
});

// ───────────── options ─────────────

describe('options', () => {
  it('applies opts, then the decode statement, then the contract defaults', () => {
    expect(resolveOptions(undefined, undefined)).toEqual({
      strategy: 'greedy', beam: 4, maxLen: 50, bos: 0, eos: undefined, temperature: 1, topK: undefined,
      seed: 0, lengthNormalize: false, nBest: undefined, attention: false, signal: undefined, lm: undefined, lmWeight: 1, lengthBonus: 0,
    });
    const spec = { strategy: 'beam' as const, beam: 3, maxLen: 12, bos: 1, eos: 2, temperature: 0.8, topK: 5 };
    expect(resolveOptions({}, spec, { vocab: 14 })).toMatchObject(spec);
    expect(resolveOptions({ temperature: 0.5, eos: 5, strategy: 'sample', maxLen: undefined }, spec, { vocab: 14 })).toMatchObject({ ...spec, temperature: 0.5, eos: 5, strategy: 'sample' });
    expect(resolveOptions({ beam: 6 }, spec, { vocab: 14 })).toMatchObject({ ...spec, beam: 6 });
  });

  it('decodeStream uses the decode statement defaults', async () => {
    const fn = randomModel(4242, 5);
    const spec = { strategy: 'beam' as const, beam: 2, maxLen: 4, eos: 3 };
    const a = await decode(new MockSession(2, 5, fn), {}, spec);
    const b = await decode(new MockSession(2, 5, fn), spec);
    expect(a).toEqual(b);
    for (let r = 0; r < 2; r++) expect(a.ids[r]).not.toEqual([]);
    const g = await decode(new MockSession(2, 5, fn), { strategy: 'greedy' }, spec);
    for (let r = 0; r < 2; r++) expect(g.ids[r]).toEqual(greedyRef(fn, r, 5, 4, 3));
  });

  const BAD: [unknown, string][] = [
    [{ strategy: 'beem' }, `generate option 'strategy' must be one of 'greedy', 'beam', 'sample', got "beem" (did you mean 'beam'?)`],
    [{ strategy: 'beam', beam: 0 }, `generate option 'beam' must be an integer in [1, 256], got 0`],
    [{ strategy: 'beam', beam: 2.5 }, `generate option 'beam' must be an integer in [1, 256], got 2.5`],
    [{ strategy: 'beam', beam: '4' }, `generate option 'beam' must be an integer in [1, 256], got "4"`],
    [{ maxLen: 0 }, `generate option 'maxLen' must be an integer in [1, 65536], got 0`],
    [{ maxLen: Infinity }, `generate option 'maxLen' must be an integer in [1, 65536], got Infinity`],
    [{ bos: -1 }, `generate option 'bos' must be an integer in [0, 4] (bos is fed to the model, whose vocab = 5), got -1`],
    [{ bos: 5 }, `generate option 'bos' must be an integer in [0, 4] (bos is fed to the model, whose vocab = 5), got 5`],
    [{ eos: 5 }, `generate option 'eos' must be an integer in [0, 4] (the model's output has 5 classes), got 5`],
    [{ eos: null }, `generate option 'eos' must be an integer in [0, 4] (the model's output has 5 classes), got null`],
    [{ strategy: 'sample', temperature: 0 }, `generate option 'temperature' must be a finite number > 0, got 0`],
    [{ strategy: 'sample', temperature: NaN }, `generate option 'temperature' must be a finite number > 0, got NaN`],
    [{ strategy: 'sample', temperature: -1 }, `generate option 'temperature' must be a finite number > 0, got -1`],
    [{ strategy: 'sample', topK: 0 }, `generate option 'topK' must be an integer in [1, 1048576], got 0`],
    [{ strategy: 'sample', seed: 1.5 }, `generate option 'seed' must be a safe integer, got 1.5`],
    [{ strategy: 'sample', seed: '1' }, `generate option 'seed' must be a safe integer, got "1"`],
    [{ strategy: 'beam', lengthNormalize: 'yes' }, `generate option 'lengthNormalize' must be a boolean, got "yes"`],
    [{ attention: 1 }, `generate option 'attention' must be a boolean, got 1`],
    [{ strategy: 'beam', nBest: 0 }, `generate option 'nBest' must be an integer in [1, 256], got 0`],
    [{ nBest: 2 }, `generate option 'nBest' applies to strategy 'beam', but the strategy is "greedy" (the default): pass strategy: 'beam', or drop 'nBest'`],
    [{ signal: {} }, `generate option 'signal' must be an AbortSignal, got {}`],
    [{ beams: 4 }, `generate option 'beams' is unknown (did you mean 'beam'?); the options are strategy, beam, maxLen, bos, eos, temperature, topK, seed, lengthNormalize, nBest, attention, signal, lm, lmWeight, lengthBonus`],
    [{ max_len: 9 }, `generate option 'max_len' is unknown (did you mean 'maxLen'?); the options are strategy, beam, maxLen, bos, eos, temperature, topK, seed, lengthNormalize, nBest, attention, signal, lm, lmWeight, lengthBonus`],
    [{ zzz: 1 }, `generate option 'zzz' is unknown; the options are strategy, beam, maxLen, bos, eos, temperature, topK, seed, lengthNormalize, nBest, attention, signal, lm, lmWeight, lengthBonus`],
    [5, `generate options must be an object, got 5`],
    [[1], `generate options must be an object, got [1]`],
  ];
  it.each(BAD)('rejects %j', async (opts, message) => {
    expect(() => resolveOptions(opts as GenerateOptions, undefined, { vocab: 5, inputVocab: 5 })).toThrow(message);
    const s = new MockSession(1, 5, randomModel(0, 5));
    const e = await rejection(decode(s, opts as GenerateOptions));
    expect(e.message).toBe(message);
    expect(s.begins.length).toBe(0);
  });

  it('names a bad decode statement value as a default, and an option overrides it', async () => {
    expect(() => resolveOptions({}, { beam: 0 })).toThrow(`decode default 'beam' must be an integer in [1, 256], got 0`);
    expect(() => resolveOptions({}, { eos: 9 }, { vocab: 5 })).toThrow(`decode default 'eos' must be an integer in [0, 4] (the model's output has 5 classes), got 9`);
    expect(() => resolveOptions({}, { beems: 1 } as never)).toThrow(`decode default 'beems' is unknown (did you mean 'beam'?); the defaults are strategy, beam, maxLen, bos, eos, temperature, topK`);
    expect(() => resolveOptions({}, { seed: 1 } as never)).toThrow(`decode default 'seed' is unknown; the defaults are`);
    expect(resolveOptions({ beam: 2 }, { strategy: 'beam', beam: 0 }).beam).toBe(2);
  });

  it('rejects a session that returns the wrong shapes, or no attention when it is asked for', async () => {
    const s = new MockSession(2, 4, randomModel(0, 4));
    const short: DecodeSession = { batch: 2, vocab: 4, begin: async () => ({ logp: new Float32Array(7) }), step: async () => ({ logp: new Float32Array(8) }) };
    expect((await rejection(decode(short))).message).toBe('decode session logp must have 2 × 4 = 8 values, got 7');
    expect((await rejection(decode(s, { attention: true }))).message).toMatch(/attention.*no attention/);
  });
});
