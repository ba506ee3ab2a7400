/**
 * A compiled model's schedule, as data: what the runtime's interpreter (model.ts) runs for
 * `forward`, and what the decoding loops run for one step. Generated modules hold one Plan per
 * model beside their kernel table; the compiler (src/codegen/plan.ts) builds it.
 *
 * Buffers are slots: numbers 0 … slots − 1, the weights first (in the manifest's order). The interpreter keeps one array of
 * buffer handles indexed by slot, so running an instruction looks nothing up by name. Every
 * instruction lists the slots whose last use it is (`free`): the interpreter releases them right
 * after it, unless the run keeps them (forward keeps its output; a decoding step keeps what the
 * session carries to the next step: `GenPlan.keep`). Sizes are products of numbers and symbolic
 * dims: 'B' (rows), 'T' (the chain input's — or the target's — length), 'S' (a seq2seq source's
 * length), 'P' and 'K' (key/value cache positions, and keys).
 */

export type Size = readonly (number | string)[];
export type Slot = number;

export interface RunInstr {
  readonly op: 'run';
  /** Index in the model's kernel table. */
  readonly kernel: number;
  readonly out: Slot;
  readonly args: readonly Slot[];
  readonly size: Size;
  /** The packed weight blocks its host form reads: an index in Plan.packSets. */
  readonly packs?: number;
  /** Slots released after it. */
  readonly free?: readonly Slot[];
  /** It computes only reported attention weights (GenPlan.attention): run only when a decoding step asks for them (its `free` list is honoured either way). */
  readonly weights?: true;
}

/**
 * A recurrence over `dim`. Each step runs `body`, then the `step` kernel, which writes slot t of
 * the history `out` [B, dim, stateSize] (0 at padded steps); its first argument is the history
 * itself. Kernels read the previous state from slot tp of the history; before the first step, the
 * history holds `init` (a buffer [B, stateSize]) — or zeros — in the first step's own slot, and
 * tp = t. The body's outputs live for one step, except `exports`, whose last-step values outlive
 * the scan (a decoder step's attention weights).
 */
/** A recurrence's length: T or S, or `T/k` — ⌈T / k⌉, the k-step segments a backward scan with recomputation runs over. */
export type TimeDim = 'T' | 'S' | `${'T' | 'S'}/${number}`;

export interface ScanInstr {
  readonly op: 'scan';
  readonly out: Slot;
  readonly dim: TimeDim;
  readonly reverse: boolean;
  readonly stateSize: number;
  readonly init?: Slot;
  readonly lengths: Slot;
  readonly body: readonly RunInstr[];
  readonly step: { readonly kernel: number; readonly args: readonly Slot[]; readonly packs?: number };
  readonly size: Size;
  readonly exports?: readonly Slot[];
  /** Training graphs: body outputs kept at every step, [B, width] per step → slot t of `to` [B, dim, width] (0 at padded steps). */
  readonly stacks?: readonly { readonly from: Slot; readonly to: Slot; readonly width: Size }[];
  readonly free?: readonly Slot[];
}

export type Instr = RunInstr | ScanInstr;

export interface PlanInput {
  readonly name: string;
  /** Slots of the data and of the per-row lengths (absent when nothing reads them). */
  readonly data?: Slot;
  readonly lengths?: Slot;
  /** Its symbolic length: 'T' or 'S'. */
  readonly dim: 'T' | 'S';
  /** Slots of its per-row first position and of its causal self-attention's valid key positions, when the model has them. */
  readonly offsets?: Slot;
  readonly keyLengths?: Slot;
}

/** A causal self-attention's key/value cache: `cache` [B, P, width] is read, `next` [B, K, width] is what the next step reads. */
export interface PlanCache {
  readonly cache: Slot;
  readonly next: Slot;
  readonly width: number;
}

/** How generate() drives the model (absent: the model cannot generate; Plan.noGen says why). */
export interface GenPlan {
  /** The input fed one token per step: the target (seq2seq) or the text (language model). */
  readonly input: number;
  /** Whether there is an encoder part that runs once (seq2seq). */
  readonly seq2seq: boolean;
  /** Slots the decoder part reads from the encoder part and the source input, with their shapes (rows first). */
  readonly captures: readonly { readonly slot: Slot; readonly shape: Size }[];
  /** The decoder part's recurrences: their state is carried from step to step. */
  readonly carries: readonly { readonly scan: Slot; readonly stateSize: number }[];
  /** Where one step's attention weights [rows, 1?, S] are (a graph output, or a scan's export). */
  readonly attention?: Slot;
  /** Why `attention: true` cannot be honoured, when there is no attention slot. */
  readonly noAttention?: string;
  /** How to read the output as a distribution. */
  readonly readout: 'prob' | 'logprob' | 'logits';
  /** Positions a learned positional table covers (its rows): a token fed at a later position is an error. */
  readonly maxPositions?: number;
  /** Output classes (the distribution's size), and the fed input's vocabulary (bos and the tokens fed back must be below it). */
  readonly vocab: number;
  readonly inputVocab: number;
  /**
   * Slots a decoding step does not release: the session's own (captures, caches, key lengths) and
   * what it takes from the step (carried states, caches' next values, the output, the attention).
   */
  readonly keep: readonly Slot[];
}

export interface Plan {
  /** Number of slots. */
  readonly slots: number;
  /** Slots 0 … weights − 1 hold the manifest's weights, in its order. */
  readonly weights: number;
  /** Constant buffers the runtime makes when weights load: sinusoid frequencies 10000^(-2i/dim) per column, in float64 then float32. */
  readonly tables?: readonly { readonly slot: Slot; readonly kind: 'sin_freqs'; readonly dim: number }[];
  /**
   * Weight blocks the host backends' GEMMs read, packed once when weights load: [weight slot,
   * offset, n, k, sn, sk], the GEMM operand B[n][k] = w[offset + n·sn + k·sk] (a block of x·Wᵀ's
   * rows has sk = 1; dY·W, a backward pass's, reads W transposed: sn = 1).
   */
  readonly packs?: readonly (readonly [Slot, number, number, number, number, number])[];
  /** Per call site: the Plan.packs blocks its kernel's GEMMs read, in the kernel's order. */
  readonly packSets?: readonly (readonly number[])[];
  readonly inputs: readonly PlanInput[];
  /** Instructions that read only the first input (a seq2seq encoder): run once per generate(). */
  readonly encode: readonly Instr[];
  /** The rest, in order; forward = encode then decode. */
  readonly decode: readonly Instr[];
  readonly output: { readonly slot: Slot; readonly shape: Size };
  /** Key/value caches (empty in forward; carried from step to step by generate()). */
  readonly caches: readonly PlanCache[];
  readonly gen?: GenPlan;
  /** Why the model cannot generate, and how to change the spec so that it can, when `gen` is absent. */
  readonly noGen?: string;
  /** Training plans: every graph output (the first is `output`), kept by the run. */
  readonly outputs?: readonly { readonly name: string; readonly slot: Slot; readonly shape: Size }[];
  /** Training plans: buffers the runtime fills before the run (saved values, the cotangent, dropout masks). */
  readonly feeds?: readonly PlanFeed[];
}

/** A training plan's buffer filled by the runtime: a value the training forward kept (`saved`), the output's cotangent, or a dropout layer's mask. */
export type PlanFeed =
  | { readonly kind: 'saved'; readonly name: string; readonly slot: Slot; readonly shape: Size }
  | { readonly kind: 'cotangent'; readonly name: string; readonly slot: Slot; readonly shape: Size }
  | { readonly kind: 'dropout'; readonly layer: number; readonly p: number; readonly slot: Slot; readonly shape: Size };

/**
 * What `vjp` and training steps run (built only for training; forward and generate never touch it):
 * the training forward (the model's output, then the values the backward reads, as `outputs`) and the
 * backward (its `feeds`: those values and the output's cotangent; its `outputs`: the gradient of every
 * weight in the manifest's order, then `input:<name>` per float input), on the model's kernel table
 * (the forward's kernels first). Weights take slots 0 … weights − 1 in both plans.
 */
export interface TrainPlan {
  readonly forward: Plan;
  readonly backward: Plan;
}
