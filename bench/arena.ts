/**
 * `npm run bench:arena` — the wasm arena under varying shapes (issue 18, item 1): 10,000 forward
 * calls of the brackets classifier (examples/brackets.nn, its trained weights) with B uniform in
 * 1–16 and T uniform in 1–512 (seeded), on one thread. Records the memory's size (the arena) and the
 * bytes of buffers alive at once (peak live: what any allocator must hold) after every call, and the
 * time per call. Results: bench/results/arena.json and arena.md.
 *
 *   npm run bench:arena                  # 10,000 calls
 *   npm run bench:arena -- --calls 2000
 *
 * Run in a checkout without the coalescing arena, it reports the call that failed.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { prng, ROOT } from '../test/helpers.ts';
import { createModel } from '../generated/brackets.ts';

const i = process.argv.indexOf('--calls');
const calls = i >= 0 ? Number(process.argv[i + 1]) : 10_000;
const model = await createModel({ backend: 'wasm', threads: 1 });
model.loadWeights(readFileSync(join(ROOT, 'examples/weights/brackets.safetensors')));
const ex = (model as unknown as { internals(): { ex: { arenaBytes: number; arenaStats?: { liveBytes: number; peakLiveBytes: number; freeBlocks: number } } } }).internals().ex;
const r = prng(10_000);
const MiB = 2 ** 20;
let maxArena = 0;
let failed: { call: number; B: number; T: number; message: string } | undefined;
const times: number[] = [];
const load0 = loadavg()[0]!;
const t0 = performance.now();
for (let c = 0; c < calls; c++) {
  const B = 1 + Math.floor(r() * 16);
  const T = 1 + Math.floor(r() * 512);
  const data = Int32Array.from({ length: B * T }, (_, k) => (k * 7 + c) % 5);
  const s = performance.now();
  try {
    await model.forward({ text: { data, shape: [B, T] } });
  } catch (e) {
    failed = { call: c + 1, B, T, message: (e as Error).message };
    break;
  }
  times.push(performance.now() - s);
  maxArena = Math.max(maxArena, ex.arenaBytes);
  if ((c + 1) % 1000 === 0) process.stdout.write(`${c + 1} calls: arena ${(ex.arenaBytes / MiB).toFixed(1)} MiB, peak live ${ex.arenaStats ? (ex.arenaStats.peakLiveBytes / MiB).toFixed(1) : '?'} MiB\n`);
}
const wall = (performance.now() - t0) / 1000;
times.sort((a, b) => a - b);
const st = ex.arenaStats;
const result = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${load0.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`,
  calls: times.length,
  requested: calls,
  failed,
  maxArenaMiB: +(maxArena / MiB).toFixed(2),
  peakLiveMiB: st ? +(st.peakLiveBytes / MiB).toFixed(2) : undefined,
  arenaOverPeakLive: st ? +(maxArena / st.peakLiveBytes).toFixed(2) : undefined,
  freeBlocksAtEnd: st?.freeBlocks,
  medianMsPerCall: +times[Math.floor(times.length / 2)]!.toFixed(2),
  wallS: +wall.toFixed(1),
};
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/arena.json'), JSON.stringify(result, null, 2) + '\n');
const md = `# wasm arena under varying shapes (\`npm run bench:arena\`)

${result.date}, ${result.machine}. The brackets classifier on \`wasm\` (one thread), ${result.requested} forward calls with B uniform in 1–16 and T uniform in 1–512 (seeded).

| calls run | failed | largest arena | peak live buffers | arena ÷ peak live | free fragments at the end | median ms / call |
|---:|---|---:|---:|---:|---:|---:|
| ${result.calls} | ${failed ? `call ${failed.call} (B = ${failed.B}, T = ${failed.T}): ${failed.message}` : 'none'} | ${result.maxArenaMiB} MiB | ${result.peakLiveMiB ?? '?'} MiB | ${result.arenaOverPeakLive ?? '?'} | ${result.freeBlocksAtEnd ?? '?'} | ${result.medianMsPerCall} |
`;
writeFileSync(join(ROOT, 'bench/results/arena.md'), md);
process.stdout.write(md);
process.exit(0);
