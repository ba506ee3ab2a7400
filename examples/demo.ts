/**
 * `npm run demo`: the bracket classifier compiled by nnc (generated/brackets.ts), running on
 * weights trained in PyTorch by examples/train/train_classifier.py. Prints, for bracket strings
 * a person can check by eye, nnc's verdict next to PyTorch's probability for the same input.
 *
 *   tsx examples/demo.ts [--backend cpu|webasm|gpu|webgpu|auto] [STRING ...]
 */
import { readFileSync } from 'node:fs';
import { createModel } from '../generated/brackets.ts';

const args = process.argv.slice(2);
const bi = args.indexOf('--backend');
const backend = (bi >= 0 ? args.splice(bi, 2)[1] : 'auto') as 'auto';
const root = new URL('..', import.meta.url).pathname;
const held = JSON.parse(readFileSync(`${root}examples/weights/brackets.test.json`, 'utf8')) as {
  tokens: Record<string, number>;
  examples: { text: string; label: number; probs: number[] }[];
};

const strings = args.length ? args : held.examples.map((e) => e.text);
for (const s of strings) {
  const bad = [...s].find((ch) => !(ch in held.tokens) || ch === '<pad>');
  if (bad !== undefined) {
    console.error(`demo: '${s}' has '${bad}'; use only the characters ( ) [ ]`);
    process.exit(2);
  }
}

const model = await createModel({ backend });
model.loadWeights(readFileSync(`${root}examples/weights/brackets.safetensors`));

// one padded batch: token ids, 0 = padding, with each row's length
const T = Math.max(...strings.map((s) => s.length));
const ids = new Int32Array(strings.length * T);
strings.forEach((s, b) => [...s].forEach((ch, t) => (ids[b * T + t] = held.tokens[ch])));
const t0 = performance.now();
const { label } = await model.forward({ text: { data: ids, shape: [strings.length, T], lengths: strings.map((s) => s.length) } });
const ms = performance.now() - t0;

const truth = new Map(held.examples.map((e) => [e.text, e]));
let agree = 0;
let correct = 0;
console.log(`Brackets (bidirectional GRU, 2 layers) on backend '${model.backend}' (${model.device})\n`);
console.log(`${'string'.padEnd(T + 2)} P(balanced)  nnc says     truth       PyTorch P(balanced)`);
strings.forEach((s, b) => {
  const p = label.data[b * 2 + 1];
  const verdict = p > 0.5 ? 'balanced' : 'unbalanced';
  const known = truth.get(s);
  const tru = known ? (known.label ? 'balanced' : 'unbalanced') : (isBalanced(s) ? 'balanced' : 'unbalanced');
  if (verdict === tru) correct++;
  if (known && Math.abs(known.probs[1] - p) < 1e-4) agree++;
  console.log(`${s.padEnd(T + 2)} ${p.toFixed(4).padStart(11)}  ${verdict.padEnd(11)}  ${tru.padEnd(11)} ${known ? known.probs[1].toFixed(4) : '-'}`);
});
console.log(`\n${correct}/${strings.length} verdicts correct; ${agree}/${strings.filter((s) => truth.has(s)).length} probabilities within 1e-4 of PyTorch; forward took ${ms.toFixed(1)} ms`);
model.dispose();

function isBalanced(s: string): boolean {
  const stack: string[] = [];
  for (const ch of s) {
    if (ch === '(' || ch === '[') stack.push(ch);
    else if (stack.pop() !== (ch === ')' ? '(' : '[')) return false;
  }
  return stack.length === 0;
}
