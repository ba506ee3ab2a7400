/**
 * The wasm backend's worker threads (src/runtime/threads.ts): one pool shared by every model, given
 * back when models are disposed or garbage-collected, and failures that become NncErrors (or fewer
 * threads) and never a hang or a crashed process.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WasmExecutor } from '../src/runtime/host.ts';
import { Pool, workerPool } from '../src/runtime/threads.ts';
import { NncError } from '../src/runtime/errors.ts';
import { ROOT } from './helpers.ts';

const osThreads = () => readdirSync('/proc/self/task').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Blocks this thread for ms (a slow main-thread share of a job, so that the worker claims chunks). */
const block = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

interface Attached { poolId: number; memory: WebAssembly.Memory }
const attached = (ex: WasmExecutor) => ex as unknown as Attached;

describe('one worker pool for every model', () => {
  it('eight models with threads: 2 start one worker between them, not eight', async () => {
    const { createModel } = await import('../generated/brackets.ts');
    const before = osThreads();
    const models = [];
    for (let i = 0; i < 8; i++) models.push(await createModel({ backend: 'wasm', threads: 2 }));
    for (const m of models) expect(m.device).toContain('2 threads');
    expect(workerPool().size).toBe(1);
    expect(osThreads() - before).toBeLessThanOrEqual(1);
    for (const m of models) m.dispose();
  });

  it('200 models never disposed give back their threads and memory once collected (node --expose-gc)', () => {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/undisposed.child.ts', '200'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    const r = JSON.parse(out) as { before: { threads: number; rssMiB: number }; peak: { threads: number; rssMiB: number }; after: { threads: number; rssMiB: number } };
    // before the pool: 212 threads and 1.65 GB; now the pool's workers (at most 3: threads default
    // to the cores, at most 4) while models live, none after
    expect(r.peak.threads - r.before.threads).toBeLessThanOrEqual(3);
    expect(r.after.threads).toBeLessThanOrEqual(r.before.threads);
    expect(r.after.rssMiB - r.before.rssMiB).toBeLessThan(64);
  }, 300_000);
});

describe('worker failures', () => {
  it('a worker that traps inside a GEMM makes that call an NncError; the pool goes on without it', async () => {
    const pool = new Pool();
    const ex = new WasmExecutor(2);
    await ex.start(1, pool);
    expect(ex.threads).toBe(2);
    const { poolId } = attached(ex);
    let mainChunks = 0;
    const slowMain = () => {
      mainChunks++;
      block(20);
    };
    // A at an address past the end of the memory: the worker's nnc_gemm traps on its chunk
    const run = () => pool.run(poolId, 1, slowMain, 8, 4, 64, 16, 0x7ff00000, 16, 0x7ff00000, 0, 0x7ff00000, 64, 0);
    let err: unknown;
    try {
      run();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NncError);
    expect((err as Error).message).toMatch(/wasm worker thread failed during a 4×64×16 GEMM \(.*out of bounds.*\); this call failed, and this model now runs on 1 thread/);
    expect(mainChunks).toBeLessThan(8);
    expect(ex.threads).toBe(1);
    // the next job runs on this thread alone, to the end
    mainChunks = 0;
    pool.run(poolId, 1, () => void mainChunks++, 8, 4, 64, 16, 0, 16, 0, 0, 0, 64, 0);
    expect(mainChunks).toBe(8);
    ex.dispose();
  });

  it('a worker that stops responding mid-chunk is given up on after the deadline: an NncError, no hang', async () => {
    const pool = new Pool();
    const ex = new WasmExecutor(2);
    await ex.start(1, pool);
    const { poolId, memory } = attached(ex);
    // a real GEMM whose chunks take a quarter of a second or more each: 10^6 rows that all read one row of A and
    // write one row of C (lda = ldc = 0), K = 512, on a zeroed packed B
    const base = memory.buffer.byteLength - 3 * 2 ** 20;
    pool.patience = 100;
    pool.patiencePerMac = 0;
    const t0 = Date.now();
    let err: unknown;
    try {
      // 32 chunks of 20 ms on this thread: the worker has 640 ms to wake and claim one (at load 20 it
      // once woke after this thread had done all 8)
      pool.run(poolId, 1, () => block(20), 32, 1_000_000, 64, 512, base, 0, base + 4096, 0, base + 2 ** 20 + 4096, 0, 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NncError);
    expect((err as Error).message).toMatch(/wasm worker thread stopped responding during a 1000000×64×512 GEMM and was stopped; this call failed, and this model now runs on 1 thread/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(ex.threads).toBe(1);
    ex.dispose();
  });

  it("a worker that throws outside a job (its 'error' event) is dropped; the process lives on", async () => {
    const pool = new Pool();
    const ex = new WasmExecutor(2);
    await ex.start(1, pool);
    expect(ex.threads).toBe(2);
    // a module that imports a function the worker does not provide: instantiating it throws there
    const bad = new WebAssembly.Module(Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 2, 9, 1, 3, 101, 110, 118, 1, 102, 0, 0]));
    pool.attach(attached(ex).memory, bad, [0]);
    for (let i = 0; i < 500 && ex.threads > 1; i++) await sleep(10);
    expect(ex.threads).toBe(1);
    ex.dispose();
  });
});
