/**
 * nnc-generated modules in headless Chromium, on every browser backend — webgpu, gpu (WebGL2),
 * wasm (nnc's WebAssembly SIMD GEMMs, with worker threads: the page is cross-origin isolated),
 * webasm, cpu — checked against the PyTorch fixtures (test/fixtures/*): the gpu.js backends within
 * 1e-4, wasm and cpu within 1e-5, as test/numeric.test.ts does in Node.
 *
 * Each fixture is compiled with the real pipeline into test/.out/browser-models/, bundled with
 * models.page.ts and gpu.js's browser build into one ES module, and run in one page per backend
 * (the browser starts once for the whole file). Each model runs forward twice: the second call
 * catches state or buffer reuse between calls. Backend 'onnxruntime-web' runs the same modules'
 * ONNX graphs on onnxruntime-web's WebAssembly execution provider (the page passes it and nnc/onnx,
 * the exporter, to createModel; its .wasm file is served beside the page), within 1e-4 of PyTorch,
 * with nnc's decoding loop on top: generate() gives PyTorch's ids. Never skips: a missing Chromium, WebGPU adapter or
 * WebGL2 context fails the tests (see docs/backends.md).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../../src/driver.ts';
import { renderDiagnostics } from '../../src/diagnostics/render.ts';
import { loadCase, maxAbsDiff, OUT, ROOT, type Case } from '../helpers.ts';
import { bundleForBrowser, runInPage, serveFile, withBrowser } from './harness.ts';
import type { Backend, FixtureArgs, FixtureResult, RunArgs } from './models.page.ts';

const BACKENDS: Backend[] = ['webgpu', 'gpu', 'wasm', 'webasm', 'cpu', 'onnxruntime-web'];
const TOL: Record<Backend, number> = { webgpu: 1e-4, gpu: 1e-4, wasm: 1e-5, webasm: 1e-4, cpu: 1e-5, 'onnxruntime-web': 1e-4 };
/** the gpu.js kernel class each backend must run on (gpu.js falls back quietly otherwise) */
const KERNEL_CLASS: Record<Backend, string | null> = { webgpu: 'WebGPUKernel', gpu: 'WebGL2Kernel', wasm: null, webasm: 'WebAssemblyKernel', cpu: null, 'onnxruntime-web': null };
/** onnxruntime-web's WebAssembly build, which its bundled entry (JavaScript glue included) fetches from env.wasm.wasmPaths.wasm */
const ORT_WASM = 'ort-wasm-simd-threaded.wasm';
const FIXTURES = [
  'lstm',
  'lstm_bidir',
  'lstm_layers3',
  'gru_reset_before',
  'gru_bidir_layers2_after',
  'rnn_relu',
  'pool_max_gru_bidir',
  'pool_last_gru_bidir',
  'pool_mean_gru',
  'layernorm',
  'linear_gelu',
  'linear_log_softmax',
  'nplm_flatten',
  'char_lm',
  'sentence_classifier',
  'pos_tagger',
  'lstm_long_t40',
  'lstm_bidir_layers3_vectors',
  // encoder–decoder models with attention (test/fixtures/make_seq2seq_fixtures.py): forward, and
  // generate() against PyTorch's decoding loop where the fixture has one
  's2s_additive_bahdanau',
  's2s_general_luong',
  's2s_heads_luong_diff',
  's2s_location_bahdanau',
  's2s_bridge_bilstm_lstm',
  's2s_cosine_bahdanau',
  'lm_lstm_layers2_log_softmax',
  // Transformers (test/fixtures/make_transformer_fixtures.py): stock encoder/decoder layers, a
  // pre-norm causal LM and gated self-attention; generate() runs over the key/value cache
  'tf_encoder_postnorm_classifier',
  'tf_lm_prenorm_learned',
  'tf_gated_additive_causal',
  'tf_translator',
];
/**
 * Two post-norm Transformers come out 1.1e-4 and 3.7e-4 from PyTorch on Chromium's SwiftShader
 * (identically on its WebGL2 and WebGPU paths), while the same kernels on headless-gl (Mesa) in
 * Node are within 3e-6 (test/transformer.test.ts): SwiftShader's float arithmetic, not the kernels.
 */
const SWIFTSHADER_TOL: Record<string, number> = { tf_encoder_postnorm_classifier: 5e-4, tf_translator: 5e-4 };
const REPEATS = 2;
/** per backend: the whole set takes seconds to a minute on SwiftShader (a loaded 2-core machine: 60 s was not always enough for WebGL2) */
const PAGE_TIMEOUT_MS = 150_000;

const cases = new Map<string, Case>();
const results = new Map<Backend, Map<string, FixtureResult> | Error>();
/**
 * `backend: 'auto'` on one fixture: this Chromium's only WebGPU adapter is SwiftShader (software, a
 * fallback adapter), several times slower than wasm, so auto must pick wasm
 */
const AUTO_FIXTURE = 'lstm';
let autoResult: FixtureResult | Error | undefined;
/** `backend: 'onnxruntime'` in a page: onnxruntime-web (in Node it is onnxruntime-node) */
const ORT_FIXTURE = 's2s_additive_bahdanau';
let ortResult: FixtureResult | Error | undefined;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Compiles every fixture into one directory next to an entry that bundles them with the page. */
function writeBundleSources(): { entry: string; fixtures: FixtureArgs[] } {
  const dir = join(OUT, 'browser-models');
  mkdirSync(dir, { recursive: true });
  const fixtures: FixtureArgs[] = [];
  const imports: string[] = [];
  const table: string[] = [];
  FIXTURES.forEach((name, i) => {
    const { spec, weights, case: c } = loadCase(name);
    const file = `test/fixtures/${name}/model.nn`;
    const r = compile(spec, file, 'ts', 2);
    if (r.output === undefined) throw new Error(`${name}: compile failed:\n${renderDiagnostics(r.diagnostics, spec)}`);
    writeFileSync(join(dir, `${name}.ts`), r.output);
    imports.push(`import * as m${i} from './${name}.ts';`);
    table.push(`  ${JSON.stringify(name)}: m${i},`);
    cases.set(name, c);
    const gen = (c as Case & { generate?: { opts: Record<string, unknown> }[] }).generate ?? [];
    fixtures.push({ name, weights: Buffer.from(weights).toString('base64'), inputs: c.inputs, generate: gen.map((g) => g.opts) });
  });
  const page = new URL('./models.page.ts', import.meta.url).pathname;
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    [
      '// Written by test/browser/models.test.ts: the generated modules and the page, bundled together.',
      `import { runModels, type ModelModule, type RunArgs } from ${JSON.stringify(page)};`,
      "import * as ort from 'onnxruntime-web/wasm';",
      "import * as exporter from 'nnc/onnx';",
      ...imports,
      `const MODULES = {\n${table.join('\n')}\n} as unknown as Record<string, ModelModule>;`,
      'export const run = (args: RunArgs) => {',
      "  if (args.backend !== 'onnxruntime-web' && args.backend !== 'onnxruntime') return runModels(MODULES, args);",
      '  ort.env.wasm.wasmPaths = { wasm: args.ortWasm };',
      '  return runModels(MODULES, args, { onnxruntime: ort, exporter });',
      '};',
      '',
    ].join('\n'),
  );
  return { entry, fixtures };
}

beforeAll(async () => {
  const { entry, fixtures } = writeBundleSources();
  const js = await bundleForBrowser(entry);
  await withBrowser(async (page) => {
    const wasm = serveFile(page, `/ort/${ORT_WASM}`, readFileSync(join(ROOT, 'node_modules/onnxruntime-web/dist', ORT_WASM)), 'application/wasm');
    for (const backend of BACKENDS) {
      const args: RunArgs = { backend, fixtures, repeats: REPEATS, ...(backend === 'onnxruntime-web' ? { ortWasm: wasm } : {}) };
      try {
        const rs = await withTimeout(runInPage<FixtureResult[]>(page, js, 'run', args), PAGE_TIMEOUT_MS, `${backend}: run()`);
        results.set(backend, new Map(rs.map((r) => [r.name, r])));
      } catch (e) {
        results.set(backend, e as Error);
      }
    }
    const args: RunArgs = { backend: 'auto', fixtures: fixtures.filter((f) => f.name === AUTO_FIXTURE), repeats: 1 };
    autoResult = await withTimeout(runInPage<FixtureResult[]>(page, js, 'run', args), PAGE_TIMEOUT_MS, 'auto: run()').then(
      (rs) => rs[0],
      (e: Error) => e,
    );
    const ortArgs: RunArgs = { backend: 'onnxruntime', fixtures: fixtures.filter((f) => f.name === ORT_FIXTURE), repeats: 1, ortWasm: wasm };
    ortResult = await withTimeout(runInPage<FixtureResult[]>(page, js, 'run', ortArgs), PAGE_TIMEOUT_MS, 'onnxruntime: run()').then(
      (rs) => rs[0],
      (e: Error) => e,
    );
  });
}, 6 * 150_000);

/** max |nnc - torch| over every output and forward call, or a reason it could not be compared */
function maxError(r: FixtureResult, c: Case): number {
  let worst = 0;
  for (const out of r.outputs) {
    for (const [key, want] of Object.entries(c.outputs)) {
      const got = out[key];
      const d = got && JSON.stringify(got.shape) === JSON.stringify(want.shape) ? maxAbsDiff(got.data, want.data) : Infinity;
      if (!(d <= worst)) worst = d;
    }
  }
  return worst;
}

function result(backend: Backend, name: string): FixtureResult {
  const rs = results.get(backend);
  if (!rs) throw new Error(`no result for ${backend}: the browser run did not get that far`);
  if (rs instanceof Error) throw rs;
  const r = rs.get(name);
  if (!r) throw new Error(`no result for ${name} on ${backend}`);
  return r;
}

afterAll(() => {
  // the matrix, for humans reading the log: max error (or FAIL) per fixture and backend
  const cell = (b: Backend, n: string): string => {
    try {
      const r = result(b, n);
      if (r.error) return 'ERROR';
      return `${maxError(r, cases.get(n)!).toExponential(1)} ${r.ms}ms`;
    } catch {
      return 'ERROR';
    }
  };
  const rows = FIXTURES.map((n) => `${n.padEnd(28)}${BACKENDS.map((b) => cell(b, n).padEnd(18)).join('')}`);
  console.log(`${''.padEnd(28)}${BACKENDS.map((b) => b.padEnd(18)).join('')}\n${rows.join('\n')}`);
});

describe.each(BACKENDS)('generated modules in Chromium: %s', (backend) => {
  it.each(FIXTURES)(`%s matches PyTorch on ${backend}`, (name) => {
    const r = result(backend, name);
    if (r.error) throw new Error(`${name} on ${backend}: ${r.error}`);
    expect(r.backend, 'model.backend').toBe(backend);
    const cls = KERNEL_CLASS[backend];
    if (cls) expect(r.kernelClasses, 'gpu.js kernel classes that ran').toEqual([cls]);
    // the page is cross-origin isolated and Chromium reports 2 or more cores: GEMMs use worker threads
    if (backend === 'wasm') expect(r.device).toMatch(/nnc wasm \(WebAssembly SIMD GEMM, [2-4] threads\)/);
    if (backend === 'onnxruntime-web') expect(r.device).toBe('onnxruntime-web (wasm)');
    expect(r.outputs).toHaveLength(REPEATS);
    const c = cases.get(name)!;
    r.outputs.forEach((out, call) => {
      for (const [key, want] of Object.entries(c.outputs)) {
        expect(out[key]?.shape, `${key} shape (forward #${call + 1})`).toEqual(want.shape);
        const err = maxAbsDiff(out[key].data, want.data);
        const tol = backend === 'webgpu' || backend === 'gpu' ? Math.max(TOL[backend], SWIFTSHADER_TOL[name] ?? 0) : TOL[backend];
        expect(err, `max |nnc - torch| for ${key} (forward #${call + 1})`).toBeLessThanOrEqual(tol);
      }
    });
    // decoding: the same ids as PyTorch's loop, scores within 1e-4
    const refs = (c as Case & { generate?: { opts: unknown; ids: number[][]; scores: number[] }[] }).generate ?? [];
    expect(r.generated).toHaveLength(refs.length);
    refs.forEach((ref, k) => {
      expect(r.generated[k].ids, `generate ${JSON.stringify(ref.opts)} ids`).toEqual(ref.ids);
      r.generated[k].scores.forEach((v, b) => expect(Math.abs(v - ref.scores[b]), `score of row ${b}`).toBeLessThanOrEqual(1e-4));
    });
  });
});

describe('generated modules in Chromium: auto', () => {
  it(`backend 'auto' picks wasm over the software WebGPU adapter and matches PyTorch (${AUTO_FIXTURE})`, () => {
    const r = autoResult;
    if (!r) throw new Error('no result for auto: the browser run did not get that far');
    if (r instanceof Error) throw r;
    if (r.error) throw new Error(`${AUTO_FIXTURE} on auto: ${r.error}`);
    expect(r.backend, 'model.backend').toBe('wasm');
    expect(r.kernelClasses).toEqual([]);
    const err = maxError(r, cases.get(AUTO_FIXTURE)!);
    expect(err, 'max |nnc - torch|').toBeLessThanOrEqual(TOL.wasm);
  });
});

describe('generated modules in Chromium: onnxruntime', () => {
  it(`backend 'onnxruntime' in a page runs on onnxruntime-web and matches PyTorch, forward and generate() (${ORT_FIXTURE})`, () => {
    const r = ortResult;
    if (!r) throw new Error('no result for onnxruntime: the browser run did not get that far');
    if (r instanceof Error) throw r;
    if (r.error) throw new Error(`${ORT_FIXTURE} on onnxruntime: ${r.error}`);
    expect([r.backend, r.device]).toEqual(['onnxruntime', 'onnxruntime-web (wasm)']);
    expect(maxError(r, cases.get(ORT_FIXTURE)!), 'max |nnc - torch|').toBeLessThanOrEqual(TOL['onnxruntime-web']);
    const refs = (cases.get(ORT_FIXTURE) as Case & { generate?: { ids: number[][] }[] }).generate ?? [];
    expect(refs.length).toBeGreaterThan(0);
    expect(r.generated.map((g) => g.ids)).toEqual(refs.map((g) => g.ids));
  });
});
