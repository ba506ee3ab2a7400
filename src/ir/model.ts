import type { Span } from '../diagnostics/span.ts';
import type { WeightEntry } from './build.ts';
import type { Graph } from './graph.ts';
import type { Attrs } from '../layers/schema.ts';
import type { Generability } from '../passes/generate.ts';
import type { InputInfo } from '../runtime/types.ts';

/** A model input as the compiler sees it: what the manifest says (InputInfo), and its symbolic length. */
export interface ModelInput extends Omit<InputInfo, 'fixedSteps'> {
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
  /** Whether generate() can drive the model, and if not why (decided once, by expand). */
  readonly generate: Generability;
}
