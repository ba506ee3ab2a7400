// Vite config for nnc's web example (`npm run web`, `npm run web:build` in the repository root).
//
// The app imports the generated modules as an app does (`../../generated/dates.ts`), and they import
// their runtime from the `nnc` package (`import * as __nnc from 'nnc/runtime'`). An app that
// installed nnc from npm needs nothing here; inside this repository nnc is not in any node_modules
// (the generated modules would reach it by the package's self-reference, which Vite does not
// follow), so `nnc/runtime` is aliased to the TypeScript source that the package's own "exports"
// map names for it (condition nnc-source). gpu.js resolves from the repository's node_modules through its package.json "browser" field
// (dist/gpu-browser.js), as in any Vite app.
//
// A .mjs file, not .ts: the repository's `tsc -p tsconfig.json` type-checks examples/ and would
// otherwise need vite's types, which only this example installs.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(here, '../..');
const pkg = JSON.parse(readFileSync(resolve(repo, 'package.json'), 'utf8'));
const entry = pkg.exports['./runtime'];
const runtimeFile = resolve(repo, entry['nnc-source']);

// Cross-origin isolation: SharedArrayBuffer, so the wasm backend and gpu.js's webasm can use worker threads.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: here,
  base: './',
  resolve: {
    alias: [{ find: /^nnc\/runtime$/, replacement: runtimeFile }],
  },
  server: { headers: isolation, fs: { allow: [repo] } },
  preview: { headers: isolation },
  // the model worker (model.worker.ts) is an ES module: it imports the generated modules and gpu.js
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // gpu.js's browser build is one ~1 MB file; that is expected here
    chunkSizeWarningLimit: 2000,
  },
});
