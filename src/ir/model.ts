import type { Span } from '../diagnostics/span.ts';
import type { WeightEntry } from './build.ts';
import type { Graph } from './graph.ts';
import type { Attrs } from '../layers/schema.ts';

export interface ModelInput {
  readonly name: string;
  readonly form: 'tokens' | 'vectors';
  readonly vocab?: number;
  readonly dim?: number;
  readonly maxLen?: number;
  /** Its symbolic length: 'T' (the chain input, or a seq2seq target) or 'S' (a seq2seq source). */
  readonly time: 'T' | 'S';
}

/** A model lowered to IR: the graph, its weights in load order, and its inputs and output. */
export interface ModelIR {
  readonly name: string;
  readonly graph: Graph;
  readonly weights: readonly WeightEntry[];
  readonly inputs: readonly ModelInput[];
  readonly output: { readonly name: string; readonly seq: boolean };
  readonly decode?: Attrs;
  readonly span: Span;
  /** A layer that reads later tokens of the generated input (non-causal self-attention): the model cannot generate. */
  readonly readsAhead?: string;
}
