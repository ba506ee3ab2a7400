/**
 * `npm run bench:generate` — time per generated token of a causal Transformer language model as the
 * prefix grows, with generate()'s key/value cache and, side by side in the same run, by full
 * recomputation (forward over the whole sequence for every token, what a cache-less loop does).
 *
 *   npm run bench:generate                          # cpu, prefixes 16…256
 *   npm run bench:generate -- --backend webasm --reps 5
 *
 * The model is compiled from the spec below with random weights (seeded). For each prefix length P
 * the prompt is P tokens; stream() then produces N + 1 = 9 tokens (greedy, no eos), and the
 * per-token time is the time from the first event (after the prompt) to the last, over N. Medians
 * of `reps` runs after one warm-up. Results: bench/results/generate.json and generate.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compile } from '../src/driver.ts';
import { OUT, prng, ROOT } from '../test/helpers.ts';

const SPEC = `model BenchLM {
  input text: tokens(vocab = 64, max_len = 512)
  output y
  embedding dim = 64
  positional learned
  repeat 2 {
    residual { layernorm; attention self, heads = 4, causal }
    residual { layernorm; linear 256; gelu; linear 64 }
  }
  layernorm
  linear 64
  log_softmax
}
`;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}
const backend = arg('backend', 'cpu');
const reps = Number(arg('reps', '5'));
const N = 8;
const PREFIXES = [16, 32, 64, 128, 256];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const r = compile(SPEC, 'bench_lm.nn');
if (!r.output) throw new Error('bench spec did not compile');
mkdirSync(OUT, { recursive: true });
const path = join(OUT, 'bench_lm.ts');
writeFileSync(path, r.output);
const mod = await import(path);
const model = await mod.createModel({ backend });
const rnd = prng(7);
const weights: Record<string, Float32Array> = {};
for (const w of model.manifest.weights) weights[w.name] = Float32Array.from({ length: w.shape.reduce((a: number, c: number) => a * c, 1) }, () => (rnd() - 0.5) * 0.4);
model.loadWeights(weights);

const rows: { prefix: number; cachedMsPerToken: number; recomputeMsPerToken: number; ratio: number }[] = [];
for (const P of PREFIXES) {
  const prompt = { data: Int32Array.from({ length: P }, (_, i) => (i * 7) % 64), shape: [1, P] };
  /** ms per token after the prompt: from the first step event to the last */
  const timeGenerate = async () => {
    const at: number[] = [];
    for await (const _ of model.stream({ text: prompt }, { strategy: 'greedy', maxLen: N + 1 })) at.push(performance.now());
    return (at[at.length - 1] - at[0]) / N;
  };
  const timeRecompute = async () => {
    // a cache-less loop: forward over the whole sequence for each new token
    const ids = Array.from(prompt.data);
    const t0 = performance.now();
    for (let k = 0; k < N; k++) {
      const out = (await model.forward({ text: { data: Int32Array.from(ids), shape: [1, ids.length] } })).y;
      const last = out.data.subarray((ids.length - 1) * 64, ids.length * 64);
      ids.push(last.indexOf(Math.max(...last)));
    }
    return performance.now() - t0;
  };
  await timeGenerate();
  await timeRecompute();
  const cached: number[] = [];
  const recompute: number[] = [];
  for (let i = 0; i < reps; i++) {
    cached.push(await timeGenerate());
    recompute.push((await timeRecompute()) / N);
  }
  const row = { prefix: P, cachedMsPerToken: median(cached), recomputeMsPerToken: median(recompute), ratio: median(recompute) / median(cached) };
  rows.push(row);
  console.log(`prefix ${String(P).padStart(4)}: ${row.cachedMsPerToken.toFixed(2)} ms/token with the cache, ${row.recomputeMsPerToken.toFixed(2)} ms/token recomputing (${row.ratio.toFixed(1)}×)`);
}
model.dispose();

const machine = `${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg()[0].toFixed(2)}, node ${process.version}`;
const dir = join(ROOT, 'bench/results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'generate.json'), JSON.stringify({ backend, reps, tokens: N, machine, rows }, null, 2) + '\n');
writeFileSync(join(dir, 'generate.md'), [
  `# Generation time per token (\`npm run bench:generate\`, backend ${backend})`,
  '',
  `Causal Transformer LM (d = 64, 4 heads, 2 blocks, vocab 64), ${N} greedy tokens after a prompt of each length; medians of ${reps} runs. Machine: ${machine}.`,
  '',
  '| prefix | ms/token, generate() (KV cache) | ms/token, recomputing the prefix | ratio |',
  '|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.prefix} | ${r.cachedMsPerToken.toFixed(2)} | ${r.recomputeMsPerToken.toFixed(2)} | ${r.ratio.toFixed(1)}× |`),
  '',
].join('\n'));
