/**
 * How the runtime finds gpu.js (issue 19, items 1 and 2; issue 12's "gpu.js is resolved from
 * process.cwd()").
 *
 *  - gpu.js is recognised by what it is — a class whose instances create kernels — never by the
 *    name of a global: in Chromium `globalThis.GPU` is the browser's own WebGPU interface, which
 *    cannot be constructed ("Failed to construct 'GPU': Illegal constructor"). Emulated here by a
 *    global `GPU` that throws just so; test/browser/bundled.test.ts runs the real thing.
 *  - It is resolved from where nnc's runtime lives, and from where the generated module lives (the
 *    app), whatever the working directory — never from the working directory. Each case is a real
 *    process (node with tsx, as an app runs a .ts module) started from a directory elsewhere, on a
 *    layout built in a temporary directory: nnc linked from outside the app (npm link) with gpu.js
 *    in the app, nnc installed in the app beside gpu.js, and an app without gpu.js (whose working
 *    directory has one that must not be used). What runs is checked against PyTorch
 *    (examples/weights/brackets.test.json).
 *  - gpu.js is an optional peer dependency: without it `wasm` and `cpu` run and `auto` picks `wasm`,
 *    and a GPU backend is an error that names the install command.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { gpuJsClass, loadGpuJs } from '../src/runtime/gpujs.ts';
import { createExecutor } from '../src/runtime/backends.ts';
import { NncError } from '../src/runtime/errors.ts';
import { ROOT } from './helpers.ts';
import { readFile } from 'node:fs/promises';

const held = JSON.parse(readFileSync(join(ROOT, 'examples/weights/brackets.test.json'), 'utf8')) as { examples: { ids: number[]; probs: [number, number] }[] };
const PROB_TOL = 1e-4;
const MISSING = "gpu.js is not installed: the webasm, gpu and webgpu backends need it (an optional peer dependency of nnc). Install it with 'npm install gpu.js'; in a bundled app also pass it in: import { GPU } from 'gpu.js' and createModel({ gpu: GPU }). The 'wasm' and 'cpu' backends need nothing more";

/** What the browser's WebGPU interface looks like to a script: a function called GPU that cannot be constructed. */
class WebGpuInterface {
  constructor() {
    throw new TypeError("Failed to construct 'GPU': Illegal constructor");
  }
  requestAdapter(): Promise<null> {
    return Promise.resolve(null);
  }
}
Object.defineProperty(WebGpuInterface, 'name', { value: 'GPU' });

describe('gpu.js is recognised by what it is', () => {
  it('its class, its module namespace and its CommonJS export are gpu.js; WebGPU\'s GPU interface is not', async () => {
    const ns = await import('gpu.js');
    const GPU = (ns as unknown as { GPU: unknown }).GPU;
    expect(gpuJsClass(GPU)).toBe(GPU);
    expect(gpuJsClass(ns)).toBe(GPU);
    expect(gpuJsClass({ default: GPU })).toBe(GPU);
    expect(gpuJsClass({ default: { GPU } })).toBe(GPU);
    expect(gpuJsClass(WebGpuInterface)).toBeUndefined();
    expect(gpuJsClass({ GPU: WebGpuInterface })).toBeUndefined();
    expect(gpuJsClass(undefined)).toBeUndefined();
  });

  it('a global GPU that is the browser\'s WebGPU interface is passed over: webasm runs on gpu.js', async () => {
    const g = globalThis as { GPU?: unknown };
    const before = Object.getOwnPropertyDescriptor(g, 'GPU');
    g.GPU = WebGpuInterface;
    try {
      const ex = await createExecutor({ backend: 'webasm' });
      expect(ex.backend).toBe('webasm');
      ex.dispose();
    } finally {
      if (before) Object.defineProperty(g, 'GPU', before);
      else delete g.GPU;
    }
  });

  it('a gpu option that is not gpu.js is refused, whichever backend was asked for', async () => {
    for (const backend of ['webasm', 'wasm', 'auto'] as const) {
      const e = await createExecutor({ backend, gpu: { requestAdapter() {} } }).then(() => undefined, (x: Error) => x);
      expect(e).toBeInstanceOf(NncError);
      expect(e?.message).toBe("the gpu option must be gpu.js's GPU class or module (import { GPU } from 'gpu.js'; createModel({ gpu: GPU })), got Object");
    }
    await expect(loadGpuJs(WebGpuInterface)).rejects.toThrow(/got Function$/);
  });
});

describe('gpu.js is resolved from nnc and from the app, not from the working directory', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'nnc-gpujs-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const tsx = new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url).href;
  const gpuJs = join(ROOT, 'node_modules/gpu.js');

  // nnc as a package of its own: the runtime, its one dependency (installed with it) and a package.json whose exports name it
  const nnc = join(tmp, 'nnc');
  cpSync(join(ROOT, 'src/runtime'), join(nnc, 'src/runtime'), { recursive: true });
  mkdirSync(join(nnc, 'node_modules/@huggingface'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules/@huggingface/tokenizers'), join(nnc, 'node_modules/@huggingface/tokenizers'), 'dir');
  writeFileSync(join(nnc, 'package.json'), JSON.stringify({ name: 'nnc', type: 'module', exports: { './runtime': './src/runtime/index.ts' } }));
  const spec = readFileSync(join(ROOT, 'examples/brackets.nn'), 'utf8');
  const module = compile(spec, 'brackets.nn', 'ts', 2).output!;
  const main = `
    import { readFileSync } from 'node:fs';
    import { createModel } from './gen/brackets.ts';
    const [backend, weights, ids] = process.argv.slice(2);
    try {
      const m = await createModel({ backend });
      m.loadWeights(readFileSync(weights));
      const x = JSON.parse(ids);
      const r = await m.forward({ text: { data: Int32Array.from(x), shape: [1, x.length] } });
      console.log(JSON.stringify({ backend: m.backend, probs: Array.from(r.label.data) }));
      m.dispose();
    } catch (e) {
      console.log(JSON.stringify({ name: e.name, error: e.message }));
    }
  `;
  /** An app: its generated module and main.ts, and node_modules/{nnc, gpu.js} as given. */
  function app(name: string, modules: { nnc: 'link' | 'copy'; gpuJs: boolean }): string {
    const dir = join(tmp, name);
    mkdirSync(join(dir, 'gen'), { recursive: true });
    mkdirSync(join(dir, 'node_modules'));
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(dir, 'gen/brackets.ts'), module);
    writeFileSync(join(dir, 'main.ts'), main);
    if (modules.nnc === 'link') symlinkSync(nnc, join(dir, 'node_modules/nnc'), 'dir');
    else cpSync(nnc, join(dir, 'node_modules/nnc'), { recursive: true });
    if (modules.gpuJs) symlinkSync(gpuJs, join(dir, 'node_modules/gpu.js'), 'dir');
    return dir;
  }
  // the working directory: a project of its own that has gpu.js, which none of the apps may use
  const elsewhere = join(tmp, 'elsewhere');
  mkdirSync(join(elsewhere, 'node_modules'), { recursive: true });
  writeFileSync(join(elsewhere, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(gpuJs, join(elsewhere, 'node_modules/gpu.js'), 'dir');

  // and a working directory with nothing in it
  const bare = join(tmp, 'bare');
  mkdirSync(bare);

  function run(dir: string, backend: string, cwd = bare): { backend?: string; probs?: number[]; name?: string; error?: string } {
    const e = held.examples[0]!;
    const r = spawnSync(process.execPath, ['--import', tsx, join(dir, 'main.ts'), backend, join(ROOT, 'examples/weights/brackets.safetensors'), JSON.stringify(e.ids)], { cwd, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`main.ts exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  }
  const matchesPyTorch = (probs: number[] | undefined) => {
    expect(probs).toHaveLength(2);
    held.examples[0]!.probs.forEach((p, j) => expect(Math.abs(probs![j]! - p)).toBeLessThanOrEqual(PROB_TOL));
  };

  it('nnc linked from outside the app, gpu.js installed in the app: found from the generated module', () => {
    const r = run(app('linked', { nnc: 'link', gpuJs: true }), 'webasm');
    expect(r.error).toBeUndefined();
    expect(r.backend).toBe('webasm');
    matchesPyTorch(r.probs);
  });

  it('nnc installed in the app beside gpu.js: found from nnc', () => {
    const r = run(app('installed', { nnc: 'copy', gpuJs: true }), 'webasm');
    expect(r.error).toBeUndefined();
    expect(r.backend).toBe('webasm');
    matchesPyTorch(r.probs);
  });

  it('an app without gpu.js: wasm and cpu run, auto picks wasm, a GPU backend names the install command (the working directory\'s gpu.js is not used)', async () => {
    const dir = app('without', { nnc: 'link', gpuJs: false });
    for (const backend of ['wasm', 'cpu']) {
      const r = run(dir, backend, elsewhere);
      expect(r.backend, r.error).toBe(backend);
      matchesPyTorch(r.probs);
    }
    expect(run(dir, 'auto', elsewhere).backend).toBe('wasm');
    for (const backend of ['webasm', 'gpu']) {
      expect(run(dir, backend, elsewhere)).toEqual({ name: 'NncError', error: `backend '${backend}' cannot run here: ${MISSING}` });
    }
    // the package itself: gpu.js is an optional peer (kept as a devDependency, so this repository builds gl for its tests)
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.dependencies?.['gpu.js']).toBeUndefined();
    expect(pkg.peerDependencies?.['gpu.js']).toBeDefined();
    expect(pkg.peerDependenciesMeta?.['gpu.js']?.optional).toBe(true);
    expect(pkg.devDependencies?.['gpu.js']).toBe(pkg.peerDependencies['gpu.js']);
  });
});
