/**
 * A bundled browser app on every backend (issue 19, item 1). The runtime used to take
 * `globalThis.GPU` for gpu.js, but in Chromium that is the browser's own WebGPU interface: an
 * esbuild-bundled page got "backend 'webasm' cannot run here: Failed to construct 'GPU': Illegal
 * constructor", and `gpu` said WebGL2 was missing where it works. gpu.js is now recognised by what
 * it is (gpujs.ts: a class whose instances create kernels).
 *
 * generated/brackets.ts (forward on its 40 held-out strings, one padded batch) and generated/dates.ts
 * (greedy decoding of its 12 held-out dates) are bundled into a page by esbuild and by Vite (Vite's
 * resolver and browser conditions; one ES module in library mode — test/browser/web.test.ts builds
 * the web example as a Vite app) and run in headless Chromium on every backend — webgpu, gpu (WebGL2),
 * webasm, wasm, cpu and auto — checked against PyTorch (examples/weights/*.test.json). A page that
 * imports gpu.js runs each gpu.js backend twice: gpu.js passed in (`createModel({ gpu: GPU })`), and
 * found as the global its browser build sets (the classifier only: SwiftShader decodes slowly). A page without gpu.js — where `globalThis.GPU` is the
 * WebGPU interface — runs wasm, cpu and auto, and a gpu.js backend is an error saying to install and
 * pass gpu.js. `auto` picks wasm: this Chromium's only WebGPU adapter is SwiftShader, in software.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleForBrowser, bundleWithVite, runInPage, withBrowser } from './harness.ts';
import type { BundledArgs, BundledResult, BundledRun } from './bundled.page.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const HERE = new URL('.', import.meta.url).pathname;
const brackets = JSON.parse(readFileSync(join(ROOT, 'examples/weights/brackets.test.json'), 'utf8')) as { examples: { ids: number[]; probs: [number, number] }[] };
const dates = JSON.parse(readFileSync(join(ROOT, 'examples/weights/dates.test.json'), 'utf8')) as {
  decode: { max_len: number; bos: number; eos: number };
  examples: { source_ids: number[]; greedy: { ids: number[]; score: number } }[];
};
const weights = (f: string) => readFileSync(join(ROOT, 'examples/weights', f)).toString('base64');
const ARGS: Omit<BundledArgs, 'runs'> = {
  brackets: { weights: weights('brackets.safetensors'), rows: brackets.examples.map((e) => e.ids) },
  dates: { weights: weights('dates.safetensors'), rows: dates.examples.map((e) => e.source_ids), maxLen: dates.decode.max_len, bos: dates.decode.bos, eos: dates.decode.eos },
};
const GPUJS_BACKENDS = ['webgpu', 'gpu', 'webasm'] as const;
const HOST_BACKENDS = ['wasm', 'cpu', 'auto'] as const;
/** what each request runs on in headless Chromium (auto: wasm, since the WebGPU adapter is SwiftShader's) */
const RUNS_ON: Record<string, string> = { webgpu: 'webgpu', gpu: 'gpu', webasm: 'webasm', wasm: 'wasm', cpu: 'cpu', auto: 'wasm' };
const PROB_TOL = 1e-4;
const SCORE_TOL = 1e-3;
const MISSING = "gpu.js is not installed: the webasm, gpu and webgpu backends need it (an optional peer dependency of nnc). Install it with 'npm install gpu.js'; in a bundled app also pass it in: import { GPU } from 'gpu.js' and createModel({ gpu: GPU }). The 'wasm' and 'cpu' backends need nothing more";

/** per page: [backend, gpu.js passed in, decode the dates too] — gpu.js found as the global runs the brackets only (SwiftShader is slow) */
const PAGES = {
  gpujs: { entry: 'bundled-gpujs.entry.ts', runs: [...GPUJS_BACKENDS.flatMap((b) => [[b, true, true], [b, false, false]] as [string, boolean, boolean][]), ...HOST_BACKENDS.map((b) => [b, false, true] as [string, boolean, boolean])] },
  plain: { entry: 'bundled-plain.entry.ts', runs: [...GPUJS_BACKENDS, ...HOST_BACKENDS].map((b) => [b, false, true] as [string, boolean, boolean]) },
};
const BUNDLERS = { esbuild: bundleForBrowser, vite: bundleWithVite };
type Key = `${keyof typeof BUNDLERS}/${keyof typeof PAGES}`;
const results = new Map<Key, BundledResult | Error>();

beforeAll(async () => {
  const bundles = new Map<Key, string | Error>();
  for (const [bundler, bundle] of Object.entries(BUNDLERS)) {
    for (const [page, { entry }] of Object.entries(PAGES)) {
      bundles.set(`${bundler}/${page}` as Key, await bundle(join(HERE, entry)).catch((e: Error) => e));
    }
  }
  await withBrowser(async (page) => {
    for (const [key, js] of bundles) {
      // a fresh document per bundle: gpu.js's browser build sets the global GPU for good
      await page.reload();
      if (js instanceof Error) results.set(key, js);
      else results.set(key, await runInPage<BundledResult>(page, js, 'run', { ...ARGS, runs: PAGES[key.split('/')[1] as keyof typeof PAGES].runs }).catch((e: Error) => e));
    }
  });
}, 600_000);

function result(key: Key): BundledResult {
  const r = results.get(key);
  if (!r) throw new Error(`no result for ${key}`);
  if (r instanceof Error) throw r;
  return r;
}
function run(key: Key, backend: string, passed: boolean): BundledRun {
  const r = result(key).runs.find((x) => x.requested === backend && x.passed === passed);
  if (!r) throw new Error(`${key}: no run of ${backend}`);
  return r;
}
function matchesPyTorch(r: BundledRun, decoded = true): void {
  expect(r.error, `${r.requested}: ${r.error?.message}`).toBeUndefined();
  brackets.examples.forEach((e, b) => e.probs.forEach((p, j) => expect(Math.abs(r.probs![b]![j]! - p), `brackets row ${b}`).toBeLessThanOrEqual(PROB_TOL)));
  if (!decoded) return;
  dates.examples.forEach((e, b) => {
    expect(r.ids![b], `dates row ${b}`).toEqual(e.greedy.ids);
    expect(Math.abs(r.scores![b]! - e.greedy.score), `dates score ${b}`).toBeLessThanOrEqual(SCORE_TOL);
  });
}

describe.each(Object.keys(BUNDLERS))('a page bundled by %s', (bundler) => {
  const withGpuJs = `${bundler}/gpujs` as Key;
  const plain = `${bundler}/plain` as Key;

  it('imports gpu.js: globalThis.GPU is gpu.js there; without it, the browser\'s WebGPU interface', () => {
    expect(result(withGpuJs).globalGPU).toBe('gpu.js');
    expect(result(plain).globalGPU).toBe('webgpu');
  });

  describe.each(GPUJS_BACKENDS)('%s', (backend) => {
    it.each([true, false])('gpu.js passed in: %s — runs on it and matches PyTorch (found as the global: the classifier only)', (passed) => {
      const r = run(withGpuJs, backend, passed);
      matchesPyTorch(r, passed);
      expect(r.backend).toBe(backend);
      expect(r.device).toMatch(/^gpu\.js /);
    });

    it('without gpu.js in the bundle: an error that says to install and pass it (not WebGPU\'s "Illegal constructor")', () => {
      expect(run(plain, backend, false).error).toEqual({ name: 'NncError', message: `backend '${backend}' cannot run here: ${MISSING}` });
    });
  });

  describe.each(HOST_BACKENDS)('%s', (backend) => {
    it.each(['gpujs', 'plain'])('in the %s page: runs on its backend and matches PyTorch', (page) => {
      const r = run(`${bundler}/${page}` as Key, backend, false);
      matchesPyTorch(r);
      expect(r.backend).toBe(RUNS_ON[backend]);
    });
  });
});
