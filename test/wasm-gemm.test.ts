/**
 * The WebAssembly SIMD GEMM kernels (src/runtime/wasm/gemm.c, shipped as gemm-wasm.ts):
 *  - nnc_gemm against a float64 JavaScript reference on many shapes, with strided A and C, bias or
 *    none, accumulate or not, and B packed from a Linear weight [N, K], from a transposed source
 *    (sn = 1), from attention head slices of an [S, nHeads·H] buffer, and from a general strided view;
 *    NaN in every element the kernels must not read, sentinels in every element they must not write;
 *  - nnc_pack's layout, element by element; calls on a sub-range of panels; K and row blocking;
 *  - the module imports only env.memory; the shared-memory build (GEMM_WASM_MT_BASE64, for worker
 *    threads), when build.sh makes one, runs on a shared memory and computes the same;
 *  - the committed gemm-wasm.ts is exactly what build.sh builds from gemm.c now (needs clang and
 *    lld: without them this test fails, it is never skipped).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as gemmWasm from '../src/runtime/wasm/gemm-wasm.ts';
import { prng } from './helpers.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WASM_DIR = join(ROOT, 'src/runtime/wasm');

interface GemmExports {
  nnc_nr(): number;
  nnc_packed_size(N: number, K: number): number;
  nnc_pack(src: number, N: number, K: number, sn: number, sk: number, dst: number): void;
  nnc_gemm(M: number, N: number, K: number, A: number, lda: number, Bp: number, bias: number, C: number, ldc: number, flags: number): void;
  __heap_base: WebAssembly.Global;
}

// compiled on first use, so that a broken gemm-wasm.ts fails these tests but not the build check
let compiled: WebAssembly.Module | undefined;
const wasmModule = () => (compiled ??= new WebAssembly.Module(Buffer.from(gemmWasm.GEMM_WASM_BASE64, 'base64')));
/** The shared-memory build for worker threads, when build.sh makes one. */
const MT_BASE64 = (gemmWasm as Record<string, unknown>).GEMM_WASM_MT_BASE64 as string | undefined;
const SENTINEL = 12345.5;

/** One instance on its own memory, with a bump allocator above __heap_base (reset per case). */
class Harness {
  readonly memory: WebAssembly.Memory;
  readonly g: GemmExports;
  readonly f32: Float32Array;
  readonly heapBase: number;
  private at = 0;
  constructor(module = wasmModule(), memory = new WebAssembly.Memory({ initial: 256 }) /* 16 MiB */) {
    this.memory = memory;
    this.g = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as GemmExports;
    this.f32 = new Float32Array(this.memory.buffer as ArrayBuffer);
    this.heapBase = this.g.__heap_base.value as number;
    this.reset();
  }
  reset() {
    this.at = (this.heapBase + 15) & ~15;
  }
  /** `floats` floats at a float offset `skew` (0..3) past a 16-byte boundary, followed by 16 guard floats. */
  alloc(floats: number, skew = 0, fill = NaN): number {
    const p = this.at + skew * 4;
    this.f32.fill(fill, p / 4, p / 4 + floats);
    this.f32.fill(SENTINEL, p / 4 + floats, p / 4 + floats + 16);
    this.at = (p + (floats + 16) * 4 + 15) & ~15;
    if (this.at > this.memory.buffer.byteLength) throw new Error('test harness out of memory');
    return p;
  }
  guardIntact(p: number, floats: number): boolean {
    for (let i = 0; i < 16; i++) if (this.f32[p / 4 + floats + i] !== SENTINEL) return false;
    return true;
  }
}

type SourceKind = 'weight' | 'transposed' | 'head-k' | 'head-v' | 'general';

/**
 * Writes a source for B [N, K] into memory and returns its address and strides: B[n][k] =
 * f32[src/4 + n*sn + k*sk]. Elements of the buffer that are not part of B are NaN.
 */
function makeSource(h: Harness, kind: SourceKind, N: number, K: number, rnd: () => number, skew: number) {
  let sn: number, sk: number, floats: number, offset = 0;
  const heads = 3, head = 1;
  switch (kind) {
    case 'weight': // a Linear weight [N, K], rows maybe padded
      sk = 1;
      sn = K + (rnd() < 0.5 ? 0 : 3);
      floats = (N - 1) * sn + K;
      break;
    case 'transposed': // B = Sᵀ, S [K, N] (rows maybe padded)
      sn = 1;
      sk = N + (rnd() < 0.5 ? 0 : 5);
      floats = (K - 1) * sk + N;
      break;
    case 'head-k': // Q·Kᵀ on head 1 of a [S = N, heads·H] buffer, H = K: B[n][k] = buf[n][head·K + k]
      sk = 1;
      sn = heads * K;
      offset = head * K;
      floats = N * sn;
      break;
    case 'head-v': // P·V on head 1 of a [S = K, heads·H] buffer, H = N: B[n][k] = V[k][head·N + n]
      sn = 1;
      sk = heads * N;
      offset = head * N;
      floats = K * sk;
      break;
    case 'general': // neither stride 1: every other element of a transposed, padded layout
      sn = 2;
      sk = 2 * N + 1;
      floats = (K - 1) * sk + (N - 1) * sn + 1;
      break;
  }
  const base = h.alloc(floats, skew);
  const src = base + offset * 4;
  const B = new Float64Array(N * K);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      const v = Math.fround(rnd() * 2 - 1);
      h.f32[src / 4 + n * sn + k * sk] = v;
      B[n * K + k] = v;
    }
  return { base, src, sn, sk, floats, B };
}

interface Case {
  M: number;
  N: number;
  K: number;
  lda: number;
  ldc: number;
  bias: boolean;
  acc: boolean;
  kind: SourceKind;
  skew: number;
}

/** Runs one case; returns a description of the first problem, or '' when all is right. */
function runCase(h: Harness, c: Case, rnd: () => number): string {
  const { M, N, K, lda, ldc } = c;
  const { g, f32 } = h;
  h.reset();
  const src = makeSource(h, c.kind, N, K, rnd, c.skew);
  const size = g.nnc_packed_size(N, K);
  const pB = h.alloc(size, c.skew, SENTINEL);
  g.nnc_pack(src.src, N, K, src.sn, src.sk, pB);
  if (!h.guardIntact(pB, size)) return 'nnc_pack wrote past the packed size';
  // A: NaN in the padding of each row (lda > K): reading it would poison the result
  const pA = h.alloc(Math.max(1, (M - 1) * lda + K), (c.skew + 1) & 3);
  const A = new Float64Array(M * K);
  for (let m = 0; m < M; m++)
    for (let k = 0; k < K; k++) {
      const v = Math.fround(rnd() * 2 - 1);
      f32[pA / 4 + m * lda + k] = v;
      A[m * K + k] = v;
    }
  const pBias = c.bias ? h.alloc(N, (c.skew + 2) & 3) : 0;
  const bias = new Float64Array(N);
  if (c.bias) for (let n = 0; n < N; n++) f32[pBias / 4 + n] = bias[n] = Math.fround(rnd() * 2 - 1);
  // C: padding columns (n >= N) hold the sentinel; without acc, the rest holds NaN (must not be read)
  const cFloats = (M - 1) * ldc + N;
  const pC = h.alloc(cFloats, (c.skew + 3) & 3, SENTINEL);
  const C0 = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      const v = c.acc ? Math.fround(rnd() * 2 - 1) : NaN;
      f32[pC / 4 + m * ldc + n] = v;
      C0[m * N + n] = v;
    }
  g.nnc_gemm(M, N, K, pA, lda, pB, pBias, pC, ldc, c.acc ? 1 : 0);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = (c.acc ? C0[m * N + n] : 0) + bias[n];
      let scale = Math.abs(s);
      for (let k = 0; k < K; k++) {
        const p = A[m * K + k] * src.B[n * K + k];
        s += p;
        scale += Math.abs(p);
      }
      const got = f32[pC / 4 + m * ldc + n];
      const tol = 1e-5 * Math.sqrt(K + 1) * scale + 1e-30;
      if (!(Math.abs(got - s) <= tol)) return `C[${m}][${n}] = ${got}, expected ${s} (tolerance ${tol.toExponential(2)})`;
    }
    for (let n = N; n < ldc && m < M - 1; n++)
      if (f32[pC / 4 + m * ldc + n] !== SENTINEL) return `wrote C[${m}][${n}], a padding column (n >= N = ${N})`;
  }
  if (!h.guardIntact(pC, cFloats)) return 'wrote past the end of C';
  if (c.bias && !h.guardIntact(pBias, N)) return 'bias guard changed';
  return '';
}

const describeCase = (c: Case) =>
  `M=${c.M} N=${c.N} K=${c.K} lda=${c.lda} ldc=${c.ldc} bias=${c.bias} acc=${c.acc} B from ${c.kind} skew=${c.skew}`;

describe('wasm GEMM kernels', () => {
  let h: Harness;
  let g: GemmExports;
  beforeAll(() => {
    h = new Harness();
    g = h.g;
  });

  it('imports only env.memory and exports the ABI', () => {
    expect(WebAssembly.Module.imports(wasmModule())).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const exports = WebAssembly.Module.exports(wasmModule()).map((e) => `${e.name}:${e.kind}`).sort();
    expect(exports).toEqual(['__heap_base:global', 'nnc_act:function', 'nnc_gemm:function', 'nnc_nr:function', 'nnc_pack:function', 'nnc_packed_size:function']);
    expect(h.heapBase % 16).toBe(0);
    expect(h.heapBase).toBeLessThanOrEqual(2 * 65536);
  });

  it('nnc_act: tanh and sigmoid in place, within 1e-6 of the exact values, nothing written past n', () => {
    const act = (h.g as unknown as { nnc_act(kind: number, x: number, n: number): void }).nnc_act;
    for (const n of [1, 3, 4, 5, 17, 1000]) {
      for (const kind of [0, 1]) {
        h.reset();
        const p = h.alloc(n, n % 4);
        const xs = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : i === 1 ? -40 : i === 2 ? 40 : Math.sin(i * 1.7) * (i % 9)));
        xs.forEach((v, i) => (h.f32[p / 4 + i] = v));
        act(kind, p, n);
        let err = 0;
        xs.forEach((v, i) => {
          const want = kind === 0 ? Math.tanh(Math.fround(v)) : 1 / (1 + Math.exp(-Math.fround(v)));
          err = Math.max(err, Math.abs(h.f32[p / 4 + i]! - want));
        });
        expect(err, `kind ${kind}, n ${n}`).toBeLessThan(1e-6);
        expect(h.guardIntact(p, n)).toBe(true);
      }
    }
  });

  it('NR and the packed size', () => {
    const NR = g.nnc_nr();
    expect(NR).toBe(8);
    for (const [N, K] of [[1, 1], [8, 3], [9, 3], [17, 5], [2048, 512], [0, 5], [5, 0]])
      expect(g.nnc_packed_size(N, K)).toBe(Math.ceil(N / NR) * NR * K);
  });

  it('nnc_pack writes the documented panel layout for every kind of source', () => {
    const NR = g.nnc_nr();
    const rnd = prng(11);
    const kinds: SourceKind[] = ['weight', 'transposed', 'head-k', 'head-v', 'general'];
    for (const kind of kinds)
      for (const [N, K] of [[1, 1], [3, 5], [8, 4], [8, 7], [16, 9], [17, 3], [33, 31], [64, 16]]) {
        h.reset();
        const src = makeSource(h, kind, N, K, rnd, N % 4);
        const size = g.nnc_packed_size(N, K);
        const dst = h.alloc(size, K % 4, SENTINEL);
        g.nnc_pack(src.src, N, K, src.sn, src.sk, dst);
        for (let p = 0; p < size / (K * NR); p++)
          for (let k = 0; k < K; k++)
            for (let j = 0; j < NR; j++) {
              const n = p * NR + j;
              const want = n < N ? src.B[n * K + k] : 0;
              const got = h.f32[dst / 4 + (p * K + k) * NR + j];
              if (got !== want) expect.fail(`${kind} N=${N} K=${K}: dst[(${p}*K+${k})*NR+${j}] = ${got}, expected ${want}`);
            }
        expect(h.guardIntact(dst, size), `${kind} N=${N} K=${K}: wrote past the packed size`).toBe(true);
      }
  });

  it('nnc_pack takes negative strides (a view read backwards)', () => {
    const NR = g.nnc_nr();
    for (const [N, K] of [[8, 4], [16, 9], [19, 5]])
      for (const [sn, sk] of [[-K, 1], [K, -1], [1, -N], [-1, N], [-2 * K, -2]]) {
        h.reset();
        const floats = 2 * N * K;
        const base = h.alloc(floats);
        for (let i = 0; i < floats; i++) h.f32[base / 4 + i] = i;
        // the element B[0][0] sits where every B[n][k] = src[n*sn + k*sk] stays inside the buffer
        const origin = (sn < 0 ? -sn * (N - 1) : 0) + (sk < 0 ? -sk * (K - 1) : 0);
        const dst = h.alloc(g.nnc_packed_size(N, K), 0, SENTINEL);
        g.nnc_pack(base + origin * 4, N, K, sn, sk, dst);
        for (let n = 0; n < Math.ceil(N / NR) * NR; n++)
          for (let k = 0; k < K; k++) {
            const want = n < N ? origin + n * sn + k * sk : 0;
            const got = h.f32[dst / 4 + (Math.floor(n / NR) * K + k) * NR + (n % NR)];
            if (got !== want) expect.fail(`N=${N} K=${K} sn=${sn} sk=${sk}: B[${n}][${k}] packed as ${got}, expected ${want}`);
          }
      }
  });

  it('nnc_gemm matches a float64 reference on many shapes and layouts', () => {
    const rnd = prng(20240607);
    const Ms = [1, 2, 3, 4, 5, 7, 8, 13, 32, 37];
    const Ns = [1, 3, 8, 15, 16, 17, 33, 100, 2048];
    const Ks = [1, 2, 3, 5, 16, 31, 64, 257];
    const kinds: SourceKind[] = ['weight', 'transposed', 'head-k', 'head-v', 'general'];
    let n = 0;
    const seen = new Set<string>();
    for (const M of Ms)
      for (const N of Ns)
        for (const K of Ks) {
          if (N === 2048 && M * K > 64) continue;
          const c: Case = {
            M, N, K,
            lda: K + (rnd() < 0.5 ? 0 : 1 + Math.floor(rnd() * 7)),
            ldc: N + (rnd() < 0.5 ? 0 : 1 + Math.floor(rnd() * 9)),
            bias: rnd() < 0.5,
            acc: rnd() < 0.5,
            kind: kinds[n % kinds.length],
            skew: Math.floor(rnd() * 4),
          };
          n++;
          seen.add(`${c.kind} ${c.bias} ${c.acc} ${c.lda > K} ${c.ldc > N}`);
          const err = runCase(h, c, rnd);
          if (err) expect.fail(`${describeCase(c)}: ${err}`);
        }
    expect(n).toBeGreaterThan(600);
    expect(seen.size).toBe(5 * 16); // every source kind with every combination of the flags
  });

  it('K blocking and row blocking: large K and many rows, with bias applied once', () => {
    const rnd = prng(7);
    const cases: Case[] = [
      { M: 5, N: 19, K: 1100, lda: 1103, ldc: 21, bias: true, acc: true, kind: 'weight', skew: 1 },
      { M: 9, N: 16, K: 2500, lda: 2500, ldc: 16, bias: true, acc: false, kind: 'transposed', skew: 0 },
      { M: 1, N: 40, K: 3000, lda: 3000, ldc: 40, bias: true, acc: true, kind: 'weight', skew: 2 },
      { M: 133, N: 20, K: 40, lda: 41, ldc: 23, bias: true, acc: true, kind: 'head-k', skew: 3 },
      { M: 300, N: 9, K: 7, lda: 7, ldc: 9, bias: false, acc: false, kind: 'general', skew: 0 },
    ];
    for (const c of cases) {
      const err = runCase(h, c, rnd);
      if (err) expect.fail(`${describeCase(c)}: ${err}`);
    }
  });

  it('a call on a sub-range of panels computes exactly those columns and touches nothing else', () => {
    const NR = g.nnc_nr();
    const rnd = prng(3);
    for (const [M, N, K, p0, p1] of [[1, 37, 20, 1, 3], [6, 40, 9, 2, 5], [4, 64, 33, 0, 1], [3, 17, 5, 1, 3], [1, 48, 16, 1, 6]]) {
      h.reset();
      const src = makeSource(h, 'weight', N, K, rnd, 0);
      const pB = h.alloc(g.nnc_packed_size(N, K));
      g.nnc_pack(src.src, N, K, src.sn, src.sk, pB);
      const pA = h.alloc(M * K);
      for (let i = 0; i < M * K; i++) h.f32[pA / 4 + i] = rnd() - 0.5;
      const pBias = h.alloc(N);
      for (let i = 0; i < N; i++) h.f32[pBias / 4 + i] = rnd() - 0.5;
      const full = h.alloc(M * N), part = h.alloc(M * N, 0, SENTINEL);
      g.nnc_gemm(M, N, K, pA, K, pB, pBias, full, N, 0);
      const w = Math.min(N, p1 * NR) - p0 * NR;
      g.nnc_gemm(M, w, K, pA, K, pB + p0 * K * NR * 4, pBias + p0 * NR * 4, part + p0 * NR * 4, N, 0);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          const inside = n >= p0 * NR && n < p0 * NR + w;
          const got = h.f32[part / 4 + m * N + n];
          expect(got, `M=${M} N=${N} K=${K} panels ${p0}..${p1}: C[${m}][${n}]`).toBe(inside ? h.f32[full / 4 + m * N + n] : SENTINEL);
        }
    }
  });

  it('reads nothing past any operand: each one in turn ends at the end of memory', () => {
    const rnd = prng(5);
    for (const [M, N, K] of [[1, 13, 7], [1, 3, 2], [5, 13, 9], [3, 3, 5], [2, 21, 6], [4, 8, 1]])
      for (const last of ['A', 'bias', 'C', 'Bp', 'src'] as const) {
        const mem = new WebAssembly.Memory({ initial: 4 });
        const gg = new WebAssembly.Instance(wasmModule(), { env: { memory: mem } }).exports as unknown as GemmExports;
        const f32 = new Float32Array(mem.buffer);
        const sizes = { A: M * K, bias: N, C: M * N, Bp: gg.nnc_packed_size(N, K), src: N * K };
        let at = ((gg.__heap_base.value as number) + 15) & ~15;
        const addr = {} as Record<keyof typeof sizes, number>;
        for (const key of Object.keys(sizes) as (keyof typeof sizes)[]) {
          if (key === last) addr[key] = mem.buffer.byteLength - sizes[key] * 4;
          else {
            addr[key] = at;
            at += sizes[key] * 4 + 64;
          }
        }
        const A = Array.from({ length: M * K }, () => Math.fround(rnd() - 0.5));
        const W = Array.from({ length: N * K }, () => Math.fround(rnd() - 0.5));
        const bias = Array.from({ length: N }, () => Math.fround(rnd() - 0.5));
        const C0 = Array.from({ length: M * N }, () => Math.fround(rnd() - 0.5));
        f32.set(A, addr.A / 4);
        f32.set(W, addr.src / 4);
        f32.set(bias, addr.bias / 4);
        f32.set(C0, addr.C / 4);
        gg.nnc_pack(addr.src, N, K, K, 1, addr.Bp);
        gg.nnc_gemm(M, N, K, addr.A, K, addr.Bp, addr.bias, addr.C, N, 1);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            let s = C0[m * N + n] + bias[n];
            for (let k = 0; k < K; k++) s += A[m * K + k] * W[n * K + k];
            expect(Math.abs(f32[addr.C / 4 + m * N + n] - s), `M=${M} N=${N} K=${K}, ${last} last: C[${m}][${n}]`).toBeLessThan(1e-5);
          }
      }
  });

  it('K = 0 gives (acc ? C : 0) + bias; M = 0 or N = 0 writes nothing', () => {
    h.reset();
    const pC = h.alloc(6, 0, 2), pBias = h.alloc(3);
    h.f32.set([1, 2, 3], pBias / 4);
    g.nnc_gemm(2, 3, 0, 0, 0, 0, pBias, pC, 3, 1);
    expect(Array.from(h.f32.subarray(pC / 4, pC / 4 + 6))).toEqual([3, 4, 5, 3, 4, 5]);
    g.nnc_gemm(2, 3, 0, 0, 0, 0, 0, pC, 3, 0);
    expect(Array.from(h.f32.subarray(pC / 4, pC / 4 + 6))).toEqual([0, 0, 0, 0, 0, 0]);
    h.f32.fill(SENTINEL, pC / 4, pC / 4 + 6);
    g.nnc_gemm(0, 3, 4, pC, 4, pC, pBias, pC, 3, 0);
    g.nnc_gemm(2, 0, 4, pC, 4, pC, pBias, pC, 3, 0);
    expect(h.f32.subarray(pC / 4, pC / 4 + 6).every((v) => v === SENTINEL)).toBe(true);
  });
});

describe.runIf(MT_BASE64 !== undefined)('wasm GEMM kernels, shared-memory build', () => {
  it('instantiates on a shared memory and matches the float64 reference', () => {
    const module = new WebAssembly.Module(Buffer.from(MT_BASE64!, 'base64'));
    const mt = new Harness(module, new WebAssembly.Memory({ initial: 256, maximum: 32768, shared: true }));
    const rnd = prng(99);
    const cases: Case[] = [
      { M: 1, N: 100, K: 31, lda: 31, ldc: 100, bias: true, acc: true, kind: 'weight', skew: 1 },
      { M: 37, N: 33, K: 64, lda: 70, ldc: 35, bias: true, acc: false, kind: 'head-k', skew: 0 },
      { M: 13, N: 17, K: 257, lda: 257, ldc: 17, bias: false, acc: true, kind: 'head-v', skew: 2 },
    ];
    for (const c of cases) {
      const err = runCase(mt, c, rnd);
      if (err) expect.fail(`shared-memory build, ${describeCase(c)}: ${err}`);
    }
  });
});

describe('wasm GEMM build', () => {
  it('src/runtime/wasm/gemm-wasm.ts is exactly what build.sh builds from gemm.c now', () => {
    const probe = spawnSync('bash', ['-c', 'command -v "${CLANG:-clang}" && command -v wasm-ld'], { encoding: 'utf8' });
    if (probe.status !== 0)
      throw new Error(
        'clang and wasm-ld are needed to check that src/runtime/wasm/gemm-wasm.ts is current: apt-get install clang lld ' +
          '(CI installs them); then, if gemm.c changed, rebuild with: bash src/runtime/wasm/build.sh',
      );
    const dir = mkdtempSync(join(tmpdir(), 'nnc-gemm-'));
    try {
      const out = join(dir, 'gemm-wasm.ts');
      const r = spawnSync('bash', [join(WASM_DIR, 'build.sh'), out], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`build.sh failed (${r.status}):\n${r.stderr}${r.stdout}`);
      // every module in the file (GEMM_WASM_BASE64, and any other build of gemm.c build.sh adds)
      const modules = (text: string) =>
        Object.fromEntries([...text.matchAll(/export const (\w+) = '([A-Za-z0-9+/=]*)'/g)].map((m) => [m[1], m[2]]));
      const built = modules(readFileSync(out, 'utf8'));
      const committed = modules(readFileSync(join(WASM_DIR, 'gemm-wasm.ts'), 'utf8'));
      expect(built.GEMM_WASM_BASE64, 'build.sh wrote no GEMM_WASM_BASE64').toBeTruthy();
      expect(Object.keys(committed).sort(), 'the modules in gemm-wasm.ts').toEqual(Object.keys(built).sort());
      for (const name of Object.keys(built))
        expect(committed[name] === built[name], `src/runtime/wasm/gemm-wasm.ts is stale (${name}): rebuild it with bash src/runtime/wasm/build.sh`).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
