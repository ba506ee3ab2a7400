/**
 * The brackets task for the web example's Train tab (train.worker.ts), generated in the page: is a
 * string over ( ) [ ] of length 2..16 balanced and properly nested? The same distribution as
 * examples/train/train_classifier.py (half balanced strings; the other half mostly near misses —
 * a swapped, retyped, dropped or added bracket, crossing pairs — and some random strings), drawn
 * from a seeded generator so a run is repeatable. Token ids as examples/brackets.nn's weights
 * expect: 0 = padding, 1 = '(', 2 = ')', 3 = '[', 4 = ']'.
 *
 * Also the weights' starting point: nnc loads weights, it does not invent them, so a model trained
 * from scratch starts from PyTorch's default initialisation of the same layers (seeded).
 */

export const TOKENS: Readonly<Record<string, number>> = { '(': 1, ')': 2, '[': 3, ']': 4 };
const CHARS = '()[]';
const PAIR: Readonly<Record<string, string>> = { ')': '(', ']': '[' };
const MIN_LEN = 2;
const MAX_LEN = 16;

/** A seeded generator of floats in [0, 1) (mulberry32): the same seed, the same strings. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1)); // lo..hi inclusive
const pick = <T>(r: () => number, xs: readonly T[] | string): T => xs[Math.floor(r() * xs.length)] as T;
const evenLength = (r: () => number) => 2 * int(r, MIN_LEN / 2, MAX_LEN / 2);

export function balanced(s: string): boolean {
  const stack: string[] = [];
  for (const c of s) {
    if (c === '(' || c === '[') stack.push(c);
    else if (stack.pop() !== PAIR[c]) return false;
  }
  return stack.length === 0;
}

/** A random properly nested string of even length n. */
function randomBalanced(r: () => number, n: number): string {
  const out: string[] = [];
  const stack: string[] = [];
  for (let i = 0; i < n; i++) {
    if (stack.length === 0 || (n - i > stack.length && r() < 0.5)) {
      const c = pick<string>(r, '([');
      out.push(c);
      stack.push(c);
    } else out.push(stack.pop() === '(' ? ')' : ']');
  }
  return out.join('');
}

const FLIP: Readonly<Record<string, string>> = { '(': '[', '[': '(', ')': ']', ']': ')' };

/** A balanced string with one small corruption. */
function nearMiss(r: () => number): string {
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
      if (r() < 0.5) s.splice(int(r, 0, n - 1), 1);
      else s.splice(int(r, 0, n), 0, pick<string>(r, CHARS));
  }
  return s.join('');
}

/** One example: balanced or not, about half each. */
export function sample(r: () => number): string {
  if (r() < 0.5) return randomBalanced(r, evenLength(r));
  for (;;) {
    const s = r() < 0.8 ? nearMiss(r) : Array.from({ length: int(r, MIN_LEN, MAX_LEN) }, () => pick<string>(r, CHARS)).join('');
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

interface WeightInfo {
  readonly name: string;
  readonly shape: readonly number[];
  readonly layer: string;
}

/**
 * PyTorch's default initialisation of the manifest's layers: nn.Embedding N(0, 1); nn.GRU and
 * nn.LSTM U(±1/√hidden) for every weight and bias; nn.Linear U(±1/√fan_in) (its kaiming-uniform
 * weight and its bias have that same bound).
 */
export function initialWeights(weights: readonly WeightInfo[], seed: number): Record<string, Float32Array> {
  const r = rng(seed);
  const gates: Record<string, number> = { gru: 3, lstm: 4, rnn: 1 };
  const out: Record<string, Float32Array> = {};
  for (const w of weights) {
    const size = w.shape.reduce((a, d) => a * d, 1);
    const v = new Float32Array(size);
    if (w.layer === 'embedding') {
      for (let i = 0; i < size; i++) v[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()); // Box–Muller
    } else {
      const fan = w.layer in gates ? w.shape[0]! / gates[w.layer]! : (weights.find((x) => x.name === w.name.replace(/bias$/, 'weight'))?.shape[1] ?? w.shape[1]!);
      if (!(fan > 0)) throw new Error(`no PyTorch initialisation known for ${w.name} (${w.layer}, [${w.shape.join(', ')}])`);
      const k = 1 / Math.sqrt(fan);
      for (let i = 0; i < size; i++) v[i] = (2 * r() - 1) * k;
    }
    out[w.name] = v;
  }
  return out;
}
