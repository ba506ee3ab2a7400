/**
 * The gpu.js executor (backends webasm, gpu = WebGL2 / headless-gl, webgpu) and how gpu.js is
 * found. gpu.js is loaded on demand, so the host backends (host.ts) need nothing else.
 */
import type { BackendName, Executor, KernelDef, Scalars } from './types.ts';
import { NncError, typeName } from './errors.ts';
import { importOptional } from './optional.ts';

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
export interface GpuClass {
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
  label: 'a row gather (beam search)',
  step: false,
  scalars: ['W'],
  cpu: () => {},
  gpu: 'function (a, rows, W) { const r = Math.floor((this.thread.x + 0.5) / W); const j = this.thread.x - r * W; return a[rows[r] * W + j]; }',
};

const PLACE_ROWS: KernelDef = {
  name: '__place_rows',
  label: 'a recurrence initial state',
  step: false,
  scalars: ['W', 'L', 'slot'],
  cpu: () => {},
  gpu: 'function (a, W, L, slot) { const b = Math.floor((this.thread.x + 0.5) / (L * W)); const r = this.thread.x - b * L * W; const t = Math.floor((r + 0.5) / W); const j = r - t * W; let v = 0.0; if (t === slot) { v = a[b * W + j]; } return v; }',
};

const STACK_ROWS: KernelDef = {
  name: '__stack_rows',
  label: 'a recurrence\'s per-step values, kept for training',
  step: false,
  scalars: ['W', 'L', 't'],
  cpu: () => {},
  gpu: 'function (dst, src, len, W, L, t) { const b = Math.floor((this.thread.x + 0.5) / (L * W)); const r = this.thread.x - b * L * W; const s = Math.floor((r + 0.5) / W); const j = r - s * W; let v = dst[this.thread.x]; if (s === t) { v = 0.0; if (t < len[b]) { v = src[b * W + j]; } } return v; }',
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
  async stackRows(dst: unknown, src: unknown, lengths: unknown, width: number, B: number, L: number, t: number): Promise<unknown> {
    const out = await this.run(STACK_ROWS, [dst, src, lengths], { W: width, L, t }, B * L * width);
    this.release(dst);
    return out;
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

/**
 * gpu.js's `GPU` class, recognised by what it is — a constructor whose instances create kernels — in
 * a module namespace, a CommonJS export or the class itself. Not by its name: a browser's own WebGPU
 * interface is also a global called `GPU` (and cannot be constructed).
 */
export function gpuJsClass(m: unknown): GpuClass | undefined {
  const isClass = (f: unknown): f is GpuClass => typeof f === 'function' && typeof (f as { prototype?: { createKernel?: unknown } }).prototype?.createKernel === 'function';
  if (isClass(m)) return m;
  if ((typeof m !== 'object' && typeof m !== 'function') || m === null) return undefined;
  const o = m as { GPU?: unknown; default?: unknown };
  if (isClass(o.GPU)) return o.GPU;
  if (isClass(o.default)) return o.default;
  const d = o.default as { GPU?: unknown } | null | undefined;
  return d && isClass(d.GPU) ? d.GPU : undefined;
}

/** An import that failed because the package is not there (Node's codes; a browser's unresolvable bare name). */
/**
 * gpu.js, for the webasm, gpu and webgpu backends (an optional peer dependency of nnc, loaded only
 * when one of them is asked for). Looked for as `given` (createModel's `gpu` option), then a global
 * `GPU` that is gpu.js (its browser build sets one when loaded by a <script> or imported anywhere in
 * a bundle), then imported from where nnc's runtime lives, then (Node) required from where the
 * generated module lives (`from`: its import.meta.url), so an app's own gpu.js is found when nnc is
 * linked from elsewhere. Never from the working directory.
 */
export async function loadGpuJs(given: unknown, from?: string): Promise<GpuClass> {
  if (given !== undefined && given !== null) {
    const c = gpuJsClass(given);
    if (!c) throw new NncError(`the gpu option must be gpu.js's GPU class or module (import { GPU } from 'gpu.js'; createModel({ gpu: GPU })), got ${typeName(given)}`);
    return c;
  }
  const global = gpuJsClass((globalThis as { GPU?: unknown }).GPU);
  if (global) return global;
  const { module, problems: reasons } = await importOptional('gpu.js', from, (m) => (gpuJsClass(m) ? undefined : 'exports no GPU class'));
  if (module) return gpuJsClass(module)!;
  throw new NncError(
    `${reasons.length ? `gpu.js could not be loaded (${reasons.join('; ')})` : 'gpu.js is not installed'}: the webasm, gpu and webgpu backends need it (an optional peer dependency of nnc). ` +
      `Install it with 'npm install gpu.js'; in a bundled app also pass it in: import { GPU } from 'gpu.js' and createModel({ gpu: GPU }). ` +
      `The 'wasm' and 'cpu' backends need nothing more`,
  );
}
