/**
 * `npm run bench:ngram`: counting speed and memory of n-gram fitting on 1 M tokens (issue #16: "1 M
 * tokens counted in seconds, memory reported"). The corpus is synthetic word-level text (a Zipfian
 * vocabulary of 20 000 words, sentences of 5–30 words, seeded), so the run needs no data files. For
 * each order and smoothing it reports the median of 3 fits: seconds, tokens per second, the model's
 * arrays in MiB and the growth of the process's resident memory. Note the load (uptime) beside it.
 *
 *   tsx bench/ngram.ts [--tokens N]
 */
import { NgramLM, type NgramVocab } from '../src/runtime/ngram/lm.ts';
import type { NgramOptions } from '../src/runtime/ngram/smooth.ts';

const arg = process.argv.indexOf('--tokens');
const TOKENS = arg > 0 ? Number(process.argv[arg + 1]) : 1_000_000;
const WORDS = 20_000;
let seed = 7;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
// Zipf: word k with weight 1/(k+1)
const cum = new Float64Array(WORDS);
let z = 0;
for (let k = 0; k < WORDS; k++) cum[k] = z += 1 / (k + 1);
const word = () => {
  const u = rand() * z;
  let lo = 0, hi = WORDS - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return lo + 3;
};
const sentences: Int32Array[] = [];
let n = 0;
while (n < TOKENS) {
  const len = 5 + Math.floor(rand() * 26);
  const s = Int32Array.from({ length: len }, word);
  sentences.push(s);
  n += len + 1;
}
const vocab: NgramVocab = { size: WORDS + 3, unk: 0, bos: 1, eos: 2, token: (i) => `w${i}`, id: (t) => Number(t.slice(1)) };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`${n} tokens in ${sentences.length} sentences, vocabulary ${vocab.size}; node ${process.version}`);
console.log('| order | smoothing | fit (s, median of 3) | tokens/s | n-grams | model MiB | RSS growth MiB |\n|---|---|---|---|---|---|---|');
const cases: NgramOptions[] = [
  { order: 3, smoothing: 'kneser_ney' },
  { order: 3, smoothing: 'witten_bell' },
  { order: 3, smoothing: 'katz' },
  { order: 3, smoothing: 'interpolated', lambdas: [0.5, 0.3, 0.15, 0.05] },
  { order: 5, smoothing: 'kneser_ney' },
];
for (const o of cases) {
  const times: number[] = [];
  let report: ReturnType<typeof NgramLM.fit>['report'] | undefined;
  let grow = 0;
  for (let r = 0; r < 3; r++) {
    globalThis.gc?.();
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const fit = NgramLM.fit(sentences, o, vocab);
    times.push((performance.now() - t0) / 1000);
    grow = Math.max(grow, process.memoryUsage().rss - rss0);
    report = fit.report;
  }
  const t = median(times);
  console.log(`| ${o.order} | ${o.smoothing} | ${t.toFixed(2)} | ${(n / t / 1e6).toFixed(2)} M | ${report!.ngrams.reduce((s, x) => s + x, 0)} | ${(report!.bytes / 2 ** 20).toFixed(0)} | ${(grow / 2 ** 20).toFixed(0)} |`);
}
