/** "Did you mean …?" for unknown layers, attributes and enum values (the compiler) and unknown generate() options (the runtime). Pure TypeScript, no imports. */

/**
 * Damerau–Levenshtein distance (optimal string alignment): insertions, deletions, substitutions and
 * transpositions of adjacent characters each cost 1.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1]!;
}

/** How many edits still count as "close" for a word of this length. */
function budget(length: number): number {
  if (length <= 4) return 1;
  if (length <= 8) return 2;
  return 3;
}

/**
 * The candidate closest to `word`, or undefined when none is close. Case is ignored; a candidate that
 * is a prefix of the word or the other way round (`maximum` → `max`, `bidir` → `bidirectional`) counts
 * as close when both have at least 3 characters. Ties go to the earlier candidate.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  if (w.length === 0 || w.length > 64) return undefined;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const lc = c.toLowerCase();
    let score = editDistance(w, lc);
    if (score > budget(Math.max(w.length, lc.length))) {
      const prefix = w.length >= 3 && lc.length >= 3 && (lc.startsWith(w) || w.startsWith(lc));
      if (!prefix) continue;
      score = budget(Math.max(w.length, lc.length)) + 0.5;
    }
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best === word ? undefined : best;
}
