/**
 * The runtime's shared types: tensors and inputs as apps pass them, backends and options, weight and
 * input descriptions, and the executor interface (with the kernel definitions generated modules
 * hold). Imports only types (the options table's), so executors and their factory both depend on it
 * and not on each other.
 */
import type { DecodeDefaults } from './options.ts';

/** A tensor passed in or out of a model: row-major, batch first. Generated modules type `S` with the known dims. */
export interface Tensor<D = Float32Array, S extends readonly number[] = number[]> {
  data: D;
  shape: S;
}

/** Integer typed arrays a tokens input accepts (token ids). */
export type TokenIds = Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array | readonly number[];

/** A `tokens` input: ids [B, T] with optional per-row valid lengths, or rows of ids. */
export type TokensInput =
  | { data: TokenIds; shape: readonly [number, number] | readonly number[]; lengths?: ArrayLike<number> | undefined }
  | readonly (readonly number[])[];

/** A `vectors` input: features [B, T, D] with optional per-row valid lengths, or rows of steps of features. */
export type VectorsInput =
  | { data: Float32Array | Float64Array | readonly number[]; shape: readonly [number, number, number] | readonly number[]; lengths?: ArrayLike<number> | undefined }
  | readonly (readonly (readonly number[])[])[];

/** Any model input (what the runtime checks at run time; generated modules use TokensInput / VectorsInput). */
export type InputTensor =
  | { data: ArrayLike<number>; shape: readonly number[]; lengths?: ArrayLike<number> | undefined }
  | readonly (readonly number[])[]
  | readonly (readonly (readonly number[])[])[];

export type BackendName = 'wasm' | 'cpu' | 'webasm' | 'gpu' | 'webgpu' | 'onnxruntime' | 'onnxruntime-web';
export type BackendOption = BackendName | 'auto';

/** createModel()'s options, declared in options.ts (CREATE_OPTIONS). */
export type { CreateOptions } from './options.ts';

/** A Web Worker or a Node worker_threads Worker whose script calls `serve(module)` (nnc/runtime). */
export interface ModelWorker {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  terminate(): unknown;
}

/** The spec a generated module was compiled from: its text, and the files it reads (vocabularies) by the paths it names them with. */
export interface SpecSource {
  readonly text: string;
  readonly files?: Readonly<Record<string, string>>;
}

export interface WeightInfo {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'F32';
  readonly layer: string;
}

/** What a generated module says about its model (its exported `manifest`); the compiler writes it, the runtime reads it. */
export interface ModelManifest {
  readonly model: string;
  readonly inputs: readonly InputInfo[];
  readonly output: { readonly name: string; readonly shape: readonly (number | string)[] };
  readonly weights: readonly WeightInfo[];
  /** generate() defaults from the spec's `decode` statement. */
  readonly decode?: DecodeDefaults;
}

export interface InputInfo {
  readonly name: string;
  readonly form: 'tokens' | 'vectors';
  readonly vocab?: number;
  readonly dim?: number;
  readonly maxLen?: number;
  /** The chain needs exactly maxLen steps (flatten). */
  readonly fixedSteps?: boolean;
}

/** Scalars a kernel reads by name: symbolic sizes (B, T, S) and, in a scan, t and tp. */
export type Scalars = Readonly<Record<string, number>>;

/** The scalars a generated CPU kernel reads (B rows, T and S lengths; t and tp in a scan). */
export interface KernelScalars {
  readonly B: number;
  readonly T: number;
  readonly S: number;
  /** Key/value cache positions (0 in forward), keys P + T, and where a cache's generated part starts. */
  readonly P: number;
  readonly K: number;
  readonly P0: number;
  readonly t: number;
  readonly tp: number;
}

/** The GEMM a kernel's GEMM form calls (host.ts: WebAssembly SIMD or plain TypeScript), with the kernel's packed weight blocks. */
export interface GemmHost {
  /** C[cOff + m·ldc + n] = (acc ? C[…] : 0) + (bias ? bias[biasOff + n] : 0) + Σ_k A[aOff + m·lda + k] · W[n][k], W a packed block. */
  gemm(M: number, N: number, K: number, A: Float32Array, aOff: number, lda: number, W: unknown, bias: Float32Array | null, biasOff: number, C: Float32Array, cOff: number, ldc: number, acc: number): void;
  /** Packs B[n][k] = scale · src[off + n·sn + k·sk] (an activation: attention's keys or values) into `dst` for gemm. */
  pack(src: Float32Array, off: number, N: number, K: number, sn: number, sk: number, dst: Float32Array, scale: number): unknown;
  /** a[off .. off + n) ← tanh (kind 0) or sigmoid (kind 1) of itself, within a few float32 ulps. */
  act(kind: number, a: Float32Array, off: number, n: number): void;
  /** The packed weight blocks of the call being run, in the kernel's order (the plan's pack set). */
  readonly packs: readonly unknown[];
}

/** A kernel's host form: its matmuls as GEMM calls with the rest as an epilogue (src/codegen/gemm.ts, render/host.ts). */
export interface GemmDef {
  /** Sizes of the scratch buffers `run` needs. */
  readonly scratch: (s: KernelScalars) => number[];
  readonly run: (x: GemmHost, out: Float32Array, a: readonly Float32Array[], g: readonly Float32Array[], s: KernelScalars) => void;
}

/** A compiled kernel: the CPU loop nest and the gpu.js source of the same per-element body (and its host form, if any). */
export interface KernelDef {
  readonly name: string;
  /** What it computes: its first call's IR label (`attention0.scores`), and how many more calls share it. Errors name it. */
  readonly label: string;
  readonly step: boolean;
  /** The scalars the gpu.js kernel takes after its buffers, in order. */
  readonly scalars: readonly string[];
  readonly cpu: (out: Float32Array, a: readonly Float32Array[], s: KernelScalars) => void;
  readonly gpu: string;
  readonly gemm?: GemmDef;
}

/** What the plan interpreter runs on: buffers are opaque handles. */
export interface Executor {
  readonly backend: BackendName;
  readonly device: string;
  upload(data: Float32Array): unknown;
  zeros(size: number): unknown;
  /** Runs a kernel into a new buffer of `size` values; `packs` are the call's packed weight blocks (host forms). */
  run(k: KernelDef, args: readonly unknown[], sc: Scalars, size: number, packs?: readonly unknown[]): Promise<unknown>;
  /** Runs a step kernel: slot t of history `hist` is computed; returns the updated history. */
  step(k: KernelDef, hist: unknown, args: readonly unknown[], sc: Scalars, size: number, packs?: readonly unknown[]): Promise<unknown>;
  /** Rows idx[0], idx[1], … of a buffer of rows of `width` values (beam reordering, beam expansion, last positions). */
  gatherRows(b: unknown, width: number, idx: Int32Array): Promise<unknown>;
  /** A zero [B, L, width] buffer whose slot `slot` is `rows` ([B, width]): a recurrence's initial state in its first step's slot. */
  placeRows(rows: unknown, width: number, B: number, L: number, slot: number): Promise<unknown>;
  read(b: unknown, size: number): Promise<Float32Array>;
  /** Host executors: run and step synchronously (the time loop then awaits nothing). */
  runNow?(k: KernelDef, args: readonly unknown[], sc: Scalars, size: number, packs?: readonly unknown[]): unknown;
  stepNow?(k: KernelDef, hist: unknown, args: readonly unknown[], sc: Scalars, packs?: readonly unknown[]): unknown;
  /** Host executors: read() synchronously. */
  readNow?(b: unknown, size: number): Float32Array;
  /**
   * Training: `dst` [B, L, width] with `src` [B, width] in slot t, 0 where t ≥ the row's length in
   * `lengths`. Host executors write in place and return `dst` (synchronously: the time loop awaits
   * nothing); gpu.js, whose buffers are immutable, returns a promise of a new buffer and frees `dst`.
   */
  stackRows(dst: unknown, src: unknown, lengths: unknown, width: number, B: number, L: number, t: number): unknown;
  /** Host executors: packs B[n][k] = w[off + n·sn + k·sk] (n < N, k < K) of weight `w` for their GEMMs, once when weights load; release() frees it. */
  prepack?(w: unknown, off: number, N: number, K: number, sn: number, sk: number): unknown;
  /** Frees a buffer (or a packed block). */
  release(b: unknown): void;
  dispose(): void;
}
