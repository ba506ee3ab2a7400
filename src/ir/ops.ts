/**
 * The core op set and its one table of per-op facts: fusion class and shape rule. Surface layers
 * (lstm, gru, linear, pool, …) expand into these ops (src/layers); passes and codegen only ever see
 * these. Adding an op means adding a row to OP_TABLE — a missing row, or a row without its shape
 * rule, is a type error. The graph builder (build.ts) computes every node's shape with the rule,
 * and the verifier (verify.ts) checks every node against it.
 *
 * Fusion classes follow TVM's FuseOps ordering: elementwise < injective < reduce < matmul < opaque.
 * `fuse.ts` inlines a producer into its consumer when the producer's class is at most `injective`
 * and it has one consumer, and absorbs elementwise epilogues into a matmul.
 */
import type { Dim, Graph, Shape } from './graph.ts';

/**
 * `exp`, `step` (1 where x > 0, else 0) and `gelu_grad` (d gelu / dx = Φ(x) + x·φ(x)) appear only in
 * backward graphs (src/passes/grad): log_softmax's, relu's / max's and gelu's derivatives.
 */
export type UnaryFn = 'tanh' | 'sigmoid' | 'relu' | 'gelu' | 'one_minus' | 'half' | 'sqrt' | 'exp' | 'step' | 'gelu_grad';
export type BinaryFn = 'add' | 'mul' | 'sub' | 'div' | 'max';
export type CellKind = 'rnn' | 'gru' | 'lstm';
export type PoolMode = 'last' | 'first' | 'mean' | 'max';

export interface OpAttrs {
  /** A model input: token ids [B, T] (i32) or features [B, T, D]. */
  input: { name: string; form: 'tokens' | 'vectors'; vocab?: number; maxLen?: number };
  /** Per-row valid lengths [B] of an input. */
  lengths: { input: string };
  /** A named weight, loaded by name from the state_dict. */
  param: { name: string; layer: string };
  /** Rows [start, start + count) of a param (a gate's block of a stacked PyTorch weight). */
  rows: { start: number; count: number };
  /** Columns [start, start + count) of a 2-D param (the part of a weight that reads one half of a concatenated input). */
  cols: { start: number; count: number };
  /** A scalar constant, shape [] (broadcasts against anything). */
  const: { value: number };
  /** table[ids] : [V, D] × [B, T] → [B, T, D] */
  gather: Record<string, never>;
  /** x · wᵀ (+ b): [..., K] × [N, K] (× [N]) → [..., N]; PyTorch's Linear layout. */
  matmul: { bias: boolean };
  unary: { fn: UnaryFn };
  /** NumPy broadcasting: shapes aligned on the right, a size-1 (or missing) axis repeats. */
  binary: { fn: BinaryFn };
  /**
   * A contraction written as an einsum over one or two operands (`bd,bsd->bs`, `bnts,bsnh->btnh`,
   * `bnts->bts`): output letters index the result, the other letters are summed over. Times `scale`.
   * Batched matmuls (qᵀk, α·V) and reductions over heads are all this op.
   */
  einsum: { spec: string; scale: number };
  /** Last-axis slice (`count` may be a symbolic length: the first S or T positions). */
  slice: { start: number; count: number | 'S' | 'T' };
  /** Positions [B, T] (i32): t, plus offsets[b] when given (where a row's generated tokens start). */
  positions: Record<string, never>;
  /** Per-row position of input `input`'s first token [B] (i32): 0 in forward; while generating, where the row's next token sits. */
  pos_offsets: { input: string };
  /** Per-row valid key positions of causal self-attention over input `input` [B] (i32): its lengths in forward, the prompt's while generating. */
  key_lengths: { input: string };
  /** A causal self-attention's cached keys or values from earlier steps [B, P, W] (empty in forward). */
  cache: { name: string };
  /** The cache followed by this step's keys or values: [B, P, W] + [B, T, W] → [B, K, W]; always materialized (it is the next step's cache). */
  time_concat: Record<string, never>;
  /** Vaswani's interleaved sinusoidal encoding: inputs positions [B, T] and frequencies [dim] → [B, T, dim]: PE[p, 2i] = sin(p · f[2i]), PE[p, 2i+1] = cos(p · f[2i + 1]). */
  sinusoid: { dim: number };
  /** The frequencies 10000^(-2i/dim) of sinusoid column j = 2i or 2i + 1 [dim]: computed by the runtime in float64 when weights load (GPU exp is not exact enough). */
  sin_freqs: { dim: number };
  /** A size-1 axis inserted at `axis` (a view). */
  unsqueeze: { axis: number };
  /** [..., N·H] → [..., N, H]: the last axis split into `heads` heads (a view). */
  split_heads: { heads: number };
  /** [..., N, H] → [..., N·H] (a view). */
  merge_heads: Record<string, never>;
  /** Last-axis concatenation. */
  concat: Record<string, never>;
  /** [B, T, D] → [B, T·D] for a fixed number of steps. */
  flatten: { steps: number };
  /**
   * Last-axis (log-)softmax; with a second input (lengths [B]), positions ≥ lengths[b] get weight
   * exactly 0. With `causal` (over a key cache): key k is valid when k < lengths[b] or k ≥ P0 (the
   * cache's generated part), and not after the query: k ≤ q + P.
   */
  softmax: { log: boolean; causal?: boolean };
  layernorm: { eps: number };
  /**
   * `dropout p`: inputs [x, mask] → x ⊙ mask, the mask a `dropout_mask` of x's shape. Forward and
   * generate never run it (optimize replaces it by x: the identity); training graphs keep it, and the
   * runtime fills the mask per step (all 1 for vjp). `layer` numbers the model's dropout layers in
   * lowering order (what the seeded masks are keyed by, src/train/dropout.ts).
   */
  dropout: { p: number; layer: number };
  /** A training graph's dropout mask for layer `layer` (x's shape): 0 where dropped, 1 / (1 − p) where kept; filled by the runtime. */
  dropout_mask: { p: number; layer: number };
  /** [B, T, D] → [B, D] over each row's valid steps. `split` = forward width after a bidirectional layer. */
  pool: { mode: PoolMode; split?: number };
  /** Zero the entries whose index on `axis` is ≥ lengths[b] (padded steps or padded source positions); with `causal`, softmax's causal rule (query index on axis - 1). */
  mask: { axis: number; causal?: boolean };
  /**
   * A recurrence over the time axis of its first input: inputs [steps [B, L, Dx], lengths [B],
   * init [B, S] (when `init`), captures…]; output the state history [B, L, S] (slot t = state after
   * step t; 0 at padded steps). The body is a function of (state [B, S], step [B, Dx], captures)
   * whose output `next` is the next state; further body outputs (`attention`) are per-step values
   * a decoding loop can read after a step. `reverse` runs t = L-1 … 0; a padded step leaves the
   * state unchanged, which with a zero (or given) initial state gives pack_padded_sequence
   * semantics. The state lives in its own buffer between steps, so a decoding loop can carry it.
   */
  scan: { reverse: boolean; cell: CellKind; body: Graph; stateSize: number; init: boolean };
  /** Inside a scan body: the carried state [B, S]. */
  state: Record<string, never>;
  /** Inside a scan body: this step's slice of the scan's first input [B, Dx]. */
  step: Record<string, never>;
  /** Inside a scan body: the scan's capture number `input` (inputs[2 + (init ? 1 : 0) + input]: an outer value such as the encoder memory, its lengths or projected keys), read whole. */
  capture: { input: number };

  // --- made by reverse mode (src/passes/grad): the transposes of gather, slice/rows/cols, pool and
  // of broadcasting, a scan's stacked per-step outputs and shifted history, and the backward graph's inputs

  /** Gather's transpose: ids [...] (i32) × values [..., D] → [rows, D]; row r is the sum of the value rows whose id is r. */
  scatter_add: { rows: number };
  /** The transpose of slice / rows / cols: x zero-padded on `axis` to `size`, x occupying [start, start + its size). */
  pad: { axis: number; start: number; size: number };
  /** x repeated to this node's shape by NumPy broadcasting (zeros of any shape from a scalar 0). */
  broadcast: Record<string, never>;
  /**
   * Pool's transpose: inputs [g [B, D], lengths [B], x [B, L, D] (max only)] → [B, L, D]: g placed at
   * step lengths[b] - 1 (last; with `split`, features ≥ split at step 0), at step 0 (first), spread
   * as g / lengths[b] over the valid steps (mean), or at the first valid step holding x's maximum
   * (max); 0 elsewhere.
   */
  unpool: { mode: PoolMode; split?: number };
  /** Its input's (a scan's) body output `output` at every step, stacked [B, L, ...] (0 at padded steps). */
  stacked: { output: string };
  /**
   * A scan's state history [B, L, S] shifted one step in scan order, so that slot t holds the state
   * step t started from: slot t - 1 (t + 1 when `reverse`); the first step's slot is the initial
   * state (input 1, [B, S]) or 0.
   */
  shift: { reverse: boolean };
  /** A sequence cut into k-step segments: [B, L, D] → [B, L/k, k·D] (segment j holds steps jk … jk + k - 1, 0 past L). */
  segments: { k: number };
  /** Segments back into a sequence: [B, L/k, k·D] → [B, L, D]. */
  unsegment: { k: number };
  /** Flatten's transpose: [B, steps·D] → [B, T, D] (T = steps: a fixed-length input; the time dim is its declared one). */
  unflatten: { steps: number };
  /** Every k-th step: [B, L, D] → [B, L/k, D], slot j = step min(jk + offset, L - 1) (a scan's checkpoints). */
  every: { k: number; offset: number };
  /** Backward graph input: a value the training forward kept for the backward (its output `name`). */
  saved: { name: string };
  /** Backward graph input: the cotangent of the model output `output` (same shape). */
  cotangent: { output: string };
}

export type OpName = keyof OpAttrs;
export type FusionClass = 'source' | 'elementwise' | 'injective' | 'reduce' | 'matmul' | 'opaque';

/** A shape rule's failure: what does not fit, and the sizes (for diagnostic E0501 or the verifier). */
export interface ShapeMismatch {
  readonly what: string;
  readonly expected: number | string;
  readonly actual: number | string;
}

/**
 * An op's shape rule: its output shape from its inputs' shapes and its attributes. Sources, and
 * ops whose sizes come from outside their inputs (positions, a cache), are given the shape they
 * were declared with and return it in canonical form, so a wrong declaration still shows.
 */
export type ShapeRule<K extends OpName> = (ins: readonly Shape[], attrs: OpAttrs[K], declared: Shape) => Shape | ShapeMismatch;

export interface OpInfo<K extends OpName> {
  readonly fusion: FusionClass;
  readonly doc: string;
  readonly shape: ShapeRule<K>;
}

export function isMismatch(r: Shape | ShapeMismatch): r is ShapeMismatch {
  return !Array.isArray(r);
}

const last = (s: Shape): Dim => s[s.length - 1]!;
const miss = (what: string, expected: number | string, actual: number | string | undefined): ShapeMismatch => ({ what, expected, actual: actual ?? 'nothing' });
const show = (s: Shape) => `[${s.join(', ')}]`;
const same = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

/** NumPy broadcasting: shapes aligned on the right; a size-1 (or missing) axis repeats. */
export function broadcast(a: Shape, b: Shape, what: string): Shape | ShapeMismatch {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return miss(`${what} of ${show(a)} and ${show(b)}`, da, db);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** The output of an einsum `spec` over operands of these shapes (every letter one size). */
function einsumShape(spec: string, ins: readonly Shape[]): Shape | ShapeMismatch {
  const [lhs, out] = spec.split('->') as [string, string];
  const size = new Map<string, Dim>();
  const operands = lhs.split(',');
  for (let i = 0; i < operands.length; i++) {
    const letters = operands[i]!;
    const s = ins[i] ?? [];
    if (s.length !== letters.length) return miss(`einsum ${spec}: the rank of operand ${i}`, letters.length, s.length);
    for (let j = 0; j < letters.length; j++) {
      const c = letters[j]!;
      const known = size.get(c);
      if (known !== undefined && known !== s[j]) return miss(`einsum ${spec} on axis '${c}'`, known, s[j]);
      size.set(c, s[j]!);
    }
  }
  return [...out].map((c) => size.get(c)!);
}

/** A lengths input: one per row. */
const perRow = (s: Shape | undefined, what: string): ShapeMismatch | undefined => (s && (s.length !== 1 || s[0] !== 'B') ? miss(`${what} (one per row, [B])`, 'B', s[0]) : undefined);

export const OP_TABLE: { readonly [K in OpName]: OpInfo<K> } = {
  input: { fusion: 'source', doc: 'model input', shape: (_, a, d) => (a.form === 'tokens' ? ['B', d[1]!] : ['B', d[1]!, d[2]!]) },
  lengths: { fusion: 'source', doc: 'valid lengths of an input', shape: () => ['B'] },
  param: { fusion: 'source', doc: 'named weight', shape: (_, __, d) => (d.every((x) => typeof x === 'number') ? d : miss('a weight\'s sizes (numbers)', 0, d.find((x) => typeof x !== 'number'))) },
  rows: {
    fusion: 'injective', doc: 'row block of a weight',
    shape: ([w], a) => (a.start + a.count > (w![0] as number) ? miss('a row block', w![0]!, a.start + a.count) : [a.count, ...w!.slice(1)]),
  },
  cols: {
    fusion: 'injective', doc: 'column block of a weight',
    shape: ([w], a) => (w!.length !== 2 || a.start + a.count > (w![1] as number) ? miss('a column block of a matrix', w![1] ?? 0, a.start + a.count) : [w![0]!, a.count]),
  },
  const: { fusion: 'injective', doc: 'scalar constant', shape: () => [] },
  gather: { fusion: 'injective', doc: 'embedding lookup', shape: ([t, ids]) => (t!.length !== 2 ? miss('an embedding table\'s rank', 2, t!.length) : [...ids!, t![1]!]) },
  matmul: {
    fusion: 'matmul', doc: 'x · wᵀ + b',
    shape: ([x, w, b], a) => {
      if (w!.length !== 2) return miss(`matmul by a weight of shape ${show(w!)}: its rank`, 2, w!.length);
      if (last(x!) !== w![1]) return miss(`matmul of ${show(x!)} by a ${show(w!)} weight`, w![1]!, last(x!));
      if (a.bias && (b!.length !== 1 || b![0] !== w![0])) return miss(`the bias of a ${show(w!)} weight`, w![0]!, b![0]);
      return [...x!.slice(0, -1), w![0]!];
    },
  },
  unary: { fusion: 'elementwise', doc: 'elementwise function', shape: ([x]) => x! },
  binary: { fusion: 'elementwise', doc: 'elementwise arithmetic, NumPy broadcasting', shape: ([a, b], at) => broadcast(a!, b!, at.fn) },
  einsum: { fusion: 'matmul', doc: 'contraction: batched matmul, sum over axes', shape: (ins, a) => einsumShape(a.spec, ins) },
  slice: {
    fusion: 'injective', doc: 'last-axis slice',
    shape: ([x], a) => {
      const w = last(x!);
      if (typeof w === 'number' && typeof a.count === 'number' && a.start + a.count > w) return miss(`a slice [${a.start}, ${a.start + a.count}) of ${show(x!)}`, w, a.start + a.count);
      return [...x!.slice(0, -1), a.count];
    },
  },
  unsqueeze: { fusion: 'injective', doc: 'insert a size-1 axis', shape: ([x], a) => [...x!.slice(0, a.axis), 1, ...x!.slice(a.axis)] },
  split_heads: {
    fusion: 'injective', doc: 'split the last axis into heads',
    shape: ([x], a) => {
      const w = last(x!);
      if (typeof w !== 'number' || w % a.heads !== 0) return miss(`${a.heads} heads of ${show(x!)}: a multiple of ${a.heads} features`, a.heads * Math.ceil(Number(w) / a.heads || 1), w);
      return [...x!.slice(0, -1), a.heads, w / a.heads];
    },
  },
  merge_heads: { fusion: 'injective', doc: 'merge heads into the last axis', shape: ([x]) => [...x!.slice(0, -2), (x![x!.length - 2] as number) * (last(x!) as number)] },
  concat: {
    fusion: 'injective', doc: 'last-axis concatenation',
    shape: ([a, b]) => {
      if (a!.length !== b!.length || a!.slice(0, -1).some((d, i) => d !== b![i])) return miss(`concat of ${show(a!)} and ${show(b!)}`, show(a!.slice(0, -1)), show(b!.slice(0, -1)));
      return [...a!.slice(0, -1), (last(a!) as number) + (last(b!) as number)];
    },
  },
  flatten: { fusion: 'injective', doc: 'merge time into features', shape: ([x], a) => [x![0]!, a.steps * (last(x!) as number)] },
  softmax: {
    fusion: 'reduce', doc: 'last-axis (log-)softmax, optionally masked by lengths (and causally)',
    shape: ([x, len]) => perRow(len, 'softmax lengths') ?? x!,
  },
  positions: { fusion: 'injective', doc: 'token positions', shape: ([off], _, d) => perRow(off, 'position offsets') ?? ['B', d[1]!] },
  pos_offsets: { fusion: 'source', doc: 'first position per row', shape: () => ['B'] },
  key_lengths: { fusion: 'source', doc: 'valid key positions per row', shape: () => ['B'] },
  cache: { fusion: 'source', doc: 'cached keys or values', shape: (_, __, d) => ['B', 'P', d[2]!] },
  time_concat: {
    fusion: 'injective', doc: 'cache followed by new keys or values',
    shape: ([c, x]) => (c![2] !== x![2] ? miss('the cache and this step\'s keys or values: their width', c![2]!, x![2]) : [x![0]!, 'K', x![2]!]),
  },
  sinusoid: {
    fusion: 'elementwise', doc: 'sinusoidal position encoding',
    shape: ([p, f], a) => (f![0] !== a.dim ? miss('the sinusoid frequencies', a.dim, f![0]) : [...p!, a.dim]),
  },
  sin_freqs: { fusion: 'source', doc: 'sinusoid frequencies (made by the runtime)', shape: (_, a) => [a.dim] },
  layernorm: {
    fusion: 'reduce', doc: 'last-axis layer normalisation',
    shape: ([x, g, b]) => (g![0] !== last(x!) || b![0] !== last(x!) ? miss(`layernorm of ${show(x!)}: its scale and shift`, last(x!), g![0] !== last(x!) ? g![0] : b![0]) : x!),
  },
  dropout: { fusion: 'elementwise', doc: 'dropout: x ⊙ mask (the identity outside training)', shape: ([x, m]) => (same(x!, m!) ? x! : miss(`dropout of ${show(x!)} by a mask`, show(x!), show(m!))) },
  dropout_mask: { fusion: 'source', doc: 'a dropout layer\'s mask (filled by the runtime)', shape: (_, __, d) => d },
  pool: { fusion: 'reduce', doc: 'masked reduction over time', shape: ([x, len]) => perRow(len, 'pool lengths') ?? [x![0]!, last(x!)] },
  mask: { fusion: 'elementwise', doc: 'zero padded positions on an axis', shape: ([x, len], a) => perRow(len, 'mask lengths') ?? (a.axis < x!.length ? x! : miss(`a mask on axis ${a.axis} of ${show(x!)}`, x!.length - 1, a.axis)) },
  scan: {
    fusion: 'opaque', doc: 'recurrence with a body',
    shape: ([steps, len, init], a) => {
      const bad = perRow(len, 'scan lengths');
      if (bad) return bad;
      if (a.init && (init!.length !== 2 || init![1] !== a.stateSize)) return miss('the initial state\'s width', a.stateSize, init![1]);
      return [steps![0]!, steps![1]!, a.stateSize];
    },
  },
  state: { fusion: 'source', doc: 'scan body: carried state', shape: (_, __, d) => ['B', d[1]!] },
  step: { fusion: 'source', doc: 'scan body: step input', shape: (_, __, d) => ['B', d[1]!] },
  capture: { fusion: 'source', doc: 'scan body: outer value', shape: (_, __, d) => d },
  scatter_add: {
    fusion: 'opaque', doc: "gather's transpose: sum rows by id",
    shape: ([ids, v], a) => (same(v!.slice(0, -1), ids!) ? [a.rows, last(v!)] : miss(`scatter_add of values ${show(v!)} by ids ${show(ids!)}`, show(ids!), show(v!.slice(0, -1)))),
  },
  pad: {
    fusion: 'injective', doc: 'zero padding on one axis',
    shape: ([x], a) => {
      const d = x![a.axis];
      if (d === undefined || (typeof d === 'number' && a.start + d > a.size)) return miss(`padding ${show(x!)} on axis ${a.axis} at ${a.start}`, a.size, typeof d === 'number' ? a.start + d : 'no such axis');
      return x!.map((y, i) => (i === a.axis ? a.size : y));
    },
  },
  broadcast: {
    fusion: 'injective', doc: 'repeat to a shape (NumPy broadcasting)',
    shape: ([x], _, d) => {
      const r = broadcast(x!, d, 'broadcast');
      return isMismatch(r) || same(r, d) ? r : miss(`broadcasting ${show(x!)}`, show(d), show(r));
    },
  },
  unpool: {
    fusion: 'reduce', doc: "pool's transpose: back onto the time axis",
    shape: ([g, len, x], a, d) => {
      const out: Shape = [g![0]!, d[1]!, last(g!)];
      if (g!.length !== 2) return miss('the gradient of a pool ([B, D])', 2, g!.length);
      if (a.mode === 'max' && (!x || !same(x, out))) return miss('the pooled input of a max unpool', show(out), x ? show(x) : 'nothing');
      return perRow(len, 'unpool lengths') ?? out;
    },
  },
  stacked: {
    fusion: 'source', doc: "a scan's per-step body output, stacked over time",
    // the body output's own shape is checked by the verifier, which sees the scan's body
    shape: ([s], _, d) => [s![0]!, s![1]!, ...d.slice(2)],
  },
  shift: {
    fusion: 'injective', doc: 'scan history shifted one step: the state each step started from',
    shape: ([h, init]) => (init && !same(init, [h![0]!, h![2]!]) ? miss(`the initial state of a shifted history ${show(h!)}`, show([h![0]!, h![2]!]), show(init)) : h!),
  },
  segments: {
    fusion: 'injective', doc: 'a sequence cut into k-step segments',
    shape: ([x], a) => {
      const [b, l, d] = x!;
      if (x!.length !== 3 || typeof d !== 'number' || (l !== 'T' && l !== 'S')) return miss(`segments of ${show(x!)}`, '[B, T or S, D]', show(x!));
      return [b!, `${l}/${a.k}`, a.k * d];
    },
  },
  unsegment: {
    fusion: 'injective', doc: 'segments back into a sequence',
    shape: ([x], a) => {
      const [b, l, d] = x!;
      if (x!.length !== 3 || typeof l !== 'string' || !l.endsWith(`/${a.k}`) || typeof d !== 'number' || d % a.k) return miss(`joining segments ${show(x!)}`, `[B, L/${a.k}, ${a.k}·D]`, show(x!));
      return [b!, l.slice(0, -`/${a.k}`.length) as Dim, d / a.k];
    },
  },
  unflatten: {
    fusion: 'injective', doc: 'steps back out of features',
    shape: ([x], a, d) => (x!.length !== 2 || typeof x![1] !== 'number' || x![1] % a.steps ? miss(`${a.steps} steps out of ${show(x!)}`, `[B, ${a.steps}·D]`, show(x!)) : [x![0]!, d[1]!, x![1] / a.steps]),
  },
  every: {
    fusion: 'injective', doc: 'every k-th step (checkpoints)',
    shape: ([x], a) => {
      const [b, l, d] = x!;
      if (x!.length !== 3 || (l !== 'T' && l !== 'S')) return miss(`every ${a.k}-th step of ${show(x!)}`, '[B, T or S, D]', show(x!));
      return [b!, `${l}/${a.k}`, d!];
    },
  },
  saved: { fusion: 'source', doc: 'a value the training forward kept', shape: (_, __, d) => d },
  cotangent: { fusion: 'source', doc: "an output's cotangent", shape: (_, __, d) => d },
};

/** The shape an op's rule gives (the one function builder and verifier share). */
export function inferShape<K extends OpName>(op: K, ins: readonly Shape[], attrs: OpAttrs[K], declared: Shape = []): Shape | ShapeMismatch {
  return (OP_TABLE[op] as OpInfo<K>).shape(ins, attrs, declared);
}
