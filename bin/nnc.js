#!/usr/bin/env node
// The `nnc` command. It runs the bundled CLI, dist/cli.cjs (`npm run build`; shipped in the package),
// with V8's code cache: Node ≥ 22.1 keeps compiled code between runs itself (enableCompileCache);
// on older Node, dist/require-cached.cjs (src/require-cached.ts) does it. In a checkout of the
// repository, where src/ exists, it runs the TypeScript sources through tsx instead whenever dist/
// is missing or older than them, so an edit is never run stale.
import { readdirSync, statSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { fileURLToPath } from 'node:url';

nodeModule.enableCompileCache?.();

const root = new URL('../', import.meta.url);

/**
 * In a checkout: whether dist/cli.cjs is missing or older than a file it is built from. (Paths as
 * strings and a walk of its own: a URL per file and readdirSync's recursive mode took 5 of a cold
 * command's milliseconds, this 1.)
 */
function stale() {
  const base = fileURLToPath(root);
  let built;
  try {
    built = statSync(base + 'dist/cli.cjs').mtimeMs;
  } catch {
    return true;
  }
  if (statSync(base + 'package.json').mtimeMs > built) return true;
  const newer = (dir) => readdirSync(dir, { withFileTypes: true }).some((e) => (e.isDirectory() ? newer(`${dir}/${e.name}`) : statSync(`${dir}/${e.name}`).mtimeMs > built));
  return newer(base + 'src') || newer(base + 'grammar');
}

let checkout = true;
try {
  statSync(new URL('src/cli.ts', root));
} catch {
  checkout = false;
}
let main;
if (checkout && stale()) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli.ts'));
} else {
  const { requireCached } = nodeModule.createRequire(import.meta.url)('../dist/require-cached.cjs');
  // a cache entry per command: V8 keeps in it what the command that wrote it compiled
  ({ main } = requireCached('../dist/cli.cjs', import.meta.url, /^[a-z]+$/.test(process.argv[2] ?? '') ? process.argv[2] : ''));
}
process.exitCode = await main(process.argv.slice(2));
