/**
 * A compiled model's schedule, as data: what the runtime's interpreter (model.ts) runs for
 * `forward`, and what the decoding loops run for one step. Generated modules export one Plan per
 * model beside their kernel table; the compiler (src/codegen/kernels.ts) builds it.
 *
 * Buffers are named (`n12` = IR node 12's value, `w3` = a weight). Sizes are products of numbers and symbolic dims: 'B' (rows), 'T' (the chain
 * input's — or the target's — length), 'S' (a seq2seq source's length).
 */
export type Size = readonly (number | string)[];

export interface RunInstr {
  readonly op: 'run';
  readonly kernel: string;
  readonly out: string;
  readonly args: readonly string[];
  readonly size: Size;
}

/**
 * A recurrence over `dim`. Each step runs `body`, then the `step` kernel, which writes slot t of
 * the history `out` [B, dim, stateSize] (0 at padded steps). Kernels read the previous state from
 * slot tp of the history; before the first step, the history holds `init` (a buffer [B, stateSize])
 * — or zeros — in the first step's own slot, and tp = t. `exports` names body buffers whose
 * last-step value outlives the step.
 */
export interface ScanInstr {
  readonly op: 'scan';
  readonly out: string;
  readonly dim: string;
  readonly reverse: boolean;
  readonly stateSize: number;
  readonly init?: string;
  readonly lengths: string;
  readonly body: readonly RunInstr[];
  readonly step: string;
  readonly args: readonly string[];
  readonly size: Size;
  readonly exports?: Readonly<Record<string, string>>;
  readonly label: string;
}

export type Instr = RunInstr | ScanInstr;

export interface PlanInput {
  readonly name: string;
  /** Buffer names of the data and the per-row lengths. */
  readonly data: string;
  readonly lengths: string;
  /** Its symbolic length: 'T' or 'S'. */
  readonly dim: string;
  /** Buffers of its per-row first position and of its causal self-attention's valid key positions, when the model has them. */
  readonly offsets?: string;
  readonly keyLengths?: string;
}

/** A causal self-attention's key/value cache: `cache` [B, P, width] is read, `next` [B, K, width] is what the next step reads. */
export interface PlanCache {
  readonly cache: string;
  readonly next: string;
  readonly width: number;
}

/** How generate() drives the model (absent: the model cannot generate; `why` says so). */
export interface GenPlan {
  /** The input fed one token per step: the target (seq2seq) or the text (language model). */
  readonly input: number;
  /** Whether there is an encoder part that runs once (seq2seq). */
  readonly seq2seq: boolean;
  /** Buffers the decoder part reads from the encoder part, with their shapes (rows first). */
  readonly captures: readonly { readonly buf: string; readonly shape: Size }[];
  /** The decoder part's recurrences: their state is carried from step to step. */
  readonly carries: readonly { readonly scan: string; readonly stateSize: number }[];
  /** Where one step's attention weights [rows, 1?, S] are: an outer buffer, or a scan's export. */
  readonly attention?: { readonly buf: string } | { readonly scan: string; readonly name: string };
  /** How to read the output as a distribution. */
  readonly readout: 'prob' | 'logprob' | 'logits';
  /** Positions a learned positional table covers (its rows): a token fed at a later position is an error. */
  readonly maxPositions?: number;
  readonly vocab: number;
}

export interface Plan {
  readonly inputs: readonly PlanInput[];
  /** [weight name, buffer] in load order. */
  readonly params: readonly (readonly [string, string])[];
  /** Instructions that read only the first input (a seq2seq encoder): run once per generate(). */
  readonly encode: readonly Instr[];
  /** The rest, in order; forward = encode then decode. */
  readonly decode: readonly Instr[];
  readonly output: { readonly buf: string; readonly shape: Size };
  /** Key/value caches (empty in forward; carried from step to step by generate()). */
  readonly caches: readonly PlanCache[];
  /** Constant buffers the runtime makes when weights load: sinusoid frequencies 10000^(-2i/dim) per column, in float64 then float32. */
  readonly tables?: readonly { readonly buf: string; readonly kind: 'sin_freqs'; readonly dim: number }[];
  readonly gen?: GenPlan;
  /** Why the model cannot generate, when `gen` is absent. */
  readonly noGen?: string;
}
