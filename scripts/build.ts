/**
 * `npm run build`: the package as it ships, in dist/ (package.json "bin", "exports", "files").
 *
 *   dist/graphviz.cjs            Graphviz (WebAssembly), which `nnc graph` loads, and protobufjs,
 *   dist/protobuf.cjs            which `nnc onnx` and `nnc torch` load (APART below)
 *   dist/cli.cjs                 the `nnc` command: one CommonJS bundle, which bin/nnc.js loads
 *                                through V8's code cache (dist/require-cached.cjs); the modules
 *                                behind the CLI's dynamic imports (the compiler, the language server,
 *                                graph, fmt, torch) are run only by the commands that import them
 *   dist/index.js                `import { compile } from 'nnc'` (ESM)
 *   dist/runtime.js              `nnc/runtime`, what generated modules import (ESM; Node, browsers,
 *                                bundlers)
 *   dist/train.js                `nnc/train` (ESM), which imports the runtime's error classes from
 *                                dist/runtime.js (one NncError for instanceof)
 *   dist/onnx.js                 `nnc/onnx`: the front end and the ONNX exporter alone (no Node
 *                                modules), which the onnxruntime backends take in a page
 *   dist/cjs/{index,runtime,train,onnx}.js  the same four for `require()` (dist/cjs/package.json says CommonJS)
 *   dist/types/, dist/cjs/types/ declarations (tsc), ESM and CommonJS flavours of one text
 *
 * Everything is bundled except ts-morph (and TypeScript under it), which only `nnc compile --format
 * js` needs (to erase types and write declarations): it is loaded on first use through a lazy
 * stand-in (lazyTsMorph below), so no other command loads the TypeScript compiler.
 * vscode-languageserver stays external too (a dependency, loaded only by `nnc lsp`). The Graphviz
 * build (@hpcc-js/wasm-graphviz, an ES module, 0.8 MB: nearly half of what the CLI bundle was) and
 * protobufjs are bundled on their own beside it, and require()d by the commands that use them (the
 * CLI bundle, compiled through the code cache, cannot run import() on Node 20:
 * src/require-cached.ts).
 *
 *   tsx scripts/build.ts            everything
 *   tsx scripts/build.ts --js       the bundles only (what tests and bin/nnc.js need; ~1 s)
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import * as esbuild from 'esbuild';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
/** Packages the bundles load at run time rather than carry (package.json "dependencies", besides ts-morph). */
const EXTERNAL = ['vscode-languageserver', 'vscode-languageserver/node', 'vscode-languageserver-textdocument'];

/**
 * Packages only some commands use, each bundled alone beside dist/cli.cjs (dist/<name>.cjs): in the
 * CLI bundle the package is a require() of that file, run when the module importing it is first
 * loaded — by `nnc graph` (Graphviz), `nnc onnx` and `nnc torch` (protobufjs) — so every other command
 * reads, hashes and compiles a bundle that is half the size.
 */
const APART: Record<string, string> = { graphviz: '@hpcc-js/wasm-graphviz', protobuf: 'protobufjs/light.js' };
const apart: esbuild.Plugin = {
  name: 'apart',
  setup(b) {
    for (const [name, pkg] of Object.entries(APART)) {
      b.onResolve({ filter: new RegExp(`^${pkg.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`) }, () => ({ path: name, namespace: 'nnc-apart' }));
    }
    b.onResolve({ filter: /^\.\/[a-z]+\.cjs$/, namespace: 'nnc-apart' }, (a) => ({ path: a.path, external: true }));
    b.onLoad({ filter: /.*/, namespace: 'nnc-apart' }, (a) => ({ resolveDir: ROOT, loader: 'js', contents: `module.exports = require('./${a.path}.cjs');` }));
  },
};

/**
 * ts-morph as a module whose every export is a stand-in that loads the real package on first use
 * (a property read, a call or `new`), with V8's code cache (src/require-cached.ts). emit-js.ts's
 * `import { Project, ts } from 'ts-morph'` stays as it is; only the bundle decides when TypeScript
 * is loaded (by `nnc compile --format js`).
 */
function lazyTsMorph(format: 'esm' | 'cjs'): esbuild.Plugin {
  return {
    name: 'lazy-ts-morph',
    setup(b) {
      b.onResolve({ filter: /^ts-morph$/ }, () => ({ path: 'ts-morph', namespace: 'nnc-lazy' }));
      b.onLoad({ filter: /.*/, namespace: 'nnc-lazy' }, () => {
        const names = Object.keys(createRequire(join(ROOT, 'package.json'))('ts-morph') as object).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== 'default');
        return {
          resolveDir: ROOT,
          loader: 'js',
          contents: `import { requireCached } from ${JSON.stringify(join(ROOT, 'src/require-cached.ts'))};
let real;
const load = (name) => (real ??= requireCached('ts-morph', ${format === 'esm' ? 'import.meta.url' : '__filename'}))[name];
const lazy = (name) => new Proxy(function () {}, {
  get: (_, p) => load(name)[p],
  has: (_, p) => p in load(name),
  construct: (_, args) => new (load(name))(...args),
  apply: (_, self, args) => load(name).apply(self, args),
});
${names.map((n) => `export const ${n} = lazy(${JSON.stringify(n)});`).join('\n')}
`,
        };
      });
    },
  };
}

/**
 * The CLI's `nnc train` runs models it compiles in-process against `nnc/runtime`: the CLI bundle
 * loads the package's CommonJS runtime (dist/cjs/runtime.js) with a plain require at that moment,
 * instead of carrying a copy, since the runtime's own import() calls (worker threads, node: modules)
 * cannot run inside the code-cached bundle (src/require-cached.ts).
 */
function runtimeBeside(): esbuild.Plugin {
  return {
    name: 'runtime-beside',
    setup(b) {
      b.onResolve({ filter: /^\.\/runtime\/index\.ts$/ }, (a) => (a.importer.endsWith('cli-train.ts') ? { path: 'runtime', namespace: 'nnc-runtime' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'nnc-runtime' }, () => ({ loader: 'js', contents: 'module.exports = require(require("node:path").join(__dirname, "cjs", "runtime.js"));' }));
    },
  };
}

/**
 * nnc/train imports the runtime's error classes from the runtime bundle beside it (dist/runtime.js,
 * dist/cjs/runtime.js) instead of carrying copies: an app's `instanceof NncError` (imported from
 * nnc/runtime) holds for a trainer's errors too. The runtime's index exports them.
 */
const sharedErrors: esbuild.Plugin = {
  name: 'shared-errors',
  setup(b) {
    const errors = join(ROOT, 'src/runtime/errors.ts');
    b.onResolve({ filter: /errors\.ts$/ }, (a) => (join(a.resolveDir, a.path) === errors ? { path: './runtime.js', external: true } : undefined));
  },
};

const common: esbuild.BuildOptions = {
  bundle: true,
  target: 'es2022',
  logLevel: 'warning',
  legalComments: 'none',
  // the runtime's `import(/* @vite-ignore */ spec)` of node: modules and gpu.js stays dynamic
  logOverride: { 'unsupported-dynamic-import': 'silent' },
};

/** The bundles with no platform assumptions (browsers, bundlers, Node); packages by their "module" or "main" field where they have no "exports". */
const NEUTRAL_ENTRIES = { runtime: 'src/runtime/index.ts', onnx: 'src/export/onnx-spec.ts' };
const neutral: esbuild.BuildOptions = { platform: 'neutral', mainFields: ['module', 'main'] };

/** The JavaScript bundles. */
export async function buildJs(): Promise<void> {
  mkdirSync(join(DIST, 'cjs'), { recursive: true });
  // files the sources read beside themselves (new URL('./x.py', import.meta.url)): beside the CLI
  for (const f of readdirSync(join(ROOT, 'src/export')).filter((x) => x.endsWith('.py'))) cpSync(join(ROOT, 'src/export', f), join(DIST, f));
  writeFileSync(join(DIST, 'cjs/package.json'), '{ "type": "commonjs" }\n');
  // the compiler and the CLI: less to parse at every start (names kept: stack traces with NNC_DEBUG=1
  // still read), and the grammar's checks skipped (grammar/tokens.ts, GRAMMAR_CHECKED); not the
  // runtime, whose `import(spec)` of node: modules and gpu.js must stay opaque to an app's bundler
  // (constant folding would turn them into `import("node:…")`, which a browser bundle cannot
  // resolve), and which the app's bundler minifies anyway
  const node = { ...common, minifyWhitespace: true, minifySyntax: true, platform: 'node' as const, external: EXTERNAL };
  const grammarChecked = { NNC_GRAMMAR_CHECKED: 'true' };
  // CommonJS has no import.meta: the module's own URL (the runtime's worker mode loads it by URL,
  // the CLI reads files beside it) from __filename
  const cjs = (define: Record<string, string> = {}): esbuild.BuildOptions => ({
    format: 'cjs', define: { 'import.meta.url': '__nncModuleUrl', ...define }, banner: { js: 'var __nncModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  });
  await Promise.all([
    esbuild.build({
      ...node, ...cjs(grammarChecked), entryPoints: { cli: 'src/cli.ts', 'require-cached': 'src/require-cached.ts' }, outdir: DIST, outExtension: { '.js': '.cjs' },
      plugins: [lazyTsMorph('cjs'), runtimeBeside(), apart], absWorkingDir: ROOT,
    }),
    esbuild.build({ ...node, format: 'cjs', entryPoints: APART, outdir: DIST, outExtension: { '.js': '.cjs' }, absWorkingDir: ROOT }),
    esbuild.build({ ...node, define: grammarChecked, entryPoints: { index: 'src/index.ts' }, outdir: DIST, format: 'esm', plugins: [lazyTsMorph('esm')], absWorkingDir: ROOT }),
    esbuild.build({ ...node, ...cjs(grammarChecked), entryPoints: { index: 'src/index.ts' }, outdir: join(DIST, 'cjs'), plugins: [lazyTsMorph('cjs')], absWorkingDir: ROOT }),
    // the runtime runs in browsers too: no platform assumptions, Node modules only through import()
    // (nnc/train, which drives models the runtime made, beside it; nnc/onnx, the front end and the
    // ONNX exporter that the onnxruntime backends are given in a page)
    esbuild.build({ ...common, ...neutral, define: grammarChecked, entryPoints: NEUTRAL_ENTRIES, outdir: DIST, format: 'esm', absWorkingDir: ROOT }),
    esbuild.build({ ...common, ...cjs(grammarChecked), ...neutral, entryPoints: NEUTRAL_ENTRIES, outdir: join(DIST, 'cjs'), absWorkingDir: ROOT }),
    esbuild.build({ ...common, platform: 'neutral', entryPoints: { train: 'src/train/index.ts' }, outdir: DIST, format: 'esm', plugins: [sharedErrors], absWorkingDir: ROOT }),
    esbuild.build({ ...common, ...cjs(), platform: 'neutral', entryPoints: { train: 'src/train/index.ts' }, outdir: join(DIST, 'cjs'), plugins: [sharedErrors], absWorkingDir: ROOT }),
  ]);
  // (esbuild writes a dynamic import as `import(`, with no space)
  if (/(?<![\w$.])import\(/.test(readFileSync(join(DIST, 'cli.cjs'), 'utf8'))) {
    throw new Error('dist/cli.cjs calls import(), which the code cache bin/nnc.js loads it through cannot run on Node 20 (src/require-cached.ts): bundle that module instead of leaving it external');
  }
}

/**
 * Declarations for `nnc` and `nnc/runtime`: tsc's declaration emit, with the sources' `./x.ts`
 * specifiers made `./x.js`, written twice (ESM under dist/types, CommonJS under dist/cjs/types: a
 * .d.ts file's module kind is its nearest package.json's "type").
 */
export function buildTypes(): void {
  const out = join(DIST, 'types');
  rmSync(out, { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
  for (const f of readdirSync(out, { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.d.ts')) continue;
    const path = join(out, f);
    writeFileSync(path, readFileSync(path, 'utf8').replace(/(\bfrom\s+|\bimport\s*\(\s*)(['"])(\.\.?\/[^'"]+)\.ts\2/g, '$1$2$3.js$2'));
  }
  rmSync(join(DIST, 'cjs/types'), { recursive: true, force: true });
  cpSync(out, join(DIST, 'cjs/types'), { recursive: true });
}

/** Newest modification time (ms) of the files the bundles are built from. */
export function newestSource(): number {
  let newest = statSync(join(ROOT, 'package.json')).mtimeMs;
  for (const dir of ['src', 'grammar']) {
    for (const f of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      const t = statSync(join(ROOT, dir, f)).mtimeMs;
      if (t > newest) newest = t;
    }
  }
  return newest;
}

/** Whether these files of dist/ exist and were built after the last change to their sources. */
function fresh(files: readonly string[]): boolean {
  try {
    return Math.min(...files.map((f) => statSync(join(DIST, f)).mtimeMs)) >= newestSource();
  } catch {
    return false;
  }
}
/** The bundles are current. */
export const jsFresh = (): boolean => fresh(['cli.cjs', 'require-cached.cjs', ...Object.keys(APART).map((n) => `${n}.cjs`), 'index.js', 'runtime.js', 'train.js', 'onnx.js', 'cjs/index.js', 'cjs/runtime.js', 'cjs/train.js', 'cjs/onnx.js']);
/** The declarations are current. */
export const typesFresh = (): boolean => fresh(['types/src/index.d.ts', 'types/src/runtime/index.d.ts', 'cjs/types/src/index.d.ts']);

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  await buildJs();
  if (!process.argv.includes('--js')) buildTypes();
  process.stdout.write(`built ${relative(process.cwd(), DIST) || '.'}/ in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
