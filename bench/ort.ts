/**
 * `npm run bench:ort` — backend 'onnxruntime' against onnxruntime-node called directly, and the tiny
 * language model's generate() on it beside the wasm backend.
 *
 *   npm run bench:ort                       # W1–W5 (bench/peers/specs), 15 repetitions; tiny LM, 5
 *   npm run bench:ort -- --reps 31 --threads 2
 *
 * 1. W1–W5 (the peer benchmark's workloads and batch sizes, random seeded weights): the model's
 *    forward through `createModel({ backend: 'onnxruntime' })`, and onnxruntime-node called
 *    directly, `session.run()` with feeds made once, on the backend's own InferenceSession (the
 *    same graph, options, threads and memory arena: what differs is only what the backend adds —
 *    checking the inputs, making the feeds, naming the output). A second session made directly from
 *    the same graph (`nnc onnx`'s bytes, the same session options) is timed too: how far two
 *    sessions of one graph differ on this machine (thread placement, memory), which is not the
 *    backend's doing. Two pairs, timed apart: backend and direct, then the second session and
 *    direct; each repetition runs the pair back to back in alternating order, and each ratio is
 *    the median of the per-repetition ratios, so the load's drift cancels. (Mixing the sessions in
 *    one rotation would not do: a call right after another session's runs is slower, that
 *    session's threads still spinning for work.)
 * 2. examples/tiny_lm.nn on its shipped weights: generate() greedy, 4 prompts × 40 tokens, tokens per
 *    second on 'onnxruntime' and on 'wasm' (its default threads), medians, alternating.
 * Results: bench/results/ort.json and ort.md (with the machine's load).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { compile, lower } from '../src/driver.ts';
import { exportOnnx } from '../src/export/onnx.ts';
import { OUT, prng, ROOT } from '../test/helpers.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const REPS = arg('reps', 15);
const THREADS = arg('threads', Math.min(2, cpus().length));

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function importModule(name: string, text: string, file: string): Promise<Record<string, any>> {
  const r = compile(text, file);
  if (!r.output) throw new Error(`${file} did not compile`);
  mkdirSync(join(OUT, 'bench-ort'), { recursive: true });
  const path = join(OUT, 'bench-ort', `${name}.ts`);
  writeFileSync(path, r.output);
  return import(path);
}

const CASES: [string, number, number][] = [['W1', 1, 100], ['W1', 32, 100], ['W2', 1, 100], ['W2', 32, 100], ['W3', 8, 100], ['W4', 1, 128], ['W4', 8, 128], ['W5', 1, 200]];

async function forwardCase(id: string, B: number, T: number) {
  const file = `bench/peers/specs/${id.toLowerCase()}.nn`;
  const text = readFileSync(join(ROOT, file), 'utf8');
  const ir = lower(text, file).models![0]!;
  const r = prng(42);
  const weights = new Map(ir.weights.map((w) => [w.name, Float32Array.from({ length: w.shape.reduce((a, b) => a * b, 1) }, () => (2 * r() - 1) / Math.sqrt(w.shape[w.shape.length - 1]!))]));
  const dim = ir.inputs[0]!.dim!;
  const x = Float32Array.from({ length: B * T * dim }, () => 2 * r() - 1);
  const lengths = new Array<number>(B).fill(T);
  // the backend
  const mod = await importModule(id, text, file);
  const model = await mod.createModel({ backend: 'onnxruntime', threads: THREADS });
  model.loadWeights(Object.fromEntries(weights));
  const viaBackend = async () => Object.values(await model.forward({ x: { data: x, shape: [B, T, dim], lengths } }))[0] as { data: Float32Array };
  // onnxruntime-node directly: on the backend's own session, and on a second one made from the same graph and options
  const own = (await model.sessions('forward')).forward as ort.InferenceSession;
  const second = await ort.InferenceSession.create(exportOnnx(ir, weights).forward, { graphOptimizationLevel: 'all', intraOpNumThreads: THREADS, interOpNumThreads: 1 });
  const feeds = { x: new ort.Tensor('float32', x, [B, T, dim]), 'x.lengths': new ort.Tensor('int32', Int32Array.from(lengths), [B]) };
  const direct = async () => Object.values(await own.run(feeds))[0]!;
  const other = async () => Object.values(await second.run(feeds))[0]!;
  const a = await viaBackend();
  for (const f of [direct, other]) {
    const d = (await f()).data as Float32Array;
    if (a.data.length !== d.length || a.data.some((v, i) => v !== d[i])) throw new Error(`${id}: the backend's output is not the direct session's`);
  }
  // two pairs, each timed apart, alternating within the pair: a call right after another session's
  // runs slower (that session's threads still spin for work), so the three are never mixed
  const pair = async (f: () => Promise<unknown>, g: () => Promise<unknown>) => {
    for (let w = 0; w < 2; w++) {
      await f();
      await g();
    }
    const tf: number[] = [];
    const tg: number[] = [];
    const time = async (h: () => Promise<unknown>, into: number[]) => {
      const t0 = performance.now();
      await h();
      into.push(performance.now() - t0);
    };
    for (let rep = 0; rep < REPS; rep++) {
      if (rep % 2) {
        await time(f, tf);
        await time(g, tg);
      } else {
        await time(g, tg);
        await time(f, tf);
      }
    }
    return { f: median(tf), g: median(tg), ratio: median(tf.map((v, i) => v / tg[i]!)) };
  };
  const viaOwn = await pair(viaBackend, direct);
  const spread = await pair(other, direct);
  model.dispose();
  await second.release();
  return { workload: id, B, T, backendMs: viaOwn.f, directMs: viaOwn.g, ratio: viaOwn.ratio, secondSessionMs: spread.f, sessionSpread: spread.ratio };
}

async function tinyLm() {
  const file = 'examples/tiny_lm.nn';
  const mod = await importModule('tiny_lm', readFileSync(join(ROOT, file), 'utf8'), file);
  const weights = readFileSync(join(ROOT, 'examples/weights/tiny_lm.safetensors'));
  const N = 40;
  // ONNX Runtime with one intra-op thread too: a decoding step is many small kernels, where handing work to a second thread can cost more than it saves
  const models = { onnxruntime: await mod.createModel({ backend: 'onnxruntime', threads: THREADS }), onnxruntime1: await mod.createModel({ backend: 'onnxruntime', threads: 1 }), wasm: await mod.createModel({ backend: 'wasm' }) };
  const vocab = models.wasm.manifest.inputs[0].vocab as number;
  const r = prng(7);
  const prompts = Array.from({ length: 4 }, () => Array.from({ length: 12 }, () => 1 + Math.floor(r() * (vocab - 1))));
  const text = { data: Int32Array.from(prompts.flat()), shape: [4, 12], lengths: [12, 12, 12, 12] };
  let tokens = 0;
  const times: Record<string, number[]> = { onnxruntime: [], onnxruntime1: [], wasm: [] };
  const ids: Record<string, unknown> = {};
  for (const m of Object.values(models)) m.loadWeights(weights);
  const reps = Math.max(3, Math.round(REPS / 3));
  for (let rep = -1; rep < reps; rep++) {
    const keys = Object.keys(models);
    const order = keys.map((_, k) => keys[(rep + 1 + k) % keys.length]!);
    for (const k of order) {
      const t0 = performance.now();
      const g = await models[k as keyof typeof models].generate({ text }, { strategy: 'greedy', maxLen: N });
      const ms = performance.now() - t0;
      ids[k] = g.ids.map((x: ArrayLike<number>) => Array.from(x));
      tokens = g.ids.reduce((n: number, x: ArrayLike<number>) => n + x.length, 0);
      if (rep >= 0) times[k]!.push(ms);
    }
  }
  for (const m of Object.values(models)) m.dispose();
  const same = JSON.stringify(ids.onnxruntime) === JSON.stringify(ids.wasm) && JSON.stringify(ids.onnxruntime1) === JSON.stringify(ids.wasm);
  const tps = (k: string) => tokens / (median(times[k]!) / 1000);
  return { prompts: 4, promptLength: 12, maxLen: N, tokens, reps, onnxruntimeTokensPerS: tps('onnxruntime'), onnxruntime1TokensPerS: tps('onnxruntime1'), wasmTokensPerS: tps('wasm'), sameIds: same };
}

const load0 = loadavg()[0]!;
const forward = [];
for (const [id, B, T] of CASES) {
  const c = await forwardCase(id, B, T);
  console.log(`${c.workload} B=${c.B}: backend ${c.backendMs.toFixed(2)} ms, direct ${c.directMs.toFixed(2)} ms, ratio ${c.ratio.toFixed(3)}; a second session ${c.secondSessionMs.toFixed(2)} ms, ratio ${c.sessionSpread.toFixed(3)}`);
  forward.push(c);
}
const lm = await tinyLm();
console.log(`tiny LM generate(): onnxruntime ${lm.onnxruntimeTokensPerS.toFixed(0)} tokens/s (1 thread: ${lm.onnxruntime1TokensPerS.toFixed(0)}), wasm ${lm.wasmTokensPerS.toFixed(0)} tokens/s, same ids: ${lm.sameIds}`);
const load1 = loadavg()[0]!;
const result = { date: new Date().toISOString(), cpus: cpus().length, cpu: cpus()[0]?.model, load: [load0, load1], threads: THREADS, reps: REPS, onnxruntimeNode: (await import('onnxruntime-node/package.json', { with: { type: 'json' } })).default.version, forward, tinyLm: lm };
const dir = join(ROOT, 'bench/results');
writeFileSync(join(dir, 'ort.json'), JSON.stringify(result, null, 2) + '\n');
const md = [
  '# backend onnxruntime (`npm run bench:ort`)',
  '',
  `${result.date}; ${result.cpus} × ${result.cpu}; load (1-min) ${load0.toFixed(1)} → ${load1.toFixed(1)}; onnxruntime-node ${result.onnxruntimeNode}, ${THREADS} intra-op threads; ${REPS} repetitions, medians.`,
  '',
  'Forward through `createModel({ backend: \'onnxruntime\' })` vs onnxruntime-node called directly, `InferenceSession.run()` with feeds made once, on the backend\'s own session (same graph, options and arena: the difference is what the backend adds per call), and on a second session made directly from the same graph and options (how far two sessions of one graph differ here, not the backend\'s doing). Two pairs timed apart (backend and direct, then second session and direct), each back to back per repetition in alternating order; each ratio = median of per-repetition ratios.',
  '',
  '| workload | B | T | backend ms | direct ms | backend ÷ direct | second session ms | second ÷ direct |',
  '|---|---|---|---|---|---|---|---|',
  ...forward.map((c) => `| ${c.workload} | ${c.B} | ${c.T} | ${c.backendMs.toFixed(2)} | ${c.directMs.toFixed(2)} | ${c.ratio.toFixed(3)} | ${c.secondSessionMs.toFixed(2)} | ${c.sessionSpread.toFixed(3)} |`),
  '',
  `Tiny LM (examples/tiny_lm.nn, shipped weights), generate() greedy, ${lm.prompts} prompts of ${lm.promptLength} tokens, maxLen ${lm.maxLen} (${lm.tokens} tokens generated per call), ${lm.reps} repetitions: ` +
    `**onnxruntime ${lm.onnxruntimeTokensPerS.toFixed(0)} tokens/s** (${THREADS} threads; ${lm.onnxruntime1TokensPerS.toFixed(0)} with 1), **wasm ${lm.wasmTokensPerS.toFixed(0)} tokens/s** (ids equal: ${lm.sameIds}).`,
  '',
];
writeFileSync(join(dir, 'ort.md'), md.join('\n'));
console.log(`wrote bench/results/ort.{json,md}`);
