/* ───────────────── nnc runtime: the host (CPU) executors and their GEMMs ─────────────────
 * Two executors run kernels on the CPU of the machine the app runs on:
 *   - `wasm`: buffers live in one WebAssembly.Memory (an arena: freed buffers are reused, so a
 *     time loop or a repeated call allocates nothing once warm), and every matmul whose weight is a
 *     parameter block is a call of the SIMD GEMM in src/runtime/wasm/gemm.c on weights packed once
 *     at load time; elementwise epilogues are the kernels' emitted TypeScript.
 *   - `cpu`: plain TypeScript everywhere (the fallback where WebAssembly SIMD is missing): the same
 *     GEMM forms, on a register-tiled TypeScript GEMM.
 * Kernels have a GEMM form when they contain a matmul or a batched product, or are a softmax or
 * layernorm (rows in one pass); the others (pooling, elementwise kernels) run their per-element CPU
 * body on both.
 */
import type { BackendName, Executor, GemmHost, KernelDef, KernelScalars, Scalars } from './types.ts';
import { OutOfMemory } from './errors.ts';
import { GEMM_WASM_BASE64, GEMM_WASM_MT_BASE64 } from './wasm/gemm-wasm.ts';

/** What differs between the two host executors: buffers, and the GEMM. */
abstract class HostExecutor<H> implements Executor {
  abstract readonly backend: BackendName;
  abstract readonly device: string;
  protected abstract alloc(size: number): H;
  protected abstract view(h: H): Float32Array;
  protected abstract free(h: H): void;
  /** Packs rows [row, row + n) × cols [col, col + k) of a [?, ld] weight into the GEMM's layout (a buffer release() frees). */
  protected abstract pack(w: H, row: number, n: number, col: number, k: number, ld: number): H;
  protected abstract readonly gemmFn: GemmHost['gemm'];
  protected abstract readonly packFn: GemmHost['pack'];
  protected abstract readonly actFn: GemmHost['act'];

  /** What a GEMM form calls, with the packed blocks of the call being run (made on first use: the subclass sets the functions). */
  private hostOps: { gemm: GemmHost['gemm']; pack: GemmHost['pack']; act: GemmHost['act']; packs: readonly unknown[] } | undefined;
  private get host() {
    return (this.hostOps ??= { gemm: this.gemmFn, pack: this.packFn, act: this.actFn, packs: [] });
  }
  private static readonly NO_PACKS: readonly unknown[] = [];
  private readonly scratchViews: Float32Array[] = [];
  private readonly argViews: Float32Array[] = [];
  /** Buffers allocated so far (for tests: a warm decoding step allocates none). */
  allocations = 0;

  upload(data: Float32Array): unknown {
    const h = this.alloc(data.length);
    this.view(h).set(data);
    return h;
  }
  zeros(size: number): unknown {
    const h = this.alloc(size);
    this.view(h).fill(0);
    return h;
  }

  /** Packs a weight block for the GEMMs (at load time; the plan lists the blocks). */
  prepack(w: unknown, row: number, n: number, col: number, k: number, ld: number): unknown {
    return this.pack(w as H, row, n, col, k, ld);
  }

  private exec(k: KernelDef, out: H, args: readonly unknown[], sc: Scalars, packs: readonly unknown[] = HostExecutor.NO_PACKS): void {
    const s = sc as unknown as KernelScalars;
    if (!k.gemm) {
      this.argViews.length = 0;
      for (const a of args) this.argViews.push(this.view(a as H));
      k.cpu(this.view(out), this.argViews, s);
      return;
    }
    this.host.packs = packs;
    // everything that may grow the arena happens before any view is taken
    const sizes = k.gemm.scratch(s);
    const scratch: H[] = sizes.map((n) => this.alloc(Math.max(n, 1)));
    try {
      this.argViews.length = 0;
      for (const a of args) this.argViews.push(this.view(a as H));
      this.scratchViews.length = 0;
      for (const g of scratch) this.scratchViews.push(this.view(g));
      k.gemm.run(this.host, this.view(out), this.argViews, this.scratchViews, s);
    } finally {
      for (const g of scratch) this.free(g);
    }
  }

  runNow(k: KernelDef, args: readonly unknown[], sc: Scalars, size: number, packs?: readonly unknown[]): unknown {
    const out = this.alloc(Math.max(size, 1));
    this.exec(k, out, args, sc, packs);
    return out;
  }
  stepNow(k: KernelDef, hist: unknown, args: readonly unknown[], sc: Scalars, packs?: readonly unknown[]): unknown {
    this.exec(k, hist as H, args, sc, packs);
    return hist;
  }
  async run(k: KernelDef, args: readonly unknown[], sc: Scalars, size: number, packs?: readonly unknown[]): Promise<unknown> {
    return this.runNow(k, args, sc, size, packs);
  }
  async step(k: KernelDef, hist: unknown, args: readonly unknown[], sc: Scalars, _size: number, packs?: readonly unknown[]): Promise<unknown> {
    return this.stepNow(k, hist, args, sc, packs);
  }
  async placeRows(rows: unknown, width: number, B: number, L: number, slot: number): Promise<unknown> {
    const out = this.alloc(B * L * width);
    const src = this.view(rows as H);
    const dst = this.view(out);
    dst.fill(0);
    for (let b = 0; b < B; b++) dst.set(src.subarray(b * width, (b + 1) * width), (b * L + slot) * width);
    return out;
  }
  async gatherRows(b: unknown, width: number, idx: Int32Array): Promise<unknown> {
    const out = this.alloc(Math.max(idx.length * width, 1));
    const src = this.view(b as H);
    const dst = this.view(out);
    for (let r = 0; r < idx.length; r++) dst.set(src.subarray(idx[r]! * width, (idx[r]! + 1) * width), r * width);
    return out;
  }
  async read(b: unknown, size: number): Promise<Float32Array> {
    return this.view(b as H).slice(0, size);
  }
  /** Frees a buffer or a packed weight block. */
  release(b: unknown): void {
    this.free(b as H);
  }
  dispose(): void {}
}

// ───────────── float32 activations ─────────────

/**
 * tanh for float32 results: Eigen's rational approximation (odd degree-13 numerator over even
 * degree-6 denominator, input clamped to ±7.905, where float32 tanh is 1 to within an ulp); within
 * 2.7e-7 of tanh everywhere and 1.3e-7 relative (about 2 float32 ulps). CPU kernels call it instead
 * of Math.tanh, which costs twice as much for double precision that a float32 result drops.
 */
export function tanhf(x: number): number {
  const c = x > 7.90531110763549805 ? 7.90531110763549805 : x < -7.90531110763549805 ? -7.90531110763549805 : x;
  const x2 = c * c;
  let p = x2 * -2.76076847742355e-16 + 2.00018790482477e-13;
  p = x2 * p + -8.60467152213735e-11;
  p = x2 * p + 5.12229709037114e-8;
  p = x2 * p + 1.48572235717979e-5;
  p = x2 * p + 6.37261928875436e-4;
  p = x2 * p + 4.89352455891786e-3;
  let q = x2 * 1.19825839466702e-6 + 1.18534705686654e-4;
  q = x2 * q + 2.268434632439e-3;
  q = x2 * q + 4.89352518554385e-3;
  return (c * p) / q;
}

/** The logistic sigmoid for float32 results: (1 + tanh(x / 2)) / 2 through tanhf. */
export function sigmoidf(x: number): number {
  return 0.5 + 0.5 * tanhf(0.5 * x);
}

// ───────────── plain TypeScript ─────────────

/**
 * C[cOff + m·ldc + n] = (acc ? C[…] : 0) + bias[biasOff + n] + Σ_k A[aOff + m·lda + k] · W[n·K + k], with W packed as a
 * dense [N, K] block; 4×4 register tiles (16 accumulators, 8 loads per 16 multiply-adds).
 */
export function tsGemm(M: number, N: number, K: number, A: Float32Array, aOff: number, lda: number, Bp: unknown, bias: Float32Array | null, biasOff: number, C: Float32Array, cOff: number, ldc: number, acc: number): void {
  const W = Bp as Float32Array;
  const put = (m: number, n: number, v: number) => {
    const o = cOff + m * ldc + n;
    C[o] = (acc ? C[o]! : 0) + (bias ? bias[biasOff + n]! : 0) + v;
  };
  let m = 0;
  for (; m + 4 <= M; m += 4) {
    const a0 = aOff + m * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
    let n = 0;
    for (; n + 4 <= N; n += 4) {
      const b0 = n * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k]!, x1 = A[a1 + k]!, x2 = A[a2 + k]!, x3 = A[a3 + k]!;
        const y0 = W[b0 + k]!, y1 = W[b1 + k]!, y2 = W[b2 + k]!, y3 = W[b3 + k]!;
        c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
        c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
        c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
        c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
      }
      put(m, n, c00); put(m, n + 1, c01); put(m, n + 2, c02); put(m, n + 3, c03);
      put(m + 1, n, c10); put(m + 1, n + 1, c11); put(m + 1, n + 2, c12); put(m + 1, n + 3, c13);
      put(m + 2, n, c20); put(m + 2, n + 1, c21); put(m + 2, n + 2, c22); put(m + 2, n + 3, c23);
      put(m + 3, n, c30); put(m + 3, n + 1, c31); put(m + 3, n + 2, c32); put(m + 3, n + 3, c33);
    }
    for (; n < N; n++) {
      const b0 = n * K;
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      for (let k = 0; k < K; k++) {
        const y = W[b0 + k]!;
        c0 += A[a0 + k]! * y; c1 += A[a1 + k]! * y; c2 += A[a2 + k]! * y; c3 += A[a3 + k]! * y;
      }
      put(m, n, c0); put(m + 1, n, c1); put(m + 2, n, c2); put(m + 3, n, c3);
    }
  }
  for (; m < M; m++) {
    const a0 = aOff + m * lda;
    let n = 0;
    // one row (a GEMV): 8 columns at a time, 8 independent sums
    for (; n + 8 <= N; n += 8) {
      const b0 = n * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K, b4 = b3 + K, b5 = b4 + K, b6 = b5 + K, b7 = b6 + K;
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0;
      for (let k = 0; k < K; k++) {
        const x = A[a0 + k]!;
        c0 += x * W[b0 + k]!; c1 += x * W[b1 + k]!; c2 += x * W[b2 + k]!; c3 += x * W[b3 + k]!;
        c4 += x * W[b4 + k]!; c5 += x * W[b5 + k]!; c6 += x * W[b6 + k]!; c7 += x * W[b7 + k]!;
      }
      put(m, n, c0); put(m, n + 1, c1); put(m, n + 2, c2); put(m, n + 3, c3);
      put(m, n + 4, c4); put(m, n + 5, c5); put(m, n + 6, c6); put(m, n + 7, c7);
    }
    for (; n + 4 <= N; n += 4) {
      const b0 = n * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      for (let k = 0; k < K; k++) {
        const x = A[a0 + k]!;
        c0 += x * W[b0 + k]!; c1 += x * W[b1 + k]!; c2 += x * W[b2 + k]!; c3 += x * W[b3 + k]!;
      }
      put(m, n, c0); put(m, n + 1, c1); put(m, n + 2, c2); put(m, n + 3, c3);
    }
    for (; n < N; n++) {
      const b0 = n * K;
      let c = 0;
      for (let k = 0; k < K; k++) c += A[a0 + k]! * W[b0 + k]!;
      put(m, n, c);
    }
  }
}

/** tsGemm's layout of an activation operand: dst[n·K + k] = scale · src[off + n·sn + k·sk]. */
export function tsPack(src: Float32Array, off: number, N: number, K: number, sn: number, sk: number, dst: Float32Array, scale: number): unknown {
  for (let n = 0; n < N; n++) {
    const o = n * K;
    const b = off + n * sn;
    if (scale === 1) for (let k = 0; k < K; k++) dst[o + k] = src[b + k * sk]!;
    else for (let k = 0; k < K; k++) dst[o + k] = scale * src[b + k * sk]!;
  }
  return dst;
}

/** In place: tanh (kind 0) or sigmoid (kind 1) through tanhf / sigmoidf. */
export function tsAct(kind: number, a: Float32Array, off: number, n: number): void {
  if (kind === 0) for (let i = off; i < off + n; i++) a[i] = tanhf(a[i]!);
  else for (let i = off; i < off + n; i++) a[i] = sigmoidf(a[i]!);
}

/** The plain-TypeScript executor: buffers are Float32Arrays; GEMM forms run on tsGemm. */
export class CpuExecutor extends HostExecutor<Float32Array> {
  readonly backend = 'cpu' as const;
  readonly device = 'cpu (emitted TypeScript)';
  protected readonly gemmFn = tsGemm;
  protected readonly packFn = tsPack;
  protected readonly actFn = tsAct;
  protected alloc(size: number): Float32Array {
    this.allocations++;
    try {
      return new Float32Array(size);
    } catch (e) {
      // past the engine's largest typed array, or its heap
      if (e instanceof RangeError) throw new OutOfMemory('cpu', size, 0, undefined);
      throw e;
    }
  }
  protected view(h: Float32Array): Float32Array {
    return h;
  }
  protected free(): void {}
  protected pack(w: Float32Array, row: number, n: number, col: number, k: number, ld: number): Float32Array {
    const p = new Float32Array(n * k);
    for (let r = 0; r < n; r++) p.set(w.subarray((row + r) * ld + col, (row + r) * ld + col + k), r * k);
    return p;
  }
}

// ───────────── WebAssembly SIMD ─────────────

interface GemmExports {
  nnc_nr(): number;
  nnc_packed_size(N: number, K: number): number;
  nnc_pack(src: number, N: number, K: number, sn: number, sk: number, dst: number): void;
  nnc_gemm(M: number, N: number, K: number, A: number, lda: number, Bp: number, bias: number, C: number, ldc: number, flags: number): void;
  nnc_act(kind: number, x: number, n: number): void;
  __heap_base: WebAssembly.Global;
}

/** A buffer in the arena: its address and length; its view is remade when the memory grows. */
class ArenaBuf {
  view: Float32Array | undefined;
  freed = false;
  readonly ptr: number;
  readonly len: number;
  readonly bytes: number;
  constructor(ptr: number, len: number, bytes: number) {
    this.ptr = ptr;
    this.len = len;
    this.bytes = bytes;
  }
}

const compiled = new Map<string, WebAssembly.Module>();

/** The GEMM module: the single-threaded build, or the shared-memory one that worker threads instantiate too. */
function gemmModule(shared = false): WebAssembly.Module {
  const b64 = shared ? GEMM_WASM_MT_BASE64 : GEMM_WASM_BASE64;
  let m = compiled.get(b64);
  if (!m) {
    const bin = typeof atob === 'function'
      ? Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))
      : new Uint8Array((globalThis as unknown as { Buffer: { from(s: string, e: string): Uint8Array } }).Buffer.from(b64, 'base64'));
    m = new WebAssembly.Module(bin);
    compiled.set(b64, m);
  }
  return m;
}

/** Whether this runs in Node (worker_threads, and a main thread that may block in Atomics.wait). */
export const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

/** Whether this engine can share a WebAssembly.Memory with worker threads (a browser page needs cross-origin isolation). */
function threadsSupported(): boolean {
  const g = globalThis as { SharedArrayBuffer?: unknown; crossOriginIsolated?: boolean };
  if (typeof g.SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return false;
  return isNode || g.crossOriginIsolated === true;
}

/**
 * Control block of a parallel GEMM (Int32 slots), shared by the main thread and every worker:
 * the job (M, N, K, addresses, strides, flags), its chunks of column panels, and three counters.
 * NEXT holds the job's tag (its sequence number mod 2^16) in its high half and the next unclaimed
 * chunk in its low half; a thread claims a chunk by compare-and-swap, so whichever threads are
 * running share the work and a worker the OS has descheduled costs nothing (the main thread takes
 * its chunks). When a job is done the main thread sets the low half to 0xffff before it writes the
 * next job, so a late worker can never claim a chunk of a job whose arguments it read half-written.
 */
const C_SEQ = 0, C_STOP = 11, C_DONE = 12, C_READY = 13, C_NEXT = 14, C_CHUNKS = 15, C_PER = 16, C_NR = 17; // claimChunks uses 12, 14–17 as literals

/**
 * One thread's share of a job: claims chunks until none is left (also run by the main thread).
 * Self-contained (slot numbers are literals: 14 NEXT, 15 chunks, 16 panels per chunk, 17 NR,
 * 12 DONE), because workers get its source text, which a minifier may not rename consistently.
 */
function claimChunks(c: Int32Array, tag: number, gemm: (M: number, N: number, K: number, A: number, lda: number, Bp: number, bias: number, C: number, ldc: number, flags: number) => void): void {
  for (;;) {
    const v = Atomics.load(c, 14);
    if (v >>> 16 !== tag) return;
    const i = v & 0xffff;
    if (i >= c[15]!) return;
    if (Atomics.compareExchange(c, 14, v, v + 1) !== v) continue;
    const per = c[16]!, nr = c[17]!, K = c[3]!, bias = c[7]!;
    const p0 = i * per;
    const n0 = p0 * nr;
    const n1 = Math.min(c[2]!, (p0 + per) * nr);
    gemm(c[1]!, n1 - n0, K, c[4]!, c[5]!, c[6]! + 4 * p0 * K * nr, bias ? bias + 4 * n0 : 0, c[8]! + 4 * n0, c[9]!, c[10]!);
    // the main thread may sleep until the last chunk is done
    if (Atomics.add(c, 12, 1) + 1 === c[15]) Atomics.notify(c, 12);
  }
}

/**
 * Runs the GEMM kernels on a small scratch problem (64 × 64 × 64 at 1, 4 and 5 rows, about 5 ms) so
 * that V8 compiles them with its optimising tier before the first real call: a fresh instance starts
 * in the baseline compiler, about 3× slower, for its first few dozen calls. `at` is a scratch area
 * of WARM_FLOATS floats. Self-contained: workers get its source text.
 */
function warm(gemm: (M: number, N: number, K: number, A: number, lda: number, Bp: number, bias: number, C: number, ldc: number, flags: number) => void, at: number): void {
  const t0 = Date.now();
  for (let i = 0; i < 400 && Date.now() - t0 < 20; i++) {
    const M = i % 3 === 0 ? 1 : i % 3 === 1 ? 4 : 5;
    gemm(M, 64, 64, at, 64, at + 4 * 320, at + 4 * 4416, at + 4 * 4480, 64, 0);
  }
}
const WARM_FLOATS = 4800;

/**
 * A worker thread's loop (its source is sent as a string, with claimChunks): it instantiates the
 * shared-memory GEMM module on the executor's memory, with its own stack, waits for a job in the
 * control block and claims chunks of it. It spins briefly (about 0.1 ms) before sleeping, so a time
 * loop's next GEMM finds it awake.
 */
const WORKER_SOURCE = `
const C_SEQ = ${C_SEQ}, C_STOP = ${C_STOP}, C_READY = ${C_READY};
const claimChunks = ${claimChunks.toString()};
const warm = ${warm.toString()};
const loop = (d) => {
  const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
  const x = inst.exports;
  x.__stack_pointer.value = d.stackTop;
  const c = new Int32Array(d.memory.buffer, d.ctrl, 32);
  warm(x.nnc_gemm, d.warm);
  let seen = Atomics.load(c, C_SEQ);
  Atomics.add(c, C_READY, 1);
  Atomics.notify(c, C_READY);
  for (;;) {
    let spins = 0;
    while (Atomics.load(c, C_SEQ) === seen) {
      if (++spins > 20000) { Atomics.wait(c, C_SEQ, seen); spins = 0; }
    }
    seen = Atomics.load(c, C_SEQ);
    if (Atomics.load(c, C_STOP) === 1) return;
    claimChunks(c, seen & 0xffff, x.nnc_gemm);
  }
};
if (typeof require === 'function') require('node:worker_threads').parentPort.once('message', loop);
else self.onmessage = (e) => loop(e.data);
`;

interface WorkerLike {
  postMessage(m: unknown): void;
  terminate(): unknown;
  unref?(): void;
}

/** Starts one worker thread (Node's worker_threads, or a browser Worker). */
async function startWorker(): Promise<WorkerLike> {
  const g = globalThis as { Worker?: new (url: string) => WorkerLike; Blob?: new (parts: string[], o: { type: string }) => unknown; URL?: { createObjectURL(b: unknown): string } };
  if (isNode) {
    const spec = 'node:worker_threads';
    const { Worker } = (await import(/* @vite-ignore */ spec)) as { Worker: new (src: string, o: { eval: boolean }) => WorkerLike };
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref?.();
    return w;
  }
  return new g.Worker!(g.URL!.createObjectURL(new g.Blob!([WORKER_SOURCE], { type: 'text/javascript' })));
}

/** Whether this engine runs WebAssembly with SIMD (the `wasm` backend needs it). */
export function wasmSimdSupported(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11])) && !!gemmModule();
  } catch {
    return false;
  }
}

const PAGE = 65536;
/** The linear memory's limit in pages (2 GiB: WebAssembly's 32-bit addresses, as engines allow them). */
const MAX_PAGES = 32768;
/** GEMMs of fewer multiply-adds than this run on one thread (the hand-off costs a few microseconds). */
const PARALLEL_MIN = 1 << 19;

/** nnc's own WebAssembly SIMD executor: an arena in one WebAssembly.Memory, GEMMs in gemm.c. */
export class WasmExecutor extends HostExecutor<ArenaBuf> {
  readonly backend = 'wasm' as const;
  get device(): string {
    return `nnc wasm (WebAssembly SIMD GEMM, ${this.threads} thread${this.threads > 1 ? 's' : ''})`;
  }
  private readonly memory: WebAssembly.Memory;
  private readonly k: GemmExports;
  private top: number;
  private readonly freeLists = new Map<number, ArenaBuf[]>();
  private buffer: ArrayBuffer;
  protected readonly gemmFn: GemmHost['gemm'];
  protected readonly packFn: GemmHost['pack'];
  protected readonly actFn: GemmHost['act'];

  private readonly shared: boolean;
  private readonly workers: WorkerLike[] = [];
  private ctrl: Int32Array | undefined;
  private readonly nr: number;

  /** `threads` > 1: GEMMs large enough to pay are split by columns over that many threads (this one and workers). */
  constructor(threads = 1) {
    super();
    this.shared = threads > 1 && threadsSupported();
    this.memory = new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, ...(this.shared ? { shared: true } : {}) });
    const inst = new WebAssembly.Instance(gemmModule(this.shared), { env: { memory: this.memory } });
    this.k = inst.exports as unknown as GemmExports;
    this.nr = this.k.nnc_nr();
    this.top = ((this.k.__heap_base.value as number) + 63) & ~63;
    this.buffer = this.memory.buffer;
    const g = this.k.nnc_gemm;
    this.gemmFn = (M, N, K, A, aOff, lda, Bp, bias, biasOff, C, cOff, ldc, acc) => {
      if (M <= 0) return;
      const bp = Bp instanceof Float32Array ? Bp.byteOffset : (Bp as ArenaBuf).ptr;
      const a = A.byteOffset + 4 * aOff;
      const b = bias ? bias.byteOffset + 4 * biasOff : 0;
      const c = C.byteOffset + 4 * cOff;
      if (this.workers.length && M * N * K >= PARALLEL_MIN) this.parallel(M, N, K, a, lda, bp, b, c, ldc, acc ? 1 : 0);
      else g(M, N, K, a, lda, bp, b, c, ldc, acc ? 1 : 0);
    };
    const act = this.k.nnc_act;
    this.actFn = (kind, a, off, n) => act(kind, a.byteOffset + 4 * off, n);
    const p = this.k.nnc_pack;
    this.packFn = (src, off, N, K, sn, sk, dst, scale) => {
      p(src.byteOffset + 4 * off, N, K, sn, sk, dst.byteOffset);
      if (scale !== 1) {
        const n = this.k.nnc_packed_size(N, K);
        for (let i = 0; i < n; i++) dst[i] = dst[i]! * scale;
      }
      return dst;
    };
  }

  private warmed: number | undefined;
  /** A zeroed scratch area for warm(), warming this thread's instance the first time. */
  private warmArea(): number {
    if (this.warmed === undefined) {
      const a = this.alloc(WARM_FLOATS);
      this.view(a).fill(0);
      this.warmed = a.ptr;
      warm(this.k.nnc_gemm, a.ptr);
    }
    return this.warmed;
  }


  /** Threads that run GEMMs (this one included). */
  get threads(): number {
    return this.workers.length + 1;
  }

  /** Warms this thread's GEMM code (see warm()) and starts `n` worker threads on the shared memory (none when it is not shared). */
  async start(n: number): Promise<void> {
    this.warmArea();
    if (!this.shared || n < 1) return;
    const ctrl = this.alloc(32);
    const area = this.warmArea();
    const c = new Int32Array(this.memory.buffer, ctrl.ptr, 32);
    c.fill(0);
    this.ctrl = c;
    for (let i = 0; i < n; i++) {
      const stack = this.alloc(65536 / 4);
      const w = await startWorker();
      w.postMessage({ module: gemmModule(true), memory: this.memory, ctrl: ctrl.ptr, stackTop: stack.ptr + 65536, warm: area });
      const t0 = Date.now();
      while (Atomics.load(c, C_READY) !== i + 1) {
        if (Date.now() - t0 > 10000) {
          w.terminate();
          return;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      this.workers.push(w);
    }
  }

  /** One GEMM split into chunks of column panels that this thread and the workers claim (see claimChunks). */
  private parallel(M: number, N: number, K: number, a: number, lda: number, bp: number, bias: number, cc: number, ldc: number, flags: number): void {
    const c = this.ctrl!;
    const nr = this.nr;
    const panels = Math.ceil(N / nr);
    // about four chunks per thread: small enough to balance, large enough to amortise a claim
    const per = Math.max(1, Math.ceil(panels / (4 * (this.workers.length + 1))));
    const chunks = Math.ceil(panels / per);
    c[1] = M; c[2] = N; c[3] = K; c[4] = a; c[5] = lda; c[6] = bp; c[7] = bias; c[8] = cc; c[9] = ldc; c[10] = flags;
    c[C_CHUNKS] = chunks; c[C_PER] = per; c[C_NR] = nr;
    Atomics.store(c, C_DONE, 0);
    const seq = (Atomics.load(c, C_SEQ) + 1) | 0;
    const tag = seq & 0xffff;
    Atomics.store(c, C_NEXT, tag << 16);
    Atomics.store(c, C_SEQ, seq);
    Atomics.notify(c, C_SEQ);
    claimChunks(c, tag, this.k.nnc_gemm);
    // the workers hold at most one chunk each: spin a little, then (where this thread may block:
    // Node) sleep until they finish, rather than compete with them for a core
    let spins = 0;
    for (;;) {
      const done = Atomics.load(c, C_DONE);
      if (done === chunks) break;
      if (++spins > 2000 && isNode) Atomics.wait(c, C_DONE, done, 1);
    }
    Atomics.store(c, C_NEXT, (tag << 16) | 0xffff);
  }

  override dispose(): void {
    super.dispose();
    const c = this.ctrl;
    if (c) {
      Atomics.store(c, C_STOP, 1);
      Atomics.store(c, C_SEQ, (Atomics.load(c, C_SEQ) + 1) | 0);
      Atomics.notify(c, C_SEQ);
    }
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
  }

  /** Bytes of linear memory in use (for tests and the benchmark). */
  get arenaBytes(): number {
    return this.memory.buffer.byteLength;
  }

  protected alloc(size: number): ArenaBuf {
    // 64-byte blocks, in float arithmetic: a bitwise round turns sizes of 2 GiB and more negative
    const bytes = Math.ceil(size / 16) * 64;
    const list = this.freeLists.get(bytes);
    const reused = list?.pop();
    if (reused) return new ArenaBuf(reused.ptr, size, bytes);
    return this.bump(size, bytes);
  }

  private bump(size: number, bytes: number): ArenaBuf {
    this.allocations++;
    const ptr = this.top;
    const end = ptr + bytes;
    if (end > this.memory.buffer.byteLength) {
      const have = this.memory.buffer.byteLength;
      const limit = MAX_PAGES * PAGE;
      if (end > limit) throw new OutOfMemory('wasm', size, this.top, limit);
      // grow by half again (fewer growths), but never past the limit when the buffer itself fits
      const need = Math.min(Math.max(end - have, have >> 1), limit - have);
      try {
        this.memory.grow(Math.ceil(need / PAGE));
      } catch (e) {
        // the engine could not reserve the pages (a 32-bit host, or the process's memory)
        if (e instanceof RangeError) throw new OutOfMemory('wasm', size, this.top, limit);
        throw e;
      }
      this.buffer = this.memory.buffer;
    }
    this.top = end;
    return new ArenaBuf(ptr, size, bytes);
  }
  protected view(h: ArenaBuf): Float32Array {
    if (!h.view || h.view.buffer !== this.buffer) h.view = new Float32Array(this.buffer, h.ptr, h.len);
    return h.view;
  }
  protected free(h: ArenaBuf): void {
    if (h.freed) return;
    h.freed = true;
    let list = this.freeLists.get(h.bytes);
    if (!list) this.freeLists.set(h.bytes, (list = []));
    list.push(h);
  }
  protected pack(w: ArenaBuf, row: number, n: number, col: number, k: number, ld: number): ArenaBuf {
    const dst = this.alloc(this.k.nnc_packed_size(n, k));
    this.k.nnc_pack(w.ptr + 4 * (row * ld + col), n, k, ld, 1, dst.ptr);
    return dst;
  }
}
