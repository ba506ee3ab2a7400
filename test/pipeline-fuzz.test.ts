/**
 * The whole compiler (parse → check → lower → passes → codegen) on randomly mutated valid specs:
 * every outcome is either a module or located error diagnostics — never an exception (which the
 * CLI would report as an internal error, exit 70). Deterministic: a seeded PRNG.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { FIXTURES, fixtureNames, prng, ROOT } from './helpers.ts';


const seeds = [
  ...readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn')).map((f) => readFileSync(join(ROOT, 'examples', f), 'utf8')),
  ...fixtureNames().map((n) => readFileSync(join(FIXTURES, n, 'model.nn'), 'utf8')),
  ...readdirSync(join(ROOT, 'test/golden/ir')).filter((f) => f.endsWith('.nn')).map((f) => readFileSync(join(ROOT, 'test/golden/ir', f), 'utf8')),
];

// words and values a user might plausibly put in the wrong place
const WORDS = ['lstm', 'gru', 'rnn', 'linear', 'embedding', 'pool', 'flatten', 'softmax', 'log_softmax', 'layernorm', 'dropout', 'tanh', 'relu', 'gelu', 'sigmoid',
  'repeat 2 {', 'residual {', '}', '{', 'bidirectional', 'layers = 3', 'hidden = 4', 'dim = 3', 'vocab = 7', 'max_len = 4', 'max', 'mean', 'last', 'first',
  'reset = before', 'act = relu', 'bias = false', 'merge = sum', 'merge = mean', 'out = 2', '0', '1', '-1', '2.5', '1e9', '3', ',', '=', ':', ';', 'input x: vectors(dim = 3)',
  'input t: tokens(vocab = 5)', 'output o', 'model M {', 'eps = 0', 'p = 1', 'attention self', 'positional sinusoidal', 'decode greedy', 'encoder {', 'decoder {'];

function mutate(src: string, rnd: () => number): string {
  const tokens = src.match(/\s+|[A-Za-z_][A-Za-z0-9_]*|-?[0-9.]+(?:e-?[0-9]+)?|\S/g) ?? [];
  const n = 1 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rnd() * tokens.length);
    const r = rnd();
    if (r < 0.3) tokens.splice(at, 1);
    else if (r < 0.55) tokens.splice(at, 0, ' ' + WORDS[Math.floor(rnd() * WORDS.length)] + ' ');
    else if (r < 0.75) tokens[at] = WORDS[Math.floor(rnd() * WORDS.length)];
    else if (r < 0.9) tokens.splice(at, 0, tokens[Math.floor(rnd() * tokens.length)]);
    else tokens.splice(at, 0, '\n' + WORDS[Math.floor(rnd() * WORDS.length)] + '\n');
  }
  return tokens.join('');
}

describe('the whole pipeline never throws on mutated specs', () => {
  const rnd = prng(20261121);
  const cases = Array.from({ length: 600 }, (_, i) => [i, mutate(seeds[i % seeds.length], rnd)] as const);
  it.each(cases)('mutation %i', (_i, text) => {
    let r: ReturnType<typeof compile> | undefined;
    expect(() => (r = compile(text, 'fuzz.nn', 'ts')), text).not.toThrow();
    if (r!.output === undefined) {
      expect(r!.diagnostics.length, text).toBeGreaterThan(0);
      for (const d of r!.diagnostics) {
        expect(d.span.line, `${d.message}\n${text}`).toBeGreaterThanOrEqual(1);
        expect(d.span.col).toBeGreaterThanOrEqual(1);
      }
    }
  });
});
