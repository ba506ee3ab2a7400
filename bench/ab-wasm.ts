/**
 * `npm run bench:ab-wasm -- --other DIR [--other DIR2 …]` — nnc's wasm backend on the peer
 * benchmark's workloads (W1–W5, bench/peers/specs), this checkout against others (DIR: e.g. main,
 * unpacked with `git archive main | tar -x -C DIR` and DIR/node_modules a link to this one's; a copy
 * of this checkout made the same way is the control: what the method reads as a difference when
 * there is none), side by side in one process. Each checkout compiles the specs with its own
 * compiler (-O2) into DIR/bench/.cache/ab/, and its generated modules run on its own runtime. Every
 * repetition runs each case once per checkout, back to back, in an order rotated per repetition, so
 * the machine's load falls on all alike; the ratio is the median over repetitions of other ÷ this
 * for the two calls of the repetition (below 1: the other is faster), which cancels the load's
 * drift (`npm run bench` compares medians of runs made at different times). `nnc wasm` (the default
 * threads, the worker pool) and `nnc wasm 1t` (`threads: 1`). Weights and inputs are seeded random
 * values (the time does not depend on them). bench/ab.ts of the redesign does the same for wasm 1t
 * and cpu at B = 1; this one adds the threads and the peer benchmark's batch sizes.
 *
 *   npm run bench:ab-wasm -- --other /tmp/nnc-main --other /tmp/nnc-copy [--only W1,W4] [--impl 1t] [--reps 15] [--warmup 3] [--name main]
 *
 * Results: bench/results/ab-<name>.{json,md}.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { prng, ROOT } from '../test/helpers.ts';

const { values } = parseArgs({
  options: {
    other: { type: 'string', multiple: true }, only: { type: 'string' }, impl: { type: 'string' },
    reps: { type: 'string', default: '15' }, warmup: { type: 'string', default: '3' }, name: { type: 'string', default: 'main' },
  },
});
if (!values.other?.length) {
  process.stderr.write('bench/ab-wasm.ts: --other DIR (another checkout of nnc, with node_modules) is required\n');
  process.exit(2);
}
const REPS = Number(values.reps);
const WARMUP = Number(values.warmup);
const only = values.only?.toUpperCase().split(',');
const CASES = ([
  // workload, B, T, input dim (bench/peers/run.ts)
  ['W1', 1, 100, 256], ['W1', 32, 100, 256], ['W2', 1, 100, 256], ['W2', 32, 100, 256], ['W3', 8, 100, 256], ['W4', 1, 128, 512], ['W4', 8, 128, 512], ['W5', 1, 200, 128],
] as [string, number, number, number][]).filter(([w]) => !only || only.includes(w));
const IMPLS = ([['nnc wasm', {}], ['nnc wasm 1t', { threads: 1 }]] as const).filter(([n]) => !values.impl || n.endsWith(values.impl));
interface Model { forward(i: Record<string, unknown>): Promise<Record<string, { data: Float32Array }>>; loadWeights(w: Record<string, Float32Array>): void; dispose(): void; manifest: { weights: { name: string; shape: number[] }[] } }
type Create = (o: object) => Promise<Model>;

/** Compiles W1–W5 with the checkout's own compiler and imports the modules. */
async function build(root: string): Promise<Record<string, Create>> {
  const { compile } = (await import(pathToFileURL(join(root, 'src/driver.ts')).href)) as { compile(t: string, f: string, s: string, l: number): { output?: string; diagnostics: unknown[] } };
  const dir = join(root, 'bench/.cache/ab');
  mkdirSync(dir, { recursive: true });
  const out: Record<string, Create> = {};
  for (const w of new Set(CASES.map(([x]) => x))) {
    const spec = join(ROOT, `bench/peers/specs/${w.toLowerCase()}.nn`);
    const r = compile(readFileSync(spec, 'utf8'), spec, 'ts', 2);
    if (r.output === undefined) throw new Error(`${root}: ${w} does not compile: ${JSON.stringify(r.diagnostics)}`);
    const file = join(dir, `${w.toLowerCase()}.ts`);
    writeFileSync(file, r.output);
    out[w] = ((await import(pathToFileURL(file).href)) as { createModel: Create }).createModel;
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const roots = [ROOT, ...values.other.map((d) => resolve(d))];
const names = ['this', ...values.other.map((d) => basename(resolve(d)))];
const built: Record<string, Create>[] = [];
for (const r of roots) built.push(await build(r));
const load0 = loadavg()[0]!;
const rows: { workload: string; B: number; impl: string; ms: Record<string, number>; ratio: Record<string, number>; load: string }[] = [];
for (const [w, B, T, D] of CASES) {
  for (const [impl, opts] of IMPLS) {
    const r = prng(B * 1000 + T);
    const x = { data: Float32Array.from({ length: B * T * D }, () => r() - 0.5), shape: [B, T, D] };
    const models: Model[] = [];
    for (const b of built) models.push(await b[w]!({ backend: 'wasm', ...opts }));
    const weights: Record<string, Float32Array> = {};
    for (const wi of models[0]!.manifest.weights) weights[wi.name] = Float32Array.from({ length: wi.shape.reduce((a, c) => a * c, 1) }, () => (r() - 0.5) * 0.1);
    for (const m of models) m.loadWeights(weights);
    // the checkouts compute the same thing
    const outs: Float32Array[] = [];
    for (const m of models) outs.push(Object.values(await m.forward({ x }))[0]!.data);
    for (let k = 1; k < outs.length; k++) {
      let diff = 0;
      for (let i = 0; i < outs[0]!.length; i++) diff = Math.max(diff, Math.abs(outs[0]![i]! - outs[k]![i]!));
      if (!(diff <= 1e-4)) throw new Error(`${w} B=${B} ${impl}: ${names[k]} differs from this checkout by ${diff}`);
    }
    const ms: number[][] = models.map(() => []);
    const lo = loadavg()[0]!;
    for (let rep = 0; rep < WARMUP + REPS; rep++) {
      for (let j = 0; j < models.length; j++) {
        const k = (rep + j) % models.length;
        const t0 = performance.now();
        await models[k]!.forward({ x });
        if (rep >= WARMUP) ms[k]!.push(performance.now() - t0);
      }
    }
    for (const m of models) m.dispose();
    const row = {
      workload: w, B, impl, ms: Object.fromEntries(names.map((n, k) => [n, +median(ms[k]!).toFixed(2)])),
      // per repetition, other ÷ this of its two calls; the median of those
      ratio: Object.fromEntries(names.slice(1).map((n, k) => [n, +median(ms[k + 1]!.map((t, i) => t / ms[0]![i]!)).toFixed(3)])),
      load: `${lo.toFixed(1)}–${loadavg()[0]!.toFixed(1)}`,
    };
    rows.push(row);
    process.stdout.write(`${JSON.stringify(row)}\n`);
  }
}
const result = { date: new Date().toISOString(), machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`, node: process.version, checkouts: Object.fromEntries(names.map((n, k) => [n, roots[k]])), reps: REPS, warmup: WARMUP, rows };
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, `bench/results/ab-${values.name}.json`), JSON.stringify(result, null, 2) + '\n');
const others = names.slice(1);
const geo = (n: string) => Math.exp(rows.reduce((s, r) => s + Math.log(r.ratio[n]!), 0) / rows.length).toFixed(3);
const md = [
  `# nnc wasm: this checkout beside ${others.join(', ')} (\`npm run bench:ab-wasm\`)`,
  '',
  `${result.date}, ${result.machine}, Node ${result.node}. W1–W5 of the peer benchmark, each checkout's compiler and runtime, seeded random weights and inputs; ${REPS} timed repetitions after ${WARMUP} warm-up, the checkouts back to back within each repetition (order rotated). Ratio = median over repetitions of other ÷ this (above 1: this checkout is faster). Geometric means: ${others.map((n) => `${n} ${geo(n)}`).join(', ')}.`,
  '',
  `| workload | B | implementation | ${names.map((n) => `${n} (ms)`).join(' | ')} | ${others.map((n) => `${n} ÷ this`).join(' | ')} | load |`,
  `|---|---:|---|${names.map(() => '---:|').join('')}${others.map(() => '---:|').join('')}---|`,
  ...rows.map((r) => `| ${r.workload} | ${r.B} | ${r.impl} | ${names.map((n) => r.ms[n]).join(' | ')} | ${others.map((n) => r.ratio[n]).join(' | ')} | ${r.load} |`),
  '',
].join('\n');
writeFileSync(join(ROOT, `bench/results/ab-${values.name}.md`), md);
process.stdout.write(md);
process.exit(0);
