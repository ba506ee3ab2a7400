/** Backend choice: which executor runs a model (`createModel({ backend })`), with a self-test for gpu.js. */
import type { BackendName, CreateOptions, Executor, KernelDef } from './types.ts';
import { NncError } from './errors.ts';
import { CpuExecutor, WasmExecutor, isNode, wasmSimdSupported } from './host.ts';
import { GpuJsExecutor, loadGpuJs, type GpuClass } from './gpujs.ts';

/** A tiny kernel whose answer is known: a backend that gets it wrong is not used. */
async function selfTest(ex: Executor): Promise<void> {
  const k: KernelDef = {
    name: '__selftest',
    label: 'the backend self-test',
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

/** createModel's `threads` (a positive integer: checkOptions checked it), at most the machine's cores (more only costs); `fallback(cores)` when not given. */
export async function threadCount(options: CreateOptions, fallback: (cores: number) => number, what: string): Promise<number> {
  const t = options.threads;
  const n = await cores();
  if (t !== undefined && t > n) throw new NncError(`threads = ${t} is more than this machine's ${n} cores: use threads: ${n} or fewer (or leave it out: ${what})`);
  return t ?? fallback(n);
}

async function wasmExecutor(options: CreateOptions): Promise<Executor> {
  // each thread is a worker with its own stack and instance
  const threads = await threadCount(options, (n) => Math.min(4, n), 'the cores, at most 4');
  const ex = new WasmExecutor(threads);
  await ex.start(threads - 1);
  return ex;
}

/**
 * Whether this browser (or worker) has a hardware WebGPU adapter. A software one — Chromium's
 * SwiftShader, which it reports as a fallback adapter, or a CPU Vulkan driver such as lavapipe —
 * runs gpu.js's kernels several times slower than the wasm backend, so `auto` does not take it.
 */
async function hardwareWebGpu(): Promise<boolean> {
  interface AdapterInfo { isFallbackAdapter?: boolean; vendor?: string; architecture?: string; device?: string; description?: string }
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<{ isFallbackAdapter?: boolean; info?: AdapterInfo } | null> } } }).navigator?.gpu;
  if (!gpu || typeof gpu.requestAdapter !== 'function') return false;
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return false;
    const info = adapter.info ?? {};
    if (info.isFallbackAdapter || adapter.isFallbackAdapter) return false;
    return !/swiftshader|llvmpipe|lavapipe|softpipe|software/i.test([info.vendor, info.architecture, info.device, info.description].join(' '));
  } catch {
    return false;
  }
}

/**
 * Picks and starts the executor for `options.backend` (options checked by createNncModel). `from` is
 * the generated module's URL: gpu.js is also looked for from there (see loadGpuJs).
 */
export async function createExecutor(options: CreateOptions = {}, from?: string): Promise<Executor> {
  const want = options.backend ?? 'auto';
  // createNncModel runs these models itself (src/runtime/ort.ts): they have no executor
  if (want === 'onnxruntime' || want === 'onnxruntime-web') throw new NncError(`backend '${want}' runs a model's ONNX graphs, not kernels: create the model with createModel({ backend: '${want}' })`);
  // a gpu option that is not gpu.js is the app's mistake, whichever backend runs
  if (options.gpu !== undefined && options.gpu !== null) await loadGpuJs(options.gpu);
  if (want === 'cpu') return new CpuExecutor();
  if (want === 'wasm') {
    if (!wasmSimdSupported()) throw new NncError("backend 'wasm' cannot run here: this JavaScript engine has no WebAssembly SIMD (use backend: 'cpu')");
    return wasmExecutor(options);
  }
  if (want !== 'auto') {
    try {
      return await tryBackend(want, await loadGpuJs(options.gpu, from));
    } catch (e) {
      throw new NncError(`backend '${want}' cannot run here: ${(e as Error).message}`);
    }
  }
  // auto: a hardware WebGPU adapter first; then nnc's WebAssembly SIMD path (on a CPU it beats
  // gpu.js's webasm, headless-gl on Mesa's software renderer and WebGPU on SwiftShader); then
  // gpu.js's GL and webasm; then plain TypeScript. gpu.js is loaded only if one of its backends is tried.
  const gpuJs = () => loadGpuJs(options.gpu, from).catch(() => undefined);
  if (!isNode && (await hardwareWebGpu())) {
    const GPU = await gpuJs();
    if (GPU) {
      try {
        return await tryBackend('webgpu', GPU);
      } catch {
        // the adapter would not run gpu.js's kernels
      }
    }
  }
  if (wasmSimdSupported()) return wasmExecutor(options);
  const GPU = await gpuJs();
  for (const name of (GPU ? ['gpu', 'webasm'] : []) as BackendName[]) {
    try {
      return await tryBackend(name, GPU!);
    } catch {
      // try the next one
    }
  }
  return new CpuExecutor();
}
