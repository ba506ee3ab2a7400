/**
 * The interface of the ONNX graphs `nnc onnx` writes (src/export/onnx.ts makes them) as backend
 * 'onnxruntime' drives them (ort.ts): types only, kept in the runtime so that it needs nothing of
 * the compiler's.
 */

/** What carries from one decoding step to the next: `past` is fed, `present` comes out. */
export interface OnnxPast {
  readonly past: string;
  readonly present: string;
  /** A recurrence's state [B, S] (an LSTM's is [h; c]), or a causal self-attention's keys or values [B, P, width]. */
  readonly kind: 'state' | 'cache';
  readonly width: number;
}

/** How a runtime drives the step graphs (also in each file's metadata as `nnc.io`). */
export interface OnnxDecodeIO {
  /** The fed input (tokens) and its per-row lengths (1 per step). */
  readonly input: string;
  readonly lengths: string;
  /** Per row, the position of the first token fed (positional layers). */
  readonly offsets?: string;
  /** Causal self-attention: per row, the valid cached keys below `cacheStart` (a language model's prompt lengths; 0 in a seq2seq decoder), and `cacheStart` itself (the padded prompt width). */
  readonly keyLengths?: string;
  readonly cacheStart?: string;
  /** Decoder inputs that are the source's own (its lengths), passed as the encoder got them. */
  readonly source: readonly string[];
  /** Decoder inputs that are encoder outputs of the same name. */
  readonly captures: readonly string[];
  readonly past: readonly OnnxPast[];
  /** The distribution per step, and how to read it. */
  readonly output: string;
  readonly readout: 'prob' | 'logprob' | 'logits';
  /** The decoder's last attention weights [B, T, S], when it attends over a source. */
  readonly attention?: string;
}

/** What the exporter gives a runtime: the graphs' bytes and how to drive the decoder step. */
export interface OnnxGraphs {
  readonly forward: Uint8Array;
  readonly encoder?: Uint8Array;
  readonly decoder?: Uint8Array;
  readonly io: { readonly decoder?: OnnxDecodeIO };
}
