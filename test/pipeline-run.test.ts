/**
 * Random valid seq2seq and language-model specs through the whole pipeline, and the result used as
 * an app would: every generated module type-checks (tsc, strict) and runs. Two ways of computing
 * the same thing must agree on each: greedy generate() — the compiled decoder step, run one token
 * at a time with its state carried on the executor — and forward() teacher-forced on the tokens
 * generate() chose (the whole sequence in one pass): each chosen token is forward's arg-max at
 * its step, and the score is the sum of forward's log-probabilities. Deterministic (seeded).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { renderDiagnostics } from '../src/diagnostics/render.ts';
import { OUT, prng, ROOT } from './helpers.ts';

const DIR = join(OUT, 'pipeline-run');
const SCORES = ['dot', 'scaled', 'general', 'biased_general', 'activated_general', 'concat', 'additive', 'deep', 'location', 'cosine'];
const CELLS = ['rnn', 'gru', 'lstm'];

interface Spec { name: string; text: string; seq2seq: boolean; vocab: number; readout: 'log_softmax' | 'softmax' | 'logits' }

function randomSpecs(count: number): Spec[] {
  const rnd = prng(20261122);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const specs: Spec[] = [];
  for (let i = 0; i < count; i++) {
    const vocab = 5 + Math.floor(rnd() * 6);
    const readout = pick(['log_softmax', 'softmax', 'logits'] as const);
    const tail = `    linear ${vocab}\n${readout === 'logits' ? '' : `    ${readout}\n`}`;
    if (i % 4 === 3) {
      const cell = pick(CELLS);
      const text = `model L${i} {\n  input text: tokens(vocab = ${vocab})\n  output y\n    embedding dim = ${3 + Math.floor(rnd() * 4)}\n    ${cell} hidden = ${3 + Math.floor(rnd() * 5)}, layers = ${1 + Math.floor(rnd() * 2)}\n${rnd() < 0.5 ? '    residual { linear 4 ; tanh ; linear ' : ''}`;
      const H = Number(/hidden = (\d+)/.exec(text)![1]);
      const full = text.endsWith('linear ') ? `${text}${H} }\n${tail}` : `${text}${tail}`;
      specs.push({ name: `L${i}`, text: full + `  decode greedy\n}\n`, seq2seq: false, vocab, readout });
      continue;
    }
    const encCell = pick(CELLS);
    const decCell = pick(CELLS);
    const bidir = rnd() < 0.5;
    const He = 2 + Math.floor(rnd() * 3);
    const Dk = bidir ? 2 * He : He;
    const init = pick(['final', 'zeros', 'bridge']);
    const Hd = init === 'final' ? Dk : 3 + Math.floor(rnd() * 4);
    let score = pick(SCORES);
    // the query is the decoder state's h either way (before the layer: previous h; after: h)
    const hd = rnd() < 0.2 && Hd % 2 === 0 ? 2 : undefined;
    if (hd) score = pick(['scaled', 'dot', 'cosine']);
    const bahdanau = rnd() < 0.5;
    if (!hd && ['dot', 'scaled', 'cosine'].includes(score) && Hd !== Dk) score = 'general';
    const attn = `    attention score = ${score}${hd ? `, heads = ${hd}` : ''}${rnd() < 0.3 ? ', normalize = sigmoid' : ''}${['concat', 'additive', 'deep'].includes(score) && !hd ? `, dim = ${2 + Math.floor(rnd() * 4)}` : ''}\n`;
    const rec = `    ${decCell} hidden = ${Hd}\n`;
    const dec = bahdanau ? attn + rec : rec + attn;
    const text = `model S${i} {\n  input source: tokens(vocab = ${4 + Math.floor(rnd() * 6)}, max_len = 9)\n  input target: tokens(vocab = ${vocab})\n  output y\n  encoder {\n    embedding dim = ${2 + Math.floor(rnd() * 4)}\n    ${encCell} hidden = ${He}${bidir ? ', bidirectional' : ''}\n  }\n  decoder init = ${init} {\n    embedding dim = ${2 + Math.floor(rnd() * 4)}\n${dec}${tail}  }\n  decode greedy\n}\n`;
    specs.push({ name: `S${i}`, text, seq2seq: true, vocab, readout });
  }
  return specs;
}

/**
 * Transformers: causal self-attention keeps a key/value cache in generate(), so these check that
 * cached generation equals full recomputation (forward over the whole sequence).
 */
function transformerSpecs(): Spec[] {
  const block = (causal: string, heads: string, ffn: string) =>
    `  repeat 2 {\n    residual { layernorm; attention self, ${heads}${causal} }\n    residual { layernorm; ${ffn} }\n  }\n`;
  const lm = (name: string, pos: string, heads: string, readout: Spec['readout'], ffn = 'linear 12; gelu; linear 8') => ({
    name, seq2seq: false, vocab: 9, readout,
    text: `model ${name} {\n  input text: tokens(vocab = 9, max_len = 16)\n  output y\n  embedding dim = 8\n  ${pos}\n${block(', causal', heads, ffn)}  layernorm\n  linear 9\n${readout === 'logits' ? '' : `  ${readout}\n`}  decode greedy\n}\n`,
  });
  return [
    lm('TfLearned', 'positional learned', 'heads = 2', 'log_softmax'),
    lm('TfSinusoid', 'positional sinusoidal', 'score = additive', 'logits', 'linear 8; tanh'),
    lm('TfGated', 'positional sinusoidal', 'normalize = sigmoid, score = general', 'softmax'),
    {
      name: 'TfSeq2seq', seq2seq: true, vocab: 7, readout: 'log_softmax',
      text: 'model TfSeq2seq {\n  input source: tokens(vocab = 6, max_len = 9)\n  input target: tokens(vocab = 7, max_len = 9)\n  output y\n' +
        '  encoder {\n    embedding dim = 8\n    positional sinusoidal\n    residual { attention self, heads = 2 }\n    layernorm\n  }\n' +
        '  decoder {\n    embedding dim = 8\n    positional sinusoidal\n    residual { attention self, heads = 2, causal }\n    layernorm\n' +
        '    residual { attention heads = 2 }\n    layernorm\n    residual { linear 12; relu; linear 8 }\n    layernorm\n    linear 7\n    log_softmax\n  }\n  decode greedy\n}\n',
    },
  ];
}

const specs = [...randomSpecs(32), ...transformerSpecs()];

beforeAll(() => {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  for (const s of specs) {
    const r = compile(s.text, `${s.name}.nn`, 'ts');
    if (r.output === undefined) throw new Error(`${s.name} did not compile:\n${renderDiagnostics(r.diagnostics, s.text)}\n${s.text}`);
    writeFileSync(join(DIR, `${s.name}.ts`), r.output);
  }
  // the app's view: strict TypeScript over every generated module at once
  writeFileSync(join(DIR, 'tsconfig.json'), JSON.stringify({
    extends: join(ROOT, 'tsconfig.json'),
    compilerOptions: { noEmit: true, strict: true, noUnusedLocals: true, types: ['node'] },
    include: ['./*.ts'],
  }));
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(DIR, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
}, 300_000);

function weightsFor(manifest: { weights: readonly { name: string; shape: readonly number[] }[] }, seed: number): Record<string, Float32Array> {
  const rnd = prng(seed);
  const w: Record<string, Float32Array> = {};
  for (const x of manifest.weights) w[x.name] = Float32Array.from({ length: x.shape.reduce((a, c) => a * c, 1) }, () => (rnd() - 0.5) * 1.6);
  return w;
}

describe('random specs type-check, run, and generate() agrees with forward()', () => {
  it.each(specs.map((s, i) => [s.name, i] as const))('%s', async (name, i) => {
    const s = specs[i];
    const mod = await import(join(DIR, `${name}.ts`));
    const model = await mod.createModel({ backend: 'cpu' });
    try {
      model.loadWeights(weightsFor(model.manifest, 100 + i));
      const B = 2;
      const source = { data: Int32Array.from([1, 2, 3, 0, 1, 2, 3, 1, 3, 2, 2, 0].map((v) => v % model.manifest.inputs[0].vocab)), shape: [B, 6], lengths: [6, 3] };
      const prompt = { data: Int32Array.from([1, 2, 3, 4, 1, 0].map((v) => v % s.vocab)), shape: [B, 3], lengths: [3, 2] };
      const first = s.seq2seq ? { source } : { text: prompt };
      const maxLen = 4;
      const g = await model.generate(first, { strategy: 'greedy', maxLen, bos: 1 });
      expect(g.ids.map((r: number[]) => r.length)).toEqual([maxLen, maxLen]);
      for (let b = 0; b < B; b++) {
        // teacher-forced: the same tokens in one forward pass
        let tokens: number[];
        let offset: number;
        if (s.seq2seq) {
          tokens = [1, ...g.ids[b].slice(0, -1)];
          offset = 0;
        } else {
          const P = prompt.lengths[b];
          tokens = [...Array.from(prompt.data.slice(b * 3, b * 3 + P)), ...g.ids[b].slice(0, -1)];
          offset = P - 1;
        }
        const row = { data: Int32Array.from(tokens), shape: [1, tokens.length] };
        const inputs = s.seq2seq
          ? { source: { data: source.data.slice(b * 6, b * 6 + 6), shape: [1, 6], lengths: [source.lengths[b]] }, target: row }
          : { text: row };
        const out = (await model.forward(inputs)).y;
        expect(out.data.every(Number.isFinite)).toBe(true);
        let score = 0;
        for (let k = 0; k < maxLen; k++) {
          const at = (offset + k) * s.vocab;
          let logp = Array.from(out.data.slice(at, at + s.vocab)) as number[];
          if (s.readout === 'softmax') logp = logp.map(Math.log);
          if (s.readout === 'logits') {
            const m = Math.max(...logp);
            const lse = m + Math.log(logp.reduce((a, v) => a + Math.exp(v - m), 0));
            logp = logp.map((v) => v - lse);
          }
          const best = logp.indexOf(Math.max(...logp));
          expect(g.ids[b][k], `${name} row ${b} step ${k}`).toBe(best);
          score += logp[best];
        }
        expect(Math.abs(score - g.scores[b]), `${name} row ${b} score`).toBeLessThan(1e-4);
      }
    } finally {
      model.dispose();
    }
  });
});
