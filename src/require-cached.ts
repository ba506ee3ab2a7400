/**
 * require() with V8's code cache, for ts-morph and the TypeScript compiler it loads: about 9 MB of
 * JavaScript whose compilation was most of `nnc compile`'s start-up (bench/cli.ts). Node ≥ 22.1
 * caches compiled code itself (module.enableCompileCache, turned on by bin/nnc.js); on older Node
 * the CommonJS modules that this one require() loads are compiled through vm.Script with their
 * cached data kept in the system's temporary directory, one file per module. V8 checks that cached
 * data matches the source and the engine and rejects it otherwise; a rejected or missing entry is
 * rewritten when the process exits. Any failure of the cache falls back to a plain require().
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

interface CjsModule {
  exports: unknown;
  _compile(content: string, filename: string): unknown;
}
const Module = nodeModule.Module as unknown as { prototype: CjsModule; wrap(source: string): string };

export function requireCached(id: string, from: string): unknown {
  const require = nodeModule.createRequire(from);
  if ('enableCompileCache' in nodeModule) return require(id);
  const dir = join(tmpdir(), `nnc-compile-cache-${process.version}`);
  const pending: { file: string; script: Script }[] = [];
  const original = Module.prototype._compile;
  Module.prototype._compile = function (this: CjsModule, content: string, filename: string): unknown {
    let wrapper: (exports: unknown, require: NodeJS.Require, module: CjsModule, filename: string, dirname: string) => unknown;
    try {
      wrapper = compileCached(content, filename);
    } catch {
      return original.call(this, content, filename);
    }
    return wrapper.call(this.exports, this.exports, nodeModule.createRequire(filename), this, filename, dirname(filename));
  };
  const compileCached = (content: string, filename: string) => {
    const file = join(dir, `${createHash('sha1').update(filename).digest('hex')}.bin`);
    let cachedData: Buffer | undefined;
    try {
      cachedData = readFileSync(file);
    } catch {
      cachedData = undefined;
    }
    const script = new Script(Module.wrap(content), { filename, ...(cachedData ? { cachedData } : {}) });
    if (!cachedData || script.cachedDataRejected) pending.push({ file, script });
    return script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: CjsModule, filename: string, dirname: string) => unknown;
  };
  try {
    return require(id);
  } finally {
    Module.prototype._compile = original;
    if (pending.length) {
      // after the work: the functions V8 compiled while running go into the cache too
      process.once('exit', () => {
        try {
          mkdirSync(dir, { recursive: true });
          for (const { file, script } of pending) {
            writeFileSync(`${file}.${process.pid}`, script.createCachedData());
            renameSync(`${file}.${process.pid}`, file);
          }
        } catch {
          // a cache that cannot be written only costs time
        }
      });
    }
  }
}
