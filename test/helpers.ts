/** Shared test helpers: compiling fixtures into importable modules, loading cases, comparing. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile, type OptLevel } from '../src/driver.ts';
import { renderDiagnostics } from '../src/diagnostics/render.ts';

export const ROOT = new URL('..', import.meta.url).pathname;
export const FIXTURES = join(ROOT, 'test/fixtures');
export const OUT = join(ROOT, 'test/.out');

export interface CaseTensor {
  dtype?: string;
  shape: number[];
  data: number[];
  lengths?: number[];
}
export interface Case {
  inputs: Record<string, CaseTensor>;
  outputs: Record<string, CaseTensor>;
  notes?: string;
}

export function fixtureNames(): string[] {
  return (JSON.parse(readFileSync(join(FIXTURES, 'index.json'), 'utf8')) as { cases: { name: string }[] }).cases.map((c) => c.name);
}

export function loadCase(name: string): { spec: string; weights: Uint8Array; case: Case } {
  return {
    spec: readFileSync(join(FIXTURES, name, 'model.nn'), 'utf8'),
    weights: readFileSync(join(FIXTURES, name, 'weights.safetensors')),
    case: JSON.parse(readFileSync(join(FIXTURES, name, 'case.json'), 'utf8')) as Case,
  };
}

/** Compiles `spec` with the real pipeline and imports the generated module. */
export async function compileAndImport(name: string, spec: string, file = `${name}.nn`, level: OptLevel = 2): Promise<Record<string, any>> {
  const r = compile(spec, file, 'ts', level);
  if (r.output === undefined) throw new Error(`compile failed:\n${renderDiagnostics(r.diagnostics, spec)}`);
  mkdirSync(OUT, { recursive: true });
  const path = join(OUT, `${name}${level === 2 ? '' : `.O${level}`}.ts`);
  writeFileSync(path, r.output);
  return import(path);
}

export function toInputs(c: Case): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c.inputs)) {
    out[k] = { data: v.dtype === 'int32' ? Int32Array.from(v.data) : Float32Array.from(v.data), shape: v.shape, lengths: v.lengths };
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Whether headless-gl can run here (the `gl` package built and a display is available). */
export async function headlessGlAvailable(): Promise<boolean> {
  try {
    const { GPU } = (await import('gpu.js')) as unknown as { GPU: { isHeadlessGLSupported: boolean } };
    return GPU.isHeadlessGLSupported;
  } catch {
    return false;
  }
}

/** mulberry32: a small seeded PRNG, for deterministic fuzzing, weights and inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The case names listed in a fixture index (test/fixtures/seq2seq-index.json, lm-index.json). */
export function indexNames(index: string): string[] {
  return (JSON.parse(readFileSync(join(FIXTURES, index), 'utf8')) as { cases: { name: string }[] }).cases.map((c) => c.name);
}

/** Tolerances of the decoding suites: forward per backend, and generate()'s summed log-probs. */
export const DECODE_TOL: Record<string, number> = { cpu: 2e-5, wasm: 2e-5, webasm: 2e-4, gpu: 2e-4 };
export const SCORE_TOL = 1e-4;

/** [backend, level] runs of the decoding suites: every backend at -O2 and cpu unfused; gpu where headless-gl is (required under NNC_REQUIRE_GPU). */
export async function decodingRuns(): Promise<[string, 0 | 2][]> {
  const gl = await headlessGlAvailable();
  if (process.env.NNC_REQUIRE_GPU && !gl) throw new Error('NNC_REQUIRE_GPU is set but headless-gl is unavailable (is the gl package built, and is this run under xvfb-run?)');
  return [['wasm', 2], ['cpu', 2], ['cpu', 0], ['webasm', 2], ...(gl ? [['gpu', 2] as [string, 2]] : [])];
}

/** `{ ids, scores }` from generate(), with rows as plain arrays (typed rows compare by value too). */
export function plainResult(r: { ids: ArrayLike<number>[]; scores: ArrayLike<number> }): { ids: number[][]; scores: number[] } {
  return { ids: Array.from(r.ids, (row) => Array.from(row)), scores: Array.from(r.scores) };
}

/** A fixture compiled once per level; `withModel` runs `body` on a fresh model with the weights loaded. */
export function fixtureModels(name: string): { case: Case; withModel: (backend: string, level: 0 | 2, body: (model: any) => Promise<void>) => Promise<void> } {
  const { spec, weights, case: c } = loadCase(name);
  const modules = new Map<number, Promise<Record<string, any>>>();
  const compiled = (level: 0 | 2) => {
    if (!modules.has(level)) modules.set(level, compileAndImport(name, spec, `test/fixtures/${name}/model.nn`, level));
    return modules.get(level)!;
  };
  return {
    case: c,
    async withModel(backend, level, body) {
      const model = await (await compiled(level)).createModel({ backend });
      try {
        if (model.backend !== backend) throw new Error(`asked for backend '${backend}', got '${model.backend}'`);
        model.loadWeights(weights);
        await body(model);
      } finally {
        model.dispose();
      }
    },
  };
}
