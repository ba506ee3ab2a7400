/**
 * require() with V8's code cache: for the bundled CLI (bin/nnc.js loads dist/cli.cjs with it) and for
 * ts-morph with the TypeScript compiler it loads (about 9 MB of JavaScript, for `--format js`).
 * Compiling them was much of a cold command's time (bench/cli.ts). Node ≥ 22.1 caches compiled code
 * itself (module.enableCompileCache, turned on by bin/nnc.js); on older Node the CommonJS modules
 * that this one require() loads are compiled through vm.Script with their cached data kept in the
 * user's own directory in the system's temporary one: one file per module path and use, named by
 * them and by the file's size, modification time and inode (V8 itself checks only that the length
 * of the source, the engine and its flags match; the file's identity stands for its text, which
 * hashing — 0.8 MB of CLI, and node:crypto loaded to do it — cost every start 4 ms). A missing or rejected entry is written, in place of the older one, when the process exits;
 * V8 puts in it the functions compiled until then, hence an entry per use (bin/nnc.js: per command). Any failure of the cache falls back to a plain require(). Code compiled this
 * way cannot run import() on Node 20 (vm.Script gives it no loader): the CLI bundle has none
 * (scripts/build.ts checks).
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

interface CjsModule {
  exports: unknown;
  _compile(content: string, filename: string): unknown;
}
const Module = nodeModule.Module as unknown as { prototype: CjsModule; wrap(source: string): string };
type Wrapper = (exports: unknown, require: NodeJS.Require, module: CjsModule, filename: string, dirname: string) => unknown;

/** 64 bits of FNV-1a (two 32-bit lanes) of a short string, in hex: a name for a module's path and use. */
function fnv(text: string): string {
  let a = 0x811c9dc5;
  let b = 0xcbf29ce4;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (a >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/**
 * The cache's directory, this user's own: cached code is run, so a directory that someone else owns
 * or may write to is not used (nor is the cache).
 */
function cacheDir(): string | undefined {
  const uid = process.getuid?.();
  const dir = join(tmpdir(), `nnc-compile-cache-${process.version}${uid === undefined ? '' : `-${uid}`}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    return st.isDirectory() && (uid === undefined || (st.uid === uid && (st.mode & 0o022) === 0)) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** require(id) from the module `from` (a path or file: URL); `use` names what the process does with it. */
export function requireCached(id: string, from: string, use = ''): unknown {
  const require = nodeModule.createRequire(from);
  const dir = 'enableCompileCache' in nodeModule ? undefined : cacheDir();
  if (dir === undefined) return require(id);
  const pending: { module: string; file: string; script: Script }[] = [];
  const original = Module.prototype._compile;
  Module.prototype._compile = function (this: CjsModule, content: string, filename: string): unknown {
    let wrapper: Wrapper;
    try {
      wrapper = compileCached(content, filename);
    } catch {
      return original.call(this, content, filename);
    }
    return wrapper.call(this.exports, this.exports, nodeModule.createRequire(filename), this, filename, dirname(filename));
  };
  const compileCached = (content: string, filename: string): Wrapper => {
    const module = fnv(`${filename}\0${use}`);
    const st = statSync(filename, { bigint: true });
    const file = join(dir, `${module}-${st.size}-${st.mtimeNs}-${st.ino}.bin`);
    let cachedData: Buffer | undefined;
    try {
      cachedData = readFileSync(file);
    } catch {
      cachedData = undefined;
    }
    const script = new Script(Module.wrap(content), { filename, ...(cachedData ? { cachedData } : {}) });
    if (!cachedData || script.cachedDataRejected) pending.push({ module, file, script });
    return script.runInThisContext() as Wrapper;
  };
  try {
    return require(id);
  } finally {
    Module.prototype._compile = original;
    if (pending.length) {
      // after the work: the functions V8 compiled while running go into the cache too
      process.once('exit', () => {
        try {
          const entries = readdirSync(dir);
          for (const { module, file, script } of pending) {
            for (const old of entries.filter((e) => e.startsWith(`${module}-`))) rmSync(join(dir, old), { force: true });
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
