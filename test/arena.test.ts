/**
 * The wasm backend's arena (src/runtime/arena.ts, host.ts): freed space is reused for any later
 * size, so memory follows the largest live working set and not the history of shapes; a request
 * that cannot fit is an NncError naming its size and the limit, and the model stays usable.
 * The inputs are issue 18's (item 1) and issue 12's (the arena bugs) as written there.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Arena, UNIT, type Block } from '../src/runtime/arena.ts';
import { WasmExecutor } from '../src/runtime/host.ts';
import { NncError } from '../src/runtime/errors.ts';
import { prng } from './helpers.ts';

const WEIGHTS = readFileSync(new URL('../examples/weights/brackets.safetensors', import.meta.url));
interface Stats { arenaBytes: number; arenaStats: { liveBytes: number; peakLiveBytes: number } }
const exOf = (m: unknown) => (m as { internals(): { ex: Stats } }).internals().ex;

async function brackets() {
  const { createModel } = await import('../generated/brackets.ts');
  const m = await createModel({ backend: 'wasm', threads: 1 });
  m.loadWeights(WEIGHTS);
  return m;
}
const tokens = (B: number, T: number, seed = 0) => ({ data: Int32Array.from({ length: B * T }, (_, i) => (i * 7 + seed) % 5), shape: [B, T] as [number, number] });

describe('the brackets model on wasm under varying shapes', () => {
  it('B = 4, T = 1, 2, 3, … 700 (failed at T = 671): the arena stays a few MiB', async () => {
    const m = await brackets();
    const ex = exOf(m);
    for (let T = 1; T <= 700; T++) await m.forward({ text: tokens(4, T) });
    // the largest call's buffers are about 1 MiB; before, the arena held every size ever used (1.8 GiB)
    expect(ex.arenaStats.peakLiveBytes).toBeLessThan(8 * 2 ** 20);
    expect(ex.arenaBytes).toBeLessThanOrEqual(4 * ex.arenaStats.peakLiveBytes + 4 * 2 ** 20);
    m.dispose();
  }, 300_000);

  it('B in 1–16, T in 1–256 at random, 1,100 calls (call 1,023 failed at 1.75 GB)', async () => {
    const m = await brackets();
    const ex = exOf(m);
    const r = prng(18);
    let maxBytes = 0;
    for (let i = 0; i < 1100; i++) {
      const B = 1 + Math.floor(r() * 16);
      const T = 1 + Math.floor(r() * 256);
      const out = await m.forward({ text: tokens(B, T, i) });
      expect(out.label.shape).toEqual([B, 2]);
      maxBytes = Math.max(maxBytes, ex.arenaBytes);
    }
    expect(maxBytes).toBeLessThanOrEqual(4 * ex.arenaStats.peakLiveBytes + 4 * 2 ** 20);
    m.dispose();
  }, 300_000);

  it('one oversized call is an NncError naming the size and the limit; every later new shape still runs', async () => {
    const m = await brackets();
    const ex = exOf(m);
    const before = await m.forward({ text: tokens(3, 17) });
    const live = ex.arenaStats.liveBytes;
    // B = 16, T = 2^20: the GRUs' input projection alone is 16 × 2^20 × 192 floats (12 GiB)
    const err = await m.forward({ text: tokens(16, 2 ** 20) }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(NncError);
    expect((err as Error).message).toMatch(/cannot hold a buffer of \d+ floats \([\d.]+ GiB\): its memory is limited to 2\.00 GiB/);
    // nothing of the failed calls is left behind, and shapes never seen before run
    expect(ex.arenaStats.liveBytes).toBe(live);
    for (let T = 200; T < 260; T++) await m.forward({ text: tokens(5, T) });
    const again = await m.forward({ text: tokens(3, 17) });
    expect(again.label.data).toEqual(before.label.data);
    m.dispose();
  }, 300_000);
});

describe("generate with beam: 1e6 on wasm (every new shape failed after it)", () => {
  it('is an NncError naming the size and the limit; later generates with new prompt lengths run', async () => {
    const { createModel } = await import('../generated/char_lm.ts');
    const m = await createModel({ backend: 'wasm', threads: 1 });
    try {
      const r = prng(5);
      const w: Record<string, Float32Array> = {};
      for (const wi of m.manifest.weights) w[wi.name] = Float32Array.from({ length: wi.shape.reduce((a, c) => a * c, 1) }, () => (r() - 0.5) * 0.2);
      m.loadWeights(w);
      const prompt = (T: number) => ({ text: { data: Int32Array.from({ length: T }, (_, i) => 40 + ((i * 7) % 50)), shape: [1, T] as [number, number] } });
      const before = await m.generate(prompt(5), { strategy: 'beam', beam: 3, maxLen: 6 });
      const err = await m.generate(prompt(5), { strategy: 'beam', beam: 1e6, maxLen: 5 }).then(() => undefined, (e: unknown) => e);
      // a bound on beam (a clear error before any allocation) would do as well; an arena failure must be an NncError
      expect(err).toBeInstanceOf(NncError);
      expect((err as Error).message).toMatch(/beam|cannot hold a buffer of \d+ floats/);
      for (let T = 6; T < 12; T++) expect((await m.generate(prompt(T), { strategy: 'beam', beam: 3, maxLen: 6 })).ids[0]).toHaveLength(6);
      expect(await m.generate(prompt(5), { strategy: 'beam', beam: 3, maxLen: 6 })).toEqual(before);
    } finally {
      m.dispose();
    }
  }, 300_000);
});

describe('the executor at the 2 GiB limit (issue 12)', () => {
  type Raw = { alloc(n: number): Block; free(b: Block): void; arenaBytes: number; upload(d: Float32Array): unknown; read(b: unknown, n: number): Promise<Float32Array> };
  it('2^29 floats (whose byte size overflowed 32 bits) is an NncError, and the executor stays usable', async () => {
    const ex = new WasmExecutor(1);
    const raw = ex as unknown as Raw;
    expect(() => raw.alloc(2 ** 29)).toThrow(NncError);
    expect(() => raw.alloc(2 ** 29)).toThrow('cannot hold a buffer of 536870912 floats (2.00 GiB): its memory is limited to 2.00 GiB');
    expect(() => raw.alloc(2 ** 40)).toThrow(/cannot hold a buffer of 1099511627776 floats/);
    const b = raw.upload(Float32Array.from([1, 2, 3]));
    expect(Array.from(await raw.read(b, 3))).toEqual([1, 2, 3]);
    ex.dispose();
  });

  it('grows to the 2 GiB maximum: 1.44 GB and then 400 MB more fit (the growth rule failed there with 700 MB unused)', () => {
    const ex = new WasmExecutor(1);
    const raw = ex as unknown as Raw;
    // allocated, never touched: the memory's pages stay virtual
    const a = raw.alloc(360_000_000);
    const b = raw.alloc(100_000_000);
    expect(raw.arenaBytes).toBeLessThanOrEqual(2 ** 31);
    // and what is left is still handed out, up to the limit
    expect(() => raw.alloc(100_000_000)).toThrow(/cannot hold a buffer of 100000000 floats \(381\.5 MiB\): its memory is limited to 2\.00 GiB, and 1\.71 GiB of it hold buffers in use/);
    const at = a.ptr;
    raw.free(a);
    expect(raw.alloc(100_000_000).ptr).toBe(at);
    raw.free(b);
    ex.dispose();
  });
});

describe('Arena', () => {
  /** Random allocations and frees of sizes from 64 B to 1 MiB; checks that blocks never overlap and stay in the memory. */
  it('never overlaps blocks, coalesces everything freed, and stays within twice the peak live bytes', () => {
    let end = 1 << 16;
    const arena = new Arena(1000, end, (missing) => (end += Math.ceil(missing / 65536) * 65536));
    const r = prng(7);
    const live: Block[] = [];
    for (let i = 0; i < 20000; i++) {
      if (live.length && (r() < 0.5 || live.length > 200)) {
        const k = Math.floor(r() * live.length);
        arena.free(live[k]!);
        live.splice(k, 1);
      } else {
        const size = Math.ceil(2 ** (6 + r() * 14) / UNIT) * UNIT;
        const b = arena.alloc(size, size / 4);
        expect(b.ptr % UNIT).toBe(0);
        expect(b.ptr).toBeGreaterThanOrEqual(1000);
        expect(b.ptr + b.bytes).toBeLessThanOrEqual(end);
        live.push(b);
      }
      if (i % 500 === 0) {
        const sorted = [...live].sort((x, y) => x.ptr - y.ptr);
        for (let j = 1; j < sorted.length; j++) expect(sorted[j]!.ptr).toBeGreaterThanOrEqual(sorted[j - 1]!.ptr + sorted[j - 1]!.bytes);
      }
    }
    expect(end).toBeLessThanOrEqual(2 * arena.stats.peakLiveBytes + (1 << 20));
    for (const b of live) arena.free(b);
    expect(arena.stats.liveBytes).toBe(0);
    expect(arena.stats.freeBlocks).toBe(1);
    // freeing twice does nothing
    arena.free(live[0]!);
    expect(arena.stats.freeBlocks).toBe(1);
  });

  it('gives a freed block back to the next request of its size (a recurrence step reuses its buffers)', () => {
    let end = 1 << 20;
    const arena = new Arena(0, end, (missing) => (end += missing));
    const keep = arena.alloc(64 * 10, 160);
    const t = arena.alloc(64 * 37, 37 * 16);
    arena.alloc(64 * 3, 48);
    arena.free(t);
    expect(arena.alloc(64 * 37, 37 * 16).ptr).toBe(t.ptr);
    expect(arena.fresh).toBe(3);
    void keep;
  });
});
