/**
 * `npm run demo:ngram`: count-based n-gram language models beside two neural ones, the comparison
 * the lecture notes draw, on the same held-out text (docs/ngram.md has the table this prints).
 *
 * Corpus: the project's docs as the tiny Transformer LM was trained on them (examples/data/, written
 * by examples/train/train_nplm.py): 95 % to fit or train on, the last 5 % held out. Every model reads
 * characters of the same 96-character vocabulary (examples/vocab/tiny_lm.json; the n-gram models add
 * <s> and </s>, one line being one sentence, so each newline is predicted as </s>).
 *  - n-gram models (examples/ngram.nn and variants): fitted here by counting, in about a second each;
 *  - NPLM (examples/nplm_docs.nn, weights from train_nplm.py): 8 characters of context;
 *  - TinyLM (examples/tiny_lm.nn, weights from train_tiny_lm.py): a 2-layer Transformer over up to 128
 *    characters (the held-out text is read in windows of 128 that overlap by 64, so every character
 *    but the first 64 has at least 64 of context).
 * Perplexity = exp(mean −ln p) over the held-out characters (the neural models start after one
 * newline of context).
 *
 *   tsx examples/perplexity.ts [--sample]
 */
import { readFileSync } from 'node:fs';
import * as nnc from 'nnc/runtime';
import { createModel as createNgram, DocsNgramVocab, manifest as ngramManifest } from '../generated/ngram.ts';
import { createModel as createTiny, encode } from '../generated/tiny_lm.ts';
import { createModel as createNplm } from '../generated/nplm_docs.ts';

const root = new URL('..', import.meta.url).pathname;
const train = readFileSync(`${root}examples/data/docs.train.txt`, 'utf8');
const held = readFileSync(`${root}examples/data/docs.heldout.txt`, 'utf8');
const rows: string[][] = [];
const add = (model: string, what: string, ppl: number, tokens: number, note: string) => rows.push([model, what, ppl.toFixed(3), String(tokens), note]);

// 1. n-gram models: fitted on the training text, scored on the held-out text
const base = await createNgram();
const t0 = performance.now();
const fit = base.fit(train);
const main = base.perplexity(held);
add('n-gram (examples/ngram.nn)', 'order 6, modified Kneser–Ney', main.perplexity, main.tokens, `${fit.tokens} tokens counted in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
const variants: [string, Omit<nnc.NgramSpec, 'bos' | 'eos'>][] = [
  ['order 2, modified Kneser–Ney', { order: 2, smoothing: 'kneser_ney' }],
  ['order 3, modified Kneser–Ney', { order: 3, smoothing: 'kneser_ney' }],
  ['order 4, modified Kneser–Ney', { order: 4, smoothing: 'kneser_ney' }],
  ['order 5, modified Kneser–Ney', { order: 5, smoothing: 'kneser_ney' }],
  ['order 8, modified Kneser–Ney', { order: 8, smoothing: 'kneser_ney' }],
  ['order 6, Witten–Bell', { order: 6, smoothing: 'witten_bell' }],
  ['order 6, Jelinek–Mercer (λ tuned on 10 % held out of training)', { order: 6, smoothing: 'interpolated' }],
  ['order 4, Katz (k = 5)', { order: 4, smoothing: 'katz' }],
  ['order 3, Laplace (additive α = 1)', { order: 3, smoothing: 'additive' }],
  ['order 3, additive α = 0.01', { order: 3, smoothing: 'additive', alpha: 0.01 }],
];
const { bos, eos } = { bos: DocsNgramVocab['text']!.specials.bos!, eos: DocsNgramVocab['text']!.specials.eos! };
for (const [what, spec] of variants) {
  const m = await nnc.createNgramModel(ngramManifest, { ...spec, bos, eos }, DocsNgramVocab['text']);
  m.fit(train);
  const p = m.perplexity(held);
  add('n-gram', what, p.perplexity, p.tokens, '');
}

// 2. the NPLM: each character from the 8 before it
const W = 8;
const nplm = await createNplm({ backend: 'wasm' });
nplm.loadWeights(readFileSync(`${root}examples/weights/nplm_docs.safetensors`));
const ids = [...new Array<number>(W).fill(encode('\n')[0]!), ...encode(held)];
const N = ids.length - W;
let ln = 0;
for (let s = 0; s < N; s += 1024) {
  const B = Math.min(1024, N - s);
  const data = new Int32Array(B * W);
  for (let b = 0; b < B; b++) data.set(ids.slice(s + b, s + b + W), b * W);
  const out = (await nplm.forward({ context: { data, shape: [B, W] } })).next;
  for (let b = 0; b < B; b++) ln += out.data[b * 96 + ids[s + b + W]!]!;
}
const nplmInfo = JSON.parse(readFileSync(`${root}examples/weights/nplm_docs.json`, 'utf8')) as { heldout_perplexity: number; seconds: number; epochs: number };
add('NPLM (examples/nplm_docs.nn)', '8 characters → 24-dim embeddings → 256 tanh → softmax', Math.exp(-ln / N), N, `trained ${nplmInfo.epochs} epochs in ${nplmInfo.seconds.toFixed(0)} s (PyTorch says ${nplmInfo.heldout_perplexity.toFixed(3)})`);

// 3. the tiny Transformer: windows of 128 overlapping by 64
const tiny = await createTiny({ backend: 'wasm' });
tiny.loadWeights(readFileSync(`${root}examples/weights/tiny_lm.safetensors`));
const seq = [encode('\n')[0]!, ...encode(held)];
let tl = 0, tn = 0;
for (let start = 0; start + 1 < seq.length; start += 64) {
  const win = seq.slice(start, start + 128);
  const out = (await tiny.forward({ text: { data: Int32Array.from(win), shape: [1, win.length] } })).next;
  for (let t = start === 0 ? 0 : 63; t + 1 < win.length; t++) {
    tl += out.data[t * 96 + win[t + 1]!]!;
    tn++;
  }
  if (start + 128 >= seq.length) break;
}
add('TinyLM (examples/tiny_lm.nn)', '2-layer Transformer, dim 64, 128 characters of context', Math.exp(-tl / tn), tn, 'trained 1500 steps in 103 s (examples/weights/tiny_lm.json)');

console.log(`Held-out perplexity per character on the project's docs (examples/data/docs.heldout.txt, ${held.length} characters)\n`);
console.log('| model | what | perplexity | tokens | |\n|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);

if (process.argv.includes('--sample')) {
  const r = await base.generate({ text: ['The model ', 'nnc '] }, { seed: 1 });
  console.log(`\nsampled from the 6-gram model: ${r.text.map((t) => JSON.stringify(t)).join(', ')}`);
}
