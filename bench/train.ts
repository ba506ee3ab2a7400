/**
 * One training step (issue 13's T1, T2, W1) in nnc beside PyTorch CPU (2 threads) and TensorFlow.js
 * (wasm and cpu backends, bench/train_tfjs.ts), from the same initial weights and batch: each one's
 * first-step loss is checked equal to PyTorch's (1e-4 relative) before any time is taken; then the
 * median of STEPS steps each (Adam, lr 1e-3) and the ratios, all from this one run. TensorFlow.js
 * gets at most TF_BUDGET_S seconds of timed steps per case and backend (its cpu backend takes
 * seconds per step). Writes bench/results/train.{md,json}. Run: npx tsx bench/train.ts [STEPS]
 * (default 5); the peers install with `ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix bench/peers`.
 *
 * - T1: char-LM, embedding 64 → LSTM 256 → linear 96, B = 32, T = 100, cross-entropy on logits;
 * - T2: tiny GPT, d = 128, 2 pre-norm layers, 4 heads, T = 128, B = 16, cross-entropy;
 * - W1: LSTM 256 → 512, B = 32, T = 100, mse against random targets.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { compile } from '../src/driver.ts';
import { emitTorch } from '../src/export/torch.ts';
import { lower } from '../src/driver.ts';
import { check } from '../src/syntax/check.ts';
import { encodeSafetensors } from '../src/runtime/safetensors.ts';
import { createTrainer } from '../src/train/index.ts';
import { loadTf, tfjsTrain } from './train_tfjs.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const CACHE = join(ROOT, 'bench/.cache/train');
const STEPS = Number(process.argv[2] ?? 5);
const TF_BUDGET_S = 40;
const TF_BACKENDS = ['wasm', 'cpu'] as const;

interface Case {
  name: 'T1' | 'T2' | 'W1';
  spec: string;
  cls: string;
  B: number;
  T: number;
  loss: 'cross_entropy' | 'mse';
  /** input features (vectors) or vocabulary (tokens) */
  x: { vocab: number } | { dim: number };
  out: number;
}

const CASES: Case[] = [
  { name: 'T1', cls: 'T1', B: 32, T: 100, loss: 'cross_entropy', x: { vocab: 96 }, out: 96,
    spec: 'model T1 {\n  input text: tokens(vocab = 96)\n  output y\n  embedding dim = 64\n  lstm hidden = 256\n  linear 96\n}\n' },
  { name: 'T2', cls: 'T2', B: 16, T: 128, loss: 'cross_entropy', x: { vocab: 96 }, out: 96,
    spec: 'model T2 {\n  input text: tokens(vocab = 96, max_len = 128)\n  output y\n  embedding dim = 128\n  positional learned\n  repeat 2 {\n    residual { layernorm; attention self, heads = 4, causal }\n    residual { layernorm; linear 512; gelu; linear 128 }\n  }\n  layernorm\n  linear 96\n}\n' },
  { name: 'W1', cls: 'W1', B: 32, T: 100, loss: 'mse', x: { dim: 256 }, out: 512,
    spec: 'model W1 {\n  input x: vectors(dim = 256)\n  output y\n  lstm hidden = 512\n}\n' },
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    s ^= s >>> 12;
    return (s >>> 0) / 2 ** 32;
  };
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;

async function run(c: Case) {
  mkdirSync(CACHE, { recursive: true });
  const file = `${c.name.toLowerCase()}.nn`;
  const r = compile(c.spec, file);
  if (!r.output) throw new Error(`${c.name}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  const modPath = join(CACHE, `${c.name}.ts`);
  writeFileSync(modPath, r.output);
  const low = lower(c.spec, file);
  const py = emitTorch(low.models!.map((ir, i) => ({ ir, resolved: low.resolved![i]! })), file, 'bench');
  void check;
  const pyPath = join(CACHE, `${c.name}.py`);
  writeFileSync(pyPath, py);
  const mod = await import(modPath);
  const model = await mod.createModel({ backend: 'wasm' });
  const rnd = rng(13);
  const weights = new Map<string, { data: Float32Array; shape: number[] }>();
  for (const w of model.manifest.weights as { name: string; shape: number[] }[]) {
    const n = w.shape.reduce((a, d) => a * d, 1);
    const bound = 1 / Math.sqrt(w.shape[w.shape.length - 1]!);
    const data = w.name.includes('layernorm') || w.name.includes('norm') ? Float32Array.from({ length: n }, () => (w.shape.length === 1 && w.name.endsWith('weight') ? 1 : 0)) : Float32Array.from({ length: n }, () => (2 * rnd() - 1) * bound);
    weights.set(w.name, { data, shape: w.shape });
  }
  const wPath = join(CACHE, `${c.name}.weights.safetensors`);
  writeFileSync(wPath, encodeSafetensors(weights));
  const xs = 'vocab' in c.x ? Float32Array.from({ length: c.B * c.T }, () => Math.floor(rnd() * (c.x as { vocab: number }).vocab)) : Float32Array.from({ length: c.B * c.T * c.x.dim }, () => 2 * rnd() - 1);
  const xShape = 'vocab' in c.x ? [c.B, c.T] : [c.B, c.T, c.x.dim];
  const ys = c.loss === 'cross_entropy' ? Float32Array.from({ length: c.B * c.T }, () => Math.floor(rnd() * c.out)) : Float32Array.from({ length: c.B * c.T * c.out }, () => 2 * rnd() - 1);
  const yShape = c.loss === 'cross_entropy' ? [c.B, c.T] : [c.B, c.T, c.out];
  const bPath = join(CACHE, `${c.name}.batch.safetensors`);
  writeFileSync(bPath, encodeSafetensors(new Map([['x', { data: xs, shape: xShape }], ['y', { data: ys, shape: yShape }]])));

  const torch = JSON.parse(execFileSync('/usr/bin/python3', [join(ROOT, 'bench/train_torch.py'), pyPath, c.cls, wPath, bPath, c.loss, String(STEPS)], { encoding: 'utf8', maxBuffer: 1 << 26 })) as { first: number; times: number[]; torch: string };

  model.loadWeights(Object.fromEntries([...weights].map(([k, v]) => [k, v.data])));
  const inputName = (model.manifest.inputs as { name: string }[])[0]!.name;
  const inputs = { [inputName]: { data: 'vocab' in c.x ? Int32Array.from(xs) : xs, shape: xShape } };
  const targets = { data: c.loss === 'cross_entropy' ? Int32Array.from(ys) : ys, shape: yShape };
  const trainer = createTrainer(model, { loss: c.loss, optimizer: { kind: 'adam', lr: 1e-3 } });
  const first = (await trainer.step({ inputs, targets })).loss;
  const rel = Math.abs(first - torch.first) / Math.abs(torch.first);
  if (!(rel < 1e-4)) throw new Error(`${c.name}: nnc's first-step loss ${first} is not PyTorch's ${torch.first} (relative ${rel.toExponential(2)}): not timing`);
  const times: number[] = [];
  for (let k = 0; k < STEPS; k++) {
    const t0 = performance.now();
    await trainer.step({ inputs, targets });
    times.push(performance.now() - t0);
  }
  model.dispose();
  // TensorFlow.js: the same weights and batch (token inputs as one-hot rows: bench/train_tfjs.ts)
  const tfjs: Record<string, { first: number; ms?: number; steps: number; note?: string }> = {};
  for (const b of TF_BACKENDS) {
    try {
      const r = await tfjsTrain(c, b, weights, xs, ys, STEPS, TF_BUDGET_S * 1000);
      const rel = Math.abs(r.first - torch.first) / Math.abs(torch.first);
      tfjs[b] = rel < 1e-4 ? { first: r.first, ms: median(r.times), steps: r.times.length } : { first: r.first, steps: 0, note: `first-step loss ${r.first.toFixed(6)} is not PyTorch's (relative ${rel.toExponential(2)}): not timed` };
    } catch (e) {
      tfjs[b] = { first: NaN, steps: 0, note: `cannot train: ${(e as Error).message.split('\n')[0]}` };
    }
  }
  return { name: c.name, torchFirst: torch.first, nncFirst: first, torchMs: median(torch.times), nncMs: median(times), tfjs, torchVersion: torch.torch, device: model.device };
}

await loadTf(ROOT);
const results: Awaited<ReturnType<typeof run>>[] = [];
const load = loadavg()[0]!.toFixed(1);
for (const c of CASES) {
  const r = await run(c);
  const tf = TF_BACKENDS.map((b) => `tfjs ${b} ${r.tfjs[b]!.ms !== undefined ? r.tfjs[b]!.ms!.toFixed(0) : r.tfjs[b]!.note}`).join(', ');
  console.log(`${r.name}: first-step loss nnc ${r.nncFirst.toFixed(6)} = torch ${r.torchFirst.toFixed(6)}; ms/step nnc wasm ${r.nncMs.toFixed(0)}, torch ${r.torchMs.toFixed(0)} (nnc/torch ${(r.nncMs / r.torchMs).toFixed(2)}), ${tf}`);
  results.push(r);
}
const loadEnd = loadavg()[0]!.toFixed(1);
const tfCell = (r: (typeof results)[number], b: (typeof TF_BACKENDS)[number]) => (r.tfjs[b]!.ms !== undefined ? `${r.tfjs[b]!.ms!.toFixed(0)} (${r.tfjs[b]!.steps})` : '—');
const tfRatio = (r: (typeof results)[number], b: (typeof TF_BACKENDS)[number]) => (r.tfjs[b]!.ms !== undefined ? (r.tfjs[b]!.ms! / r.nncMs).toFixed(1) : '—');
const notes = results.flatMap((r) => TF_BACKENDS.filter((b) => r.tfjs[b]!.note).map((b) => `- ${r.name}, tfjs ${b}: ${r.tfjs[b]!.note}`));
const md = [
  '# One training step: nnc beside PyTorch CPU and TensorFlow.js',
  '',
  `\`npx tsx bench/train.ts ${STEPS}\`: median ms of ${STEPS} steps each (TensorFlow.js: of the steps that fit in ${TF_BUDGET_S} s, count in parentheses), after a first step whose loss is checked equal to PyTorch's (1e-4 relative) from the same weights and batch; Adam lr 1e-3. nnc: backend wasm (${results[0]?.device}); PyTorch ${results[0]?.torchVersion} CPU, 2 threads; TensorFlow.js 4.22 (tfjs-core, autodiff and tf.train.adam), backends wasm (1 thread, SIMD) and cpu. Token inputs are one-hot rows times the embedding table in TensorFlow.js on both backends (its wasm backend has no gradient for an embedding lookup); nnc and PyTorch take the token ids. Machine: ${cpus().length} cores, shared; load average ${load} at the start, ${loadEnd} at the end. All numbers are from this one run.`,
  '',
  '| case | first-step loss (nnc / PyTorch) | nnc wasm | PyTorch | tfjs wasm | tfjs cpu | nnc ÷ PyTorch | tfjs wasm ÷ nnc | tfjs cpu ÷ nnc |',
  '|---|---|---|---|---|---|---|---|---|',
  ...results.map((r) => `| ${r.name} | ${r.nncFirst.toFixed(6)} / ${r.torchFirst.toFixed(6)} | ${r.nncMs.toFixed(0)} | ${r.torchMs.toFixed(0)} | ${tfCell(r, 'wasm')} | ${tfCell(r, 'cpu')} | ${(r.nncMs / r.torchMs).toFixed(2)} | ${tfRatio(r, 'wasm')} | ${tfRatio(r, 'cpu')} |`),
  '',
  'T1: char-LM, embedding 64 → LSTM 256 → linear 96, B 32, T 100, cross-entropy. T2: tiny GPT, d 128, 2 pre-norm layers, 4 heads, causal, B 16, T 128, cross-entropy. W1: LSTM 256 → 512, B 32, T 100, mse.',
  ...(notes.length ? ['', ...notes] : []),
  '',
];
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/train.md'), md.join('\n'));
writeFileSync(join(ROOT, 'bench/results/train.json'), JSON.stringify({ steps: STEPS, load, loadEnd, results }, null, 2));
