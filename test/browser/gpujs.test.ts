/**
 * gpu.js string-source kernels (the style nnc emits) in headless Chromium on
 * every browser backend — webgpu, webgl2, webasm, cpu — checked against a
 * plain-JS reference computed here in Node.
 *
 * Never skips: without Chromium (or without a WebGPU / WebGL2 adapter in it)
 * these tests fail with a message saying what is missing. See docs/backends.md.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleForBrowser, runInPage, withBrowser } from './harness.ts';
import type { Backend, ProbeArgs, ProbeResult } from './gpujs.page.ts';

const BACKENDS: Backend[] = ['webgpu', 'webgl2', 'webasm', 'cpu'];
/** absolute tolerance: outputs are O(1); float32 + GPU tanh/exp approximations */
const TOL = 1e-4;

// --- the independent reference (float64, plain JS) ---------------------------
const xs = (N: number, seed: number): number[] =>
  Array.from({ length: N }, (_, i) => Math.fround(Math.sin(i * 1.7 + seed) * 0.9));

function refAct(x: number[], N: number, n: number): number[] {
  const y: number[] = [];
  for (let i = 0; i < N; i++) {
    if (i >= n) {
      y.push(0);
      continue;
    }
    let acc = 0;
    for (let j = 0; j < n; j++) acc += x[j] * Math.exp(-0.25 * Math.abs(i - j));
    for (let k = 0; k < 3; k++) acc += 0.1 * x[(i + k) % n];
    y.push(Math.tanh(acc));
  }
  return y;
}
const refChain = (h: number[], x: number[]): number[] => h.map((v, i) => 0.5 * v + x[i]);

function expectClose(actual: number[], expected: number[], what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  expect(worst, `${what}: max |diff| ${worst} at [${at}] (got ${actual[at]}, want ${expected[at]})`).toBeLessThanOrEqual(TOL);
}

// Two sizes through the same kernels (setOutput between calls, dynamic arguments);
// n < N in the first exercises the early return. The async run is >= 4096 cells so
// webasm takes its worker-pool (threaded) path.
const ARGS: Omit<ProbeArgs, 'backend'> = {
  runs: [
    { N: 37, n: 29, x: xs(37, 0.3) },
    { N: 53, n: 53, x: xs(53, 1.1) },
  ],
  asyncRun: { N: 4100, n: 40, x: xs(4100, 2.0) },
};

const results = new Map<Backend, ProbeResult | Error>();
let selfTest: { roundTrip: unknown; thrown: string } | null = null;

beforeAll(async () => {
  const js = await bundleForBrowser(new URL('./gpujs.page.ts', import.meta.url).pathname);
  await withBrowser(async (page) => {
    for (const backend of BACKENDS) {
      try {
        results.set(backend, await runInPage<ProbeResult>(page, js, 'probe', { backend, ...ARGS }));
      } catch (e) {
        results.set(backend, e as Error);
      }
    }
    const roundTrip = await runInPage(page, js, 'roundTrip', { values: [1.5, -2] });
    const thrown = await runInPage(page, js, 'throwsInPage', { message: 'boom from the page' }).then(
      () => 'did not throw',
      (e: Error) => e.message,
    );
    selfTest = { roundTrip, thrown };
  });
}, 180_000);

function result(backend: Backend): ProbeResult {
  const r = results.get(backend);
  if (!r) throw new Error(`no result for ${backend}: the browser run did not get that far`);
  if (r instanceof Error) throw r;
  return r;
}

describe('browser harness', () => {
  it('serves a cross-origin-isolated page and round-trips values', () => {
    expect(selfTest?.roundTrip).toEqual({
      arg: { values: [1.5, -2] },
      f32: [1.5, -2],
      special: [NaN, Infinity, -Infinity, -0],
      crossOriginIsolated: true,
    });
  });
  it('rejects with the page-side error', () => {
    expect(selfTest?.thrown).toContain('boom from the page');
  });
});

describe.each(BACKENDS)('gpu.js in Chromium: %s', (backend) => {
  it('runs on the requested backend, not a fallback', () => {
    const r = result(backend);
    const expectedClass: string = ({
      webgpu: 'WebGPUKernel',
      webgl2: 'WebGL2Kernel',
      webasm: 'WebAssemblyKernel',
      cpu: 'CPUKernel',
    } as Record<Backend, string>)[backend];
    for (const [name, k] of Object.entries(r.ranOn)) {
      expect(k, `${name} kernel`).toMatchObject({ class: expectedClass, fallbackReason: null });
    }
    if (backend === 'webgpu') expect((r.env.webgpuAdapter as { vendor?: string } | null)?.vendor).toBeTruthy();
  });

  it('early return, tanh/exp, scalar-bounded and literal loops, Float32Array input, setOutput between calls', () => {
    const r = result(backend);
    ARGS.runs.forEach((run, i) => {
      expectClose(r.runs[i].act, refAct(run.x, run.N, run.n), `run ${i} (N=${run.N}, n=${run.n}) act`);
    });
  });

  it('pipeline: true output reads back and feeds a second kernel', () => {
    const r = result(backend);
    ARGS.runs.forEach((run, i) => {
      const h = refAct(run.x, run.N, run.n);
      expectClose(r.runs[i].actPiped, h, `run ${i} pipeline readback`);
      expectClose(r.runs[i].chained, refChain(h, run.x), `run ${i} chained kernel`);
    });
  });

  it('asyncMode: true returns a Promise of the same values', () => {
    const r = result(backend);
    const a = ARGS.asyncRun!;
    expect(r.asyncRun?.returnedPromise).toBe(true);
    expectClose(r.asyncRun!.out, refAct(a.x, a.N, a.n), 'async act');
    // webasm splits >= 4096 cells across wasm worker threads when the page is
    // cross-origin isolated (SharedArrayBuffer): proves the COOP/COEP headers work.
    if (backend === 'webasm') expect(r.asyncRun?.lastRunPath).toBe('threaded');
  });

  it('API shape: Promises on webgpu only, Float32Array results, immutable keeps outputs', () => {
    const r = result(backend);
    const calls = r.observed.calls as string[];
    const callKind = backend === 'webgpu' ? 'Promise' : 'sync';
    expect(calls).toContain(`act():${callKind}`);
    expect(calls).toContain(`chain(handle):${callKind}`);
    expect(calls).toContain('act.readback:Float32Array');
    expect(calls).toContain('piped.readback:Float32Array');
    const pipelineType: Record<Backend, string> = {
      webgpu: 'WebGPUBufferResult',
      webgl2: 'GLTextureFloat',
      webasm: 'Float32Array',
      cpu: 'Float32Array',
    };
    expect(r.observed.pipelineOutputType).toBe(pipelineType[backend]);
    // with immutable: true, a second call never overwrites the first call's output
    expect(r.observed.immutable_true).toMatchObject({ firstCallKeptItsValues: true, secondCallValues: true, afterDeleteOk: true });
  });
});
