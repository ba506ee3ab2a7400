/**
 * The `wasm` backend's worker threads: one pool per JavaScript thread (realm), shared by every
 * model, that splits large GEMMs by column panels.
 *
 * Each model's executor keeps its own shared WebAssembly.Memory (its arena). A model that wants
 * `threads` > 1 attaches its memory to the first `threads − 1` workers of the pool: each worker
 * instantiates the GEMM module on that memory (with its own stack inside it) and keeps the
 * instance until the model detaches — on dispose(), or when the model is garbage-collected (a
 * FinalizationRegistry). When no model is attached any more, the workers end (after a short
 * grace period), which frees every memory they held. So a page or process holds at most as many
 * threads as the largest `threads` asked for, however many models it creates, and a model nobody
 * disposes gives back its threads and memory once it is collected.
 *
 * A job is posted through one control block (a SharedArrayBuffer of the pool's own, never a
 * model's memory): the GEMM's arguments, the model's id and how many workers may join, then the
 * chunks, which the main thread and the workers claim by compare-and-swap (see claimChunks). A
 * worker that has not attached that model yet, or is busy, or was descheduled costs nothing: the
 * main thread takes the chunks nobody claimed.
 *
 * Failures never hang and never go unreported. A worker that throws inside a GEMM (a trap) counts
 * its chunk as done, reports the error in the control block and stops: the call that ran the GEMM
 * fails with an NncError, and later calls run without that worker. A worker that stops
 * responding in the middle of a chunk (killed by the system) is given up on after a deadline,
 * terminated, and the call fails likewise. A worker that cannot start, or fails outside a job
 * (its `error` event), is dropped: the models run on the threads that remain (`threads` and the
 * backend's `device` string say how many). Workers are never restarted.
 *
 * Messages (attach, detach) reach a worker through its event loop, but a worker spends its life in
 * a wait on the control block; so each message is also counted in the worker's MAIL slot and the
 * block's sequence number is bumped, and a worker that sees unread mail returns to its event loop.
 */
import { NncError } from './errors.ts';

/** Whether this runs in Node (worker_threads, and a main thread that may block in Atomics.wait). */
export const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

/** Whether this engine can share a WebAssembly.Memory with worker threads (a browser page needs cross-origin isolation). */
export function threadsSupported(): boolean {
  const g = globalThis as { SharedArrayBuffer?: unknown; crossOriginIsolated?: boolean };
  if (typeof g.SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return false;
  return isNode || g.crossOriginIsolated === true;
}

export type GemmFn = (M: number, N: number, K: number, A: number, lda: number, Bp: number, bias: number, C: number, ldc: number, flags: number) => void;

// Control block slots. The job: 1–10 the GEMM's arguments; claimChunks reads them and 12, 14–17 as
// literals (workers get its source text).
const C_SEQ = 0, C_STOP = 11, C_DONE = 12, C_NEXT = 14, C_CHUNKS = 15, C_PER = 16, C_NR = 17;
/** The attached model whose memory the job's addresses are in, and how many workers may join. */
const C_ID = 18, C_MAXW = 19;
/** Failures in the current job, and the first one's message (length, then UTF-16 code units). */
const C_ERR = 20, C_ERRLEN = 255, C_ERRTEXT = 256, ERR_CHARS = 200;
/** Per worker i, slots 32 + 4i: messages posted, the id of the last model attached, busy in a job, dead. */
const W_BASE = 32, W_MAIL = 0, W_ATTACHED = 1, W_BUSY = 2, W_DEAD = 3;
const MAX_WORKERS = 56;
/** Restart the workers once the memories they dropped add up to this. */
const RECYCLE_BYTES = 256 * 2 ** 20;
const CTRL_INTS = 512;

/**
 * One thread's share of a job: claims chunks until none is left (also run by the main thread).
 * NEXT holds the job's tag (its sequence number mod 2^16) in its high half and the next unclaimed
 * chunk in its low half; when a job is done the main thread sets the low half to 0xffff before it
 * writes the next job, so a late worker can never claim a chunk of a job whose arguments it read
 * half-written. Self-contained (slot numbers are literals: 14 NEXT, 15 chunks, 16 panels per
 * chunk, 17 NR, 12 DONE), because workers get its source text.
 */
export function claimChunks(c: Int32Array, tag: number, gemm: GemmFn): void {
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
 * that V8 compiles them with its optimising tier before the first real call: a fresh module starts
 * in the baseline compiler, about 3× slower, for its first few dozen calls (compiled code is shared
 * by the module's instances in one thread, so once per thread is enough). `at` is a zeroed scratch
 * area of WARM_FLOATS floats. Self-contained: workers get its source text.
 */
export function warm(gemm: GemmFn, at: number): void {
  const t0 = Date.now();
  for (let i = 0; i < 400 && Date.now() - t0 < 20; i++) {
    const M = i % 3 === 0 ? 1 : i % 3 === 1 ? 4 : 5;
    gemm(M, 64, 64, at, 64, at + 4 * 320, at + 4 * 4416, at + 4 * 4480, 64, 0);
  }
}
export const WARM_FLOATS = 4800;
/** Floats of the area a model gives each worker in its memory: a warm-up area, then a 64 KiB stack. */
export const WORKER_AREA_FLOATS = WARM_FLOATS + 16384;

/**
 * A worker thread: messages init, attach, detach; between them it waits on the control block's
 * sequence number and joins jobs of the models it has attached. It spins briefly (about 0.1 ms)
 * before sleeping, so a time loop's next GEMM finds it awake.
 */
const WORKER_SOURCE = `
const claimChunks = ${claimChunks.toString()};
const warm = ${warm.toString()};
const gemms = new Map();
let c, w = 0, seen = 0, read = 0, warmed = false, dead = false;
const fail = (e, inJob) => {
  dead = true;
  if (!c) return;
  if (inJob) {
    const s = String((e && e.message) || e).slice(0, ${ERR_CHARS});
    if (Atomics.compareExchange(c, ${C_ERR}, 0, 1) === 0) {
      for (let i = 0; i < s.length; i++) c[${C_ERRTEXT} + i] = s.charCodeAt(i);
      Atomics.store(c, ${C_ERRLEN}, s.length);
    } else Atomics.add(c, ${C_ERR}, 1);
  }
  Atomics.store(c, w + ${W_DEAD}, 1);
};
const loop = () => {
  for (;;) {
    let spins = 0, s;
    while ((s = Atomics.load(c, ${C_SEQ})) === seen) {
      if (Atomics.load(c, w + ${W_MAIL}) !== read) return;
      if (++spins > 20000) { Atomics.wait(c, ${C_SEQ}, seen); spins = 0; }
    }
    seen = s;
    if (Atomics.load(c, ${C_STOP}) === 1 || Atomics.load(c, w + ${W_MAIL}) !== read) return;
    if ((w - ${W_BASE}) / 4 >= Atomics.load(c, ${C_MAXW})) continue;
    const g = gemms.get(Atomics.load(c, ${C_ID}));
    if (!g) continue;
    Atomics.store(c, w + ${W_BUSY}, 1);
    try {
      claimChunks(c, seen & 0xffff, g);
    } catch (e) {
      // a chunk was claimed and not finished: count it, so that the main thread does not wait for it
      fail(e, true);
      Atomics.store(c, w + ${W_BUSY}, 0);
      if (Atomics.add(c, ${C_DONE}, 1) + 1 === c[${C_CHUNKS}]) Atomics.notify(c, ${C_DONE});
      return;
    }
    Atomics.store(c, w + ${W_BUSY}, 0);
  }
};
const onMessage = (d) => {
  if (dead) return;
  try {
    if (d.kind === 'init') {
      c = new Int32Array(d.sab);
      w = ${W_BASE} + 4 * d.index;
      seen = Atomics.load(c, ${C_SEQ});
    } else if (d.kind === 'attach') {
      const x = new WebAssembly.Instance(d.module, { env: { memory: d.memory } }).exports;
      x.__stack_pointer.value = d.area + 4 * ${WORKER_AREA_FLOATS};
      if (!warmed) warm(x.nnc_gemm, d.area);
      warmed = true;
      gemms.set(d.id, x.nnc_gemm);
      Atomics.store(c, w + ${W_ATTACHED}, d.id);
    } else if (d.kind === 'detach') gemms.delete(d.id);
  } catch (e) {
    fail(e, false);
    throw e;
  }
  read++;
  loop();
};
if (typeof require === 'function') require('node:worker_threads').parentPort.on('message', onMessage);
else {
  self.onmessage = (e) => onMessage(e.data);
  self.postMessage('loaded');
}
`;

interface WorkerLike {
  postMessage(m: unknown): void;
  terminate(): unknown;
  unref?(): void;
  on?(event: string, f: (e: unknown) => void): void;
  onerror?: ((e: { message?: string; preventDefault?(): void }) => void) | null;
  onmessage?: ((e: unknown) => void) | null;
}

interface PoolWorker {
  readonly w: WorkerLike;
  /** Set when the worker failed, could not start, or exited: it is never used again. */
  dead: boolean;
  /** The browser's Blob URL of its source, revoked once the worker has loaded it. */
  url?: string;
}

/** Starts one worker thread (Node's worker_threads, or a browser Worker from a Blob URL). */
async function spawn(onFail: (e: unknown) => void): Promise<PoolWorker> {
  if (isNode) {
    const spec = 'node:worker_threads';
    const { Worker } = (await import(/* @vite-ignore */ spec)) as { Worker: new (src: string, o: { eval: boolean }) => WorkerLike };
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref?.();
    // without an 'error' listener, an exception in the worker would end the whole process
    w.on!('error', onFail);
    w.on!('exit', onFail);
    return { w, dead: false };
  }
  const g = globalThis as unknown as { Worker: new (url: string) => WorkerLike; Blob: new (parts: string[], o: { type: string }) => unknown; URL: { createObjectURL(b: unknown): string; revokeObjectURL(u: string): void } };
  const url = g.URL.createObjectURL(new g.Blob([WORKER_SOURCE], { type: 'text/javascript' }));
  try {
    const w = new g.Worker(url);
    const pw: PoolWorker = { w, dead: false, url };
    w.onerror = (e) => {
      e.preventDefault?.();
      revoke(pw);
      onFail(e);
    };
    return pw;
  } catch (e) {
    g.URL.revokeObjectURL(url);
    throw e;
  }
}

const now = (): number => (typeof performance === 'object' ? performance.now() : Date.now());

/** A pool of worker threads (workerPool(): this JavaScript thread's). */
export class Pool {
  readonly c = new Int32Array(new SharedArrayBuffer(4 * CTRL_INTS));
  /**
   * How long (ms) the main thread waits for a worker's unfinished chunk before it gives up on the
   * worker: `patience` plus `patiencePerMac` per multiply-add of a chunk (1 ms per 10^5: 100 MFLOP/s,
   * far below any machine's speed).
   */
  patience = 5000;
  patiencePerMac = 1e-5;
  private readonly workers: PoolWorker[] = [];
  private spawning: Promise<void> | undefined;
  /** The attached models: what a worker started later (or restarted) attaches too. */
  private readonly models = new Map<number, { memory: WebAssembly.Memory; module: WebAssembly.Module; areas: readonly number[] }>();
  /** Bytes of the memories detached since the workers started, which their threads may still hold until they collect garbage. */
  private detachedBytes = 0;
  private nextId = 1;
  private stopTimer: ReturnType<typeof setTimeout> | undefined;

  /** Workers started (some may have failed since). */
  get size(): number {
    return this.workers.length;
  }

  /** Workers that have not failed among the first n. */
  live(n: number): number {
    let k = 0;
    for (let i = 0; i < Math.min(n, this.workers.length); i++) if (!this.workers[i]!.dead && this.c[W_BASE + 4 * i + W_DEAD] === 0) k++;
    return k;
  }

  /** Makes sure at least n workers were started (they may fail to: see live()). */
  async ensure(n: number): Promise<void> {
    n = Math.min(n, MAX_WORKERS);
    while (this.workers.length < n) {
      this.spawning ??= (async () => {
        let pw: PoolWorker;
        try {
          pw = await spawn(() => this.failed(pw));
        } catch {
          pw = { w: { postMessage() {}, terminate() {} }, dead: true };
        }
        const i = this.workers.length;
        this.c.fill(0, W_BASE + 4 * i, W_BASE + 4 * i + 4);
        this.workers.push(pw);
        // a browser worker says when it has loaded its source: then its Blob URL can go
        if (pw.url) pw.w.onmessage = () => revoke(pw);
        this.post(i, { kind: 'init', sab: this.c.buffer, index: i });
        for (const [id, m] of this.models) if (i < m.areas.length) this.post(i, { kind: 'attach', id, memory: m.memory, module: m.module, area: m.areas[i] });
      })().finally(() => (this.spawning = undefined));
      await this.spawning;
    }
  }

  /** Workers inside a job. */
  private busy(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.workers.length; i++) if (!this.workers[i]!.dead && Atomics.load(this.c, W_BASE + 4 * i + W_BUSY) === 1) out.push(i);
    return out;
  }

  /** A worker failed or ended: it is never used again. */
  private failed(pw: PoolWorker | number): void {
    const i = typeof pw === 'number' ? pw : this.workers.indexOf(pw);
    const w = this.workers[i];
    if (!w || w.dead) return;
    w.dead = true;
    Atomics.store(this.c, W_BASE + 4 * i + W_DEAD, 1);
    void w.w.terminate();
  }

  /** Posts a message to worker i and wakes it up to read it. */
  private post(i: number, m: unknown): void {
    const pw = this.workers[i]!;
    if (pw.dead) return;
    Atomics.add(this.c, W_BASE + 4 * i + W_MAIL, 1);
    pw.w.postMessage(m);
    Atomics.add(this.c, C_SEQ, 1);
    Atomics.notify(this.c, C_SEQ);
  }

  /**
   * Attaches a model's memory to workers 0 … n−1 (started with ensure); `areas[i]` is worker i's
   * area in it (WORKER_AREA_FLOATS floats, zeroed). Returns the model's id for jobs.
   */
  attach(memory: WebAssembly.Memory, module: WebAssembly.Module, areas: readonly number[]): number {
    const id = this.nextId++;
    this.models.set(id, { memory, module, areas });
    if (this.stopTimer !== undefined) clearTimeout(this.stopTimer);
    this.stopTimer = undefined;
    for (let i = 0; i < Math.min(areas.length, this.workers.length); i++) this.post(i, { kind: 'attach', id, memory, module, area: areas[i] });
    return id;
  }

  /** Waits (at most `ms`) until the first n workers have attached model `id` or failed. */
  async attached(id: number, n: number, ms: number): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      let pending = 0;
      for (let i = 0; i < Math.min(n, this.workers.length); i++) {
        if (!this.workers[i]!.dead && Atomics.load(this.c, W_BASE + 4 * i + W_DEAD) === 0 && Atomics.load(this.c, W_BASE + 4 * i + W_ATTACHED) < id) pending++;
      }
      if (!pending || Date.now() - t0 > ms) return;
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /**
   * The model is gone: the workers drop its instance and memory. With no model left they end (a
   * second later); once the memories they dropped add up to RECYCLE_BYTES they are restarted (a
   * thread frees a dropped memory only when it collects garbage, which an idle worker rarely does).
   */
  detach(id: number): void {
    const m = this.models.get(id);
    if (!m) return;
    this.models.delete(id);
    for (let i = 0; i < this.workers.length; i++) this.post(i, { kind: 'detach', id });
    if (this.models.size === 0) {
      this.stopTimer = setTimeout(() => this.stop(), 1000);
      (this.stopTimer as { unref?: () => void }).unref?.();
      return;
    }
    this.detachedBytes += m.memory.buffer.byteLength;
    if (this.detachedBytes < RECYCLE_BYTES) return;
    this.detachedBytes = 0;
    const n = this.workers.length;
    for (const pw of this.workers.splice(0)) void pw.w.terminate();
    void this.ensure(n);
  }

  private stop(): void {
    this.stopTimer = undefined;
    if (this.models.size > 0) return;
    Atomics.store(this.c, C_STOP, 1);
    Atomics.add(this.c, C_SEQ, 1);
    Atomics.notify(this.c, C_SEQ);
    for (const pw of this.workers) void pw.w.terminate();
    this.workers.length = 0;
    if (pool === this) pool = undefined;
  }

  /**
   * One GEMM of model `id` split into chunks of column panels that this thread and the first
   * `maxWorkers` workers claim. Throws an NncError when a worker failed during it.
   */
  run(id: number, maxWorkers: number, gemm: GemmFn, nr: number, M: number, N: number, K: number, a: number, lda: number, bp: number, bias: number, cc: number, ldc: number, flags: number): void {
    const c = this.c;
    const panels = Math.ceil(N / nr);
    // about four chunks per thread: small enough to balance, large enough to amortise a claim
    const per = Math.max(1, Math.ceil(panels / (4 * (maxWorkers + 1))));
    const chunks = Math.ceil(panels / per);
    c[1] = M; c[2] = N; c[3] = K; c[4] = a; c[5] = lda; c[6] = bp; c[7] = bias; c[8] = cc; c[9] = ldc; c[10] = flags;
    c[C_CHUNKS] = chunks; c[C_PER] = per; c[C_NR] = nr;
    c[C_ID] = id; c[C_MAXW] = maxWorkers;
    Atomics.store(c, C_DONE, 0);
    const seq = (Atomics.load(c, C_SEQ) + 1) | 0;
    const tag = seq & 0xffff;
    Atomics.store(c, C_NEXT, tag << 16);
    Atomics.store(c, C_SEQ, seq);
    Atomics.notify(c, C_SEQ);
    let failure: unknown;
    try {
      claimChunks(c, tag, gemm);
    } catch (e) {
      // this thread's chunk failed: nobody starts another, and the workers' chunks are waited for
      failure = e;
      Atomics.store(c, C_NEXT, (tag << 16) | 0xffff);
    }
    // the workers hold at most one chunk each: spin a little, then (where this thread may block:
    // Node) sleep until they finish, rather than compete with them for a core
    let spins = 0;
    let t0 = 0;
    for (;;) {
      const done = Atomics.load(c, C_DONE);
      if (failure === undefined ? done >= chunks : !this.busy().length) break;
      if (++spins < 2000) continue;
      if (isNode) Atomics.wait(c, C_DONE, done, 1);
      if ((spins & 63) === 0) {
        if (t0 === 0) t0 = now();
        else if (now() - t0 > this.patience + M * per * nr * K * this.patiencePerMac) {
          // a worker holds a chunk and does not finish it: it is stopped and never used again
          Atomics.store(c, C_NEXT, (tag << 16) | 0xffff);
          for (const i of this.busy()) this.failed(i);
          if (failure !== undefined) break;
          throw new NncError(
            `a wasm worker thread stopped responding during a ${M}×${N}×${K} GEMM and was stopped; this call failed, ` +
              `and this model now runs on ${this.live(maxWorkers) + 1} thread(s)`,
          );
        }
      }
    }
    if (failure !== undefined) throw failure;
    Atomics.store(c, C_NEXT, (tag << 16) | 0xffff);
    if (Atomics.load(c, C_ERR) !== 0) {
      const len = Atomics.load(c, C_ERRLEN);
      let msg = '';
      for (let i = 0; i < len; i++) msg += String.fromCharCode(c[C_ERRTEXT + i]!);
      Atomics.store(c, C_ERR, 0);
      for (let i = 0; i < this.workers.length; i++) if (Atomics.load(c, W_BASE + 4 * i + W_DEAD) === 1) this.failed(i);
      throw new NncError(`a wasm worker thread failed during a ${M}×${N}×${K} GEMM (${msg}); this call failed, and this model now runs on ${this.live(maxWorkers) + 1} thread(s)`);
    }
  }
}

function revoke(pw: PoolWorker): void {
  if (pw.url === undefined) return;
  (globalThis as unknown as { URL: { revokeObjectURL(u: string): void } }).URL.revokeObjectURL(pw.url);
  delete pw.url;
}

let pool: Pool | undefined;

/** This thread's pool (created on first use; it ends itself when no model is attached). */
export function workerPool(): Pool {
  return (pool ??= new Pool());
}

/** Detaches models that were garbage-collected without dispose(). */
export const collected = new FinalizationRegistry<{ pool: Pool; id: number }>(({ pool: p, id }) => p.detach(id));
