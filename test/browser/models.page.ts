/**
 * Page-side half of models.test.ts: bundled (with the nnc-generated modules and gpu.js's browser
 * build) by bundleForBrowser() and run in Chromium. For one backend it runs every fixture it is
 * given — createModel, loadWeights(safetensors bytes), forward twice — and returns the raw outputs
 * plus what actually ran; the test compares them with PyTorch's outputs in Node.
 */
import { GPU } from 'gpu.js';

export type Backend = 'webgpu' | 'gpu' | 'wasm' | 'webasm' | 'cpu' | 'onnxruntime-web';

/** The part of a generated module the page uses. */
export interface ModelModule {
  createModel(options?: { backend?: string; gpu?: unknown; onnxruntime?: unknown; exporter?: unknown }): Promise<Model>;
}
interface Model {
  readonly backend: string;
  readonly device: string;
  loadWeights(src: Uint8Array): void;
  forward(inputs: Record<string, unknown>): Promise<Record<string, { data: Float32Array; shape: number[] }>>;
  generate(inputs: Record<string, unknown>, opts: Record<string, unknown>): Promise<{ ids: number[][]; scores: number[] }>;
  dispose(): void;
}

export interface FixtureInput {
  dtype?: string;
  shape: number[];
  data: number[];
  lengths?: number[];
}
export interface FixtureArgs {
  name: string;
  /** weights.safetensors, base64 */
  weights: string;
  inputs: Record<string, FixtureInput>;
  /** generate() options to run (from the fixture's PyTorch decoding references), on the first input */
  generate?: Record<string, unknown>[];
}
export interface RunArgs {
  backend: Backend | 'auto' | 'onnxruntime';
  fixtures: FixtureArgs[];
  /** forward calls per model (the second one catches state or buffer reuse across calls) */
  repeats: number;
  /** onnxruntime-web: the URL its .wasm file is served at (ort.env.wasm.wasmPaths.wasm) */
  ortWasm?: string;
}
export interface FixtureResult {
  name: string;
  backend: string | null;
  device: string | null;
  /** gpu.js kernel classes that ran (from the executor), empty on cpu */
  kernelClasses: string[];
  /** one entry per forward call */
  outputs: Record<string, { data: number[]; shape: number[] }>[];
  /** one entry per FixtureArgs.generate */
  generated: { ids: number[][]; scores: number[] }[];
  ms: number;
  error: string | null;
}

const b64ToBytes = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

function toInputs(inputs: Record<string, FixtureInput>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inputs)) {
    out[k] = { data: v.dtype === 'int32' ? Int32Array.from(v.data) : Float32Array.from(v.data), shape: v.shape, lengths: v.lengths };
  }
  return out;
}

async function runOne(mod: ModelModule, backend: RunArgs['backend'], f: FixtureArgs, repeats: number, extra: Record<string, unknown>): Promise<FixtureResult> {
  const r: FixtureResult = { name: f.name, backend: null, device: null, kernelClasses: [], outputs: [], generated: [], ms: 0, error: null };
  const t0 = performance.now();
  let model: Model | undefined;
  let stage = 'createModel';
  try {
    model = await mod.createModel({ backend, gpu: GPU, ...extra });
    r.backend = model.backend;
    r.device = model.device;
    stage = 'loadWeights';
    model.loadWeights(b64ToBytes(f.weights));
    for (let i = 0; i < repeats; i++) {
      stage = `forward #${i + 1}`;
      const out = await model.forward(toInputs(f.inputs));
      const plain: FixtureResult['outputs'][number] = {};
      for (const [k, v] of Object.entries(out)) plain[k] = { data: Array.from(v.data), shape: v.shape };
      r.outputs.push(plain);
    }
    for (const opts of f.generate ?? []) {
      stage = `generate ${JSON.stringify(opts)}`;
      const [first] = Object.keys(f.inputs);
      const g = await model.generate({ [first]: toInputs(f.inputs)[first] }, opts);
      r.generated.push({ ids: g.ids.map((row) => Array.from(row)), scores: Array.from(g.scores) });
    }
    // the executor is private to the model class, but it is a plain field at runtime
    const ex = (model as unknown as { ex?: { implementations?: () => string[] } }).ex;
    r.kernelClasses = [...new Set(ex?.implementations?.() ?? [])].sort();
    stage = 'dispose';
    const m = model;
    model = undefined;
    m.dispose();
  } catch (e) {
    r.error = `${stage}: ${(e as Error)?.stack ?? String(e)}`;
    try {
      model?.dispose();
    } catch {
      // already failing
    }
  }
  r.ms = Math.round(performance.now() - t0);
  return r;
}

/**
 * Runs every fixture on one backend; a failing fixture is reported in its result, never thrown.
 * `extra`: more createModel options (onnxruntime-web's: the onnxruntime and exporter modules).
 */
export async function runModels(modules: Record<string, ModelModule>, args: RunArgs, extra: Record<string, unknown> = {}): Promise<FixtureResult[]> {
  if (args.backend === 'webgpu' && !(await GPU.isWebGPUAvailable())) {
    throw new Error(`webgpu requested but GPU.isWebGPUAvailable() is false (navigator.gpu=${!!(navigator as { gpu?: unknown }).gpu})`);
  }
  const results: FixtureResult[] = [];
  for (const f of args.fixtures) {
    const mod = modules[f.name];
    if (!mod) throw new Error(`no bundled module for fixture ${f.name}`);
    results.push(await runOne(mod, args.backend, f, args.repeats, extra));
  }
  return results;
}
