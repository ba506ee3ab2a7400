/* ───────────────────────── nnc runtime: executors, weights, inputs ─────────────────────────
 * Part of the `nnc/runtime` module that generated modules import. gpu.js is loaded on demand, so
 * the host backends (`wasm`, `cpu`: host.ts) need nothing else.
 */
import { CpuExecutor, WasmExecutor, isNode, wasmSimdSupported } from './host.ts';

export { CpuExecutor, WasmExecutor, tsGemm, tanhf, sigmoidf } from './host.ts';

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

export type BackendName = 'wasm' | 'cpu' | 'webasm' | 'gpu' | 'webgpu';
export type BackendOption = BackendName | 'auto';

export interface CreateOptions {
  /** Which backend runs the kernels; 'auto' (default) picks the best that works, falling back to 'cpu'. */
  backend?: BackendOption;
  /** The gpu.js module (or its GPU class), if it cannot be imported from where the generated module lives. */
  gpu?: unknown;
  /** `wasm`: threads that share large GEMMs (default: the machine's cores, at most 4; 1 = none). Needs shared memory: Node, or a cross-origin-isolated page. */
  threads?: number;
}

export interface WeightInfo {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'F32';
  readonly layer: string;
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
  /** The kernel's packed weight blocks, in GemmDef.packs order. */
  readonly packs: readonly unknown[];
}

/** A kernel's matmuls as GEMM calls with the rest as an epilogue (codegen/kernels.ts GemmCode). */
export interface GemmDef {
  /** Weight blocks to pack: [argument index, first row, rows, first column, columns, row length]. */
  readonly packs: readonly (readonly [number, number, number, number, number, number])[];
  /** Sizes of the scratch buffers `run` needs. */
  readonly scratch: (s: KernelScalars) => number[];
  readonly run: (x: GemmHost, out: Float32Array, a: readonly Float32Array[], g: readonly Float32Array[], s: KernelScalars) => void;
}

/** A compiled kernel: the CPU loop nest and the gpu.js source of the same per-element body (and its GEMM form, if any). */
export interface KernelDef {
  readonly name: string;
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
  run(k: KernelDef, args: unknown[], sc: Scalars, size: number): Promise<unknown>;
  /** Runs a step kernel: slot t of history `hist` is computed; returns the updated history. */
  step(k: KernelDef, hist: unknown, args: unknown[], sc: Scalars, size: number): Promise<unknown>;
  /** Rows idx[0], idx[1], … of a buffer of rows of `width` values (beam reordering, beam expansion, last positions). */
  gatherRows(b: unknown, width: number, idx: Int32Array): Promise<unknown>;
  /** A zero [B, L, width] buffer whose slot `slot` is `rows` ([B, width]): a recurrence's initial state in its first step's slot. */
  placeRows(rows: unknown, width: number, B: number, L: number, slot: number): Promise<unknown>;
  read(b: unknown, size: number): Promise<Float32Array>;
  /** Host executors: run and step synchronously (the time loop then awaits nothing). */
  runNow?(k: KernelDef, args: unknown[], sc: Scalars, size: number): unknown;
  stepNow?(k: KernelDef, hist: unknown, args: unknown[], sc: Scalars): unknown;
  /** Host executors: packs the weight blocks kernel `k`'s GEMMs read from `args` (when weights load). */
  prepack?(k: KernelDef, args: readonly unknown[]): void;
  release(b: unknown): void;
  dispose(): void;
}

export class NncError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NncError';
  }
}

/** The built-in type of a value as it appears in error messages: 'Float32Array', 'Array', 'string', 'null'. */
function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object' && typeof v !== 'function') return typeof v;
  return Object.prototype.toString.call(v).slice(8, -1);
}

/** A value as it appears in error messages: strings quoted, so '5' and 5 read differently. */
function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}

// ───────────── gpu.js executor: webasm, gpu (WebGL2 / headless-gl), webgpu ─────────────

interface GpuKernel {
  (...args: unknown[]): unknown;
  setOutput(o: number[]): void;
  destroy?(): void;
  /** gpu.js's backend kernel after the first call (HeadlessGLKernel, WebAssemblyKernel, …). */
  kernel?: { constructor: { name: string } };
}
interface GpuInstance {
  createKernel(src: string, settings: Record<string, unknown>): GpuKernel;
  destroy(): void;
}
interface GpuClass {
  new (settings: Record<string, unknown>): GpuInstance;
  isHeadlessGLSupported?: boolean;
  isWebGL2Supported?: boolean;
  isWebAssemblySupported?: boolean;
  isWebGPUSupported?: boolean;
  isWebGPUAvailable?: () => Promise<boolean>;
}
interface GpuTexture {
  toArray(): unknown;
  delete?(): void;
}

function flatten(v: unknown, size: number): Float32Array {
  if (v instanceof Float32Array) return v.length === size ? v : v.slice(0, size);
  if (ArrayBuffer.isView(v)) return Float32Array.from(v as unknown as ArrayLike<number>).slice(0, size);
  const out = new Float32Array(size);
  let o = 0;
  const walk = (x: unknown) => {
    if (typeof x === 'number') out[o++] = x;
    else if (ArrayBuffer.isView(x)) {
      const a = x as unknown as ArrayLike<number>;
      for (let i = 0; i < a.length; i++) out[o++] = a[i]!;
    }
    else for (const e of x as unknown[]) walk(e);
  };
  walk(v);
  return out;
}

/** gpu.js kernels index with float32 arithmetic: past 2^24 elements indices are no longer exact. */
const MAX_GPU_ELEMENTS = 1 << 24;
function tooLarge(backend: string, size: number): NncError {
  return new NncError(`a tensor of ${size} elements is too large for the '${backend}' backend (gpu.js indexes in float32, exact up to ${MAX_GPU_ELEMENTS} elements): use a smaller batch, or backend: 'cpu'`);
}

const GATHER_ROWS: KernelDef = {
  name: '__gather_rows',
  step: false,
  scalars: ['W'],
  cpu: () => {},
  gpu: 'function (a, rows, W) { const r = Math.floor((this.thread.x + 0.5) / W); const j = this.thread.x - r * W; return a[rows[r] * W + j]; }',
};

const PLACE_ROWS: KernelDef = {
  name: '__place_rows',
  step: false,
  scalars: ['W', 'L', 'slot'],
  cpu: () => {},
  gpu: 'function (a, W, L, slot) { const b = Math.floor((this.thread.x + 0.5) / (L * W)); const r = this.thread.x - b * L * W; const t = Math.floor((r + 0.5) / W); const j = r - t * W; let v = 0.0; if (t === slot) { v = a[b * W + j]; } return v; }',
};

const isThenable = (v: unknown): v is Promise<unknown> => !!v && typeof (v as { then?: unknown }).then === 'function';

export class GpuJsExecutor implements Executor {
  private readonly kernels = new Map<string, GpuKernel>();
  private readonly gpu: GpuInstance;
  private readonly pipeline: boolean;
  readonly backend: BackendName;
  readonly device: string;

  constructor(GPU: GpuClass, backend: BackendName, device: string, mode: string) {
    this.backend = backend;
    this.device = device;
    this.gpu = new GPU({ mode });
    this.pipeline = backend === 'gpu' || backend === 'webgpu';
  }

  private kernel(name: string, src: string): GpuKernel {
    let k = this.kernels.get(name);
    if (!k) {
      k = this.gpu.createKernel(src, {
        output: [1],
        dynamicOutput: true,
        dynamicArguments: true,
        precision: 'single',
        tactic: 'precision',
        pipeline: this.pipeline,
        immutable: true,
        loopMaxIterations: 100000,
      });
      this.kernels.set(name, k);
    }
    return k;
  }

  /** The gpu.js kernel classes that have run: gpu.js may quietly fall back (e.g. no display → webasm). */
  implementations(): string[] {
    return [...this.kernels.values()].map((k) => k.kernel?.constructor.name ?? '?');
  }

  /** The gpu.js modes ('gpu', 'webgpu', 'webasm', 'cpu') of the kernel classes that have run. */
  modes(): string[] {
    return [...this.kernels.values()].map((k) => String((k.kernel?.constructor as { mode?: unknown } | undefined)?.mode ?? '?'));
  }

  upload(data: Float32Array): unknown {
    if (data.length > MAX_GPU_ELEMENTS) throw tooLarge(this.backend, data.length);
    if (!this.pipeline) return data;
    const k = this.kernel('__upload', 'function (a) { return a[this.thread.x]; }');
    k.setOutput([data.length]);
    const out = k(data);
    // webgpu returns a Promise: a failure surfaces where it is used (run, read), not as unhandled
    if (isThenable(out)) out.catch(() => {});
    return out;
  }
  zeros(size: number): unknown {
    return this.upload(new Float32Array(size));
  }
  async run(kd: KernelDef, args: unknown[], sc: Scalars, size: number): Promise<unknown> {
    if (size > MAX_GPU_ELEMENTS) throw tooLarge(this.backend, size);
    const k = this.kernel(kd.name, kd.gpu);
    // webgpu: upload() and zeros() give Promises of buffer handles (every webgpu kernel call does)
    const ready = args.some(isThenable) ? await Promise.all(args) : args;
    k.setOutput([Math.max(size, 1)]);
    const out = await k(...ready, ...kd.scalars.map((n) => sc[n]));
    // gpu.js's webasm kernels keep up to 8 instantiations (each with its own WebAssembly.Memory) per
    // output size; a decoding loop whose key/value cache grows every step would pile them up until
    // the browser refuses another Memory: keep two
    const impl = k.kernel as { moduleCacheLimit?: number } | undefined;
    if (impl && typeof impl.moduleCacheLimit === 'number' && impl.moduleCacheLimit > 2) impl.moduleCacheLimit = 2;
    return out;
  }
  async placeRows(rows: unknown, width: number, B: number, L: number, slot: number): Promise<unknown> {
    return this.run(PLACE_ROWS, [rows], { W: width, L, slot }, B * L * width);
  }
  async gatherRows(b: unknown, width: number, idx: Int32Array): Promise<unknown> {
    const rows = this.upload(Float32Array.from(idx));
    try {
      return await this.run(GATHER_ROWS, [b, rows], { W: width }, idx.length * width);
    } finally {
      this.release(rows);
    }
  }
  async step(kd: KernelDef, hist: unknown, args: unknown[], sc: Scalars, size: number): Promise<unknown> {
    const out = await this.run(kd, args, sc, size);
    this.release(hist);
    return out;
  }
  async read(b: unknown, size: number): Promise<Float32Array> {
    const v = (await b) as GpuTexture;
    if (v && typeof v.toArray === 'function') return flatten(await v.toArray(), size);
    return flatten(v, size);
  }
  release(b: unknown): void {
    if (isThenable(b)) {
      // a webgpu upload still in flight: free its buffer once it exists (a failed one has none)
      b.then((t) => this.release(t), () => {});
      return;
    }
    const t = b as GpuTexture;
    if (t && typeof t.delete === 'function') t.delete();
  }
  dispose(): void {
    for (const k of this.kernels.values()) k.destroy?.();
    this.kernels.clear();
    this.gpu.destroy();
  }
}

async function loadGpuJs(given: unknown): Promise<GpuClass> {
  const pick = (m: unknown): GpuClass | undefined => {
    const o = m as { GPU?: GpuClass; default?: { GPU?: GpuClass } } | undefined;
    if (typeof m === 'function') return m as GpuClass;
    return o?.GPU ?? o?.default?.GPU;
  };
  const fromArg = pick(given) ?? pick((globalThis as { GPU?: unknown }).GPU);
  if (fromArg) return fromArg;
  const errors: string[] = [];
  try {
    const spec = 'gpu.js';
    const m = pick(await import(/* @vite-ignore */ spec));
    if (m) return m;
  } catch (e) {
    errors.push(String((e as Error).message ?? e));
  }
  try {
    // a module generated outside the project: resolve gpu.js from the working directory instead
    const nodeModule = 'node:module';
    const { createRequire } = (await import(/* @vite-ignore */ nodeModule)) as { createRequire(p: string): (id: string) => unknown };
    const proc = (globalThis as { process?: { cwd(): string } }).process;
    const m = pick(createRequire(`${proc!.cwd()}/package.json`)('gpu.js'));
    if (m) return m;
  } catch (e) {
    errors.push(String((e as Error).message ?? e));
  }
  throw new NncError(`gpu.js could not be loaded (${errors.join('; ')}); install it with 'npm install gpu.js', pass it as createModel({ gpu }), or use backend: 'cpu'`);
}

/** A tiny kernel whose answer is known: a backend that gets it wrong is not used. */
async function selfTest(ex: Executor): Promise<void> {
  const k: KernelDef = {
    name: '__selftest',
    step: false,
    scalars: ['B', 'T'],
    cpu: () => {},
    gpu: 'function (a, B, T) { const i = this.thread.x; let s = 0.0; for (let k = 0; k < T; k++) { s += a[k] * (i + 1.0); } return s + B; }',
  };
  const a = ex.upload(Float32Array.from([1, 2, 3]));
  const out = await ex.read(await ex.run(k, [a], { B: 0.5, T: 3 }, 4), 4);
  const want = [6.5, 12.5, 18.5, 24.5];
  if (!want.every((v, i) => Math.abs(out[i]! - v) < 1e-4)) throw new NncError(`self-test returned ${Array.from(out)}`);
}

async function tryBackend(name: BackendName, GPU: GpuClass): Promise<Executor> {
  let ex: Executor;
  if (name === 'webasm') ex = new GpuJsExecutor(GPU, 'webasm', 'gpu.js webasm (WebAssembly SIMD)', 'webasm');
  else if (name === 'webgpu') {
    if (!GPU.isWebGPUAvailable || !(await GPU.isWebGPUAvailable())) throw new NncError('no WebGPU adapter is available here');
    ex = new GpuJsExecutor(GPU, 'webgpu', 'gpu.js webgpu', 'webgpu');
  } else {
    if (isNode && !GPU.isHeadlessGLSupported) throw new NncError("headless-gl is not available (the optional 'gl' package did not build, or there is no display: run under xvfb-run)");
    if (!isNode && !GPU.isWebGL2Supported) throw new NncError('WebGL2 is not available in this browser');
    ex = new GpuJsExecutor(GPU, 'gpu', isNode ? 'gpu.js headlessgl' : 'gpu.js webgl2', isNode ? 'headlessgl' : 'webgl2');
  }
  try {
    await selfTest(ex);
    // gpu.js kernel classes carry their backend as a static `mode`; their names do not survive minification
    const ran = (ex as GpuJsExecutor).modes();
    if (!ran.every((m) => m === name)) throw new NncError(`gpu.js ran ${(ex as GpuJsExecutor).implementations().join(', ')} (mode ${ran.join(', ')}) instead (no display or driver for ${name}?)`);
  } catch (e) {
    ex.dispose();
    throw e;
  }
  return ex;
}

/** The machine's cores (Node: os.availableParallelism; a browser: navigator.hardwareConcurrency). */
async function cores(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (isNode) {
    try {
      const spec = 'node:os';
      const os = (await import(/* @vite-ignore */ spec)) as { availableParallelism?: () => number; cpus(): unknown[] };
      return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
    } catch {
      return 1;
    }
  }
  return nav?.hardwareConcurrency ?? 1;
}

async function wasmExecutor(options: CreateOptions): Promise<Executor> {
  const t = options.threads;
  if (t !== undefined && (!Number.isInteger(t) || t < 1)) throw new NncError(`threads must be a positive integer, got ${showValue(t)}`);
  const threads = t ?? Math.min(4, await cores());
  const ex = new WasmExecutor(threads);
  await ex.start(threads - 1);
  return ex;
}

/** Picks and starts the executor for `options.backend`. */
export async function createExecutor(options: CreateOptions = {}): Promise<Executor> {
  if (options === null || options === undefined) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) throw new NncError(`createModel expects an options object like { backend: 'cpu' }, got ${typeName(options)}`);
  const want = options.backend ?? 'auto';
  const known: BackendOption[] = ['auto', 'wasm', 'cpu', 'webasm', 'gpu', 'webgpu'];
  if (!known.includes(want)) throw new NncError(`unknown backend '${String(want)}': expected one of ${known.join(', ')}`);
  if (want === 'cpu') return new CpuExecutor();
  if (want === 'wasm') {
    if (!wasmSimdSupported()) throw new NncError("backend 'wasm' cannot run here: this JavaScript engine has no WebAssembly SIMD (use backend: 'cpu')");
    return wasmExecutor(options);
  }
  if (want !== 'auto') {
    const GPU = await loadGpuJs(options.gpu);
    try {
      return await tryBackend(want, GPU);
    } catch (e) {
      throw new NncError(`backend '${want}' cannot run here: ${(e as Error).message}`);
    }
  }
  // auto: a browser's WebGPU first; then nnc's WebAssembly SIMD path (on a CPU it beats gpu.js's
  // webasm and headless-gl on Mesa's software renderer); then gpu.js's GL and webasm; then plain TypeScript
  let GPU: GpuClass | undefined;
  try {
    GPU = await loadGpuJs(options.gpu);
  } catch {
    GPU = undefined;
  }
  if (GPU && !isNode) {
    try {
      return await tryBackend('webgpu', GPU);
    } catch {
      // no WebGPU here
    }
  }
  if (wasmSimdSupported()) return wasmExecutor(options);
  for (const name of (GPU ? ['gpu', 'webasm'] : []) as BackendName[]) {
    try {
      return await tryBackend(name, GPU!);
    } catch {
      // try the next one
    }
  }
  return new CpuExecutor();
}

// ───────────── weights ─────────────

/** Parses safetensors bytes into name → Float32Array, checking every tensor against the manifest. */
export function parseSafetensors(bytes: Uint8Array | ArrayBuffer): Map<string, { dtype: string; shape: number[]; data?: Float32Array | undefined }> {
  const u8 = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
  if (u8.length < 8) throw new NncError(`safetensors file is truncated: ${u8.length} bytes, but even the 8-byte header length is missing`);
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > u8.length - 8) throw new NncError(`safetensors file is truncated or not safetensors: its header claims ${n} bytes but only ${u8.length - 8} follow`);
  let header: Record<string, { dtype?: string; shape?: number[]; data_offsets?: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + n)));
  } catch {
    throw new NncError('not a safetensors file: its header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new NncError('not a safetensors file: its header is not a JSON object');
  const base = 8 + n;
  const out = new Map<string, { dtype: string; shape: number[]; data?: Float32Array | undefined }>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = String(info?.dtype);
    const shape = Array.isArray(info?.shape) ? info.shape.map(Number) : [];
    const offs = info?.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2) throw new NncError(`safetensors tensor '${name}' has no data_offsets`);
    const [b = NaN, e = NaN] = offs.map(Number);
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e) || b < 0 || e < b) throw new NncError(`safetensors tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    if (base + e > u8.length) {
      throw new NncError(`safetensors file is truncated: tensor '${name}' needs bytes ${b}..${e} of the data section, which has ${u8.length - base}`);
    }
    let data: Float32Array | undefined;
    if (dtype === 'F32') {
      const count = shape.reduce((a, c) => a * c, 1);
      if (e - b !== count * 4) throw new NncError(`safetensors tensor '${name}' has ${e - b} bytes, but F32 ${JSON.stringify(shape)} needs ${count * 4}`);
      // copy (Node's Buffer.slice would share the whole pool, and offsets need not be 4-aligned)
      const bytesCopy = new Uint8Array(e - b);
      bytesCopy.set(u8.subarray(base + b, base + e));
      data = new Float32Array(bytesCopy.buffer);
    }
    out.set(name, { dtype, shape, data });
  }
  return out;
}

/** Checks a weight map against the manifest: missing, extra, mis-shaped and non-F32 tensors are errors. */
export function checkWeights(manifest: readonly WeightInfo[], given: Map<string, { dtype: string; shape: number[]; data?: Float32Array | undefined }>, fromMap = false): Map<string, Float32Array> {
  const problems: string[] = [];
  const out = new Map<string, Float32Array>();
  for (const w of manifest) {
    const g = given.get(w.name);
    if (!g) {
      problems.push(`missing weight '${w.name}' (${w.layer}, expected shape [${w.shape.join(', ')}])`);
      continue;
    }
    if (g.dtype !== 'F32' || !g.data) {
      problems.push(fromMap
        ? `weight '${w.name}' is ${g.dtype === 'null' ? 'null' : `${/^[AEIOU]/i.test(g.dtype) ? 'an' : 'a'} ${g.dtype}`}, expected a Float32Array of ${w.shape.reduce((a, c) => a * c, 1)} values`
        : `weight '${w.name}' has dtype ${g.dtype}, expected F32 (save it with tensor.float())`);
      continue;
    }
    const count = w.shape.reduce((a, c) => a * c, 1);
    if (g.shape.length !== w.shape.length || g.shape.some((d, i) => d !== w.shape[i]) || g.data.length !== count) {
      problems.push(`weight '${w.name}' has shape [${g.shape.join(', ')}], expected [${w.shape.join(', ')}]`);
      continue;
    }
    out.set(w.name, g.data);
  }
  const names = new Set(manifest.map((w) => w.name));
  for (const name of given.keys()) if (!names.has(name)) problems.push(`unexpected weight '${name}': this model has no parameter of that name`);
  if (problems.length) throw new NncError(`cannot load weights:\n  ${problems.join('\n  ')}`);
  return out;
}

export function weightMap(src: Uint8Array | ArrayBuffer | Record<string, Float32Array>, manifest: readonly WeightInfo[]): Map<string, Float32Array> {
  const kind = typeName(src);
  if (kind === 'Uint8Array' || kind === 'ArrayBuffer') return checkWeights(manifest, parseSafetensors(src as Uint8Array | ArrayBuffer));
  if (typeof src !== 'object' || src === null || Array.isArray(src) || ArrayBuffer.isView(src) || src instanceof Map || kind === 'SharedArrayBuffer') {
    throw new NncError(`loadWeights expects safetensors bytes (Uint8Array | ArrayBuffer) or a { name: Float32Array } map, got ${kind}`);
  }
  const given = new Map<string, { dtype: string; shape: number[]; data?: Float32Array | undefined }>();
  const shapes = new Map(manifest.map((w) => [w.name, w.shape]));
  for (const [name, v] of Object.entries(src)) {
    if (v === undefined) continue; // { name: undefined } is a missing weight
    if (typeName(v) !== 'Float32Array') {
      given.set(name, { dtype: typeName(v), shape: [] });
      continue;
    }
    const want = shapes.get(name);
    const count = want ? want.reduce((a, c) => a * c, 1) : v.length;
    given.set(name, { dtype: 'F32', shape: v.length === count && want ? [...want] : [v.length], data: v });
  }
  return checkWeights(manifest, given, true);
}

// ───────────── inputs ─────────────

export interface PreparedInput {
  B: number;
  T: number;
  data: Float32Array;
  lengths: Float32Array;
}

function nestedToTensor(name: string, v: unknown[]): { data: number[]; shape: number[] } {
  const shape: number[] = [];
  let probe: unknown = v;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const data: number[] = [];
  const walk = (x: unknown, depth: number) => {
    if (depth === shape.length) {
      if (typeof x !== 'number') throw new NncError(`input '${name}': expected numbers in the nested array, found ${typeof x}`);
      data.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth]) throw new NncError(`input '${name}': nested array is ragged at depth ${depth} (expected length ${shape[depth]}); pad the rows and pass lengths`);
    for (const e of x) walk(e, depth + 1);
  };
  walk(v, 0);
  return { data, shape };
}

/** Validates one input against its declaration and converts it to kernel buffers. */
export function prepareInput(info: InputInfo, given: unknown): PreparedInput {
  const name = info.name;
  if (given === undefined || given === null) throw new NncError(`missing input '${name}'`);
  let data: ArrayLike<number>;
  let shape: number[];
  let lengths: ArrayLike<number> | undefined;
  if (Array.isArray(given)) ({ data, shape } = nestedToTensor(name, given));
  else {
    const g = given as { data?: ArrayLike<number>; shape?: number[]; lengths?: ArrayLike<number> };
    if (typeof g !== 'object' || !('data' in g) || !Array.isArray(g.shape)) throw new NncError(`input '${name}' must be { data, shape, lengths? } or a nested number array, got ${typeName(g)}${typeof g === 'object' ? ` with keys ${Object.keys(g).join(', ') || '(none)'}` : ''}`);
    if (!Array.isArray(g.data) && !(ArrayBuffer.isView(g.data) && typeName(g.data) !== 'DataView')) throw new NncError(`input '${name}': data must be a typed array or a number[], got ${typeName(g.data)}`);
    data = g.data;
    shape = g.shape;
    lengths = g.lengths;
  }
  const rank = info.form === 'tokens' ? 2 : 3;
  const want = info.form === 'tokens' ? '[B, T]' : `[B, T, ${info.dim}]`;
  if (shape.length !== rank || shape.some((d) => !Number.isInteger(d) || d < 1)) throw new NncError(`input '${name}' has shape [${shape.map(showValue).join(', ')}], expected ${want} with positive integer sizes`);
  if (info.form === 'vectors' && shape[2] !== info.dim) throw new NncError(`input '${name}' has ${shape[2]} features per step, expected dim = ${info.dim}`);
  const B = shape[0]!;
  const T = shape[1]!;
  const count = shape.reduce((a, c) => a * c, 1);
  if (data.length !== count) throw new NncError(`input '${name}' has ${data.length} values, but shape [${shape.join(', ')}] needs ${count}`);
  if (info.maxLen !== undefined && (info.fixedSteps ? T !== info.maxLen : T > info.maxLen)) {
    throw new NncError(`input '${name}' has ${T} steps, expected ${info.fixedSteps ? 'exactly' : 'at most'} max_len = ${info.maxLen}`);
  }
  const dtype = typeName(data);
  if (info.form === 'tokens') {
    if (/^(Float|Big)/.test(dtype)) throw new NncError(`input '${name}' holds token ids and must be integers (Int32Array or number[]), got ${dtype}`);
    for (let i = 0; i < count; i++) {
      const v = data[i]!;
      const where = `at position ${i} (row ${Math.floor(i / T)}, step ${i % T})`;
      if (!Number.isInteger(v)) throw new NncError(`input '${name}' has token id ${showValue(v)} ${where}, expected an integer in [0, ${info.vocab})`);
      if (v < 0 || v >= info.vocab!) throw new NncError(`input '${name}' has token id ${v} ${where}, outside the vocabulary [0, ${info.vocab})`);
    }
  } else {
    if (dtype !== 'Array' && !/^Float/.test(dtype)) throw new NncError(`input '${name}' holds feature vectors and must be floats (Float32Array or number[]), got ${dtype}`);
    if (dtype === 'Array') {
      for (let i = 0; i < count; i++) {
        if (typeof data[i] !== 'number') throw new NncError(`input '${name}' has ${showValue(data[i])} (${typeName(data[i])}) at position ${i}, expected a number`);
      }
    }
  }
  const lens = new Float32Array(B);
  if (lengths === undefined) lens.fill(T);
  else {
    if (!Array.isArray(lengths) && !(ArrayBuffer.isView(lengths) && typeName(lengths) !== 'DataView')) throw new NncError(`input '${name}': lengths must be an array with one entry per row (B = ${B}), got ${typeName(lengths)}`);
    if (lengths.length !== B) throw new NncError(`input '${name}': lengths has ${lengths.length} entries, expected one per row (B = ${B})`);
    for (let b = 0; b < B; b++) {
      const l = lengths[b]!;
      if (!Number.isInteger(l) || l < 1 || l > T) throw new NncError(`input '${name}': lengths[${b}] = ${showValue(l)}, expected an integer in [1, ${T}]`);
      if (info.fixedSteps && l !== T) throw new NncError(`input '${name}': lengths[${b}] = ${l}, but this model reads a fixed window of ${T} steps`);
      lens[b] = l;
    }
  }
  return { B, T, data: Float32Array.from(data), lengths: lens };
}

/** Checks the inputs object: every declared input present, nothing else. */
export function checkInputNames(inputs: unknown, declared: readonly InputInfo[]): Record<string, unknown> {
  if (typeof inputs !== 'object' || inputs === null) throw new NncError(`forward expects an object of inputs: { ${declared.map((i) => i.name).join(', ')} }`);
  const names = new Set(declared.map((i) => i.name));
  for (const k of Object.keys(inputs)) if (!names.has(k)) throw new NncError(`unknown input '${k}': this model's inputs are ${[...names].join(', ')}`);
  return inputs as Record<string, unknown>;
}

