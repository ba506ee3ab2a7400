#!/usr/bin/env node
// The `nnc` command. It runs the bundled CLI, dist/cli.js (`npm run build`; shipped in the package).
// In a checkout of the repository, where src/ exists, it runs the TypeScript sources through tsx
// instead whenever dist/ is missing or older than them, so an edit is never run stale.
import { readdirSync, statSync } from 'node:fs';
import * as nodeModule from 'node:module';

// Node ≥ 22.1 keeps V8's compiled code between runs (the TypeScript compiler is most of it); on older
// Node, src/require-cached.ts does it for the TypeScript compiler
nodeModule.enableCompileCache?.();

const root = new URL('../', import.meta.url);

/** In a checkout: whether dist/cli.js is missing or older than a file it is built from. */
function stale() {
  let built;
  try {
    built = statSync(new URL('dist/cli.js', root)).mtimeMs;
  } catch {
    return true;
  }
  if (statSync(new URL('package.json', root)).mtimeMs > built) return true;
  for (const dir of ['src/', 'grammar/']) {
    for (const f of readdirSync(new URL(dir, root), { recursive: true })) {
      if (statSync(new URL(dir + f, root)).mtimeMs > built) return true;
    }
  }
  return false;
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
  ({ main } = await import('../dist/cli.js'));
}
process.exitCode = await main(process.argv.slice(2));
