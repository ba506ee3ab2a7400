/**
 * Regression guard for the fast CPU path (not a timed test): the W1 benchmark model (an LSTM
 * 256 → 512, bench/peers/specs/w1.nn) compiles to exactly three kernels — the input projection as
 * one GEMM over all steps, one fused step kernel whose recurrent matmul is one GEMM on a packed
 * weight, and the padding mask — and on the `wasm` backend a warm forward allocates no buffer: no
 * allocation per step, none per call. Its training program's backward: the weight gradients are one
 * host GEMM each over all B·T steps, and a backward step is two kernels, its recurrent product on
 * W_hh packed once (not per step). How to compare two commits' benchmark JSON: docs/benchmarks.md.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lower, optimize, optimizeWithTraining } from '../src/driver.ts';
import { compileProgram } from '../src/codegen/plan.ts';
import type { Expr, Stmt } from '../src/codegen/kir.ts';
import type { ScanInstr } from '../src/runtime/plan.ts';
import { CPU, Printer } from '../src/codegen/render/print.ts';
import { compileAndImport } from './helpers.ts';

const SPEC = `model W1 {
  input x: vectors(dim = 256)
  output h
  lstm hidden = 512
}
`;

function weights(manifest: { weights: readonly { name: string; shape: readonly number[] }[] }): Record<string, Float32Array> {
  const w: Record<string, Float32Array> = {};
  for (const wi of manifest.weights) w[wi.name] = Float32Array.from({ length: wi.shape.reduce((a, c) => a * c, 1) }, (_, i) => Math.sin(i * 0.37) * 0.05);
  return w;
}

describe('W1 (LSTM 256 → 512) plan', () => {
  it('is the benchmark spec', () => {
    expect(readFileSync('bench/peers/specs/w1.nn', 'utf8')).toContain('lstm hidden = 512');
  });

  it('has three kernels: the input projection GEMM, one step kernel with one GEMM, the mask', () => {
    const { models } = lower(SPEC, 'w1.nn');
    const ir = optimize(models![0]!);
    const { kernels, plan } = compileProgram(ir);
    expect(kernels).toHaveLength(3);
    const gemms = (ss: readonly Stmt[]): Extract<Stmt, { k: 'gemm' }>[] =>
      ss.flatMap((st) => (st.k === 'gemm' ? [st] : st.k === 'for' || st.k === 'block' ? gemms(st.body) : st.k === 'if' ? [...gemms(st.then), ...gemms(st.else ?? [])] : []));
    const text = (e: Expr) => new Printer(CPU).expr(e);
    // one GEMM over all B·T steps for x·W_ihᵀ, written straight into its output, on a packed weight block with its bias
    const [proj, step] = [kernels.find((k) => !k.step && k.host)!, kernels.find((k) => k.step)!];
    const pg = gemms(proj.host!.prelude);
    expect(pg.map((g) => [text(g.M), text(g.N), text(g.K), g.c.k, 'pack' in g.w, g.bias !== undefined])).toEqual([['B * T', '2048', '256', 'out', true, true]]);
    expect(proj.host!.epilogue).toBeUndefined();
    // the step: h·W_hhᵀ as one GEMM on the previous state's slot of the history, the gates an epilogue over it
    const sg = gemms(step.host!.prelude);
    expect(sg.map((g) => [text(g.M), text(g.N), text(g.K), g.a, text(g.aOff), text(g.lda)])).toEqual([['B', '2048', '512', { k: 'arg', i: 0 }, 'tp * 1024', 'T * 1024']]);
    expect(step.host!.epilogue).toBeDefined();
    // the plan: the projection, the scan (no body kernels: the step kernel is the whole step), the mask
    expect(plan.decode.map((i) => i.op)).toEqual(['run', 'scan', 'run']);
    expect((plan.decode[1] as ScanInstr).body).toEqual([]);
    // the weight blocks are packed once, at load: W_ih and W_hh
    expect(plan.packs).toHaveLength(2);
  });

  it('allocates no buffer per step or per warm call on wasm', async () => {
    const mod = await compileAndImport('perf_guard_w1', SPEC);
    const counts: number[] = [];
    for (const T of [3, 40]) {
      const m = await mod.createModel({ backend: 'wasm', threads: 1 });
      try {
        m.loadWeights(weights(m.manifest));
        const ex = (m as unknown as { internals(): { ex: { allocations: number; arenaBytes: number } } }).internals().ex;
        const x = { data: new Float32Array(2 * T * 256).fill(0.1), shape: [2, T, 256] };
        const before = ex.allocations;
        await m.forward({ x });
        counts.push(ex.allocations - before);
        const warm = ex.allocations;
        const bytes = ex.arenaBytes;
        await m.forward({ x });
        await m.forward({ x });
        expect(ex.allocations - warm, 'buffers allocated by warm forward calls').toBe(0);
        expect(ex.arenaBytes).toBe(bytes);
      } finally {
        m.dispose();
      }
    }
    // the first call's allocations do not grow with the number of steps: 37 more steps take at most
    // one more buffer of fresh memory (a larger buffer may no longer fit a hole the shorter call reused)
    expect(counts[1]! - counts[0]!).toBeLessThanOrEqual(1);
  });
});

describe('wasm worker threads', () => {
  it('split GEMMs give what one thread and plain TypeScript give (W1 sizes, B = 3, T = 4)', async () => {
    const mod = await compileAndImport('perf_guard_w1', SPEC);
    const x = { data: Float32Array.from({ length: 3 * 4 * 256 }, (_, i) => Math.cos(i * 0.11)), shape: [3, 4, 256] };
    const outs: Float32Array[] = [];
    for (const opts of [{ backend: 'wasm', threads: 2 }, { backend: 'wasm', threads: 1 }, { backend: 'cpu' }]) {
      const m = await mod.createModel(opts);
      try {
        m.loadWeights(weights(m.manifest));
        if (opts.threads === 2) expect((m as unknown as { internals(): { ex: { threads: number } } }).internals().ex.threads).toBe(2);
        outs.push((await m.forward({ x })).h.data);
      } finally {
        m.dispose();
      }
    }
    let d1 = 0, d2 = 0;
    for (let i = 0; i < outs[0]!.length; i++) {
      d1 = Math.max(d1, Math.abs(outs[0]![i]! - outs[1]![i]!));
      d2 = Math.max(d2, Math.abs(outs[0]![i]! - outs[2]![i]!));
    }
    expect(d1).toBe(0);
    expect(d2).toBeLessThan(1e-5);
  });
});

describe('W1 backward plan', () => {
  const gemms = (ss: readonly Stmt[]): Extract<Stmt, { k: 'gemm' }>[] =>
    ss.flatMap((st) => (st.k === 'gemm' ? [st] : st.k === 'for' || st.k === 'block' ? gemms(st.body) : st.k === 'if' ? [...gemms(st.then), ...gemms(st.else ?? [])] : []));
  const text = (e: Expr) => new Printer(CPU).expr(e);
  const { models } = lower(SPEC, 'w1.nn');
  const { ir, train } = optimizeWithTraining(models![0]!);
  const p = compileProgram(ir, train);
  const bwd = p.train!.backward;
  const kernelOf = (i: { kernel: number }) => p.kernels[i.kernel]!;

  it('computes dW_ih and dW_hh as one GEMM each over all B·T steps (summed axis B·T), after the reverse scan', () => {
    const scanAt = bwd.decode.findIndex((i) => i.op === 'scan');
    const after = bwd.decode.slice(scanAt + 1).filter((i) => i.op === 'run');
    const byLabel = (l: string) => after.find((i) => i.op === 'run' && kernelOf(i).host && p.labels[i.kernel]!.some((x) => x === l));
    for (const [label, n, k] of [['d(lstm0.weight_ih_l0)', '256', 'B * T'], ['d(lstm0.weight_hh_l0)', '512', 'B * T']] as const) {
      const i = byLabel(label);
      expect(i, label).toBeDefined();
      const gs = gemms(kernelOf(i as { kernel: number }).host!.prelude);
      expect(gs.map((g) => [text(g.M), text(g.N), text(g.K)]), label).toEqual([['2048', n, k]]);
    }
  });

  it('runs a backward step as two kernels, the recurrent product on W_hh packed at load', () => {
    const scan = bwd.decode.find((i): i is ScanInstr => i.op === 'scan')!;
    expect(scan.body).toHaveLength(1);
    const step = kernelOf(scan.step);
    const gs = gemms(step.host!.prelude);
    expect(gs).toHaveLength(1);
    expect('pack' in gs[0]!.w).toBe(true);
    // W_hh transposed (dY·W_hh reads its columns): packed once, as a block of the plan's packs
    const [slot, off, n, k, sn, sk] = bwd.packs![bwd.packSets![scan.step.packs!]![0]!]!;
    expect([slot, off, n, k, sn, sk]).toEqual([ir.weights.findIndex((w) => w.name === 'lstm0.weight_hh_l0'), 0, 512, 2048, 1, 512]);
  });
});
