/**
 * `npm run build`: the package as it ships, in dist/ (package.json "bin", "exports", "files").
 *
 *   dist/cli.js + dist/chunks/   the `nnc` command: ESM, one bundle split at the CLI's dynamic
 *                                imports (the compiler, the language server, graph, fmt), so that a
 *                                command loads only what it runs
 *   dist/index.js                `import { compile } from 'nnc'` (ESM)
 *   dist/runtime.js              `nnc/runtime`, what generated modules import (ESM; Node, browsers,
 *                                bundlers)
 *   dist/cjs/{index,runtime}.js  the same two for `require()` (dist/cjs/package.json says CommonJS)
 *   dist/types/, dist/cjs/types/ declarations (tsc), ESM and CommonJS flavours of one text
 *
 * Everything is bundled except ts-morph (and TypeScript under it), the emitter's dependency: it is
 * loaded on first use through a lazy stand-in (lazyTsMorph below), so `nnc check`, the language
 * server and `nnc fmt` never load the TypeScript compiler. vscode-languageserver and the Graphviz
 * build stay external too: each is loaded only by its own command.
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
/** Packages the bundles load at run time rather than carry (package.json "dependencies"). */
const EXTERNAL = ['vscode-languageserver', 'vscode-languageserver/node', 'vscode-languageserver-textdocument', '@hpcc-js/wasm-graphviz'];

/**
 * ts-morph as a module whose every export is a stand-in that loads the real package on first use
 * (a property read, a call or `new`), with V8's code cache (src/require-cached.ts). The emitter's
 * `import { Project } from 'ts-morph'` stays as it is; only the bundle decides when TypeScript is
 * loaded.
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

const common: esbuild.BuildOptions = {
  bundle: true,
  target: 'es2022',
  logLevel: 'warning',
  legalComments: 'none',
  // the runtime's `import(/* @vite-ignore */ spec)` of node: modules and gpu.js stays dynamic
  logOverride: { 'unsupported-dynamic-import': 'silent' },
};

/** The JavaScript bundles. */
export async function buildJs(): Promise<void> {
  rmSync(join(DIST, 'chunks'), { recursive: true, force: true });
  // files the sources read beside themselves (new URL('./x.py', import.meta.url)): beside the chunks
  mkdirSync(join(DIST, 'chunks'), { recursive: true });
  for (const f of readdirSync(join(ROOT, 'src/export')).filter((x) => x.endsWith('.py'))) cpSync(join(ROOT, 'src/export', f), join(DIST, 'chunks', f));
  mkdirSync(join(DIST, 'cjs'), { recursive: true });
  writeFileSync(join(DIST, 'cjs/package.json'), '{ "type": "commonjs" }\n');
  // the compiler and the CLI: less to parse at every start (names kept: stack traces with NNC_DEBUG=1
  // still read); not the runtime, whose `import(spec)` of node: modules and gpu.js must stay opaque to
  // an app's bundler (constant folding would turn them into `import("node:…")`, which a browser
  // bundle cannot resolve), and which the app's bundler minifies anyway
  const node = { ...common, minifyWhitespace: true, minifySyntax: true, platform: 'node' as const, external: EXTERNAL };
  // CommonJS has no import.meta: the runtime's own URL (worker mode loads it by URL) from __filename
  const cjs: esbuild.BuildOptions = { format: 'cjs', define: { 'import.meta.url': '__nncModuleUrl' }, banner: { js: 'var __nncModuleUrl = require("node:url").pathToFileURL(__filename).href;' } };
  await Promise.all([
    esbuild.build({
      ...node, entryPoints: { cli: 'src/cli.ts' }, outdir: DIST, format: 'esm', splitting: true, chunkNames: 'chunks/[name]-[hash]',
      plugins: [lazyTsMorph('esm')], absWorkingDir: ROOT,
    }),
    esbuild.build({ ...node, entryPoints: { index: 'src/index.ts' }, outdir: DIST, format: 'esm', plugins: [lazyTsMorph('esm')], absWorkingDir: ROOT }),
    esbuild.build({ ...node, ...cjs, entryPoints: { index: 'src/index.ts' }, outdir: join(DIST, 'cjs'), plugins: [lazyTsMorph('cjs')], absWorkingDir: ROOT }),
    // the runtime runs in browsers too: no platform assumptions, Node modules only through import()
    esbuild.build({ ...common, platform: 'neutral', entryPoints: { runtime: 'src/runtime/index.ts' }, outdir: DIST, format: 'esm', absWorkingDir: ROOT }),
    esbuild.build({ ...common, ...cjs, platform: 'neutral', entryPoints: { runtime: 'src/runtime/index.ts' }, outdir: join(DIST, 'cjs'), absWorkingDir: ROOT }),
  ]);
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
export const jsFresh = (): boolean => fresh(['cli.js', 'index.js', 'runtime.js', 'cjs/index.js', 'cjs/runtime.js']);
/** The declarations are current. */
export const typesFresh = (): boolean => fresh(['types/src/index.d.ts', 'types/src/runtime/index.d.ts', 'cjs/types/src/index.d.ts']);

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  await buildJs();
  if (!process.argv.includes('--js')) buildTypes();
  process.stdout.write(`built ${relative(process.cwd(), DIST) || '.'}/ in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
