/**
 * `npm run demo:lm`: a character-level Transformer language model compiled by nnc.
 * examples/tiny_lm.nn (embedding, learned positions, 2 pre-norm layers of causal 4-head
 * self-attention and a gelu MLP, final layernorm, linear, log_softmax) is compiled to
 * generated/tiny_lm.ts and runs on weights trained in PyTorch by examples/train/train_tiny_lm.py on
 * this project's own documentation. It prints, for a few prompts, nnc's greedy continuation next to
 * PyTorch's (computed by full recomputation at every step), then a few seeded samples, then the cost
 * per generated token after prompts of growing length: generate() keeps a key/value cache, so each
 * step attends over the prefix instead of recomputing it, and the cost grows linearly with it.
 *
 *   tsx examples/generate.ts [--backend wasm|cpu|webasm|gpu|webgpu|auto] ["PROMPT" ...]
 *
 * With PROMPT arguments it also continues those (greedy and sampled; no PyTorch reference).
 */
import { readFileSync } from 'node:fs';
import { createModel, encode } from '../generated/tiny_lm.ts';

const args = process.argv.slice(2);
function usage(msg: string): never {
  console.error(`generate: ${msg}\nusage: tsx examples/generate.ts [--backend wasm|cpu|webasm|gpu|webgpu|auto] ["PROMPT" ...]`);
  process.exit(2);
}
let backend = 'wasm' as 'wasm' | 'cpu' | 'webasm' | 'gpu' | 'webgpu' | 'auto';
const extra: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--backend') {
    const v = args[++i];
    if (v === undefined) usage('--backend needs a value');
    if (!['wasm', 'cpu', 'webasm', 'gpu', 'webgpu', 'auto'].includes(v)) usage(`unknown backend '${v}'`);
    backend = v as typeof backend;
  } else if (args[i].startsWith('--')) usage(`unknown option '${args[i]}'`);
  else extra.push(args[i]);
}

interface Reference {
  data: { files: string[]; characters: number };
  training: { steps: number; seconds: number; train_loss: number; held_out_loss: number };
  decode: { maxLen: number };
  prompts: { prompt: string; prompt_ids: number[]; greedy: { ids: number[]; text: string; score: number } }[];
}
const root = new URL('..', import.meta.url).pathname;
const ref = JSON.parse(readFileSync(`${root}examples/weights/tiny_lm.json`, 'utf8')) as Reference;
const MAX_LEN = 128; // examples/tiny_lm.nn: the input's max_len (learned positions)
// The spec's vocabulary (examples/vocab/tiny_lm.json) maps text to ids the way the training script
// maps its corpus (transliteration, then '?' for anything else): encode(), and r.text from generate().
/** Newlines and tabs shown visibly, so a continuation stays on one line. */
const show = (s: string) => JSON.stringify(s).slice(1, -1);
const text = (ids: number[]) => ({ data: Int32Array.from(ids), shape: [1, ids.length], lengths: [ids.length] });

const model = await createModel({ backend });
model.loadWeights(readFileSync(`${root}examples/weights/tiny_lm.safetensors`));

console.log(`TinyLM: a character-level Transformer (2 pre-norm layers, causal 4-head self-attention, dim 64)`);
console.log(`compiled by nnc (generated/tiny_lm.ts), backend '${model.backend}' (${model.device}),`);
console.log(
  `weights from examples/train/train_tiny_lm.py (PyTorch; ${ref.data.characters} characters of ${ref.data.files.join(', ')}; ` +
    `${ref.training.steps} steps, held-out loss ${ref.training.held_out_loss.toFixed(3)} nats/char)\n`,
);

// 1. Greedy continuations: nnc (KV-cached generate) vs PyTorch (full recomputation per step).
const SCORE_TOL = 1e-3;
const maxLen = ref.decode.maxLen;
console.log(`greedy continuations, ${maxLen} characters: nnc's generate() (key/value cache) vs PyTorch (whole sequence recomputed per step)\n`);
let agreeing = 0;
for (const p of ref.prompts) {
  const r = await model.generate({ text: text(p.prompt_ids) }, { strategy: 'greedy', maxLen });
  const ids = Array.from(r.ids[0]);
  const same = ids.length === p.greedy.ids.length && ids.every((v, k) => v === p.greedy.ids[k]);
  const diff = Math.abs(r.scores[0] - p.greedy.score);
  if (same && diff <= SCORE_TOL) agreeing++;
  console.log(`  prompt   "${show(p.prompt)}"`);
  console.log(`  nnc      "${show(p.prompt)}${show(r.text[0])}"  ${r.scores[0].toFixed(4)}`);
  console.log(`  PyTorch  "${show(p.prompt)}${show(p.greedy.text)}"  ${p.greedy.score.toFixed(4)}   ${same ? '✓' : '✗'}  |score diff| ${diff.toExponential(1)}\n`);
}
console.log(`${agreeing}/${ref.prompts.length} continuations agree with PyTorch (ids exactly, summed log-prob within ${SCORE_TOL})\n`);

// 2. Seeded samples (temperature 0.8, top 10; the same seed gives the same text on every backend).
const samplePrompts = ['The ', 'nnc ', ...extra];
console.log(`samples (strategy 'sample', temperature 0.8, topK 10):`);
for (const [k, prompt] of samplePrompts.entries()) {
  const ids = encode(prompt);
  if (ids.length === 0 || ids.length >= MAX_LEN) usage(`a prompt needs 1 to ${MAX_LEN - 1} characters`);
  const room = Math.min(100, MAX_LEN - ids.length);
  if (k >= 2) {
    const g = await model.generate({ text: prompt }, { strategy: 'greedy', maxLen: room });
    console.log(`  greedy   "${show(prompt)}${show(g.text[0])}"`);
  }
  for (const seed of k < 2 ? [1, 2, 3] : [1]) {
    const r = await model.generate({ text: prompt }, { strategy: 'sample', temperature: 0.8, topK: 10, seed, maxLen: room });
    console.log(`  seed ${seed}   "${show(prompt)}${show(r.text[0])}"`);
  }
}

// 3. Cost per generated token after prompts of growing length. A step of generate() attends over
// the cached keys and values of the prefix: (time of generate with maxLen 11 − with maxLen 1) / 10
// is the cost of 10 steps after the prompt. For comparison, forward() over prefix + 1 tokens is
// what one step would cost without the cache (recomputing the whole sequence).
const filler = encode(ref.prompts.map((p) => p.prompt + p.greedy.text).join(' ').repeat(4));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
async function time(f: () => Promise<unknown>, reps: number): Promise<number> {
  await f(); // warm-up
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}
console.log(`\ncost per generated token on '${model.backend}' (median of 5 runs):`);
console.log(`  prompt  generate(maxLen 10)  per token, cached  one step recomputed (forward over prompt + 1)`);
for (const P of [10, 40, 80, 110]) {
  const prompt = text(filler.slice(0, P));
  const long = await time(() => model.generate({ text: prompt }, { strategy: 'greedy', maxLen: 11 }), 5);
  const short = await time(() => model.generate({ text: prompt }, { strategy: 'greedy', maxLen: 1 }), 5);
  const ten = await time(() => model.generate({ text: prompt }, { strategy: 'greedy', maxLen: 10 }), 5);
  const full = await time(() => model.forward({ text: text(filler.slice(0, P + 1)) }), 5);
  const perToken = Math.max(0, long - short) / 10;
  console.log(
    `  ${String(P).padStart(6)}  ${ten.toFixed(2).padStart(16)} ms  ${perToken.toFixed(3).padStart(14)} ms  ${full.toFixed(2).padStart(14)} ms`,
  );
}
model.dispose();
