/**
 * `npm run bench:yield` — what generate()'s turns of the event loop cost (issue 18, item 2). The
 * char-rnn language model (examples/char_lm.nn, seeded weights) generates 3,000 tokens greedily on
 * `wasm` and `cpu`; for each: ms per token (median of 5), how many turns the event loop got (calls
 * of setImmediate, counted), the longest gap between two runs of a 10 ms setInterval during a
 * generate, and what one turn costs when nothing else is waiting (median of 10,000). With
 * `--other DIR` (another checkout, e.g. main from before the turns, unpacked with `git archive` and
 * its node_modules a link to this one's), the same generates of DIR's generated/char_lm.ts
 * alternate with this checkout's, and the ratio of the medians is the whole cost per token, turns
 * and checks included. Results: bench/results/yield.json and yield.md.
 *
 *   npm run bench:yield [-- --other /tmp/nnc-main]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createModel } from '../generated/char_lm.ts';
import { prng, ROOT } from '../test/helpers.ts';

const { values } = parseArgs({ options: { other: { type: 'string' } } });
const otherCreate = values.other ? ((await import(pathToFileURL(join(values.other, 'generated/char_lm.ts')).href)) as { createModel: typeof createModel }).createModel : undefined;
const TOKENS = 3000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load0 = loadavg()[0]!;

// one turn, alone
const turns: number[] = [];
for (let i = 0; i < 10_000; i++) {
  const t = performance.now();
  await new Promise<void>((r) => setImmediate(r));
  turns.push(performance.now() - t);
}
const turnUs = median(turns) * 1000;

let immediates = 0;
const realSetImmediate = globalThis.setImmediate;
globalThis.setImmediate = ((f: () => void) => (immediates++, realSetImmediate(f))) as typeof setImmediate;

const rows = [];
/** A char_lm model with seeded weights (the same in both checkouts). */
async function seeded(create: typeof createModel, backend: 'wasm' | 'cpu') {
  const m = await create({ backend });
  const r = prng(3);
  const w: Record<string, Float32Array> = {};
  for (const wi of m.manifest.weights) w[wi.name] = Float32Array.from({ length: wi.shape.reduce((a, c) => a * c, 1) }, () => (r() - 0.5) * 0.2);
  m.loadWeights(w);
  return m;
}
const prompt = { data: Int32Array.from([40, 69, 76, 76, 79]), shape: [1, 5] as [number, number] };
for (const backend of ['wasm', 'cpu'] as const) {
  const m = await seeded(createModel, backend);
  const other = otherCreate ? await seeded(otherCreate, backend) : undefined;
  const n = backend === 'cpu' ? 1000 : TOKENS;
  await m.generate({ text: prompt }, { maxLen: 50 });
  await other?.generate({ text: prompt }, { maxLen: 50 });
  const ms: number[] = [];
  const otherMs: number[] = [];
  let gap = 0;
  let counted = 0;
  for (let rep = 0; rep < 5; rep++) {
    if (other && rep % 2 === 1) {
      const t0 = performance.now();
      await other.generate({ text: prompt }, { strategy: 'greedy', maxLen: n });
      otherMs.push((performance.now() - t0) / n);
    }
    let last = performance.now();
    const timer = setInterval(() => {
      const t = performance.now();
      gap = Math.max(gap, t - last);
      last = t;
    }, 10);
    immediates = 0;
    const t0 = performance.now();
    await m.generate({ text: prompt }, { strategy: 'greedy', maxLen: n });
    ms.push((performance.now() - t0) / n);
    gap = Math.max(gap, performance.now() - last);
    clearInterval(timer);
    counted = immediates;
    if (other && rep % 2 === 0) {
      const t1 = performance.now();
      await other.generate({ text: prompt }, { strategy: 'greedy', maxLen: n });
      otherMs.push((performance.now() - t1) / n);
    }
  }
  m.dispose();
  other?.dispose();
  const msPerToken = median(ms);
  rows.push({
    backend, tokens: n, msPerToken: +msPerToken.toFixed(4), turns: counted, tokensPerTurn: counted ? +(n / counted).toFixed(1) : null, longestIntervalGapMs: +gap.toFixed(1), turnCostShare: +((counted * turnUs) / 1000 / (msPerToken * n)).toFixed(4),
    ...(other ? { otherMsPerToken: +median(otherMs).toFixed(4), ratio: +(msPerToken / median(otherMs)).toFixed(3) } : {}),
  });
}
const result = { date: new Date().toISOString(), machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`, turnUs: +turnUs.toFixed(2), ...(values.other ? { other: values.other } : {}), rows };
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/yield.json'), JSON.stringify(result, null, 2) + '\n');
const md = [
  "# generate()'s turns of the event loop (`npm run bench:yield`)",
  '',
  `${result.date}, ${result.machine}. One turn (await setImmediate, nothing else waiting): ${result.turnUs} µs (median of 10,000). char_lm, greedy, seeded weights; median of 5 generates.${values.other ? ` Without turns: the same generates in ${values.other} (no turns, no checks between steps), alternating with this checkout's; ratio = this ÷ that.` : ''}`,
  '',
  `| backend | tokens | ms / token | turns per generate | tokens per turn | longest gap of a 10 ms interval (ms) | idle turns ÷ generate time |${values.other ? ' ms / token without turns | ratio |' : ''}`,
  `|---|---:|---:|---:|---:|---:|---:|${values.other ? '---:|---:|' : ''}`,
  ...rows.map((r) => `| ${r.backend} | ${r.tokens} | ${r.msPerToken} | ${r.turns} | ${r.tokensPerTurn ?? '–'} | ${r.longestIntervalGapMs} | ${(r.turnCostShare * 100).toFixed(2)} % |${'ratio' in r ? ` ${r.otherMsPerToken} | ${r.ratio} |` : ''}`),
  '',
].join('\n');
writeFileSync(join(ROOT, 'bench/results/yield.md'), md);
process.stdout.write(md);
process.exit(0);
