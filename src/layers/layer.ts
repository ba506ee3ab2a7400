/** What a layer's lowering sees and returns. One LayerDef per statement kind lives in registry.ts. */
import type { Builder } from '../ir/build.ts';
import { lastDim } from '../ir/graph.ts';
import type { ResolvedStatement } from '../syntax/resolved.ts';
import type { KindSchema } from './schema.ts';

/** The value flowing along a chain. */
export interface ChainValue {
  readonly node: number;
  /** Token ids [B, T] rather than features. */
  readonly tokens: boolean;
  /** Has a time axis ([B, T, D]) rather than being one vector per row ([B, D]). */
  readonly seq: boolean;
  /**
   * Right after a bidirectional recurrent layer: its directions' outputs side by side [B, T, 2H]
   * and how they were merged, so `pool last` can take the forward state at the last valid step and
   * the backward state at step 0 (PyTorch's h_n) before merging.
   */
  readonly bidir?: { readonly halves: number; readonly hidden: number; readonly merge: 'concat' | 'sum' | 'mean' };
  /** The input's vocabulary (token values) or fixed step count (`max_len`), when known. */
  readonly vocab?: number;
  readonly steps?: number;
  /** The last recurrent statement so far: its histories per layer (a seq2seq encoder's final state comes from it). */
  readonly rec?: RecurrentInfo;
  /** Attention placed before a recurrent layer (Bahdanau): that layer computes it inside its steps. */
  readonly attend?: PendingAttention;
}

export interface RecurrentInfo {
  readonly cell: 'rnn' | 'gru' | 'lstm';
  readonly hidden: number;
  /** Per layer: the forward history [B, L, S] and, when bidirectional, the backward one. */
  readonly layers: readonly { readonly fwd: number; readonly bwd?: number }[];
}

/** What a recurrent layer needs to run attention inside its step. */
export interface PendingAttention {
  /** Width of the context it adds to the layer's input. */
  readonly width: number;
  /** Computes the context [B, width] (and the weights [B, S]) for query q [B, Dq] in a scan body; `cap` brings an outer value into the body. */
  readonly compute: (bb: Builder, q: number, cap: (outer: number) => number) => { context: number; weights: number };
  readonly span: ResolvedStatement['stmt']['span'];
}

/** A seq2seq decoder's view of the encoder. */
export interface DecoderCtx {
  /** The encoder's output [B, S, Dk] and the source lengths [B]. */
  readonly memory: number;
  /** Whether the decoder has a recurrent layer (Bahdanau/Luong); without one (a Transformer decoder), cross-attention outputs the context alone. */
  readonly recurrent: boolean;
  readonly memoryLengths: number;
  /** The source's max_len, when declared (location scores need it). */
  readonly sourceMaxLen?: number;
  /** The initial state [B, S] of decoder recurrent layer `layer` of a statement with `layers` layers, or undefined for zeros. */
  initFor(rs: ResolvedStatement, layer: number, layers: number, cell: 'rnn' | 'gru' | 'lstm', hidden: number): number | undefined;
  /** Attention weights of the decoder's attention layers, in order ([B, T, S]); the last is what generate() reports. */
  readonly attentionOutputs: number[];
}

export interface LowerCtx {
  readonly b: Builder;
  readonly rs: ResolvedStatement;
  /** Valid lengths [B] of the input this chain reads. */
  readonly lengths: number;
  /** Lowers a nested chain (block bodies). */
  readonly chain: (body: readonly ResolvedStatement[], x: ChainValue) => ChainValue;
  /** The statement after this one in its chain (attention's placement depends on it). */
  readonly next?: ResolvedStatement;
  /** Set inside a seq2seq decoder. */
  readonly dec?: DecoderCtx;
  /** The chain's input name (positions and key lengths are per input). */
  readonly input: string;
  /** Facts about the whole model that lowering finds. */
  readonly model: ModelFacts;
}

export interface ModelFacts {
  /** Layers whose outputs depend on later tokens of their input (non-causal self-attention): label per input name. */
  readonly readsAhead: Map<string, string>;
}

export interface LayerDef {
  readonly schema: KindSchema;
  lower(ctx: LowerCtx, x: ChainValue): ChainValue;
}

export function width(ctx: LowerCtx, x: ChainValue): number {
  return lastDim(ctx.b.shape(x.node));
}

/** Reports (once) that a layer needs feature vectors but got token ids; returns false then. */
export function needsFeatures(ctx: LowerCtx, x: ChainValue): boolean {
  if (!x.tokens) return true;
  ctx.b.diags.error('E0502', `${ctx.rs.kind} reads feature vectors, but its input is token ids`, ctx.rs.stmt.kindSpan, {
    suggestion: `put an 'embedding dim = N' layer before '${ctx.rs.kind}'`,
  });
  return false;
}

export function needsSequence(ctx: LowerCtx, x: ChainValue): boolean {
  if (x.seq) return true;
  ctx.b.diags.error('E0503', `${ctx.rs.kind} needs a sequence [B, T, D], but its input was already pooled to one vector per row`, ctx.rs.stmt.kindSpan, {
    suggestion: `move '${ctx.rs.kind}' before the 'pool' or 'flatten' layer`,
  });
  return false;
}
