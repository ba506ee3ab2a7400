/**
 * Recomputation (`nnc compile --checkpoint K`, CompileOptions.checkpoint; docs/training.md): the
 * training forward keeps every K-th state of each recurrence and the backward recomputes the rest,
 * K steps at a time. Checked through the compiled module as a user runs it: `model.vjp` with K = 1
 * and K = 4 equals torch.autograd.grad (test/fixtures/<case>/grads.safetensors) on the cpu and wasm
 * backends — padded rows, bidirectional and stacked layers, seq2seq and float inputs included — and
 * the training plan's kept bytes (what the training forward hands the backward, at B and T given)
 * fall as the recurrences' ⌈T / K⌉ states say. The CLI takes --checkpoint and refuses bad values.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileProgram } from '../src/codegen/plan.ts';
import { compile, lower, optimizeWithTraining } from '../src/driver.ts';
import type { Size } from '../src/runtime/plan.ts';
import { FIXTURES, maxAbsDiff, OUT, ROOT, toInputs } from './helpers.ts';
import { gradientOf, loadFixture, torchGradients } from './interp-helpers.ts';
import { mkdirSync, writeFileSync } from 'node:fs';

const TOL = { cpu: 1e-5, wasm: 1e-4 } as const;
const CASES = ['lstm_long_t40', 'char_lm', 'gru_bidir_layers2_after', 'lstm_bidir_layers3_vectors', 'lm_gru_linear_tanh_lstm', 's2s_final_layers2_bilstm'];

async function moduleFor(name: string, k: number): Promise<Record<string, any>> {
  const r = compile(readFileSync(join(FIXTURES, name, 'model.nn'), 'utf8'), `${name}.nn`, 'ts', 2, { checkpoint: k });
  if (r.output === undefined) throw new Error(`${name} did not compile`);
  mkdirSync(OUT, { recursive: true });
  const path = join(OUT, `recompute_${name}_k${k}.ts`);
  writeFileSync(path, r.output);
  return import(path);
}

describe.each(CASES)('%s', (name) => {
  it.each(['cpu', 'wasm'] as const)('vjp with recomputation every 1 and every 4 steps equals torch.autograd.grad on %s', async (backend) => {
    const f = loadFixture(name);
    const { want, cotangents, names, scale } = torchGradients(f, name);
    for (const k of [1, 4]) {
      const model = await (await moduleFor(name, k)).createModel({ backend, threads: 1 });
      try {
        model.loadWeights(Object.fromEntries(f.weights));
        const g = await model.vjp(toInputs(f.case), cotangents);
        for (const key of names) {
          expect(maxAbsDiff(gradientOf(g, key), want.get(key)!.data) / scale(key), `k = ${k}: ${key}`).toBeLessThanOrEqual(TOL[backend]);
        }
      } finally {
        model.dispose();
      }
    }
  });
});

describe('kept memory', () => {
  /** Bytes of what the training forward keeps for the backward (its `saved` feeds), at B rows of T steps. */
  function keptBytes(spec: string, k: number | undefined, B: number, T: number): { total: number; states: number } {
    const m = lower(spec, 'kept.nn').models![0]!;
    const { ir, train } = optimizeWithTraining(m, 2, false, k ? { checkpoint: k } : {});
    const plan = compileProgram(ir, train).train!;
    const value = (d: Size[number]): number => {
      if (typeof d === 'number') return d;
      if (d === 'B') return B;
      if (d === 'T') return T;
      const [base, by] = d.split('/');
      if (base !== 'T' || by === undefined) throw new Error(`unexpected dim ${d}`);
      return Math.ceil(T / Number(by));
    };
    let total = 0;
    let states = 0;
    for (const f of plan.backward.feeds ?? []) {
      if (f.kind !== 'saved') continue;
      const bytes = 4 * f.shape.reduce<number>((n, d) => n * value(d), 1);
      total += bytes;
      if (String(f.shape[1]).startsWith('T/')) states += bytes;
    }
    return { total, states };
  }

  it('a recurrence keeps ⌈T / K⌉ states: kept bytes fall K-fold for the recurrences, and overall from the default', () => {
    // two stacked LSTM layers of 64 units (state [h; c] = 128 floats), B = 4, T = 512
    const spec = 'model M {\n  input text: tokens(vocab = 50)\n  output y\n  embedding dim = 32\n  lstm hidden = 64, layers = 2\n  linear 50\n}\n';
    const [B, T, S, layers] = [4, 512, 128, 2];
    const plain = keptBytes(spec, undefined, B, T);
    const one = keptBytes(spec, 1, B, T);
    for (const k of [4, 16]) {
      const r = keptBytes(spec, k, B, T);
      expect(r.states).toBe(layers * B * Math.ceil(T / k) * S * 4);
      expect(one.states / r.states).toBe(k);
      // what else is kept (the embedding's output, each layer's h sequence: the next layer's and
      // the linear's input) does not depend on K
      expect(r.total - r.states).toBe(one.total - one.states);
    }
    // the default keeps each layer's history, step inputs and per-step matmul outputs: 3.2× of K = 1
    expect(plain.total / one.total).toBeGreaterThan(3);
    expect(plain.total / keptBytes(spec, 16, B, T).total).toBeGreaterThan(7);
  });
});

describe('nnc compile --checkpoint', () => {
  const nnc = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin/nnc.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  it('--emit=ir-grad with --checkpoint 8 lists each recurrence\'s every-8th states as what the training forward keeps', () => {
    const r = nnc('compile', join(FIXTURES, 'lstm_long_t40', 'model.nn'), '--emit=ir-grad', '--checkpoint', '8');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/checkpoints\s+# lstm0\.l0 \(every 8th state\)/);
    expect(r.stdout).not.toMatch(/\bhistory\b/);
  });
  it.each([['0'], ['65'], ['2.5'], ['x']])('--checkpoint %s is a usage error (exit 2) naming the range', (v) => {
    const r = nnc('compile', join(FIXTURES, 'lstm_long_t40', 'model.nn'), '--checkpoint', v);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--checkpoint needs a whole number of steps from 1 to 64`);
  });
  it('--checkpoint with --no-train, or on another command, is a usage error', () => {
    expect(nnc('compile', join(FIXTURES, 'lstm_long_t40', 'model.nn'), '--no-train', '--checkpoint', '4').stderr).toContain('--no-train leaves out');
    expect(nnc('check', join(FIXTURES, 'lstm_long_t40', 'model.nn'), '--checkpoint', '4').stderr).toContain(`--checkpoint belongs to 'compile'`);
  });
});
