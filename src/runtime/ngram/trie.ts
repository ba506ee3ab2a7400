/**
 * The n-gram store: a prefix trie over token ids, one node per n-gram (the root is the empty
 * n-gram), children found through one open-addressing hash table keyed by (parent, token). Node
 * data lives in flat typed arrays that grow by doubling, so counting a million tokens allocates a
 * few dozen arrays, not millions of objects.
 */

const EMPTY = -1;

function hash(parent: number, word: number): number {
  let h = Math.imul(parent ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(word + 0x27d4eb2f, 0x85ebca77);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}

export class Trie {
  /** Number of nodes; node 0 is the root. */
  size = 1;
  parent: Int32Array;
  word: Int32Array;
  depth: Uint8Array;
  /** How often the n-gram ended at a predicted position (counting), 0 for contexts only. */
  count: Int32Array;
  private slots: Int32Array;
  private mask: number;

  constructor(capacity = 1024) {
    const cap = Math.max(16, capacity);
    this.parent = new Int32Array(cap);
    this.word = new Int32Array(cap);
    this.depth = new Uint8Array(cap);
    this.count = new Int32Array(cap);
    this.parent[0] = EMPTY;
    this.word[0] = EMPTY;
    let slots = 16;
    while (slots < cap * 2) slots *= 2;
    this.slots = new Int32Array(slots).fill(EMPTY);
    this.mask = slots - 1;
  }

  /** The child of `node` for `word`, or -1. */
  child(node: number, word: number): number {
    const { slots, mask, parent, word: words } = this;
    for (let i = hash(node, word) & mask; ; i = (i + 1) & mask) {
      const n = slots[i]!;
      if (n === EMPTY) return EMPTY;
      if (parent[n] === node && words[n] === word) return n;
    }
  }

  /** The child of `node` for `word`, created if absent. */
  add(node: number, word: number): number {
    const { slots, mask, parent, word: words } = this;
    let i = hash(node, word) & mask;
    for (; ; i = (i + 1) & mask) {
      const n = slots[i]!;
      if (n === EMPTY) break;
      if (parent[n] === node && words[n] === word) return n;
    }
    if (this.size === this.parent.length) this.grow();
    const n = this.size++;
    this.parent[n] = node;
    this.word[n] = word;
    this.depth[n] = this.depth[node]! + 1;
    this.slots[i] = n;
    if (this.size * 2 > this.slots.length) this.rehash();
    return n;
  }

  /** The node of a token sequence, or -1. */
  find(tokens: ArrayLike<number>, from = 0, to = tokens.length): number {
    let n = 0;
    for (let i = from; i < to && n !== EMPTY; i++) n = this.child(n, tokens[i]!);
    return n;
  }

  /** The tokens of a node, first to last. */
  tokens(node: number): number[] {
    const out = new Array<number>(this.depth[node]!);
    for (let n = node, i = out.length - 1; n > 0; n = this.parent[n]!, i--) out[i] = this.word[n]!;
    return out;
  }

  private grow(): void {
    const cap = this.parent.length * 2;
    const g = <T extends Int32Array | Uint8Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(cap);
      b.set(a);
      return b;
    };
    this.parent = g(this.parent);
    this.word = g(this.word);
    this.depth = g(this.depth);
    this.count = g(this.count);
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2).fill(EMPTY);
    const mask = slots.length - 1;
    for (let n = 1; n < this.size; n++) {
      let i = hash(this.parent[n]!, this.word[n]!) & mask;
      while (slots[i] !== EMPTY) i = (i + 1) & mask;
      slots[i] = n;
    }
    this.slots = slots;
    this.mask = mask;
  }

  /** Bytes held by the trie's arrays. */
  bytes(): number {
    return this.parent.byteLength + this.word.byteLength + this.depth.byteLength + this.count.byteLength + this.slots.byteLength;
  }
}

/** Each node's children as one list (compressed rows), built once the trie stops growing. */
export interface Children {
  /** Children of node n are list[start[n] .. start[n + 1]). */
  readonly start: Int32Array;
  readonly list: Int32Array;
}

export function children(t: Trie): Children {
  const start = new Int32Array(t.size + 1);
  for (let n = 1; n < t.size; n++) start[t.parent[n]! + 1]!++;
  for (let n = 0; n < t.size; n++) start[n + 1]! += start[n]!;
  const fill = start.slice(0, t.size);
  const list = new Int32Array(Math.max(0, t.size - 1));
  for (let n = 1; n < t.size; n++) list[fill[t.parent[n]!]!++] = n;
  return { start, list };
}

/** Each node's suffix: the node of its n-gram without its first token (the root's and unigrams' is the root; -1 if absent). */
export function suffixes(t: Trie): Int32Array {
  const suf = new Int32Array(t.size);
  suf[0] = EMPTY;
  // parents are created before their children, so suf[parent] is known when a node is reached
  for (let n = 1; n < t.size; n++) {
    if (t.depth[n] === 1) suf[n] = 0;
    else {
      const ps = suf[t.parent[n]!]!;
      suf[n] = ps === EMPTY ? EMPTY : t.child(ps, t.word[n]!);
    }
  }
  return suf;
}

/**
 * Counts the n-grams (orders 1..n) of one sentence. `padded` is [bos, ...tokens, eos]: every
 * n-gram ending at a position after bos is counted once; the bos node itself is a context only.
 * `ctx` is scratch of length n + 1.
 */
export function countSentence(t: Trie, padded: ArrayLike<number>, n: number, ctx: Int32Array): void {
  // ctx[m] = the node of the m tokens ending at the previous position (ctx[0] = root)
  ctx[0] = 0;
  let have = 0;
  for (let i = 0; i < padded.length; i++) {
    const w = padded[i]!;
    const top = Math.min(n, have + 1);
    for (let m = top; m >= 1; m--) {
      const node = t.add(ctx[m - 1]!, w);
      if (i > 0) t.count[node]!++;
      ctx[m] = node;
    }
    have = top;
  }
}
