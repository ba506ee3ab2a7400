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
import { GEMM_WASM_BASE64, GEMM_WASM_MT_BASE64 } from './wasm/gemm-wasm.ts';
import { Arena, UNIT, type ArenaStats, type Block } from './arena.ts';
import { NncError, OutOfMemory } from './errors.ts';
import { Pool, WARM_FLOATS, WORKER_AREA_FLOATS, collected, threadsSupported, warm, workerPool, type GemmFn } from './threads.ts';

export { isNode } from './threads.ts';

/** What differs between the two host executors: buffers, and the GEMM. */
abstract class HostExecutor<H> implements Executor {
  abstract readonly backend: BackendName;
  abstract readonly device: string;
  protected abstract alloc(size: number): H;
  protected abstract view(h: H): Float32Array;
  protected abstract free(h: H): void;
  /** Packs rows [row, row + n) × cols [col, col + k) of a [?, ld] weight into the GEMM's layout (a buffer release() frees). */
  protected abstract pack(w: H, off: number, N: number, K: number, sn: number, sk: number): H;
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
  /** Buffers that took memory not used before (for tests: a warm call or decoding step takes none). */
  abstract readonly allocations: number;

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
  prepack(w: unknown, off: number, N: number, K: number, sn: number, sk: number): unknown {
    return this.pack(w as H, off, N, K, sn, sk);
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
    const scratch: H[] = [];
    try {
      for (const n of k.gemm.scratch(s)) scratch.push(this.alloc(Math.max(n, 1)));
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
    try {
      this.exec(k, out, args, sc, packs);
    } catch (e) {
      this.free(out);
      throw e;
    }
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
  stackRows(dst: unknown, src: unknown, lengths: unknown, width: number, B: number, L: number, t: number): unknown {
    const d = this.view(dst as H);
    const x = this.view(src as H);
    const len = this.view(lengths as H);
    for (let b = 0; b < B; b++) {
      const at = (b * L + t) * width;
      if (t < len[b]!) d.set(x.subarray(b * width, (b + 1) * width), at);
      else d.fill(0, at, at + width);
    }
    return dst;
  }
  async gatherRows(b: unknown, width: number, idx: Int32Array): Promise<unknown> {
    const out = this.alloc(Math.max(idx.length * width, 1));
    const src = this.view(b as H);
    const dst = this.view(out);
    for (let r = 0; r < idx.length; r++) dst.set(src.subarray(idx[r]! * width, (idx[r]! + 1) * width), r * width);
    return out;
  }
  readNow(b: unknown, size: number): Float32Array {
    return this.view(b as H).slice(0, size);
  }
  async read(b: unknown, size: number): Promise<Float32Array> {
    return this.readNow(b, size);
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
  allocations = 0;
  protected alloc(size: number): Float32Array {
    this.allocations++;
    try {
      return new Float32Array(size);
    } catch (e) {
      // past the engine's largest typed array, or its heap
      if (e instanceof RangeError) throw new OutOfMemory(`the cpu backend cannot allocate a buffer of ${size} floats (${mib(size * 4)}): ${e.message}`);
      throw e;
    }
  }
  protected view(h: Float32Array): Float32Array {
    return h;
  }
  protected free(): void {}
  protected pack(w: Float32Array, off: number, N: number, K: number, sn: number, sk: number): Float32Array {
    const p = new Float32Array(N * K);
    if (sk === 1) for (let r = 0; r < N; r++) p.set(w.subarray(off + r * sn, off + r * sn + K), r * K);
    else tsPack(w, off, N, K, sn, sk, p, 1);
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

const compiled = new Map<string, WebAssembly.Module>();
/** GEMM modules whose code this thread has warmed up (compiled code is shared by a module's instances). */
const warmedHere = new WeakSet<WebAssembly.Module>();

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

/** Whether this engine runs WebAssembly with SIMD (the `wasm` backend needs it). */
export function wasmSimdSupported(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11])) && !!gemmModule();
  } catch {
    return false;
  }
}

const PAGE = 65536;
/** WebAssembly.Memory's maximum here: 2 GiB (addresses stay positive 32-bit integers). */
const MAX_PAGES = 32768;
const MAX_BYTES = MAX_PAGES * PAGE;
const mib = (bytes: number): string => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
/** GEMMs of fewer multiply-adds than this run on one thread (the hand-off costs a few microseconds). */
const PARALLEL_MIN = 1 << 19;

/** nnc's own WebAssembly SIMD executor: an arena in one WebAssembly.Memory, GEMMs in gemm.c. */
export class WasmExecutor extends HostExecutor<Block> {
  readonly backend = 'wasm' as const;
  get device(): string {
    return `nnc wasm (WebAssembly SIMD GEMM, ${this.threads} thread${this.threads > 1 ? 's' : ''})`;
  }
  private readonly memory: WebAssembly.Memory;
  private readonly k: GemmExports;
  private readonly arena: Arena;
  private buffer: ArrayBuffer;
  protected readonly gemmFn: GemmHost['gemm'];
  protected readonly packFn: GemmHost['pack'];
  protected readonly actFn: GemmHost['act'];

  private readonly shared: boolean;
  private readonly nr: number;
  /** The worker pool this model's memory is attached to (threads > 1 on a shared memory), its id there, and how many workers it uses. */
  private pool: Pool | undefined;
  private poolId = 0;
  private poolWorkers = 0;

  /** `threads` > 1: GEMMs large enough to pay are split by columns over that many threads (this one and workers). */
  constructor(threads = 1) {
    super();
    this.shared = threads > 1 && threadsSupported();
    this.memory = new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, ...(this.shared ? { shared: true } : {}) });
    const inst = new WebAssembly.Instance(gemmModule(this.shared), { env: { memory: this.memory } });
    this.k = inst.exports as unknown as GemmExports;
    this.nr = this.k.nnc_nr();
    this.buffer = this.memory.buffer;
    this.arena = new Arena(this.k.__heap_base.value as number, this.buffer.byteLength, (missing, request) => this.grow(missing, request));
    const g: GemmFn = this.k.nnc_gemm;
    this.gemmFn = (M, N, K, A, aOff, lda, Bp, bias, biasOff, C, cOff, ldc, acc) => {
      if (M <= 0) return;
      const bp = Bp instanceof Float32Array ? Bp.byteOffset : (Bp as Block).ptr;
      const a = A.byteOffset + 4 * aOff;
      const b = bias ? bias.byteOffset + 4 * biasOff : 0;
      const c = C.byteOffset + 4 * cOff;
      if (this.pool && M * N * K >= PARALLEL_MIN && this.pool.live(this.poolWorkers) > 0) {
        this.pool.run(this.poolId, this.poolWorkers, g, this.nr, M, N, K, a, lda, bp, b, c, ldc, acc ? 1 : 0);
      } else g(M, N, K, a, lda, bp, b, c, ldc, acc ? 1 : 0);
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

  /** A zeroed buffer of `n` floats that stays (worker areas). */
  private zeroed(n: number): Block {
    const b = this.alloc(n);
    this.view(b).fill(0);
    return b;
  }

  /** Threads that run GEMMs (this one included): fewer than asked for where workers failed to start or failed later. */
  get threads(): number {
    return this.pool ? this.pool.live(this.poolWorkers) + 1 : 1;
  }

  /**
   * Warms this thread's GEMM code (see warm(); once per module in a thread) and, on a shared
   * memory, attaches it to `n` workers of this thread's pool (threads.ts), waiting a little for
   * them to be ready (one that is not yet ready joins later: the main thread does its work meanwhile).
   */
  async start(n: number, given?: Pool): Promise<void> {
    const module = gemmModule(this.shared);
    if (!warmedHere.has(module)) {
      const a = this.zeroed(WARM_FLOATS);
      warm(this.k.nnc_gemm, a.ptr);
      this.free(a);
      warmedHere.add(module);
    }
    if (!this.shared || n < 1) return;
    // the pool only now: it needs SharedArrayBuffer, which a page that is not cross-origin isolated lacks
    const pool = given ?? workerPool();
    await pool.ensure(n);
    const areas = Array.from({ length: n }, () => this.zeroed(WORKER_AREA_FLOATS).ptr);
    this.poolId = pool.attach(this.memory, module, areas);
    this.pool = pool;
    this.poolWorkers = n;
    // a model nobody disposes gives its workers back when it is collected
    collected.register(this, { pool, id: this.poolId }, this);
    await pool.attached(this.poolId, n, 5000);
  }

  override dispose(): void {
    super.dispose();
    if (this.pool) {
      collected.unregister(this);
      this.pool.detach(this.poolId);
      this.pool = undefined;
    }
  }

  /** Bytes of linear memory in use (for tests and the benchmark). */
  get arenaBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Buffers that took memory no earlier buffer had used. */
  get allocations(): number {
    return this.arena.fresh;
  }
  /** The arena's use: bytes of live buffers (now, and the most so far), free fragments. */
  get arenaStats(): ArenaStats {
    return this.arena.stats;
  }

  protected alloc(size: number): Block {
    const bytes = Math.max(UNIT, Math.ceil((size * 4) / UNIT) * UNIT);
    if (!(bytes <= MAX_BYTES)) throw this.noRoom(size, bytes);
    return this.arena.alloc(bytes, size);
  }

  /** Grows the memory by at least `missing` bytes (by half its size when that fits): the arena asked for `request` bytes. */
  private grow(missing: number, request: number): number {
    const have = this.memory.buffer.byteLength / PAGE;
    const min = Math.ceil(missing / PAGE);
    if (have + min > MAX_PAGES) throw this.noRoom(request / 4, request);
    const want = Math.max(min, Math.min(have >> 1, MAX_PAGES - have));
    try {
      this.memory.grow(want);
    } catch {
      // the engine could not reserve that much: try what is needed
      try {
        this.memory.grow(min);
      } catch (e) {
        throw new OutOfMemory(`the wasm backend could not grow its memory to hold a buffer of ${mib(request)} (${mib(this.memory.buffer.byteLength)} now): ${(e as Error).message}`);
      }
    }
    this.buffer = this.memory.buffer;
    return this.buffer.byteLength;
  }

  private noRoom(floats: number, bytes: number): NncError {
    const live = this.arena.stats.liveBytes;
    return new OutOfMemory(
      `the wasm backend cannot hold a buffer of ${floats} floats (${mib(bytes)}): its memory is limited to ${mib(MAX_BYTES)}, and ${mib(live)} of it ` +
        `hold buffers in use (weights, and the tensors of calls in progress); use a smaller batch, shorter sequences or a smaller beam`,
    );
  }

  protected view(h: Block): Float32Array {
    if (!h.view || h.view.buffer !== this.buffer) h.view = new Float32Array(this.buffer, h.ptr, h.len);
    return h.view;
  }
  protected free(h: Block): void {
    this.arena.free(h);
  }
  protected pack(w: Block, off: number, N: number, K: number, sn: number, sk: number): Block {
    const dst = this.alloc(this.k.nnc_packed_size(N, K));
    this.k.nnc_pack(w.ptr + 4 * off, N, K, sn, sk, dst.ptr);
    return dst;
  }
}
