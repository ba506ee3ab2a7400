/**
 * `npm run bench:compile` — how long `nnc compile` takes, as a whole process (bin/nnc.js, what a
 * user runs), on specs that grow: 1,000 to 10,000 layers (the limit), long chains of elementwise
 * layers, and the inputs of issue 18 (item 5) that the limits now refuse. For each: exit code, wall
 * time and peak memory of the process (GNU time, where /usr/bin/time exists), and, in this process,
 * the time of each stage (parse, check + expand, optimize, kernels, module). Results:
 * bench/results/compile.json and compile.md.
 *
 *   npm run bench:compile
 *   npm run bench:compile -- --only lin10000
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parse } from '../src/syntax/parse.ts';
import { lower, optimize } from '../src/driver.ts';
import { compileProgram } from '../src/codegen/plan.ts';
import { emitModule } from '../src/codegen/module.ts';
import { ROOT } from '../test/helpers.ts';

const model = (body: string, name = 'M') => `model ${name} {\n  input x: vectors(dim = 8)\n  output y\n${body}}\n`;
const lines = (layer: string, n: number) => `  ${layer}\n`.repeat(n);
const CASES: [string, string][] = [
  ['lin1000', model(lines('linear 8', 1000))],
  ['lin4000', model(lines('linear 8', 4000))],
  ['lin10000', model(lines('linear 8', 10000))],
  ['lstm1000', model(lines('lstm 8', 1000))],
  ['relu1300', model(lines('relu', 1300))],
  ['relu10000', model(lines('relu', 10000))],
  ['residual_relu1200', model(lines('residual { relu }', 1200))],
  ['gelu3000', model(lines('gelu', 3000))],
  ['models1000', Array.from({ length: 1000 }, (_, i) => model(lines('linear 8', 1) + lines('relu', 1), `M${i}`)).join('')],
  ['refused: lin16000', model(lines('linear 8', 16000))],
  ['refused: repeat 97 { repeat 1000 }', model('  repeat 97 { repeat 1000 { linear 8 } }\n')],
  ['refused: 2000 two-layer models', Array.from({ length: 2000 }, (_, i) => model(lines('linear 8', 1) + lines('relu', 1), `M${i}`)).join('')],
  ['refused: 10 MB of relu', model(lines('relu', 1_500_000))],
];

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1]!.split(',') : undefined;
const dir = mkdtempSync(join(tmpdir(), 'nnc-bench-compile-'));
const gnuTime = existsSync('/usr/bin/time');
const load0 = loadavg()[0]!;
interface Row { spec: string; bytes: number; exit: number; wallS: number; maxRssMiB?: number; stagesMs?: Record<string, number> }
const rows: Row[] = [];
for (const [name, text] of CASES) {
  if (only && !only.some((o) => name.includes(o))) continue;
  const file = join(dir, `${name.replace(/[^a-z0-9]+/gi, '_')}.nn`);
  writeFileSync(file, text);
  const args = [join(ROOT, 'bin/nnc.js'), 'compile', file, '-o', join(dir, 'out.ts')];
  const t0 = performance.now();
  const r = gnuTime
    ? spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 })
    : spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wallS = (performance.now() - t0) / 1000;
  const rss = gnuTime ? Number(r.stderr.trim().split('\n').pop()) / 1024 : undefined;
  const row: Row = { spec: name, bytes: Buffer.byteLength(text), exit: r.status ?? -1, wallS: +wallS.toFixed(2), ...(rss ? { maxRssMiB: Math.round(rss) } : {}) };
  if (row.exit === 0) {
    // the same compile in this process, stage by stage
    const st: Record<string, number> = {};
    let t = performance.now();
    const tick = (k: string) => {
      const n = performance.now();
      st[k] = Math.round(n - t);
      t = n;
    };
    parse(text, file);
    tick('parse');
    const { models } = lower(text, file);
    tick('parse+check+expand');
    models!.forEach((m) => optimize(m, 2));
    tick('optimize');
    const compiled = models!.map((ir) => ({ ir, program: compileProgram(ir) }));
    tick('kernels');
    emitModule(compiled, file, { text });
    tick('module');
    row.stagesMs = st;
  }
  rows.push(row);
  process.stdout.write(`${JSON.stringify(row)}\n`);
}
const result = { date: new Date().toISOString(), machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`, node: process.version, rows };
if (!only) {
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/compile.json'), JSON.stringify(result, null, 2) + '\n');
  const md = [
    '# `nnc compile` as a whole process (`npm run bench:compile`)',
    '',
    `${result.date}, ${result.machine}, Node ${result.node}. One run each; the process includes loading the compiler (about 1–2 s). Stages: the same compile in the benchmark's process (parse alone, then parse + check + expand again, optimize, kernels, module).`,
    '',
    '| spec | size | exit | wall s | peak MiB | parse | parse+check+expand | optimize | kernels | module (ms) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.spec} | ${(r.bytes / 1024).toFixed(0)} KB | ${r.exit} | ${r.wallS} | ${r.maxRssMiB ?? '?'} | ${r.stagesMs ? ['parse', 'parse+check+expand', 'optimize', 'kernels', 'module'].map((k) => r.stagesMs![k]).join(' | ') : '| | | |'} |`),
    '',
  ].join('\n');
  writeFileSync(join(ROOT, 'bench/results/compile.md'), md);
}
execFileSync('rm', ['-rf', dir]);
process.exit(0);
