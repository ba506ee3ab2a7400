import Module, { createRequire } from 'node:module';
import vm from 'node:vm';
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
const dir = '/tmp/pk/cc'; mkdirSync(dir, { recursive: true });
const t0 = performance.now();
const orig = Module.prototype._compile;
const use = process.argv[2] === 'cache';
if (use) Module.prototype._compile = function (content, filename) {
  const key = join(createHash('sha1').update(filename).digest('hex'));
  const file = `${dir}/${key}`;
  const cached = existsSync(file) ? readFileSync(file) : undefined;
  const wrapper = Module.wrap(content);
  const script = new vm.Script(wrapper, { filename, cachedData: cached, importModuleDynamically: undefined });
  const fn = script.runInThisContext({ displayErrors: true });
  if (!cached || script.cachedDataRejected) { process.on('exit', () => writeFileSync(file, script.createCachedData())); }
  const require = createRequire(filename);
  return fn.call(this.exports, this.exports, require, this, filename, filename.replace(/\/[^/]*$/, ''));
};
function join(s) { return s; }
const req = createRequire(import.meta.url);
const tm = req('ts-morph');
const t1 = performance.now();
const p = new tm.Project({ useInMemoryFileSystem: true });
const sf = p.createSourceFile('a.ts', 'const x = 1;');
sf.addStatements(['const y = 2;']);
console.log(`require ${(t1 - t0).toFixed(0)} ms, use ${(performance.now() - t1).toFixed(0)} ms`);
