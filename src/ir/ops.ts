/**
 * The core op set and its one table of per-op facts. Surface layers (lstm, gru, linear, pool, …)
 * expand into these ops (src/layers); passes and codegen only ever see these. Adding an op means
 * adding a row to OP_TABLE — a missing row is a type error.
 *
 * Fusion classes follow TVM's FuseOps ordering: elementwise < injective < reduce < matmul < opaque.
 * `fuse.ts` inlines a producer into its consumer when the producer's class is at most `injective`
 * and it has one consumer, and absorbs elementwise epilogues into a matmul.
 */
import type { Graph } from './graph.ts';

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
  /** Every k-th step: [B, L, D] → [B, L/k, D], slot j = step min(jk + offset, L - 1) (a scan's checkpoints). */
  every: { k: number; offset: number };
  /** Backward graph input: a value the training forward kept for the backward (its output `name`). */
  saved: { name: string };
  /** Backward graph input: the cotangent of the model output `output` (same shape). */
  cotangent: { output: string };
}

export type OpName = keyof OpAttrs;
export type FusionClass = 'source' | 'elementwise' | 'injective' | 'reduce' | 'matmul' | 'opaque';

export interface OpInfo {
  readonly fusion: FusionClass;
  readonly doc: string;
}

export const OP_TABLE: { readonly [K in OpName]: OpInfo } = {
  input: { fusion: 'source', doc: 'model input' },
  lengths: { fusion: 'source', doc: 'valid lengths of an input' },
  param: { fusion: 'source', doc: 'named weight' },
  rows: { fusion: 'injective', doc: 'row block of a weight' },
  cols: { fusion: 'injective', doc: 'column block of a weight' },
  const: { fusion: 'injective', doc: 'scalar constant' },
  gather: { fusion: 'injective', doc: 'embedding lookup' },
  matmul: { fusion: 'matmul', doc: 'x · wᵀ + b' },
  unary: { fusion: 'elementwise', doc: 'elementwise function' },
  binary: { fusion: 'elementwise', doc: 'elementwise arithmetic, NumPy broadcasting' },
  einsum: { fusion: 'matmul', doc: 'contraction: batched matmul, sum over axes' },
  slice: { fusion: 'injective', doc: 'last-axis slice' },
  unsqueeze: { fusion: 'injective', doc: 'insert a size-1 axis' },
  split_heads: { fusion: 'injective', doc: 'split the last axis into heads' },
  merge_heads: { fusion: 'injective', doc: 'merge heads into the last axis' },
  concat: { fusion: 'injective', doc: 'last-axis concatenation' },
  flatten: { fusion: 'injective', doc: 'merge time into features' },
  softmax: { fusion: 'reduce', doc: 'last-axis (log-)softmax, optionally masked by lengths (and causally)' },
  positions: { fusion: 'injective', doc: 'token positions' },
  pos_offsets: { fusion: 'source', doc: 'first position per row' },
  key_lengths: { fusion: 'source', doc: 'valid key positions per row' },
  cache: { fusion: 'source', doc: 'cached keys or values' },
  time_concat: { fusion: 'injective', doc: 'cache followed by new keys or values' },
  sinusoid: { fusion: 'elementwise', doc: 'sinusoidal position encoding' },
  sin_freqs: { fusion: 'source', doc: 'sinusoid frequencies (made by the runtime)' },
  layernorm: { fusion: 'reduce', doc: 'last-axis layer normalisation' },
  pool: { fusion: 'reduce', doc: 'masked reduction over time' },
  mask: { fusion: 'elementwise', doc: 'zero padded positions on an axis' },
  scan: { fusion: 'opaque', doc: 'recurrence with a body' },
  state: { fusion: 'source', doc: 'scan body: carried state' },
  step: { fusion: 'source', doc: 'scan body: step input' },
  capture: { fusion: 'source', doc: 'scan body: outer value' },
  scatter_add: { fusion: 'opaque', doc: "gather's transpose: sum rows by id" },
  pad: { fusion: 'injective', doc: 'zero padding on one axis' },
  broadcast: { fusion: 'injective', doc: 'repeat to a shape (NumPy broadcasting)' },
  unpool: { fusion: 'reduce', doc: "pool's transpose: back onto the time axis" },
  stacked: { fusion: 'source', doc: "a scan's per-step body output, stacked over time" },
  shift: { fusion: 'injective', doc: 'scan history shifted one step: the state each step started from' },
  segments: { fusion: 'injective', doc: 'a sequence cut into k-step segments' },
  unsegment: { fusion: 'injective', doc: 'segments back into a sequence' },
  every: { fusion: 'injective', doc: 'every k-th step (checkpoints)' },
  saved: { fusion: 'source', doc: 'a value the training forward kept' },
  cotangent: { fusion: 'source', doc: "an output's cotangent" },
};
