/**
 * `npx tsx bench/ab.ts --base DIR` — nnc against another checkout of itself (DIR: e.g. a copy of
 * `main` made with `git archive main | tar -x -C DIR` and `ln -s $PWD/node_modules DIR/`), side by
 * side in one process: the peer benchmark's workloads (bench/peers/specs, W1–W5, random weights)
 * compiled by each checkout's compiler and run on each checkout's runtime, calls interleaved A, B,
 * A, B … so that the machine's load falls on both alike. Medians of the forward time, and the median
 * of the ratios this ÷ base of each repetition's two back-to-back calls, per (workload, B, backend). Results: bench/results/ab.{json,md} (or --out DIR).
 *
 *   npx tsx bench/ab.ts --base /tmp/main --reps 15
 *   npx tsx bench/ab.ts --base /tmp/main --only w1,w5 --backend wasm --reps 41
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { prng, ROOT } from '../test/helpers.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}
const base = arg('base', '');
if (!base) {
  process.stderr.write('usage: npx tsx bench/ab.ts --base DIR [--reps N] [--out DIR]\n');
  process.exit(2);
}
const reps = Number(arg('reps', '11'));
const only = arg('only', '').toLowerCase().split(',').filter(Boolean);
const onlyBackend = arg('backend', '');

/** W1–W5 as in the peer benchmark; W0: a tanh RNN 8 → 8 over 200 steps, whose kernels cost next to nothing (the interpreter's own time per step). */
const W0 = 'model W0 {\n  input x: vectors(dim = 8)\n  output y\n  rnn hidden = 8, act = tanh\n}\n';
const WORKLOADS: { id: string; B: number; T: number; D: number }[] = [
  { id: 'w0', B: 1, T: 200, D: 8 },
  { id: 'w1', B: 1, T: 100, D: 256 },
  { id: 'w2', B: 1, T: 100, D: 256 },
  { id: 'w3', B: 8, T: 100, D: 256 },
  { id: 'w4', B: 1, T: 128, D: 512 },
  { id: 'w5', B: 1, T: 200, D: 128 },
];
const BACKENDS = [{ backend: 'wasm', threads: 1 }, { backend: 'cpu' }].filter((b) => !onlyBackend || b.backend === onlyBackend);

/** Compiles `spec` with the checkout at `root` into its own test/.out (so the module runs on that checkout's runtime) and imports it. */
async function build(root: string, name: string, spec: string): Promise<{ createModel(o: object): Promise<any> }> {
  const { compile } = (await import(join(root, 'src/driver.ts'))) as typeof import('../src/driver.ts');
  const r = compile(spec, `${name}.nn`);
  if (!r.output) throw new Error(`${root}: ${name} does not compile`);
  const dir = join(root, 'test/.out');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench_ab_${name}.ts`);
  writeFileSync(file, r.output);
  return import(file);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rows: { workload: string; B: number; backend: string; base_ms: number; this_ms: number; ratio: number }[] = [];
const loadStart = loadavg()[0]!;
for (const w of WORKLOADS.filter((x) => !only.length || only.includes(x.id))) {
  const spec = w.id === 'w0' ? W0 : readFileSync(join(ROOT, `bench/peers/specs/${w.id}.nn`), 'utf8');
  const mods = [await build(resolve(base), w.id, spec), await build(ROOT, w.id, spec)];
  const rnd = prng(5);
  const x = { data: Float32Array.from({ length: w.B * w.T * w.D }, () => rnd() - 0.5), shape: [w.B, w.T, w.D] };
  for (const opts of BACKENDS) {
    const models = await Promise.all(mods.map((m) => m.createModel(opts)));
    const wr = prng(9);
    const weights: Record<string, Float32Array> = {};
    for (const wi of models[0].manifest.weights as { name: string; shape: number[] }[]) weights[wi.name] = Float32Array.from({ length: wi.shape.reduce((a, d) => a * d, 1) }, () => (wr() - 0.5) * 0.1);
    for (const m of models) m.loadWeights(weights);
    // both give the same output (the same kernels' arithmetic), then warm-up, then interleaved timing
    const outs = await Promise.all(models.map(async (m) => (await m.forward({ x })).y.data as Float32Array));
    let diff = 0;
    for (let i = 0; i < outs[0]!.length; i++) diff = Math.max(diff, Math.abs(outs[0]![i]! - outs[1]![i]!));
    if (!(diff <= 1e-5)) throw new Error(`${w.id} on ${opts.backend}: the two checkouts differ by ${diff}`);
    const times: number[][] = [[], []];
    const n = w.id === 'w0' ? reps * 10 : opts.backend === 'cpu' ? Math.max(3, Math.ceil(reps / 3)) : reps;
    for (let r = 0; r < n + 2; r++) {
      for (const k of r % 2 ? [1, 0] : [0, 1]) {
        const t0 = performance.now();
        await models[k].forward({ x });
        if (r >= 2) times[k]!.push(performance.now() - t0);
      }
    }
    for (const m of models) m.dispose();
    const [a, b] = times.map(median) as [number, number];
    // each repetition's two calls ran back to back: the median of their ratios cancels the load's drift
    const ratio = median(times[1]!.map((t, j) => t / times[0]![j]!));
    rows.push({ workload: w.id.toUpperCase(), B: w.B, backend: opts.backend, base_ms: +a.toFixed(2), this_ms: +b.toFixed(2), ratio: +ratio.toFixed(3) });
    console.log(`${w.id.toUpperCase()} B=${w.B} ${opts.backend}: base ${a.toFixed(2)} ms, this ${b.toFixed(2)} ms, paired ratio ×${ratio.toFixed(3)}`);
  }
}
const load = `${loadStart.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`;
const outDir = arg('out', join(ROOT, 'bench/results'));
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'ab.json'), JSON.stringify({ date: new Date().toISOString(), base, load, rows }, null, 2) + '\n');
const md = [
  `nnc (this checkout) against ${base}, interleaved in one process; 1-minute load ${load}`,
  '',
  '| workload | B | backend | base ms (median) | this ms (median) | this ÷ base (median of paired ratios) |',
  '|---|---:|---|---:|---:|---:|',
  ...rows.map((r) => `| ${r.workload} | ${r.B} | ${r.backend} | ${r.base_ms} | ${r.this_ms} | ${r.ratio} |`),
].join('\n');
writeFileSync(join(outDir, 'ab.md'), md + '\n');
console.log(md);
