/**
 * `npx tsx bench/kernels.ts` — what a deep model compiles to: the language brief's example 7 (the
 * Transformer encoder classifier, examples/transformer_classifier.nn) with `repeat 4` and with
 * `repeat 96`: kernels in the generated module, its size, distinct gpu.js sources, and the compile
 * time (in process, median of 3). Results: bench/results/kernels.{json,md} (or --out DIR).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compile } from '../src/driver.ts';
import { ROOT } from '../test/helpers.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

const base = readFileSync(join(ROOT, 'examples/transformer_classifier.nn'), 'utf8');
const rows: { blocks: number; kernels: number; gpuSources: number; bytes: number; compileMs: number }[] = [];
for (const blocks of [4, 96]) {
  const spec = base.replace('repeat 4', `repeat ${blocks}`);
  const times: number[] = [];
  let out = '';
  let kernels = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = compile(spec, 'transformer_classifier.nn');
    times.push(performance.now() - t0);
    if (!r.output) throw new Error('compile failed');
    out = r.output;
    kernels = r.kernels![0]!;
  }
  times.sort((a, b) => a - b);
  // every kernel carries one gpu.js source: a string property `gpu: "function (...`
  const sources = new Set<string>();
  for (const line of out.split('\n')) {
    const t = line.trim();
    if (t.startsWith('gpu: "function')) sources.add(t);
  }
  rows.push({ blocks, kernels, gpuSources: sources.size, bytes: Buffer.byteLength(out), compileMs: Math.round(times[1]!) });
}
const load = loadavg().map((x) => x.toFixed(2)).join(' ');
const outDir = arg('out', join(ROOT, 'bench/results'));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'kernels.json'), JSON.stringify({ date: new Date().toISOString(), load, rows }, null, 2) + '\n');
const md = [
  '| repeat | kernels | distinct gpu.js sources | module bytes | compile ms (median of 3) |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.blocks} | ${r.kernels} | ${r.gpuSources} | ${r.bytes} | ${r.compileMs} |`),
].join('\n');
writeFileSync(join(outDir, 'kernels.md'), `Transformer encoder classifier (language brief, example 7), load ${load}\n\n${md}\n`);
console.log(md);
