/**
 * Compiles the runtime (src/runtime/*.ts) to plain JavaScript in dist/runtime/, for apps that run
 * generated modules without a TypeScript loader (`nnc compile --format js`; package.json's
 * `nnc/runtime` export, "node" condition, via src/runtime/node.js). `npm run build` runs it;
 * `prepare` runs it on install, and the CLI before writing a .js module when dist/ is older than
 * the sources.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ts } from 'ts-morph';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** TypeScript → JavaScript (types erased, `./x.ts` imports → `./x.js`). */
export function transpile(source: string, fileName: string): string {
  const js = ts.transpileModule(source, {
    fileName,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: false, sourceMap: false },
  }).outputText;
  return js.replace(/(\bfrom\s+|\bimport\s*\(\s*)(['"])(\.\.?\/[^'"]+)\.ts\2/g, '$1$2$3.js$2');
}

/** The runtime's TypeScript sources, relative to src/runtime (wasm/gemm-wasm.ts included). */
function sources(root: string): string[] {
  return readdirSync(join(root, 'src/runtime'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
}

/** Whether dist/runtime/ holds every runtime source, compiled after its last change. */
export function runtimeBuilt(root = PACKAGE_ROOT): boolean {
  try {
    return sources(root).every((f) => statSync(join(root, 'dist/runtime', f.replace(/\.ts$/, '.js'))).mtimeMs >= statSync(join(root, 'src/runtime', f)).mtimeMs);
  } catch {
    return false;
  }
}

/** Writes dist/runtime/*.js; returns the directory. */
export function buildRuntime(root = PACKAGE_ROOT): string {
  const out = join(root, 'dist/runtime');
  mkdirSync(out, { recursive: true });
  for (const f of sources(root)) {
    mkdirSync(dirname(join(out, f)), { recursive: true });
    writeFileSync(join(out, f.replace(/\.ts$/, '.js')), transpile(readFileSync(join(root, 'src/runtime', f), 'utf8'), f));
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`built ${buildRuntime()}\n`);
}
