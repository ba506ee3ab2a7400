/**
 * The brackets task for the web example's Train tab (train.worker.ts), generated in the page: is a
 * string over ( ) [ ] of length 2..16 balanced and properly nested? The same distribution as
 * examples/train/train_classifier.py (half balanced strings; the other half mostly near misses —
 * a swapped, retyped, dropped or added bracket, crossing pairs — and some random strings), drawn
 * from a seeded generator so a run is repeatable. Token ids as examples/brackets.nn's weights
 * expect: 0 = padding, 1 = '(', 2 = ')', 3 = '[', 4 = ']'.
 *
 * The generator is nnc/train's Random (the one `nnc train` shuffles with).
 */
import type { Random } from '../../src/train/index.ts';

export const TOKENS: Readonly<Record<string, number>> = { '(': 1, ')': 2, '[': 3, ']': 4 };
const CHARS = '()[]';
const PAIR: Readonly<Record<string, string>> = { ')': '(', ']': '[' };
const MIN_LEN = 2;
const MAX_LEN = 16;

const int = (r: Random, lo: number, hi: number) => lo + r.below(hi - lo + 1); // lo..hi inclusive
const pick = <T>(r: Random, xs: readonly T[] | string): T => xs[r.below(xs.length)] as T;
const evenLength = (r: Random) => 2 * int(r, MIN_LEN / 2, MAX_LEN / 2);

export function balanced(s: string): boolean {
  const stack: string[] = [];
  for (const c of s) {
    if (c === '(' || c === '[') stack.push(c);
    else if (stack.pop() !== PAIR[c]) return false;
  }
  return stack.length === 0;
}

/** A random properly nested string of even length n. */
function randomBalanced(r: Random, n: number): string {
  const out: string[] = [];
  const stack: string[] = [];
  for (let i = 0; i < n; i++) {
    if (stack.length === 0 || (n - i > stack.length && r.next() < 0.5)) {
      const c = pick<string>(r, '([');
      out.push(c);
      stack.push(c);
    } else out.push(stack.pop() === '(' ? ')' : ']');
  }
  return out.join('');
}

const FLIP: Readonly<Record<string, string>> = { '(': '[', '[': '(', ')': ']', ']': ')' };

/** A balanced string with one small corruption. */
function nearMiss(r: Random): string {
  const n = evenLength(r);
  let s = [...randomBalanced(r, n)];
  const swap = (i: number, j: number) => ([s[i], s[j]] = [s[j]!, s[i]!]);
  switch (int(r, 0, 5)) {
    case 0: { const i = int(r, 0, n - 1); s[i] = FLIP[s[i]!]!; break; } // "([)]"-style mismatch
    case 1: { const i = int(r, 0, n - 2); swap(i, i + 1); break; }
    case 2: swap(int(r, 0, n - 1), int(r, 0, n - 1)); break;
    case 3: for (let i = n - 1; i > 0; i--) swap(i, int(r, 0, i)); break; // same counts, usually wrong order
    case 4: { const i = int(r, 0, n); s = [...s.slice(0, i), ...pick<string>(r, ['([)]', '[(])']), ...s.slice(i)].slice(0, MAX_LEN); break; }
    default:
      if (r.next() < 0.5) s.splice(int(r, 0, n - 1), 1);
      else s.splice(int(r, 0, n), 0, pick<string>(r, CHARS));
  }
  return s.join('');
}

/** One example: balanced or not, about half each. */
export function sample(r: Random): string {
  if (r.next() < 0.5) return randomBalanced(r, evenLength(r));
  for (;;) {
    const s = r.next() < 0.8 ? nearMiss(r) : Array.from({ length: int(r, MIN_LEN, MAX_LEN) }, () => pick<string>(r, CHARS)).join('');
    if (s.length >= MIN_LEN && s.length <= MAX_LEN && !balanced(s)) return s;
  }
}

/** Strings as the model's padded [B, T] input, with their labels (1 = balanced) as class ids. */
export function encode(strings: readonly string[]) {
  const T = Math.max(...strings.map((s) => s.length));
  const data = new Int32Array(strings.length * T);
  strings.forEach((s, b) => [...s].forEach((c, t) => (data[b * T + t] = TOKENS[c]!)));
  const labels = Int32Array.from(strings, (s) => (balanced(s) ? 1 : 0));
  return { inputs: { text: { data, shape: [strings.length, T], lengths: strings.map((s) => s.length) } }, labels };
}
