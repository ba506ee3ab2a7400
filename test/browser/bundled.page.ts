/**
 * Page side of test/browser/bundled.test.ts: two generated modules used as an app uses them
 * (generated/brackets.ts: forward on a padded batch; generated/dates.ts: greedy decoding), bundled by
 * esbuild or Vite into a page. Two entries share this code: bundled-gpujs.entry.ts imports gpu.js
 * (which also makes its browser build set a global `GPU`), bundled-plain.entry.ts does not — there
 * `globalThis.GPU` is the browser's own WebGPU interface, the case of issue 19, item 1.
 */
import { createModel as createBrackets } from '../../generated/brackets.ts';
import { createModel as createDates } from '../../generated/dates.ts';

export interface BundledArgs {
  /** [backend, pass gpu.js in as createModel({ gpu }), decode the dates too (not only the brackets' forward)] */
  runs: [string, boolean, boolean][];
  brackets: { weights: string; rows: number[][] };
  dates: { weights: string; rows: number[][]; maxLen: number; bos: number; eos: number };
}
export interface BundledRun {
  requested: string;
  passed: boolean;
  backend?: string;
  device?: string;
  probs?: number[][];
  ids?: number[][];
  scores?: number[];
  error?: { name: string; message: string };
}
export interface BundledResult {
  /** what `globalThis.GPU` is in this page: 'gpu.js', 'webgpu' (a function that is not gpu.js) or 'none' */
  globalGPU: string;
  runs: BundledRun[];
}

const bytes = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
function padded(rows: number[][]) {
  const T = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * T);
  rows.forEach((r, b) => data.set(r, b * T));
  return { data, shape: [rows.length, T], lengths: rows.map((r) => r.length) };
}

export async function runBundled(args: BundledArgs, gpu?: unknown): Promise<BundledResult> {
  const g = (globalThis as { GPU?: { prototype?: { createKernel?: unknown } } }).GPU;
  const globalGPU = g === undefined ? 'none' : typeof g.prototype?.createKernel === 'function' ? 'gpu.js' : 'webgpu';
  const runs: BundledRun[] = [];
  for (const [requested, passed, decode] of args.runs) {
    const options = { backend: requested as 'auto', ...(passed ? { gpu } : {}) };
    const run: BundledRun = { requested, passed };
    try {
      const b = await createBrackets(options);
      run.backend = b.backend;
      run.device = b.device;
      b.loadWeights(bytes(args.brackets.weights));
      const out = await b.forward({ text: padded(args.brackets.rows) });
      run.probs = args.brackets.rows.map((_, i) => Array.from(out.label.data.slice(2 * i, 2 * i + 2)));
      b.dispose();
      if (!decode) {
        runs.push(run);
        continue;
      }
      const d = await createDates(options);
      d.loadWeights(bytes(args.dates.weights));
      const { maxLen, bos, eos } = args.dates;
      const r = await d.generate({ source: padded(args.dates.rows) }, { strategy: 'greedy', maxLen, bos, eos });
      run.ids = r.ids;
      run.scores = r.scores;
      d.dispose();
    } catch (e) {
      run.error = { name: String((e as Error).name), message: String((e as Error).message) };
    }
    runs.push(run);
  }
  return { globalGPU, runs };
}
