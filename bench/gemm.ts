/**
 * Micro-benchmark of the WebAssembly SIMD GEMM kernels (src/runtime/wasm/gemm.c):
 *
 *   npx tsx bench/gemm.ts                  # the committed module (src/runtime/wasm/gemm-wasm.ts)
 *   npx tsx bench/gemm.ts --wasm x.wasm    # another build of gemm.c (for tuning)
 *   npx tsx bench/gemm.ts --runs 31        # more timed runs per shape (default 21, at least 15)
 *   npx tsx bench/gemm.ts --only 0,1,2,3   # a subset of the shapes (indices in the table), no naive loop
 *
 * For each shape C[M,N] = A[M,K]·W[N,K]ᵀ + bias: W is packed once (nnc_pack), then nnc_gemm is timed.
 * One timed run repeats the call enough times to last ≥ 5 ms; the figure printed is the median over
 * the runs (after warm-up runs, which also let V8 tier the module up to TurboFan) of 2·M·N·K / time.
 * The same W is used on every call, as in a recurrence (one GEMV per time step): it stays in whatever
 * cache level holds it (N·K·4 bytes: 4 MiB for 2048×512 is L3 on the 2-core AMD EPYC (Zen 3) VM this
 * was tuned on, 512 KiB for 1024×128 is the size of its per-core L2).
 * For the attention shapes the packing of B (an activation there, packed per call) is timed too.
 * A naive JavaScript triple loop on two of the shapes is printed for comparison.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { cpus } from 'node:os';
import { GEMM_WASM_BASE64 } from '../src/runtime/wasm/gemm-wasm.ts';

interface Gemm {
  nnc_nr(): number;
  nnc_packed_size(N: number, K: number): number;
  nnc_pack(src: number, N: number, K: number, sn: number, sk: number, dst: number): void;
  nnc_gemm(M: number, N: number, K: number, A: number, lda: number, Bp: number, bias: number, C: number, ldc: number, flags: number): void;
  __heap_base: WebAssembly.Global;
}

const args = process.argv.slice(2);
const argOf = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const wasmPath = argOf('--wasm');
const RUNS = Math.max(15, Number(argOf('--runs') ?? 21));
const WARMUP = 5;
const MIN_RUN_MS = 5;

const bytes = wasmPath ? readFileSync(wasmPath) : Buffer.from(GEMM_WASM_BASE64, 'base64');

const SHAPES: { M: number; N: number; K: number; note: string; attention?: boolean }[] = [
  { M: 1, N: 2048, K: 512, note: 'GEMV, W 4 MiB (L3)' },
  { M: 1, N: 2048, K: 256, note: 'GEMV, W 2 MiB' },
  { M: 1, N: 1536, K: 512, note: 'GEMV, W 3 MiB' },
  { M: 1, N: 1024, K: 128, note: 'GEMV, W 512 KiB (L2 size)' },
  { M: 8, N: 1024, K: 256, note: '' },
  { M: 32, N: 2048, K: 512, note: '' },
  { M: 3200, N: 2048, K: 256, note: 'LSTM input projection, 32×100 steps' },
  { M: 128, N: 1536, K: 512, note: '' },
  { M: 128, N: 128, K: 64, note: 'attention Q·Kᵀ (one head)', attention: true },
  { M: 128, N: 64, K: 128, note: 'attention P·V (one head)', attention: true },
];
const only = argOf('--only')?.split(',').map(Number);
const NAIVE = only ? [] : [SHAPES[0], SHAPES[5]];

// ── memory: [heap_base … ) A | W | packed B | bias | C, each 64-byte aligned ──
const probe = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory: new WebAssembly.Memory({ initial: 2 }) } });
const heapBase = (probe.exports as unknown as Gemm).__heap_base.value as number;
let need = 0;
for (const s of SHAPES) {
  const floats = s.M * s.K + s.N * s.K + (Math.ceil(s.N / 8) * 16) * s.K + s.N + s.M * s.N;
  need = Math.max(need, floats * 4 + 6 * 64);
}
const memory = new WebAssembly.Memory({ initial: Math.ceil((heapBase + need) / 65536) + 1 });
const g = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as unknown as Gemm;
const NR = g.nnc_nr();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Median seconds per call of fn, each run repeating it `inner` times (calibrated to ≥ MIN_RUN_MS). */
function timeIt(fn: () => void): number {
  let inner = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) fn();
    const dt = performance.now() - t0;
    if (dt >= MIN_RUN_MS) break;
    inner = Math.max(inner * 2, Math.ceil((inner * MIN_RUN_MS * 1.2) / Math.max(dt, 1e-3)));
  }
  const samples: number[] = [];
  for (let r = 0; r < WARMUP + RUNS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) fn();
    const dt = (performance.now() - t0) / 1e3 / inner;
    if (r >= WARMUP) samples.push(dt);
  }
  return median(samples);
}

let seed = 12345;
const rnd = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 4294967296 - 0.5;
};

// Warm-up: V8 first runs a module in its baseline compiler (Liftoff) and tiers hot functions up to
// TurboFan in the background; run a mid-sized product for a while so that every shape is timed on
// TurboFan code.
{
  const K = 256, N = 256, M = 8, base = (heapBase + 63) & ~63;
  g.nnc_pack(base, N, K, K, 1, base + M * K * 4);
  const t0 = performance.now();
  while (performance.now() - t0 < 500) {
    g.nnc_gemm(M, N, K, base, K, base + M * K * 4, 0, base + (M + N) * K * 4, N, 0);
    g.nnc_gemm(1, N, K, base, K, base + M * K * 4, 0, base + (M + N) * K * 4, N, 0);
  }
}

const rows: string[][] = [];
const head = ['M', 'N', 'K', 'GFLOP/s', 'µs/call', 'pack µs', 'GFLOP/s incl. pack', 'note'];
for (const s of SHAPES) {
  if (only && !only.includes(SHAPES.indexOf(s))) continue;
  const { M, N, K } = s;
  let at = (heapBase + 63) & ~63;
  const alloc = (floats: number) => {
    const p = at;
    at = (at + floats * 4 + 63) & ~63;
    return p;
  };
  const pA = alloc(M * K), pW = alloc(N * K), pB = alloc(g.nnc_packed_size(N, K)), pBias = alloc(N), pC = alloc(M * N);
  const f32 = new Float32Array(memory.buffer);
  for (let i = 0; i < M * K; i++) f32[pA / 4 + i] = rnd();
  for (let i = 0; i < N * K; i++) f32[pW / 4 + i] = rnd();
  for (let i = 0; i < N; i++) f32[pBias / 4 + i] = rnd();
  g.nnc_pack(pW, N, K, K, 1, pB);
  const t = timeIt(() => g.nnc_gemm(M, N, K, pA, K, pB, pBias, pC, N, 0));
  const flops = 2 * M * N * K;
  let packUs = '', incl = '';
  if (s.attention) {
    // B is an activation here: Q·Kᵀ packs K rows (sk = 1), P·V packs V transposed (sn = 1)
    const [sn, sk] = N === 128 ? [K, 1] : [1, N];
    const tp = timeIt(() => g.nnc_pack(pW, N, K, sn, sk, pB));
    packUs = (tp * 1e6).toFixed(1);
    incl = (flops / (t + tp) / 1e9).toFixed(2);
  }
  rows.push([String(M), String(N), String(K), (flops / t / 1e9).toFixed(2), (t * 1e6).toFixed(1), packUs, incl, s.note]);
}

function naive(M: number, N: number, K: number, A: Float32Array, W: Float32Array, bias: Float32Array, C: Float32Array) {
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = bias[n];
      for (let k = 0; k < K; k++) s += A[m * K + k] * W[n * K + k];
      C[m * N + n] = s;
    }
}
const naiveRows: string[][] = [];
for (const s of NAIVE) {
  const { M, N, K } = s;
  const A = Float32Array.from({ length: M * K }, rnd), W = Float32Array.from({ length: N * K }, rnd);
  const bias = Float32Array.from({ length: N }, rnd), C = new Float32Array(M * N);
  const t = timeIt(() => naive(M, N, K, A, W, bias, C));
  naiveRows.push([String(M), String(N), String(K), ((2 * M * N * K) / t / 1e9).toFixed(2), (t * 1e6).toFixed(1)]);
}

function table(h: string[], rs: string[][]): string {
  const w = h.map((x, i) => Math.max(x.length, ...rs.map((r) => r[i].length)));
  const line = (r: string[]) => '| ' + r.map((x, i) => x.padEnd(w[i])).join(' | ') + ' |';
  return [line(h), '|' + w.map((n) => '-'.repeat(n + 2)).join('|') + '|', ...rs.map(line)].join('\n');
}

console.log(`nnc wasm GEMM (NR=${NR}, module ${bytes.length} bytes${wasmPath ? `, ${wasmPath}` : ''}); node ${process.version}, ${cpus()[0]?.model ?? '?'}; median of ${RUNS} runs after ${WARMUP} warm-up`);
console.log(table(head, rows));
if (naiveRows.length) {
  console.log('\nnaive JavaScript triple loop (Float32Array, dot products over k):');
  console.log(table(['M', 'N', 'K', 'GFLOP/s', 'µs/call'], naiveRows));
}
