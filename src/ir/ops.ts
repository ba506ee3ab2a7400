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

export type UnaryFn = 'tanh' | 'sigmoid' | 'relu' | 'gelu' | 'one_minus' | 'half';
export type BinaryFn = 'add' | 'mul' | 'sub';
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
  /** table[ids] : [V, D] × [B, T] → [B, T, D] */
  gather: Record<string, never>;
  /** x · wᵀ (+ b): [..., K] × [N, K] (× [N]) → [..., N]; PyTorch's Linear layout. */
  matmul: { bias: boolean };
  unary: { fn: UnaryFn };
  /** Same shapes, or the second operand a vector over the last axis. */
  binary: { fn: BinaryFn };
  /** Last-axis slice. */
  slice: { start: number; count: number };
  /** Last-axis concatenation. */
  concat: Record<string, never>;
  /** [B, T, D] → [B, T·D] for a fixed number of steps. */
  flatten: { steps: number };
  softmax: { log: boolean };
  layernorm: { eps: number };
  /** [B, T, D] → [B, D] over each row's valid steps. `split` = forward width after a bidirectional layer. */
  pool: { mode: PoolMode; split?: number };
  /** Zero the padded steps of a [B, T, ...] value. */
  mask: Record<string, never>;
  /**
   * A recurrence over T: inputs [steps [B, T, Dx], lengths [B], init? [B, S]]; output the state
   * history [B, T, S] (slot t = state after step t; 0 at padded steps). The body maps
   * (state [B, S], step [B, Dx]) to the next state [B, S], its one output. `reverse` runs t = T-1 … 0; a padded
   * step leaves the state unchanged, which with a zero state gives pack_padded_sequence semantics.
   */
  scan: { reverse: boolean; cell: CellKind; body: Graph; stateSize: number };
  /** Inside a scan body: the carried state [B, S]. */
  state: Record<string, never>;
  /** Inside a scan body: this step's slice of the scan's first input [B, Dx]. */
  step: Record<string, never>;
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
  gather: { fusion: 'injective', doc: 'embedding lookup' },
  matmul: { fusion: 'matmul', doc: 'x · wᵀ + b' },
  unary: { fusion: 'elementwise', doc: 'elementwise function' },
  binary: { fusion: 'elementwise', doc: 'elementwise arithmetic (vector broadcast on the last axis)' },
  slice: { fusion: 'injective', doc: 'last-axis slice' },
  concat: { fusion: 'injective', doc: 'last-axis concatenation' },
  flatten: { fusion: 'injective', doc: 'merge time into features' },
  softmax: { fusion: 'reduce', doc: 'last-axis (log-)softmax' },
  layernorm: { fusion: 'reduce', doc: 'last-axis layer normalisation' },
  pool: { fusion: 'reduce', doc: 'masked reduction over time' },
  mask: { fusion: 'elementwise', doc: 'zero padded steps' },
  scan: { fusion: 'opaque', doc: 'recurrence with a body' },
  state: { fusion: 'source', doc: 'scan body: carried state' },
  step: { fusion: 'source', doc: 'scan body: step input' },
};
