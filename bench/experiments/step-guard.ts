/**
 * Experiment behind docs/benchmarks.md ("webasm: the step kernel's early return"): the same -O2
 * module twice, once as emitted and once with each step kernel's gpu.js source rewritten from
 *
 *     if (tt !== t) { return hist[idx]; }   if (t >= len[i0]) { return 0.0; }   …body…   return v;
 * to
 *     let res = hist[idx]; if (tt === t) { if (t >= len[i0]) { res = 0.0; } else { …body… res = v; } } return res;
 *
 * (same values; only the control flow differs). gpu.js's webasm SIMD path keeps running a
 * uniform-trip loop for quads whose lanes all took an earlier `return`, so as emitted every cell of
 * the [B, T, S] history pays for the step's dot products; under a lane-varying `if` the loop is
 * skipped when no lane is live.
 *
 *   npx tsx bench/experiments/step-guard.ts [elman|bigru|char_lm] [webasm|gpu|cpu]     (gpu: under xvfb-run -a)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compile } from '../../src/driver.ts';

const SPECS: Record<string, string> = {
  elman: 'model Elman {\n  input text: tokens(vocab = 96)\n  output next\n  embedding dim = 32\n  rnn hidden = 128\n  linear 96\n  log_softmax\n}',
  bigru: 'model Brackets {\n  input text: tokens(vocab = 5)\n  output label\n  embedding dim = 16\n  gru hidden = 32, layers = 2, bidirectional\n  pool max\n  linear 2\n  softmax\n}',
  char_lm: 'model CharLM {\n  input text: tokens(vocab = 96)\n  output next\n  embedding dim = 32\n  lstm hidden = 128, layers = 2\n  linear 96\n  log_softmax\n}',
};

/** Rewrites step kernels' early returns into one lane-varying `if`; returns the module and how many kernels changed. */
export function guardStepKernels(src: string): { src: string; changed: number } {
  let changed = 0;
  const out = src.replace(/gpu: "(function \([^"]*?tt !== t[^"]*)"/g, (m, body: string) => {
    const g = /\\n {2}if \(tt !== t\) \{ return (\w+)\[idx\]; \}\\n {2}if \(t >= (\w+)\[i0\]\) \{ return 0\.0; \}([\s\S]*)\\n {2}return (\w+);\\n\}$/.exec(body);
    if (!g) return m;
    const [, hist, len, rest, ret] = g;
    changed++;
    return `gpu: "${body.slice(0, g.index)}\\n  let res = ${hist}[idx];\\n  if (tt === t) {\\n  if (t >= ${len}[i0]) { res = 0.0; } else {${rest}\\n  res = ${ret};\\n  }\\n  }\\n  return res;\\n}"`;
  });
  return { src: out, changed };
}

async function main() {
  const which = process.argv[2] ?? 'elman';
  const backend = process.argv[3] ?? 'webasm';
  const spec = SPECS[which];
  if (!spec) throw new Error(`unknown model '${which}' (have ${Object.keys(SPECS).join(', ')})`);
  const r = compile(spec, `${which}.nn`, 'ts', 2);
  const r1 = compile(spec, `${which}.nn`, 'ts', 1);
  if (r.output === undefined || r1.output === undefined) throw new Error('does not compile');
  const patched = guardStepKernels(r.output);
  const dir = mkdtempSync(join(tmpdir(), 'nnc-guard-'));
  try {
    const B = 8;
    const T = 32;
    const results: { name: string; median: number; out: Float32Array }[] = [];
    const variants: [string, string][] = [['-O2 as emitted', r.output], [`-O2 guarded (${patched.changed} step kernels)`, patched.src], ['-O1 as emitted, for comparison', r1.output]];
    for (const [name, text] of variants) {
      const path = join(dir, `${results.length}.ts`);
      writeFileSync(path, text);
      const mod = await import(path);
      const model = await mod.createModel({ backend });
      try {
        const w: Record<string, Float32Array> = {};
        for (const x of mod.manifest.weights as { name: string; shape: number[] }[]) {
          w[x.name] = Float32Array.from({ length: x.shape.reduce((a, c) => a * c, 1) }, (_, i) => Math.sin(i) * 0.1);
        }
        model.loadWeights(w);
        const vocab = mod.manifest.inputs[0].vocab as number;
        const inputs = { [mod.manifest.inputs[0].name]: { data: Int32Array.from({ length: B * T }, (_, i) => (i * 7) % vocab), shape: [B, T], lengths: [32, 29, 25, 22, 18, 15, 11, 8] } };
        await model.forward(inputs);
        await model.forward(inputs);
        const times: number[] = [];
        let out: Record<string, { data: Float32Array }> = {};
        for (let i = 0; i < 9; i++) {
          const s = performance.now();
          out = await model.forward(inputs);
          times.push(performance.now() - s);
        }
        times.sort((a, b) => a - b);
        results.push({ name, median: times[4], out: Object.values(out)[0].data });
      } finally {
        model.dispose();
      }
    }
    let diff = 0;
    for (let i = 0; i < results[0].out.length; i++) diff = Math.max(diff, Math.abs(results[0].out[i] - results[1].out[i]));
    for (const x of results) console.log(`${which} on ${backend}, ${x.name}: median ${x.median.toFixed(1)} ms`);
    console.log(`guarded vs emitted -O2: ${(results[0].median / results[1].median).toFixed(2)}× faster, max |diff| ${diff}; vs -O1: ${(results[2].median / results[1].median).toFixed(2)}×`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
