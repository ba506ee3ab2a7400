/**
 * Page-side half of gpujs.test.ts: bundled by bundleForBrowser() and run in
 * Chromium. Runs string-source gpu.js kernels (the style nnc emits) on one
 * backend and returns the raw outputs plus what it observed about the API;
 * the test compares the numbers against a plain-JS reference in Node.
 */
import { GPU, type KernelVariable } from 'gpu.js';

export type Backend = 'webgpu' | 'webgl2' | 'webasm' | 'cpu';

export interface ProbeArgs {
  backend: Backend;
  /** one run per size: output length N, scalar loop bound n (n < N exercises the early return) */
  runs: { N: number; n: number; x: number[] }[];
  /** one extra run of the same kernel with asyncMode: true */
  asyncRun?: { N: number; n: number; x: number[] };
}

export interface ProbeRun {
  act: number[];
  chained: number[];
  scaled: number[];
  /** pipeline output read back with (await) .toArray() */
  actPiped: number[];
}

export interface ProbeResult {
  env: Record<string, unknown>;
  /** what the kernels actually ran on (catches a silent degradation to cpu) */
  ranOn: Record<string, unknown>;
  observed: Record<string, unknown>;
  runs: ProbeRun[];
  asyncRun: { out: number[]; returnedPromise: boolean; lastRunPath: string | null; ranOn: unknown } | null;
}

// y[i] = i >= n ? 0 : tanh(sum_{j<n} x[j] * exp(-0.25 |i-j|) + 0.1 * sum_{k<3} x[(i+k) % n])
const ACT = `function (x, n) {
  const i = this.thread.x;
  if (i >= n) {
    return 0;
  }
  let acc = 0;
  for (let j = 0; j < n; j++) {
    acc += x[j] * Math.exp(-0.25 * Math.abs(i - j));
  }
  for (let k = 0; k < 3; k++) {
    acc += 0.1 * x[(i + k) % n];
  }
  return Math.tanh(acc);
}`;

// z[i] = 0.5 * h[i] + x[i]   (h: output of ACT, passed as a pipeline handle/texture)
const CHAIN = `function (h, x) {
  const i = this.thread.x;
  return 0.5 * h[i] + x[i];
}`;

// s[i] = x[i] * 2 + 1 (trivial kernel, used for the immutable / delete checks)
const SCALE = `function (x) {
  return x[this.thread.x] * 2 + 1;
}`;

const isPromise = (v: unknown): v is Promise<unknown> => !!v && typeof (v as { then?: unknown }).then === 'function';
const typeName = (v: unknown): string =>
  v === null ? 'null' : typeof v === 'object' ? (v as object).constructor?.name ?? 'object' : typeof v;

/** Awaits if needed, recording whether a Promise came back. */
async function settle(v: unknown, seen: Set<string>, what: string): Promise<unknown> {
  seen.add(`${what}:${isPromise(v) ? 'Promise' : 'sync'}`);
  return isPromise(v) ? await v : v;
}

async function readBack(v: unknown, seen: Set<string>, what: string): Promise<number[]> {
  let r = v;
  const toArray = (r as { toArray?: () => unknown })?.toArray;
  if (typeof toArray === 'function' && !ArrayBuffer.isView(r) && !Array.isArray(r)) {
    seen.add(`${what}.type:${typeName(r)}`);
    r = await settle(toArray.call(r), seen, `${what}.toArray()`);
  }
  seen.add(`${what}.readback:${typeName(r)}`);
  return Array.from(r as ArrayLike<number>);
}

function modeOf(kernel: unknown): unknown {
  const k = (kernel as { kernel?: { constructor?: { mode?: string; name?: string }; fallbackReason?: string | null } })
    .kernel;
  return { mode: k?.constructor?.mode ?? null, class: k?.constructor?.name ?? null, fallbackReason: k?.fallbackReason ?? null };
}

export async function probe(args: ProbeArgs): Promise<ProbeResult> {
  const env: Record<string, unknown> = {
    userAgent: navigator.userAgent,
    crossOriginIsolated: self.crossOriginIsolated,
    sharedArrayBuffer: typeof SharedArrayBuffer !== 'undefined',
    isWebGL2Supported: GPU.isWebGL2Supported,
    isWebGPUSupported: GPU.isWebGPUSupported,
    isWebAssemblySupported: GPU.isWebAssemblySupported,
    isWebGPUAvailable: await GPU.isWebGPUAvailable(),
  };
  const navGpu = (navigator as { gpu?: { requestAdapter(): Promise<{ info?: Record<string, string> } | null> } }).gpu;
  if (navGpu) {
    const adapter = await navGpu.requestAdapter().catch(() => null);
    const info = adapter?.info;
    env.webgpuAdapter = info ? { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description } : null;
  }
  if (args.backend === 'webgpu' && !env.isWebGPUAvailable) {
    throw new Error(`webgpu requested but GPU.isWebGPUAvailable() is false (navigator.gpu=${!!(navigator as { gpu?: unknown }).gpu})`);
  }
  if (args.backend === 'webgl2' && !env.isWebGL2Supported) throw new Error('webgl2 requested but GPU.isWebGL2Supported is false');

  const gpu = new GPU({ mode: args.backend });
  const seen = new Set<string>();
  const observed: Record<string, unknown> = {};
  const first = args.runs[0];
  const settings = { output: [first.N], dynamicOutput: true, dynamicArguments: true, precision: 'single' as const };

  const act = gpu.createKernel(ACT, settings);
  const actPiped = gpu.createKernel(ACT, { ...settings, pipeline: true, immutable: true });
  const chain = gpu.createKernel(CHAIN, settings);
  const runs: ProbeRun[] = [];
  for (const run of args.runs) {
    const x = Float32Array.from(run.x);
    act.setOutput([run.N]);
    actPiped.setOutput([run.N]);
    chain.setOutput([run.N]);
    const a = await readBack(await settle(act(x, run.n), seen, 'act()'), seen, 'act');
    const h = await settle(actPiped(x, run.n), seen, 'piped()');
    observed.pipelineOutputType = typeName(h);
    const c = await readBack(await settle(chain(h as KernelVariable, x), seen, 'chain(handle)'), seen, 'chain');
    const hp = await readBack(h, seen, 'piped');
    (h as { delete?: () => void }).delete?.();
    runs.push({ act: a, chained: c, actPiped: hp, scaled: [] });
  }

  // immutable: false vs true — does a second call overwrite the first call's pipeline output?
  const x0 = Float32Array.from(first.x);
  const x1 = x0.map((v) => -v);
  for (const immutable of [false, true]) {
    const k = gpu.createKernel(SCALE, { ...settings, pipeline: true, immutable });
    const r0 = await settle(k(x0), seen, 'scale()');
    const r1 = await settle(k(x1), seen, 'scale()');
    const a0 = await readBack(r0, seen, 'scale');
    const a1 = await readBack(r1, seen, 'scale');
    observed[`immutable_${immutable}`] = {
      sameObject: r0 === r1,
      firstCallKeptItsValues: Math.abs(a0[0] - (x0[0] * 2 + 1)) < 1e-5,
      secondCallValues: Math.abs(a1[0] - (x1[0] * 2 + 1)) < 1e-5,
      hasDelete: typeof (r0 as { delete?: unknown })?.delete === 'function',
      hasClone: typeof (r0 as { clone?: unknown })?.clone === 'function',
    };
    // .delete() each distinct result once, then call again: does the kernel keep working?
    const rec = observed[`immutable_${immutable}`] as Record<string, unknown>;
    let stage = 'delete()';
    try {
      (r0 as { delete?: () => void }).delete?.();
      if (r1 !== r0) (r1 as { delete?: () => void }).delete?.();
      stage = 'call after delete()';
      const r2 = await settle(k(x0), seen, 'scale()');
      const a2 = await readBack(r2, seen, 'scale');
      rec.afterDeleteOk = Math.abs(a2[1] - (x0[1] * 2 + 1)) < 1e-5;
      runs[0].scaled = a2;
    } catch (e) {
      rec.afterDeleteError = `${stage}: ${String(e)}`;
    }
    k.destroy?.();
  }

  // asyncMode: every call returns a Promise; on webasm >= 4096 cells run on the worker pool
  let asyncRun: ProbeResult['asyncRun'] = null;
  if (args.asyncRun) {
    const { N, n, x } = args.asyncRun;
    const ka = gpu.createKernel(ACT, { ...settings, output: [N], asyncMode: true });
    const ret = ka(Float32Array.from(x), n);
    const out = await readBack(await settle(ret, seen, 'async act()'), seen, 'async act');
    const inner = (ka as unknown as { kernel?: { _lastRunPath?: string } }).kernel;
    asyncRun = { out, returnedPromise: isPromise(ret), lastRunPath: inner?._lastRunPath ?? null, ranOn: modeOf(ka) };
    ka.destroy?.();
  }

  const ranOn = { act: modeOf(act), actPiped: modeOf(actPiped), chain: modeOf(chain) };
  observed.calls = [...seen].sort();
  act.destroy?.();
  actPiped.destroy?.();
  chain.destroy?.();
  await gpu.destroy();
  return { env, ranOn, observed, runs, asyncRun };
}

/** Harness self-test: typed arrays come back as arrays, NaN / Infinity / -0 survive. */
export async function roundTrip(arg: { values: number[] }): Promise<unknown> {
  return {
    arg,
    f32: Float32Array.from(arg.values),
    special: [NaN, Infinity, -Infinity, -0],
    crossOriginIsolated: self.crossOriginIsolated,
  };
}

/** Harness self-test: a throw in the page must reject runInPage with this message. */
export async function throwsInPage(arg: { message: string }): Promise<never> {
  throw new Error(arg.message);
}
