/* ───────────────────────── nnc decoding engine ─────────────────────────
 * What a generated model's generate() and stream() run: greedy, beam and sampled decoding over an
 * abstract step-by-step session (docs/seq2seq.md, "Decoding"; the API in README.md). Pure
 * TypeScript (its only import is the options table, options.ts): it runs in browsers and Node.
 */

// ───────────── public types ─────────────

import { resolveOptions, show, type DecodeDefaults, type GenerateOptions, type ResolvedOptions } from './options.ts';

export type { DecodeDefaults, DecodeStrategy, FusionLM, GenerateOptions, ResolvedOptions } from './options.ts';
export { resolveOptions } from './options.ts';

export interface GenerateResult {
  /** Per input row: the generated tokens, bos excluded, eos included when produced. */
  ids: number[][];
  /** Per input row: the sum of the natural-log probabilities of ids[b] under the model (with `lm` or `lengthBonus`: the sum of the fused scores). */
  scores: number[];
  /** With `attention: true`, per input row: the attention rows [steps = ids[b].length, S] of the returned hypothesis. */
  attention?: { data: Float32Array; shape: [number, number] }[];
  /** With `nBest: N` (beam): per input row, up to N best finished hypotheses, best first. */
  nBest?: { ids: number[]; score: number }[][];
}

/** One event per decoding step. */
export interface StepEvent {
  /** 0-based index of the token generated at this step (ids[b][step] while row b is still producing). */
  step: number;
  /** Per row: the token chosen at this step by the row's current best hypothesis; -1 once the row has finished. */
  tokens: number[];
  /** Per row: its best hypothesis so far (while running: the top alive hypothesis; once done: its result). */
  ids: number[][];
  /** Per row: true once it will produce no more tokens (eos, maxLen, or its beam search stopped). */
  done: boolean[];
}

export interface StepOut {
  /** Log-probabilities, row-major [rows, vocab] (already normalised: log-softmaxed). */
  readonly logp: Float32Array;
  /** Attention weights [rows, S] for this step when the model has attention and they were requested. */
  readonly attention?: Float32Array | undefined;
  /** S. */
  readonly srcLen?: number;
}

export interface DecodeSession {
  /** Input rows B. */
  readonly batch: number;
  /** Output classes: the distribution's size (eos is below it). */
  readonly vocab: number;
  /** The fed input's vocabulary and name, when known: bos is fed to it, so it must be below it. */
  readonly inputVocab?: number;
  readonly inputName?: string;
  /**
   * Makes the session hold batch*k rows (row r continues input row Math.floor(r / k)) and returns the
   * distribution of the first generated token for each of them (seq2seq: after feeding bos; language
   * model: after the prompt).
   */
  begin(k: number, bos: number, wantAttention: boolean): Promise<StepOut>;
  /** Feeds one token per row. parents[r] = the row of the previous step whose state row r continues (beam reordering); omitted = identity. */
  step(tokens: Int32Array, parents: Int32Array | undefined, wantAttention: boolean): Promise<StepOut>;
}

// ───────────── shallow fusion ─────────────

/**
 * Shallow fusion: a session whose log-probabilities are the model's plus lmWeight times the
 * language model's plus lengthBonus, the language model following the same hypotheses (the same
 * tokens and beam reordering). With lmWeight 0 the language model is not run.
 */
class FusedSession implements DecodeSession {
  readonly batch: number;
  readonly vocab: number;
  private readonly model: DecodeSession;
  private readonly lm: (DecodeSession & { close(): void }) | undefined;
  private readonly weight: number;
  private readonly bonus: number;
  constructor(model: DecodeSession, o: ResolvedOptions) {
    this.model = model;
    this.batch = model.batch;
    this.vocab = model.vocab;
    this.weight = o.lmWeight;
    this.bonus = o.lengthBonus;
    if (!o.lm) return;
    const lm = o.lm.lmSession(model.batch);
    if (lm.vocab !== model.vocab) {
      lm.close();
      throw new Error(`generate option 'lm' has a vocabulary of ${lm.vocab} tokens, but the model generates from ${model.vocab}: shallow fusion needs one vocabulary`);
    }
    if (o.lmWeight !== 0) this.lm = lm;
    else lm.close();
  }

  private fuse(a: StepOut, b: StepOut | undefined): StepOut {
    const x = a.logp;
    const out = new Float32Array(x.length);
    const y = b?.logp;
    if (y && y.length !== x.length) throw new Error(`generate option 'lm': its session returned ${y.length} log-probabilities for ${x.length}`);
    for (let i = 0; i < x.length; i++) out[i] = x[i]! + (y ? this.weight * y[i]! : 0) + this.bonus;
    return { ...a, logp: out };
  }

  async begin(k: number, bos: number, wantAttention: boolean): Promise<StepOut> {
    const a = await this.model.begin(k, bos, wantAttention);
    return this.fuse(a, this.lm ? await this.lm.begin(k, bos, false) : undefined);
  }

  async step(tokens: Int32Array, parents: Int32Array | undefined, wantAttention: boolean): Promise<StepOut> {
    const a = await this.model.step(tokens, parents, wantAttention);
    return this.fuse(a, this.lm ? await this.lm.step(tokens, parents, false) : undefined);
  }

  close(): void {
    this.lm?.close();
  }
}

// ───────────── helpers ─────────────

/**
 * generate() hands the event loop a turn between steps once this many milliseconds of decoding
 * have passed since the last turn, so that timers, abort signals, a page's input and rendering
 * run during a long generation (the turn costs tens of microseconds: bench/results/yield.md).
 */
export const YIELD_MS = 4;

const now = (): number => (typeof performance === 'object' ? performance.now() : Date.now());
let channel: { port1: { onmessage: (() => void) | null }; port2: { postMessage(m: unknown): void } } | undefined;
const waiting: (() => void)[] = [];

/** A macrotask: setImmediate (Node), else a MessageChannel message (browsers: not clamped like setTimeout(0)). */
export function macrotask(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => void; MessageChannel?: new () => NonNullable<typeof channel> };
  if (typeof g.setImmediate === 'function') return new Promise((r) => g.setImmediate!(r));
  if (typeof g.MessageChannel !== 'function') return new Promise((r) => setTimeout(r, 0));
  if (!channel) {
    channel = new g.MessageChannel();
    channel.port1.onmessage = () => waiting.shift()?.();
  }
  const ch = channel;
  return new Promise((r) => {
    waiting.push(r);
    ch.port2.postMessage(0);
  });
}

/** Between two steps: a turn of the event loop when one is due, then the abort check. */
class Pace {
  private last = now();
  private readonly signal: AbortSignal | undefined;
  constructor(signal: AbortSignal | undefined) {
    this.signal = signal;
  }
  async step(): Promise<void> {
    if (now() - this.last >= YIELD_MS) {
      await macrotask();
      this.last = now();
    }
    checkAbort(this.signal);
  }
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const e = new Error('generate was aborted', { cause: signal.reason });
    e.name = 'AbortError';
    throw e;
  }
}

/** A log-probability as ranked: NaN reads as -Infinity. */
function lp(x: number): number {
  return x > -Infinity ? x : -Infinity;
}

/** Checks one step's output and returns its attention width S (0 when attention is not wanted). */
function checkOut(out: StepOut, rows: number, V: number, wantAttention: boolean, S: number): number {
  if (typeof out !== 'object' || out === null || !(out.logp instanceof Float32Array)) {
    throw new Error(`decode session step must return { logp: Float32Array }, got ${show(out)}`);
  }
  if (out.logp.length !== rows * V) {
    throw new Error(`decode session logp must have ${rows} × ${V} = ${rows * V} values, got ${out.logp.length}`);
  }
  if (!wantAttention) return 0;
  const a = out.attention;
  if (!(a instanceof Float32Array)) throw new Error(`generate option 'attention' is true, but the decode session returned no attention weights`);
  const s = out.srcLen ?? a.length / rows;
  if (!Number.isInteger(s) || s < 0 || a.length !== rows * s) {
    throw new Error(`decode session attention must have ${rows} × ${out.srcLen ?? 'S'} values, got ${a.length}`);
  }
  if (S >= 0 && s !== S) throw new Error(`decode session attention width changed between steps: ${S}, then ${s}`);
  return s;
}

/** The mulberry32 PRNG: uniform floats in [0, 1) from a 32-bit seed (any safe integer, taken mod 2^32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Arg-max of logp[off .. off+V), lowest id on ties (NaN reads as -Infinity). The range is in logp (checkOut). */
function argmax(logp: Float32Array, off: number, V: number): number {
  let best = 0;
  let bv = lp(logp[off]!);
  for (let i = 1; i < V; i++) {
    const v = logp[off + i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** Sampling with reusable scratch buffers (allocated once per generate call). */
class Sampler {
  private readonly x: Float64Array;
  private readonly sorted: Float64Array | undefined;
  private readonly keep: Uint8Array;
  private readonly V: number;
  private readonly temperature: number;
  private readonly topK: number;
  constructor(V: number, temperature: number, topK: number) {
    this.V = V;
    this.temperature = temperature;
    this.topK = topK;
    this.x = new Float64Array(V);
    this.sorted = topK < V ? new Float64Array(V) : undefined;
    this.keep = new Uint8Array(V);
  }
  /**
   * logp / temperature, keep the topK largest (ties: lower id), softmax in float64, and return the
   * first kept id (increasing id order) whose cumulative probability exceeds u.
   */
  pick(logp: Float32Array, off: number, u: number): number {
    // x, keep and sorted have V entries; logp[off .. off+V) is checked by checkOut
    const { V, x, keep } = this;
    for (let i = 0; i < V; i++) x[i] = lp(logp[off + i]!) / this.temperature;
    if (this.sorted) {
      const s = this.sorted;
      s.set(x);
      s.sort();
      const tau = s[V - this.topK]!; // the topK-th largest value (sorted exists only when 1 ≤ topK < V)
      let above = 0;
      for (let i = 0; i < V; i++) if (x[i]! > tau) above++;
      let ties = this.topK - above; // values equal to tau kept, lowest ids first
      for (let i = 0; i < V; i++) {
        if (x[i]! > tau) keep[i] = 1;
        else if (x[i] === tau && ties > 0) {
          keep[i] = 1;
          ties--;
        } else keep[i] = 0;
      }
    } else keep.fill(1);
    let m = -Infinity;
    let first = -1;
    let last = -1;
    for (let i = 0; i < V; i++) {
      if (!keep[i]) continue;
      if (first < 0) first = i;
      last = i;
      if (x[i]! > m) m = x[i]!;
    }
    if (m === -Infinity) return first; // no kept token has any probability: degenerate model
    let sum = 0;
    for (let i = 0; i < V; i++) {
      if (keep[i]) {
        x[i] = Math.exp(x[i]! - m);
        sum += x[i]!;
      }
    }
    let cum = 0;
    for (let i = 0; i < V; i++) {
      if (!keep[i]) continue;
      cum += x[i]! / sum;
      if (cum > u) return i;
    }
    return last; // rounding left the total just under u
  }
}

// ───────────── decoding ─────────────

/**
 * Decodes step by step, yielding one StepEvent per generated position and returning the result.
 * `opts` are resolved against `defaults` (the spec's decode statement) with resolveOptions; option
 * errors are thrown on the first next().
 */
export async function* decodeStream(
  session: DecodeSession,
  opts?: GenerateOptions,
  defaults?: DecodeDefaults,
): AsyncGenerator<StepEvent, GenerateResult> {
  if (typeof session !== 'object' || session === null) throw new Error(`decode session must be an object, got ${show(session)}`);
  if (!(Number.isInteger(session.batch) && session.batch >= 1)) throw new Error(`decode session batch must be an integer ≥ 1, got ${show(session.batch)}`);
  if (!(Number.isInteger(session.vocab) && session.vocab >= 1)) throw new Error(`decode session vocab must be an integer ≥ 1, got ${show(session.vocab)}`);
  // bos is fed to the model: below its input's vocabulary (a session that does not say: its output's)
  const o = resolveOptions(opts, defaults, { vocab: session.vocab, inputVocab: session.inputVocab ?? session.vocab, ...(session.inputName !== undefined ? { input: session.inputName } : {}) });
  checkAbort(o.signal);
  const fused = o.lm || o.lengthBonus !== 0 ? new FusedSession(session, o) : undefined;
  try {
    if (o.strategy === 'beam') return yield* beamSearch(fused ?? session, o);
    return yield* stepwise(fused ?? session, o);
  } finally {
    fused?.close();
  }
}

/** Runs decodeStream to its end and returns its result. */
export async function decode(session: DecodeSession, opts?: GenerateOptions, defaults?: DecodeDefaults): Promise<GenerateResult> {
  const it = decodeStream(session, opts, defaults);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/** greedy and sample: one session row per input row. */
async function* stepwise(session: DecodeSession, o: ResolvedOptions): AsyncGenerator<StepEvent, GenerateResult> {
  const B = session.batch;
  const V = session.vocab;
  const ids: number[][] = Array.from({ length: B }, () => []);
  const scores = new Array<number>(B).fill(0);
  const finished = new Array<boolean>(B).fill(false);
  const attn: Float32Array[][] | undefined = o.attention ? ids.map(() => []) : undefined;
  const rng = o.strategy === 'sample' ? mulberry32(o.seed) : undefined;
  const sampler = rng ? new Sampler(V, o.temperature, o.topK ?? V) : undefined;
  const filler = o.eos ?? o.bos;
  let S = -1;
  const pace = new Pace(o.signal);
  let out = await session.begin(1, o.bos, o.attention);
  for (let t = 0; ; t++) {
    checkAbort(o.signal);
    S = checkOut(out, B, V, o.attention, S);
    const { logp } = out;
    const last = t + 1 >= o.maxLen;
    const tokens = new Array<number>(B);
    for (let b = 0; b < B; b++) {
      const u = rng ? rng() : 0; // one draw per row per step, in row order, finished rows included
      if (finished[b]) {
        tokens[b] = -1;
        continue;
      }
      // ids, scores and attn have B rows; tok < V
      const off = b * V;
      const tok = sampler ? sampler.pick(logp, off, u) : argmax(logp, off, V);
      ids[b]!.push(tok);
      scores[b]! += lp(logp[off + tok]!);
      if (attn) attn[b]!.push(out.attention!.slice(b * S, (b + 1) * S));
      tokens[b] = tok;
      if (tok === o.eos || last) finished[b] = true;
    }
    const allDone = finished.every(Boolean);
    yield { step: t, tokens, ids: ids.map((r) => r.slice()), done: finished.slice() };
    if (allDone) break;
    await pace.step();
    const feed = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const row = ids[b]!;
      feed[b] = finished[b] ? filler : row[row.length - 1]!; // a row not finished took a token this step
    }
    out = await session.step(feed, undefined, o.attention);
  }
  const result: GenerateResult = { ids, scores };
  if (attn) result.attention = attn.map((rows) => concatRows(rows, S));
  return result;
}

function concatRows(rows: Float32Array[], S: number): { data: Float32Array; shape: [number, number] } {
  const data = new Float32Array(rows.length * S);
  rows.forEach((r, i) => data.set(r, i * S));
  return { data, shape: [rows.length, S] };
}

/** A beam hypothesis: a node of the prefix tree. */
interface Hyp {
  readonly token: number;
  readonly parent: Hyp | null;
  /** Summed log-probability. */
  readonly score: number;
  /** Number of generated tokens. */
  readonly len: number;
  /** The session row whose distribution produced `token` (its parent's row at step len - 1). */
  readonly row: number;
}

function path(h: Hyp): number[] {
  const ids = new Array<number>(h.len);
  for (let n: Hyp | null = h; n && n.len > 0; n = n.parent) ids[n.len - 1] = n.token;
  return ids;
}

/** beam = K: session row b*K + j holds the j-th best alive hypothesis of input row b. */
async function* beamSearch(session: DecodeSession, o: ResolvedOptions): AsyncGenerator<StepEvent, GenerateResult> {
  const B = session.batch;
  const V = session.vocab;
  const K = o.beam;
  const rows = B * K;
  const eos = o.eos ?? -1;
  const filler = o.eos ?? o.bos;
  const keepN = o.nBest ?? 1;
  const key = o.lengthNormalize ? (h: Hyp) => h.score / h.len : (h: Hyp) => h.score;
  const root: Hyp = { token: -1, parent: null, score: 0, len: 0, row: -1 };
  // The first step starts from one live hypothesis per input row; the other K−1 session rows are not expanded.
  let alive: Hyp[][] = Array.from({ length: B }, () => [root]);
  /** Per row, in finishing order (step, then rank). */
  const finished: Hyp[][] = Array.from({ length: B }, () => []);
  /** Per row, the summed log-probabilities of the finished hypotheses, best first (early stopping). */
  const finishedScores: number[][] = Array.from({ length: B }, () => []);
  const done = new Array<boolean>(B).fill(false);
  const results: (Hyp | undefined)[] = new Array(B).fill(undefined);
  const attnSteps: Float32Array[] | undefined = o.attention ? [] : undefined;
  // Top-M candidates of one input row: M = K + (alive count) ≥ what the ranking walk can visit.
  const topIdx = new Int32Array(2 * K);
  const topScore = new Float64Array(2 * K);
  let S = -1;

  /** Only called once row b is done, so finished[b] is not empty (done: rank 0 finished, or keepN ≥ 1 scores are in). */
  const bestFinished = (b: number): Hyp => {
    let best = finished[b]![0]!;
    for (const h of finished[b]!) if (key(h) > key(best)) best = h; // strict: earlier wins ties
    return best;
  };

  const pace = new Pace(o.signal);
  let out = await session.begin(K, o.bos, o.attention);
  for (let t = 0; ; t++) {
    checkAbort(o.signal);
    S = checkOut(out, rows, V, o.attention, S);
    const { logp } = out;
    if (attnSteps) attnSteps.push(out.attention!.slice(0, rows * S));
    const last = t + 1 >= o.maxLen;
    const tokens = new Array<number>(B);
    const evIds: number[][] = new Array(B);
    for (let b = 0; b < B; b++) {
      if (done[b]) {
        tokens[b] = -1;
        evIds[b] = path(results[b]!);
        continue;
      }
      // alive, finished, finishedScores have B rows; topIdx/topScore hold M ≤ 2K entries; j < n, v < V
      const A = alive[b]!;
      const n = A.length;
      // Rank candidates (parent j, token v), flat index c = j*V + v, by score desc, then c asc
      // (= lower parent rank, then lower id): keep the top M in topIdx/topScore.
      const M = Math.min(n * V, K + n);
      let cnt = 0;
      for (let j = 0; j < n; j++) {
        const base = A[j]!.score;
        const off = (b * K + j) * V;
        for (let v = 0; v < V; v++) {
          let s = base + lp(logp[off + v]!);
          if (s !== s) s = -Infinity;
          if (cnt === M && !(s > topScore[M - 1]!)) continue;
          let lo = 0;
          let hi = cnt;
          while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (topScore[mid]! >= s) lo = mid + 1;
            else hi = mid;
          }
          const end = cnt === M ? M - 1 : cnt;
          for (let q = end; q > lo; q--) {
            topScore[q] = topScore[q - 1]!;
            topIdx[q] = topIdx[q - 1]!;
          }
          topScore[lo] = s;
          topIdx[lo] = j * V + v;
          if (cnt < M) cnt++;
        }
      }
      // Walk the ranking: eos within the first K ranks finishes; others continue until K continue.
      // At maxLen the ones that would continue finish as they are.
      const next: Hyp[] = [];
      let continuing = 0;
      for (let r = 0; r < cnt && continuing < K; r++) {
        const c = topIdx[r]!;
        const j = Math.floor(c / V);
        const v = c - j * V;
        if (v === eos && r >= K) continue;
        const parent = A[j]!;
        const h: Hyp = { token: v, parent: parent.len > 0 ? parent : null, score: topScore[r]!, len: parent.len + 1, row: b * K + j };
        if (v !== eos) continuing++;
        if (v === eos || last) {
          finished[b]!.push(h);
          const fs = finishedScores[b]!;
          let q = fs.length;
          fs.push(h.score);
          while (q > 0 && fs[q - 1]! < h.score) {
            fs[q] = fs[q - 1]!;
            q--;
          }
          fs[q] = h.score;
        } else next.push(h);
      }
      alive[b] = next;
      const fs = finishedScores[b]!;
      // early stopping holds while scores only fall (no length normalisation, no positive length bonus)
      if (next.length === 0 || (!o.lengthNormalize && o.lengthBonus <= 0 && fs.length >= keepN && next[0]!.score <= fs[keepN - 1]!)) {
        done[b] = true;
        const best = bestFinished(b);
        results[b] = best;
        tokens[b] = best.len === t + 1 ? best.token : -1;
        evIds[b] = path(best);
      } else {
        tokens[b] = next[0]!.token; // next is not empty here
        evIds[b] = path(next[0]!);
      }
    }
    const allDone = done.every(Boolean);
    yield { step: t, tokens, ids: evIds, done: done.slice() };
    if (allDone) break;
    await pace.step();
    const feed = new Int32Array(rows);
    const parents = new Int32Array(rows);
    for (let b = 0; b < B; b++) {
      const A = alive[b]!;
      for (let j = 0; j < K; j++) {
        const r = b * K + j;
        if (!done[b] && j < A.length) {
          feed[r] = A[j]!.token;
          parents[r] = A[j]!.row;
        } else {
          feed[r] = filler;
          parents[r] = r;
        }
      }
    }
    out = await session.step(feed, parents, o.attention);
  }

  const result: GenerateResult = { ids: [], scores: [] };
  if (attnSteps) result.attention = [];
  if (o.nBest !== undefined) result.nBest = [];
  for (let b = 0; b < B; b++) {
    const best = results[b]!;
    result.ids.push(path(best));
    result.scores.push(best.score);
    if (attnSteps) {
      const data = new Float32Array(best.len * S);
      for (let n: Hyp | null = best; n && n.len > 0; n = n.parent) {
        const src = attnSteps[n.len - 1]!; // one entry per step, and n.len ≤ steps
        data.set(src.subarray(n.row * S, (n.row + 1) * S), (n.len - 1) * S);
      }
      result.attention!.push({ data, shape: [best.len, S] });
    }
    if (result.nBest) {
      // Stable sort: equal keys keep finishing order.
      const ranked = finished[b]!.slice().sort((x, y) => key(y) - key(x) || 0);
      result.nBest.push(ranked.slice(0, o.nBest).map((h) => ({ ids: path(h), score: h.score })));
    }
  }
  return result;
}

/** A model's output rows as log-probabilities, read as the spec's last layer says: probabilities (`softmax`), log-probabilities (`log_softmax`) or logits. */
export function logProbs(x: Float32Array, vocab: number, readout: 'prob' | 'logprob' | 'logits'): Float32Array {
  if (readout === 'logprob') return x;
  const out = new Float32Array(x.length);
  // x holds whole rows of vocab values: every o + v below is < x.length
  for (let r = 0; r < x.length / vocab; r++) {
    const o = r * vocab;
    if (readout === 'prob') {
      for (let v = 0; v < vocab; v++) out[o + v] = Math.log(x[o + v]!);
      continue;
    }
    let m = -Infinity;
    for (let v = 0; v < vocab; v++) m = Math.max(m, x[o + v]!);
    let s = 0;
    for (let v = 0; v < vocab; v++) s += Math.exp(x[o + v]! - m);
    const lse = m + Math.log(s);
    for (let v = 0; v < vocab; v++) out[o + v] = x[o + v]! - lse;
  }
  return out;
}
