/**
 * An n-gram language model over token ids (docs/ngram.md): fitting by counting, queries, whole
 * next-token distributions, perplexity, and ARPA files (read and written as KenLM and SRILM do).
 * Browser-safe; no Node imports.
 */
import { NncError } from '../errors.ts';
import { smooth, type BackoffModel, type FitNotes, type NgramOptions } from './smooth.ts';
import { Trie, children, countSentence, suffixes } from './trie.ts';

/** The token ids the model knows about: vocabulary size, sentence boundaries, ids never predicted. */
export interface NgramVocab {
  readonly size: number;
  readonly bos: number;
  readonly eos: number;
  readonly pad?: number | undefined;
  readonly unk?: number | undefined;
  /** A token's string (ARPA files); ids without one are written as their number. */
  token(id: number): string;
  /** A token string's id (ARPA files). */
  id(token: string): number | undefined;
}

export interface FitOptions {
  /** Held-out sentences to tune interpolated weights on (default: the last 10 % of the training sentences). */
  readonly heldout?: readonly ArrayLike<number>[];
}

export interface Perplexity {
  /** exp(−Σ ln p / tokens). Infinity when some token has probability 0. */
  readonly perplexity: number;
  /** Σ log10 p over every predicted token (the </s> of each sentence included), as SRILM's and KenLM's logprob. */
  readonly logprob: number;
  /** Tokens predicted: words + one </s> per sentence. */
  readonly tokens: number;
  readonly sentences: number;
  /** Tokens that are the vocabulary's unk (out-of-vocabulary words mapped to it). */
  readonly oov: number;
  /** Tokens with probability 0 (their log-probability is −∞). */
  readonly zeros: number;
}

/** What fitting reports: tokens counted, n-grams per order, discounts, time and memory. */
export interface FitReport extends FitNotes {
  readonly sentences: number;
  readonly tokens: number;
  /** Distinct n-grams per order (1..n). */
  readonly ngrams: number[];
  readonly seconds: number;
  /** Bytes held by the model's arrays. */
  readonly bytes: number;
}

const LN10 = Math.LN10;

export class NgramLM {
  readonly order: number;
  readonly vocab: NgramVocab;
  /** 1 for every token the model predicts (all but bos and pad). */
  readonly events: Uint8Array;
  readonly m: BackoffModel;

  constructor(order: number, vocab: NgramVocab, m: BackoffModel) {
    this.order = order;
    this.vocab = vocab;
    this.m = m;
    this.events = eventsOf(vocab);
  }

  /** Fits a model by counting `sentences` (token ids without bos and eos). */
  static fit(sentences: readonly ArrayLike<number>[], o: NgramOptions, vocab: NgramVocab, fo: FitOptions = {}): { lm: NgramLM; report: FitReport } {
    const t0 = Date.now();
    sentences.forEach((s, i) => checkSentence(s, i, vocab, 'sentence'));
    fo.heldout?.forEach((s, i) => checkSentence(s, i, vocab, 'held-out sentence'));
    if (sentences.length === 0) throw new NncError('fit: no sentences to count');
    let opts = o;
    if (o.smoothing === 'interpolated' && o.lambdas === undefined) {
      const split = fo.heldout ? sentences.length : Math.max(1, Math.min(sentences.length - 1, Math.round(sentences.length * 0.9)));
      const train = sentences.slice(0, split);
      const held = fo.heldout ?? sentences.slice(split);
      if (held.length === 0) throw new NncError('fit: interpolated weights are tuned on held-out data, but there is only one sentence: give lambdas, or more sentences');
      opts = { ...o, lambdas: tuneLambdas(count(train, o.order, vocab), held, o, vocab) };
    }
    const trie = count(sentences, o.order, vocab);
    const events = eventsOf(vocab);
    const { model, notes } = smooth(trie, opts, events, vocab.bos);
    const lm = new NgramLM(o.order, vocab, model);
    let tokens = 0;
    for (const s of sentences) tokens += s.length + 1;
    const ngrams = new Array<number>(o.order).fill(0);
    for (let x = 1; x < trie.size; x++) if (trie.count[x]! > 0) ngrams[trie.depth[x]! - 1]!++;
    return { lm, report: { ...notes, sentences: sentences.length, tokens, ngrams, seconds: (Date.now() - t0) / 1000, bytes: lm.bytes() } };
  }

  /** Bytes held by the model's arrays. */
  bytes(): number {
    const m = this.m;
    return m.trie.bytes() + m.kids.start.byteLength + m.kids.list.byteLength + m.suffix.byteLength + m.prob.byteLength + m.bow.byteLength;
  }

  /** p(w | the last n − 1 tokens of ctx[0 .. to)) — a score, not a probability, for stupid back-off. */
  prob(w: number, ctx: ArrayLike<number>, to = ctx.length): number {
    const { trie, prob, bow, missingBow } = this.m;
    const len = Math.min(this.order - 1, to);
    let scale = 1;
    for (let j = len; j >= 1; j--) {
      const h = trie.find(ctx, to - j, to);
      if (h < 0) {
        scale *= missingBow;
        continue;
      }
      const c = trie.child(h, w);
      if (c >= 0 && prob[c] === prob[c]) return scale * prob[c]!;
      scale *= bow[h]!;
    }
    const c = trie.child(0, w);
    return c >= 0 && prob[c] === prob[c] ? scale * prob[c]! : 0;
  }

  /** The whole next-token distribution after ctx[0 .. to), into out (length vocab.size). */
  distribution(ctx: ArrayLike<number>, to: number, out: Float64Array): void {
    const { trie, kids, prob, bow, missingBow } = this.m;
    out.fill(0);
    const set = (h: number) => {
      for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
        const c = kids.list[i]!;
        const p = prob[c]!;
        if (p === p) out[trie.word[c]!] = p;
      }
    };
    set(0);
    const len = Math.min(this.order - 1, to);
    for (let j = 1; j <= len; j++) {
      const h = trie.find(ctx, to - j, to);
      const b = h < 0 ? missingBow : bow[h]!;
      if (b !== 1) for (let w = 0; w < out.length; w++) out[w]! *= b;
      if (h >= 0) set(h);
    }
  }

  /** Perplexity of sentences (token ids without bos and eos): each is scored after <s>, with its </s>. */
  perplexity(sentences: readonly ArrayLike<number>[]): Perplexity {
    const { bos, eos, unk } = this.vocab;
    let ln = 0, tokens = 0, oov = 0, zeros = 0;
    sentences.forEach((s, i) => {
      checkSentence(s, i, this.vocab, 'sentence');
      const padded = [bos, ...Array.from(s), eos];
      for (let t = 1; t < padded.length; t++) {
        const w = padded[t]!;
        if (w === unk) oov++;
        const p = this.prob(w, padded, t);
        if (p > 0) ln += Math.log(p);
        else zeros++;
        tokens++;
      }
    });
    return { perplexity: zeros > 0 ? Infinity : Math.exp(-ln / tokens), logprob: zeros > 0 ? -Infinity : ln / LN10, tokens, sentences: sentences.length, oov, zeros };
  }

  // ───────────── ARPA ─────────────

  /** The model as an ARPA file (log10 probabilities and back-off weights), as KenLM and SRILM write it. */
  toArpa(): string {
    const { trie, kids, prob, bow } = this.m;
    if (this.m.missingBow !== 1) throw new NncError('stupid back-off gives scores, not probabilities: an ARPA file holds a normalised model, so it cannot be written');
    const n = this.order;
    // listed: every node with a probability and every prefix of one (a context must be listed to carry its back-off)
    const listed = new Uint8Array(trie.size);
    for (let x = trie.size - 1; x >= 1; x--) {
      if (prob[x] === prob[x] || listed[x]) {
        listed[x] = 1;
        const p = trie.parent[x]!;
        if (p > 0) listed[p] = 1;
      }
    }
    const isContext = new Uint8Array(trie.size);
    for (let x = 1; x < trie.size; x++) if (listed[x]) isContext[trie.parent[x]!] = 1;
    const name = (id: number) => this.arpaName(id);
    const byOrder: string[][] = Array.from({ length: n }, () => []);
    // children lists are in node order; write each order sorted by its words for stable files
    const fmt = (x: number) => (x === -Infinity ? '-99' : String(Number(x.toPrecision(7))));
    const visit = (node: number) => {
      for (let i = kids.start[node]!; i < kids.start[node + 1]!; i++) {
        const c = kids.list[i]!;
        if (!listed[c]) continue;
        const d = trie.depth[c]!;
        const words = trie.tokens(c);
        const w = words[words.length - 1]!;
        let p: number;
        if (d === 1 && w === this.vocab.bos) p = -99;
        else {
          const lin = prob[c] === prob[c] ? prob[c]! : this.prob(w, words, words.length - 1);
          p = lin > 0 ? Math.log10(lin) : -Infinity;
        }
        const b = d < n && isContext[c] ? `\t${fmt(Math.log10(bow[c]!))}` : '';
        byOrder[d - 1]!.push(`${fmt(p)}\t${words.map(name).join(' ')}${b}`);
        visit(c);
      }
    };
    visit(0);
    for (const lines of byOrder) lines.sort((a, b) => (a.split('\t')[1]! < b.split('\t')[1]! ? -1 : 1));
    const out = ['', '\\data\\', ...byOrder.map((l, i) => `ngram ${i + 1}=${l.length}`), ''];
    byOrder.forEach((l, i) => out.push(`\\${i + 1}-grams:`, ...l, ''));
    out.push('\\end\\', '');
    return out.join('\n');
  }

  /** ARPA's names for the sentence markers and the unknown word; the vocabulary's strings otherwise. */
  private arpaName(id: number): string {
    const v = this.vocab;
    if (id === v.bos) return '<s>';
    if (id === v.eos) return '</s>';
    if (id === v.unk) return '<unk>';
    const t = v.token(id);
    if (t === '' || /[\s]/.test(t)) return `<0x${id.toString(16)}>`;
    return t;
  }

  /**
   * Reads an ARPA file (KenLM, SRILM, nnc). Its words map to the vocabulary's ids (`<s>`, `</s>`,
   * `<unk>` to bos, eos and unk whatever the vocabulary calls them); a word the vocabulary lacks is
   * an error, a vocabulary token the file lacks gets probability 0.
   */
  static fromArpa(text: string, vocab: NgramVocab, what = 'ARPA file'): NgramLM {
    const lines = text.split(/\r?\n/);
    let i = 0;
    const fail = (msg: string): never => {
      throw new NncError(`${what}, line ${i + 1}: ${msg}`);
    };
    const blank = (s: string) => /^\s*$/.test(s);
    while (i < lines.length && (blank(lines[i]!) || lines[i]!.startsWith('#'))) i++;
    if (lines[i]?.trim() !== '\\data\\') fail(`expected \\data\\ (the start of an ARPA file), found ${JSON.stringify((lines[i] ?? '').slice(0, 40))}`);
    i++;
    const counts: number[] = [];
    for (; i < lines.length && !blank(lines[i]!); i++) {
      const m = /^ngram\s+(\d+)\s*=\s*(\d+)\s*$/.exec(lines[i]!);
      if (!m) fail(`expected 'ngram N=COUNT', found ${JSON.stringify(lines[i])}`);
      if (Number(m![1]) !== counts.length + 1) fail(`n-gram orders must be listed 1, 2, …; found order ${m![1]}`);
      counts.push(Number(m![2]));
    }
    if (counts.length === 0) fail('no n-gram counts after \\data\\');
    const n = counts.length;
    const trie = new Trie(counts.reduce((s, c) => s + c, 0) + 16);
    const probs: number[] = [0];
    const bows: number[] = [1];
    const set = (node: number, p: number, b: number) => {
      while (probs.length < trie.size) {
        probs.push(NaN);
        bows.push(1);
      }
      probs[node] = p;
      bows[node] = b;
    };
    const unknown = new Set<string>();
    const idOf = (w: string): number | undefined => {
      if (w === '<s>') return vocab.bos;
      if (w === '</s>') return vocab.eos;
      if ((w === '<unk>' || w === '<UNK>') && vocab.unk !== undefined) return vocab.unk;
      const hex = /^<0x([0-9a-f]+)>$/.exec(w);
      return hex ? parseInt(hex[1]!, 16) : vocab.id(w);
    };
    for (let order = 1; order <= n; order++) {
      while (i < lines.length && blank(lines[i]!)) i++;
      if (lines[i]?.trim() !== `\\${order}-grams:`) fail(`expected \\${order}-grams:, found ${JSON.stringify((lines[i] ?? '').slice(0, 40))}`);
      i++;
      let seen = 0;
      for (; i < lines.length && !blank(lines[i]!) && !lines[i]!.startsWith('\\'); i++) {
        const f = lines[i]!.trim().split(/[ \t]+/);
        if (f.length !== order + 1 && f.length !== order + 2) fail(`a ${order}-gram line holds a log10 probability, ${order} word${order > 1 ? 's' : ''} and an optional back-off; found ${f.length} fields`);
        const lp = f[0] === '-inf' ? -Infinity : Number(f[0]);
        const lb = f.length === order + 2 ? Number(f[order + 1]) : 0;
        if (Number.isNaN(lp)) fail(`bad log10 probability ${JSON.stringify(f[0])}`);
        if (!Number.isFinite(lb)) fail(`bad back-off ${JSON.stringify(f[order + 1])}`);
        let node = 0;
        for (let k = 1; k <= order; k++) {
          const id = idOf(f[k]!);
          if (id === undefined || id < 0 || id >= vocab.size) {
            unknown.add(f[k]!);
            node = -1;
            break;
          }
          node = trie.add(node, id);
        }
        seen++;
        if (node < 0) continue;
        const word = trie.word[node]!;
        // -99 is ARPA's log10 of 0 (SRILM writes it for impossible tokens)
        const p = order === 1 && word === vocab.bos ? NaN : lp <= -99 ? 0 : Math.pow(10, Math.min(0, lp));
        set(node, p, lb <= -99 ? 0 : Math.pow(10, lb));
      }
      if (seen !== counts[order - 1]) fail(`\\data\\ announces ${counts[order - 1]} ${order}-grams, but ${seen} are listed`);
    }
    while (i < lines.length && blank(lines[i]!)) i++;
    if (lines[i]?.trim() !== '\\end\\') fail(`expected \\end\\, found ${JSON.stringify((lines[i] ?? '').slice(0, 40))}`);
    if (unknown.size > 0) {
      const list = [...unknown].slice(0, 5).map((w) => JSON.stringify(w)).join(', ');
      throw new NncError(`${what} has ${unknown.size} word${unknown.size > 1 ? 's' : ''} that the model's vocabulary (${vocab.size} tokens) lacks: ${list}${unknown.size > 5 ? ', …' : ''}; load it into a model whose vocabulary holds them`);
    }
    set(0, NaN, 1);
    const prob = Float64Array.from({ length: trie.size }, (_, x) => (x < probs.length ? probs[x]! : NaN));
    const bow = Float64Array.from({ length: trie.size }, (_, x) => (x < bows.length ? bows[x]! : 1));
    return new NgramLM(n, vocab, { trie, kids: children(trie), suffix: suffixes(trie), prob, bow, missingBow: 1 });
  }
}

function eventsOf(v: NgramVocab): Uint8Array {
  const e = new Uint8Array(v.size).fill(1);
  e[v.bos] = 0;
  if (v.pad !== undefined) e[v.pad] = 0;
  return e;
}

function checkSentence(s: ArrayLike<number>, i: number, v: NgramVocab, what: string): void {
  for (let k = 0; k < s.length; k++) {
    const w = s[k]!;
    if (!Number.isInteger(w) || w < 0 || w >= v.size) throw new NncError(`${what} ${i + 1}: token ${k} is ${w}, not an id in [0, ${v.size})`);
    if (w === v.bos || w === v.eos || w === v.pad) {
      const role = w === v.bos ? 'bos' : w === v.eos ? 'eos' : 'pad';
      throw new NncError(`${what} ${i + 1}: token ${k} is the ${role} id ${w}; sentences are given without <s> and </s> (the model adds them) and without padding`);
    }
  }
}

function count(sentences: readonly ArrayLike<number>[], n: number, v: NgramVocab): Trie {
  let total = 0;
  for (const s of sentences) total += s.length + 2;
  const trie = new Trie(Math.min(1 << 20, total * n));
  const ctx = new Int32Array(n + 1);
  let padded = new Int32Array(64);
  for (const s of sentences) {
    if (padded.length < s.length + 2) padded = new Int32Array(2 * (s.length + 2));
    padded[0] = v.bos;
    for (let k = 0; k < s.length; k++) padded[k + 1] = s[k]!;
    padded[s.length + 1] = v.eos;
    countSentence(trie, padded.subarray(0, s.length + 2), n, ctx);
  }
  return trie;
}

/**
 * Jelinek–Mercer weights that maximise the held-out likelihood: per held-out token, the maximum-
 * likelihood estimate of each order whose context was seen (and the uniform distribution), mixed
 * with the weights renormalised over those orders. Fixed-point iteration
 * λ_m ← λ_m · Σ_t q_tm / S_t ÷ Σ_t 1 / Λ_t (sums over the tokens where order m takes part), which
 * is EM when every order takes part, kept only while the likelihood grows.
 */
function tuneLambdas(trie: Trie, held: readonly ArrayLike<number>[], o: NgramOptions, v: NgramVocab): number[] {
  const n = o.order;
  const smoothed = (o.unigram ?? 'smoothed') === 'smoothed';
  const K = smoothed ? n + 1 : n; // components: index 0 = order n, …, n−1 = order 1, n = uniform
  const V = eventsOf(v).reduce((s, e) => s + e, 0);
  const total = new Float64Array(trie.size);
  for (let x = 1; x < trie.size; x++) total[trie.parent[x]!]! += trie.count[x]!;
  const q: number[][] = [];
  for (const s of held) {
    const padded = [v.bos, ...Array.from(s), v.eos];
    for (let t = 1; t < padded.length; t++) {
      const w = padded[t]!;
      const row = new Array<number>(K).fill(NaN);
      for (let m = 1; m <= n; m++) {
        if (m - 1 > t) break;
        const h = trie.find(padded, t - (m - 1), t);
        if (h < 0 || total[h] === 0) continue;
        const c = trie.child(h, w);
        row[n - m] = c < 0 ? 0 : trie.count[c]! / total[h]!;
      }
      if (smoothed) row[n] = 1 / V;
      if (row.some((x) => x > 0)) q.push(row);
    }
  }
  let lam = new Array<number>(K).fill(1 / K);
  const like = (l: number[]) => {
    let L = 0;
    for (const row of q) {
      let S = 0, Z = 0;
      row.forEach((x, m) => {
        if (x === x) {
          S += l[m]! * x;
          Z += l[m]!;
        }
      });
      L += Math.log(S / Z);
    }
    return L;
  };
  let L = like(lam);
  for (let it = 0; it < 1000; it++) {
    const num = new Array<number>(K).fill(0);
    const den = new Array<number>(K).fill(0);
    for (const row of q) {
      let S = 0, Z = 0;
      row.forEach((x, m) => {
        if (x === x) {
          S += lam[m]! * x;
          Z += lam[m]!;
        }
      });
      row.forEach((x, m) => {
        if (x === x) {
          num[m]! += x / S;
          den[m]! += 1 / Z;
        }
      });
    }
    const next = lam.map((l, m) => (den[m]! > 0 ? (l * num[m]!) / den[m]! : l));
    const z = next.reduce((s, x) => s + x, 0);
    const norm = next.map((x) => x / z);
    const L2 = like(norm);
    if (!(L2 >= L)) break;
    const change = Math.max(...norm.map((x, m) => Math.abs(x - lam[m]!)));
    lam = norm;
    L = L2;
    if (change < 1e-10) break;
  }
  return lam;
}
