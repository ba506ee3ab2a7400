/**
 * The package as users get it: `npm pack` once, then the tarball installed (npm install FILE.tgz
 * --prefer-offline) into new apps outside the repository, each of which compiles a spec with the
 * installed `nnc` and runs the generated model with no TypeScript loader:
 *
 *   esm-js    "type": "module", `nnc compile --format js -o gen/model.js`, plain Node
 *   cjs-js    npm init's default (CommonJS), `-o gen/model.cjs`, require('nnc/runtime') too
 *   esm-ts    strict tsconfig (NodeNext, skipLibCheck off: the shipped declarations are checked),
 *             tsc to JavaScript, then Node; `import { compile } from 'nnc'` type-checks and runs
 *   cjs-ts    the same in a CommonJS app: tsc emits require('nnc'); the generated module, which reads
 *             its own location (import.meta.url), is compiled as an ES module (-o model.mts) and
 *             loaded with import()
 *   vite      a Vite browser build of the generated .ts module, run in Chromium
 *
 * The Node apps run on Node 20 (this process's) and on Node 22 (the `node` package from npm). Each
 * run compares the model's output with PyTorch's (test/fixtures/lstm) on the cpu and wasm backends.
 */
import { execFile, type ExecFileOptions } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './browser/harness.ts';
import { FIXTURES, maxAbsDiff, ROOT, type Case } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'nnc-package-'));
const BACKENDS = ['cpu', 'wasm'];
const fixture = JSON.parse(readFileSync(join(FIXTURES, 'lstm/case.json'), 'utf8')) as Case;

interface Run { code: number; stdout: string; stderr: string }
function run(cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
async function ok(cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} (in ${String(opts.cwd ?? '.')}) exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}
const npm = (args: string[], cwd: string) => ok('npm', ['--no-audit', '--no-fund', '--loglevel=error', ...args], { cwd, env: { ...process.env, npm_config_update_notifier: 'false' } });

let tarball = '';
let node22 = '';
const NODE20 = process.execPath;
const apps = new Map<string, string>();

/** The shared part of every app's main: read the case, run each backend, print outputs as JSON. */
const RUN_CASE = `
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
  const inputs = { text: { data: Int32Array.from(c.inputs.text.data), shape: c.inputs.text.shape, lengths: c.inputs.text.lengths } };
  const weights = readFileSync(join(dir, 'weights.safetensors'));
  const out = {};
  for (const backend of ${JSON.stringify(BACKENDS)}) {
    const model = await createModel({ backend });
    model.loadWeights(weights);
    const y = (await model.forward(inputs)).y;
    out[backend] = { ran: model.backend, shape: y.shape, data: Array.from(y.data) };
    model.dispose();
  }
`;

/** An app directory with the fixture's spec, weights and case. */
function app(name: string, pkg: object): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `nnc-${name}-app`, version: '1.0.0', private: true, ...pkg }, null, 2));
  cpSync(join(FIXTURES, 'lstm/model.nn'), join(dir, 'model.nn'));
  cpSync(join(FIXTURES, 'lstm/weights.safetensors'), join(dir, 'weights.safetensors'));
  writeFileSync(join(dir, 'case.json'), JSON.stringify(fixture));
  apps.set(name, dir);
  return dir;
}

const STRICT = {
  target: 'ES2022', lib: ['ES2022', 'DOM'], types: ['node'], strict: true, noUncheckedIndexedAccess: true, noPropertyAccessFromIndexSignature: true,
  noUnusedParameters: true, noUnusedLocals: true, exactOptionalPropertyTypes: true, erasableSyntaxOnly: true, noImplicitOverride: true,
  noImplicitReturns: true, noFallthroughCasesInSwitch: true, skipLibCheck: false, outDir: 'out', rootDir: '.',
};

/** A TypeScript app's main: the generated module, the runtime's types and the compiler, all strict. */
const tsMain = (esm: boolean) => `import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile, type Diagnostic } from 'nnc';
import type { Tensor } from 'nnc/runtime';
${esm ? "import { createModel } from './gen/model.js';" : ''}

async function main(): Promise<void> {
  ${esm ? '' : "// the module is an ES module (model.mts: it reads import.meta.url), loaded from CommonJS by import()\n  const { createModel } = await import('./gen/model.mjs');"}
  const dir = ${esm ? "new URL('..', import.meta.url).pathname" : "join(__dirname, '..')"};
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as { inputs: { text: { data: number[]; shape: [number, number]; lengths: number[] } } };
  const inputs = { text: { data: Int32Array.from(c.inputs.text.data), shape: c.inputs.text.shape, lengths: c.inputs.text.lengths } };
  const weights = readFileSync(join(dir, 'weights.safetensors'));
  const out: Record<string, { ran: string; shape: number[]; data: number[] }> = {};
  for (const backend of ['cpu', 'wasm'] as const) {
    const model = await createModel({ backend });
    model.loadWeights(weights);
    const y: Tensor = (await model.forward(inputs)).y;
    out[backend] = { ran: model.backend, shape: [...y.shape], data: Array.from(y.data) };
    model.dispose();
  }
  const diagnostics: readonly Diagnostic[] = compile('model M {\\n  input x: tokens(vocab = 3)\\n  output y\\n  lstn 2\\n}\\n', 'm.nn').diagnostics;
  process.stdout.write(JSON.stringify({ out, codes: diagnostics.map((d) => d.code) }));
}
void main();
`;

beforeAll(async () => {
  // one pack of dist/ as test/global-setup.ts left it (current; `prepare`, which rebuilds it, would
  // rewrite it under the other test files' feet), then the tools and the apps in parallel
  const packed = await npm(['pack', '--ignore-scripts', '--pack-destination', work], ROOT);
  tarball = join(work, packed.trim().split('\n').at(-1)!);
  const nodeDir = join(work, 'node22');
  mkdirSync(nodeDir);
  writeFileSync(join(nodeDir, 'package.json'), '{ "private": true }');

  const esmJs = app('esm-js', { type: 'module' });
  writeFileSync(join(esmJs, 'main.js'), `import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createModel } from './gen/model.js';
const dir = new URL('.', import.meta.url).pathname;
${RUN_CASE}
process.stdout.write(JSON.stringify({ out }));
`);
  // text in and out: a WordPiece tokenizer.json (run by @huggingface/tokenizers, bundled into
  // nnc/runtime) and an n-gram model over a char vocabulary, both compiled to plain JavaScript
  cpSync(join(FIXTURES, 'text/wordpiece/tokenizer.json'), join(esmJs, 'tokenizer.json'));
  cpSync(join(ROOT, 'examples/vocab/dates.target.json'), join(esmJs, 'dates.json'));
  writeFileSync(join(esmJs, 'wp.nn'), 'model M {\n  input text: tokens(vocab = "tokenizer.json", pad = "[PAD]", unk = "[UNK]")\n  output next\n  embedding 8\n  linear 16\n}\n');
  writeFileSync(join(esmJs, 'lm.nn'), 'model Lm {\n  input text: tokens(vocab = "dates.json")\n  output next\n  ngram order = 3, smoothing = kneser_ney\n}\n');
  writeFileSync(join(esmJs, 'text.js'), `import * as wp from './gen/wp.js';
import { createModel } from './gen/lm.js';
const lm = await createModel();
lm.fit(['20-01-02', '19-12-31', '20-11-30', '21-02-28']);
const next = (await lm.forward({ text: ['20-1'] })).next;
const V = next.shape[2];
const sums = [];
for (let t = 0; t < next.shape[1]; t++) sums.push(next.data.subarray(t * V, (t + 1) * V).reduce((a, x) => a + Math.exp(x), 0));
process.stdout.write(JSON.stringify({ ids: wp.encode('The unaffable cat.'), text: wp.decode(wp.encode('The unaffable cat.')), sums }));
`);
  const cjsJs = app('cjs-js', {});
  writeFileSync(join(cjsJs, 'main.js'), `const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { createModel } = require('./gen/model.cjs');
const runtime = require('nnc/runtime');
const { compile } = require('nnc');
(async () => {
  const dir = __dirname;
  ${RUN_CASE}
  const codes = compile('model M {\\n  input x: tokens(vocab = 3)\\n  output y\\n  lstn 2\\n}\\n', 'm.nn').diagnostics.map((d) => d.code);
  process.stdout.write(JSON.stringify({ out, codes, runtime: typeof runtime.createNncModel }));
})();
`);
  for (const [name, esm] of [['esm-ts', true], ['cjs-ts', false]] as const) {
    const dir = app(name, esm ? { type: 'module' } : {});
    // verbatimModuleSyntax forbids import syntax in files compiled to CommonJS: ES module apps only
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...STRICT, module: 'NodeNext', moduleResolution: 'NodeNext', verbatimModuleSyntax: esm }, include: ['main.ts', 'gen'] }, null, 2));
    writeFileSync(join(dir, 'main.ts'), tsMain(esm));
  }
  const vite = app('vite', { type: 'module', scripts: { build: 'vite build' } });
  mkdirSync(join(vite, 'public'));
  cpSync(join(vite, 'weights.safetensors'), join(vite, 'public/weights.safetensors'));
  cpSync(join(vite, 'case.json'), join(vite, 'public/case.json'));
  writeFileSync(join(vite, 'index.html'), '<!doctype html><html><head><meta charset="utf-8"><title>nnc in Vite</title></head><body><script type="module" src="/main.ts"></script></body></html>\n');
  writeFileSync(join(vite, 'main.ts'), `import { createModel } from './gen/model.ts';
const page = window as unknown as { nncResult: unknown };
try {
const c = await (await fetch('./case.json')).json();
const weights = new Uint8Array(await (await fetch('./weights.safetensors')).arrayBuffer());
const inputs = { text: { data: Int32Array.from(c.inputs.text.data), shape: c.inputs.text.shape, lengths: c.inputs.text.lengths } };
const out: Record<string, unknown> = {};
for (const backend of ${JSON.stringify(BACKENDS)} as const) {
  const model = await createModel({ backend });
  model.loadWeights(weights);
  const y = (await model.forward(inputs)).y;
  out[backend] = { ran: model.backend, shape: y.shape, data: Array.from(y.data) };
  model.dispose();
}
page.nncResult = { out };
} catch (e) {
  page.nncResult = { error: String((e as Error).stack ?? e) };
}
`);
  writeFileSync(join(vite, 'vite.config.js'), "export default { base: './', build: { target: 'es2022' } };\n");

  // gpu.js is an optional peer dependency, so it is not installed here (the backends run, cpu and
  // wasm, do not use it); nnc and its dependencies have no install scripts to run
  const install = (dir: string, extra: string[] = []) => npm(['install', '--prefer-offline', '--ignore-scripts', tarball, ...extra], dir);
  const examplesVite = (JSON.parse(readFileSync(join(ROOT, 'examples/web/package.json'), 'utf8')) as { devDependencies: { vite: string } }).devDependencies.vite;
  const typescript = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies;
  await Promise.all([
    npm(['install', '--prefer-offline', 'node@22'], nodeDir),
    install(esmJs),
    install(cjsJs),
    install(apps.get('esm-ts')!, [`typescript@${typescript.typescript}`, `@types/node@${typescript['@types/node']}`]),
    install(apps.get('cjs-ts')!, [`typescript@${typescript.typescript}`, `@types/node@${typescript['@types/node']}`]),
    install(vite, [`vite@${examplesVite}`]),
  ]);
  node22 = join(nodeDir, 'node_modules/node/bin/node');
}, 900_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the installed `nnc` of an app with the given Node. */
const nnc = (dir: string, args: string[], node = NODE20) => run(node, [join(dir, 'node_modules/nnc/bin/nnc.js'), ...args], { cwd: dir });

function expectPyTorch(result: { out: Record<string, { ran: string; shape: number[]; data: number[] }> }): void {
  for (const backend of BACKENDS) {
    const got = result.out[backend]!;
    expect(got.ran).toBe(backend);
    expect(got.shape).toEqual(fixture.outputs.y!.shape);
    expect(maxAbsDiff(Float32Array.from(got.data), fixture.outputs.y!.data)).toBeLessThanOrEqual(1e-5);
  }
}

describe('npm pack', () => {
  it('ships the build, its declarations and the bin, and no sources', async () => {
    const files = (await ok('tar', ['tzf', tarball])).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining(['bin/nnc.js', 'dist/cli.cjs', 'dist/require-cached.cjs', 'dist/index.js', 'dist/runtime.js', 'dist/cjs/index.js', 'dist/cjs/runtime.js', 'dist/cjs/package.json', 'package.json', 'README.md']));
    expect(files.filter((f) => /^(src|test|examples|grammar|bench|scripts)\//.test(f) || /\.ts$/.test(f) && !/\.d\.ts$/.test(f))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(apps.get('esm-js')!, 'node_modules/nnc/package.json'), 'utf8')) as { exports: Record<string, Record<string, string | Record<string, string>>>; bin: Record<string, string>; dependencies: Record<string, string> };
    const targets = Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.entries(e).filter(([k]) => k !== 'nnc-source').flatMap(([, v]) => (typeof v === 'string' ? [v] : Object.values(v)))));
    for (const t of [...targets, ...Object.values(pkg.bin)]) expect(files, t).toContain(t.replace(/^\.\//, ''));
    expect(Object.keys(pkg.dependencies)).not.toContain('tsx');
  });
});

describe('strict TypeScript apps', () => {
  it.each([['esm-ts'], ['cjs-ts']])('%s: the generated module, nnc and nnc/runtime type-check (no skipLibCheck) and compile to JavaScript', async (name) => {
    const dir = apps.get(name)!;
    const esm = name === 'esm-ts';
    expect((await nnc(dir, ['compile', 'model.nn', '-o', esm ? 'gen/model.ts' : 'gen/model.mts'])).code).toBe(0);
    const tsc = await run(NODE20, [join(dir, 'node_modules/typescript/bin/tsc'), '-p', '.'], { cwd: dir });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
    expect(readFileSync(join(dir, esm ? 'out/gen/model.js' : 'out/gen/model.mjs'), 'utf8')).toMatch(/from 'nnc\/runtime'/);
    if (!esm) expect(readFileSync(join(dir, 'out/main.js'), 'utf8')).toMatch(/require\("nnc"\)[\s\S]*import\('\.\/gen\/model\.mjs'\)/);
  });
});

describe.each([['Node 20', () => NODE20], ['Node 22', () => node22]] as const)('installed from the tarball, on %s', (label, nodeOf) => {
  it('runs on the expected Node', async () => {
    expect(await ok(nodeOf(), ['--version'])).toMatch(label === 'Node 20' ? /^v20\./ : /^v22\./);
  });

  it('nnc check, --version and graph answer from the installed bin (twice: the second run from the code cache)', async () => {
    const dir = apps.get('esm-js')!;
    for (const run of [1, 2]) {
      expect(await nnc(dir, ['check', 'model.nn'], nodeOf()), `run ${run}`).toMatchObject({ code: 0, stderr: '' });
      const version = await nnc(dir, ['--version'], nodeOf());
      expect(version.stdout).toMatch(/^nnc \d+\.\d+\.\d+\n$/);
      expect(await nnc(dir, ['graph', 'model.nn', '-o', `model-${label.replace(' ', '')}.svg`], nodeOf()), `run ${run}`).toMatchObject({ code: 0, stderr: '' });
      expect(readFileSync(join(dir, `model-${label.replace(' ', '')}.svg`), 'utf8')).toMatch(/<svg[\s\S]*>lstm<[\s\S]*<\/svg>\s*$/);
    }
  });

  it('an ES module app in plain JavaScript (nnc compile --format js)', async () => {
    const dir = apps.get('esm-js')!;
    expect((await nnc(dir, ['compile', 'model.nn', '--format', 'js', '-o', 'gen/model.js'], nodeOf())).code).toBe(0);
    expectPyTorch(JSON.parse(await ok(nodeOf(), ['main.js'], { cwd: dir })));
  });

  it('text in and out from the installed package: a Hugging Face WordPiece tokenizer and an n-gram model (--format js)', async () => {
    const dir = apps.get('esm-js')!;
    for (const m of ['wp', 'lm']) expect((await nnc(dir, ['compile', `${m}.nn`, '--format', 'js', '-o', `gen/${m}.js`], nodeOf())).code).toBe(0);
    const r = JSON.parse(await ok(nodeOf(), ['text.js'], { cwd: dir })) as { ids: number[]; text: string; sums: number[] };
    // [CLS] the un ##aff ##able cat . [SEP]: BERT's example of WordPiece (the post-processor adds [CLS] and [SEP])
    expect([r.ids, r.text]).toEqual([[2, 7, 4, 5, 6, 8, 9, 3], 'the unaffable cat.']);
    // Kneser-Ney gives a distribution over the vocabulary after <s> and after each of the 4 characters
    expect(r.sums).toHaveLength(5);
    for (const s of r.sums) expect(s).toBeCloseTo(1, 5);
  });

  it('a CommonJS app in plain JavaScript (-o model.cjs; require(nnc/runtime), require(nnc))', async () => {
    const dir = apps.get('cjs-js')!;
    expect((await nnc(dir, ['compile', 'model.nn', '--format', 'js', '-o', 'gen/model.cjs'], nodeOf())).code).toBe(0);
    expect(readFileSync(join(dir, 'gen/model.cjs'), 'utf8')).toMatch(/require\("nnc\/runtime"\)/);
    expect(existsSync(join(dir, 'gen/model.d.cts'))).toBe(true);
    const r = JSON.parse(await ok(nodeOf(), ['main.js'], { cwd: dir })) as Parameters<typeof expectPyTorch>[0] & { codes: string[]; runtime: string };
    expectPyTorch(r);
    expect([r.codes, r.runtime]).toEqual([['E0201'], 'function']);
  });

  it.each([['esm-ts'], ['cjs-ts']])('a strict TypeScript app (%s), compiled by tsc with the shipped declarations: plain Node runs it', async (name) => {
    const r = JSON.parse(await ok(nodeOf(), ['out/main.js'], { cwd: apps.get(name)! })) as Parameters<typeof expectPyTorch>[0] & { codes: string[] };
    expectPyTorch(r);
    expect(r.codes).toEqual(['E0201']);
  });
});

describe('installed from the tarball into a Vite app', () => {
  it('nnc/runtime bundles for the browser with esbuild too (its node: and gpu.js imports stay dynamic)', async () => {
    const { build } = await import('esbuild');
    const r = await build({ stdin: { contents: "export * from 'nnc/runtime';", resolveDir: apps.get('vite')!, loader: 'js' }, bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' });
    expect(r.errors).toEqual([]);
    expect(r.outputFiles[0]!.text).not.toMatch(/import\("node:/);
  });

  it('vite build bundles the generated module and the runtime; the page runs it in Chromium', async () => {
    const dir = apps.get('vite')!;
    expect((await nnc(dir, ['compile', 'model.nn', '-o', 'gen/model.ts'])).code).toBe(0);
    await ok(NODE20, [join(dir, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: dir });
    const dist = join(dir, 'dist');
    const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json' };
    const server = createServer((req, res) => {
      const path = join(dist, decodeURIComponent((req.url ?? '/').split('?')[0]!.replace(/\/$/, '/index.html')));
      if (!path.startsWith(dist) || !existsSync(path)) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }).end(readFileSync(path));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const profile = mkdtempSync(join(tmpdir(), 'nnc-vite-'));
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/index.html`);
      await page.waitForFunction(() => (window as unknown as { nncResult?: unknown }).nncResult !== undefined, undefined, { timeout: 60_000 });
      const result = await page.evaluate(() => (window as unknown as { nncResult: Parameters<typeof expectPyTorch>[0] & { error?: string } }).nncResult);
      expect([result.error, errors]).toEqual([undefined, []]);
      expectPyTorch(result);
    } finally {
      await context.close();
      server.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
