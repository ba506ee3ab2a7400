/**
 * From counts to probabilities (docs/ngram.md gives every formula). Each method fills, per node of
 * the trie, the model in back-off form — the form of an ARPA file:
 *
 *   p(w | h) = prob[hw]                      if hw has a probability
 *            = bow[h] · p(w | h')            otherwise (h' = h without its first token; bow 1 if h is absent)
 *
 * ending at the unigrams, which cover every token the model predicts. Interpolated methods (JM,
 * Witten–Bell, Kneser–Ney) are exactly this form with prob[hw] their interpolated estimate and
 * bow[h] their interpolation weight γ(h).
 */
import { Trie, children, suffixes, type Children } from './trie.ts';

/** The smoothing methods (the ngram statement's `smoothing`; docs/ngram.md). */
export const SMOOTHINGS = ['additive', 'interpolated', 'katz', 'kneser_ney', 'witten_bell', 'stupid_backoff'] as const;
export type Smoothing = (typeof SMOOTHINGS)[number];

export interface NgramOptions {
  readonly order: number;
  readonly smoothing: Smoothing;
  readonly alpha?: number;
  readonly lambdas?: readonly number[];
  readonly k?: number;
  readonly discount?: number;
  readonly unigram?: 'smoothed' | 'ml';
}

/** The fitted model in back-off form. */
export interface BackoffModel {
  readonly trie: Trie;
  readonly kids: Children;
  readonly suffix: Int32Array;
  /** p(w | h) of node hw, linear; NaN where the node holds no probability (a context only). */
  readonly prob: Float64Array;
  /** Back-off weight of context node h, linear (1 where none). */
  readonly bow: Float64Array;
  /** The weight of backing off from a context the model does not hold (1; stupid back-off: α). */
  readonly missingBow: number;
}

/** What fitting found worth reporting: discounts used, fallbacks taken. */
export interface FitNotes {
  /** Per order (1..n): the discounts (Kneser–Ney D1, D2, D3+; Katz d1..dk). */
  discounts: number[][];
  /** Interpolation weights used (interpolated), highest order first. */
  lambdas?: number[];
  warnings: string[];
}

/** Counts of counts n_r (r = 1..max) of the values of the nodes of one depth. */
function countsOfCounts(t: Trie, value: ArrayLike<number>, depth: number, max: number, include: (n: number) => boolean): number[] {
  const nr = new Array<number>(max + 1).fill(0);
  for (let n = 1; n < t.size; n++) {
    if (t.depth[n] !== depth || !include(n)) continue;
    const c = value[n]!;
    if (c >= 1 && c <= max) nr[c]!++;
  }
  return nr;
}

/**
 * Fills prob and bow from the counts. `events[w]` is 1 for the tokens the model predicts (every id
 * but bos and pad); every event token gets a unigram node here (count 0 if never seen).
 */
export function smooth(t: Trie, o: NgramOptions, events: Uint8Array, bos: number): { model: BackoffModel; notes: FitNotes } {
  const V = events.reduce((s, e) => s + e, 0);
  for (let w = 0; w < events.length; w++) if (events[w]) t.add(0, w);
  const kids = children(t);
  const suffix = suffixes(t);
  const prob = new Float64Array(t.size).fill(NaN);
  const bow = new Float64Array(t.size).fill(1);
  const notes: FitNotes = { discounts: [], warnings: [] };
  const n = o.order;
  const unigram = o.unigram ?? (o.smoothing === 'stupid_backoff' ? 'ml' : 'smoothed');
  const count = t.count;
  // whether each n-gram starts with <s> (parents come before their children in node order)
  const bosFirst = new Uint8Array(t.size);
  for (let x = 1; x < t.size; x++) bosFirst[x] = t.depth[x] === 1 ? (t.word[x] === bos ? 1 : 0) : bosFirst[t.parent[x]!]!;
  const startsWithBos = (node: number): boolean => bosFirst[node] === 1;
  /** Sum of a value over a node's children, and how many children have value 1, 2, ≥3. */
  const stats = (h: number, value: ArrayLike<number>) => {
    let sum = 0, n1 = 0, n2 = 0, n3 = 0, types = 0;
    for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
      const c = value[kids.list[i]!]!;
      if (c <= 0) continue;
      sum += c;
      types++;
      if (c === 1) n1++;
      else if (c === 2) n2++;
      else n3++;
    }
    return { sum, n1, n2, n3, types };
  };
  /** Context nodes of depth d (d = 0: the root), in node order. */
  const contexts = (d: number): number[] => {
    const out: number[] = [];
    for (let h = 0; h < t.size; h++) if (t.depth[h] === d && kids.start[h + 1]! > kids.start[h]!) out.push(h);
    return out;
  };
  /** The lower-order probability of node hw's token: p(w | h'), from the suffix node (uniform below unigrams). */
  const lower = (node: number): number => (t.depth[node] === 1 ? 1 / V : prob[suffix[node]!]!);
  const eventChild = (c: number) => t.depth[c] !== 1 || events[t.word[c]!] === 1;

  switch (o.smoothing) {
    case 'additive': {
      // p(w | h) = (c(hw) + α) / (c(h·) + α·V) with the whole history: full (n − 1)-token contexts and
      // those that start with <s>. Shorter ones back off straight to the uniform distribution.
      const alpha = o.alpha ?? 1;
      for (let d = 0; d < n; d++) {
        for (const h of contexts(d)) {
          const full = d === n - 1 || (d > 0 && startsWithBos(h));
          if (!full && !(d === 0 && n === 1)) continue;
          const { sum } = stats(h, count);
          const z = sum + alpha * V;
          for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
            const c = kids.list[i]!;
            if (eventChild(c)) prob[c] = (count[c]! + alpha) / z;
          }
          if (d > 0) bow[h] = (alpha * V) / z;
        }
      }
      if (n > 1) for (let i = kids.start[0]!; i < kids.start[1]!; i++) {
        const c = kids.list[i]!;
        if (events[t.word[c]!]) prob[c] = 1 / V;
      }
      break;
    }
    case 'interpolated': {
      const lambdas = o.lambdas;
      if (!lambdas) throw new Error('internal: interpolated smoothing without lambdas (fit tunes them first)');
      notes.lambdas = [...lambdas];
      // flat weights λ_n..λ_1 (, λ_0 uniform) → recursive λ'_m = λ_m / Σ_{j ≤ m} λ_j
      const flat = [...lambdas].reverse(); // flat[j] = weight of order j (j = 0: uniform when smoothed)
      const base = unigram === 'ml' ? 1 : 0;
      for (let m = 1; m <= n; m++) {
        const lam = flat[m - base]!;
        let below = 0;
        for (let j = base; j < m; j++) below += flat[j - base]!;
        const lr = lam + below > 0 ? lam / (lam + below) : 0;
        for (const h of contexts(m - 1)) {
          const { sum } = stats(h, count);
          if (sum === 0) continue;
          for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
            const c = kids.list[i]!;
            if (!eventChild(c)) continue;
            const ml = count[c]! / sum;
            prob[c] = m === 1 && unigram === 'ml' ? ml : lr * ml + (1 - lr) * lower(c);
          }
          if (m > 1) bow[h] = 1 - lr;
        }
      }
      break;
    }
    case 'witten_bell': {
      for (let m = 1; m <= n; m++) {
        for (const h of contexts(m - 1)) {
          const { sum, types } = stats(h, count);
          if (sum === 0) continue;
          const ml = m === 1 && unigram === 'ml';
          const gamma = ml ? 0 : types / (types + sum);
          for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
            const c = kids.list[i]!;
            if (!eventChild(c)) continue;
            prob[c] = (1 - gamma) * (count[c]! / sum) + gamma * lower(c);
          }
          if (m > 1) bow[h] = gamma;
        }
      }
      break;
    }
    case 'kneser_ney': {
      // adjusted counts: the highest order and n-grams that start with <s> keep their counts; the
      // others count their distinct left extensions N1+(• h w)
      const a = new Int32Array(t.size);
      for (let x = 1; x < t.size; x++) if (t.depth[x] === n || startsWithBos(x)) a[x] = count[x]!;
      for (let y = 1; y < t.size; y++) {
        if (t.depth[y]! < 2 || count[y]! <= 0) continue;
        const x = suffix[y]!;
        if (x > 0 && !startsWithBos(x) && t.depth[x]! < n) a[x]!++;
      }
      for (let m = 1; m <= n; m++) {
        const D = knDiscounts(t, a, m, o.discount, notes);
        for (const h of contexts(m - 1)) {
          const s = stats(h, a);
          if (s.sum === 0) continue;
          const ml = m === 1 && unigram === 'ml';
          const gamma = ml ? 0 : (D[0]! * s.n1 + D[1]! * s.n2 + D[2]! * s.n3) / s.sum;
          for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
            const c = kids.list[i]!;
            if (!eventChild(c)) continue;
            const ac = a[c]!;
            const disc = ml || ac === 0 ? 0 : D[Math.min(ac, 3) - 1]!;
            prob[c] = Math.max(ac - disc, 0) / s.sum + gamma * lower(c);
          }
          if (m > 1) bow[h] = gamma;
        }
      }
      break;
    }
    case 'katz': {
      for (let m = 1; m <= n; m++) {
        const ml = m === 1 && unigram === 'ml';
        const d = ml ? [] : katzDiscounts(t, count, m, o.k ?? 5, notes);
        const disc = (c: number) => (c <= d.length ? d[c - 1]! : 1);
        for (const h of contexts(m - 1)) {
          const { sum } = stats(h, count);
          if (sum === 0) continue;
          let kept = 0;
          let lowerSeen = 0;
          let unseen = 0;
          for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
            const c = kids.list[i]!;
            if (!eventChild(c)) continue;
            const k = count[c]!;
            if (k > 0) {
              prob[c] = (disc(k) * k) / sum;
              kept += prob[c]!;
              lowerSeen += lower(c);
            } else unseen++;
          }
          const left = Math.max(0, 1 - kept); // (rounding can leave kept a hair above 1)
          if (m === 1) {
            // the unigrams' freed mass goes to the tokens never seen, or (all seen) to all tokens evenly
            for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
              const c = kids.list[i]!;
              if (!eventChild(c)) continue;
              if (unseen > 0) {
                if (count[c] === 0) prob[c] = left / unseen;
              } else prob[c] = prob[c]! + left / V;
            }
          } else if (1 - lowerSeen > 1e-12) bow[h] = left / (1 - lowerSeen);
          else {
            // every token was seen after h: nothing to back off to, so the kept estimates are renormalised
            for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
              const c = kids.list[i]!;
              if (count[c]! > 0 && eventChild(c)) prob[c] = prob[c]! / kept;
            }
            bow[h] = 0;
          }
        }
      }
      break;
    }
    case 'stupid_backoff': {
      const alpha = o.alpha ?? 0.4;
      bow.fill(alpha); // every context backs off with α, continuations seen or not
      for (let m = 1; m <= n; m++) {
        for (const h of contexts(m - 1)) {
          const { sum } = stats(h, count);
          if (sum === 0) continue;
          for (let i = kids.start[h]!; i < kids.start[h + 1]!; i++) {
            const c = kids.list[i]!;
            if (eventChild(c) && (count[c]! > 0 || m === 1)) prob[c] = count[c]! / sum;
          }
          if (m > 1) bow[h] = alpha;
        }
      }
      return { model: { trie: t, kids, suffix, prob, bow, missingBow: alpha }, notes };
    }
  }
  return { model: { trie: t, kids, suffix, prob, bow, missingBow: 1 }, notes };
}

/** Modified Kneser–Ney discounts D1, D2, D3+ of one order (Chen & Goodman), or the fixed one. */
function knDiscounts(t: Trie, a: Int32Array, m: number, fixed: number | undefined, notes: FitNotes): number[] {
  if (fixed !== undefined) {
    notes.discounts[m - 1] = [fixed, fixed, fixed];
    return [fixed, fixed, fixed];
  }
  const nr = countsOfCounts(t, a, m, 4, () => true);
  const [n1, n2, n3, n4] = [nr[1]!, nr[2]!, nr[3]!, nr[4]!];
  const Y = n1 / (n1 + 2 * n2);
  const D = [1 - 2 * Y * (n2 / n1), 2 - 3 * Y * (n3 / n2), 3 - 4 * Y * (n4 / n3)];
  const ok = D.every((d, i) => Number.isFinite(d) && d > 0 && d <= i + 1);
  const used = ok ? D : [0.5, 1, 1.5];
  if (!ok) notes.warnings.push(`order ${m}: the counts of counts (n1..n4 = ${n1}, ${n2}, ${n3}, ${n4}) give no valid Kneser–Ney discounts; used 0.5, 1, 1.5 (as KenLM's --discount_fallback)`);
  notes.discounts[m - 1] = used;
  return used;
}

/**
 * Katz's Good–Turing discounts d_r (r = 1..k) of one order:
 *   d_r = (r* / r − (k+1)·n_{k+1}/n_1) / (1 − (k+1)·n_{k+1}/n_1),  r* = (r+1)·n_{r+1}/n_r.
 * k is lowered until every d_r is in (0, 1]; with no such k ≥ 1, counts are discounted by 0.5.
 */
function katzDiscounts(t: Trie, count: Int32Array, m: number, k: number, notes: FitNotes): number[] {
  const nr = countsOfCounts(t, count, m, k + 1, () => true);
  for (let kk = k; kk >= 1; kk--) {
    const common = ((kk + 1) * nr[kk + 1]!) / nr[1]!;
    const d: number[] = [];
    for (let r = 1; r <= kk; r++) d.push((((r + 1) * nr[r + 1]!) / nr[r]! / r - common) / (1 - common));
    if (d.every((x) => Number.isFinite(x) && x > 0 && x <= 1)) {
      if (kk < k) notes.warnings.push(`order ${m}: Good–Turing discounts are valid only up to k = ${kk} (counts of counts ${nr.slice(1).join(', ')})`);
      notes.discounts[m - 1] = d;
      return d;
    }
  }
  const d = Array.from({ length: k }, (_, i) => (i + 1 - 0.5) / (i + 1));
  notes.warnings.push(`order ${m}: no valid Good–Turing discounts (counts of counts ${nr.slice(1).join(', ')}); counts up to ${k} are discounted by 0.5`);
  notes.discounts[m - 1] = d;
  return d;
}
