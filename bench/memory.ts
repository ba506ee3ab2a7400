/**
 * `npx tsx bench/memory.ts` — peak live buffer memory of `forward`: the most float32 values the plan
 * interpreter holds in buffers at once during one call (the weights and their packed blocks, loaded
 * before, are not counted). Measured by wrapping the executor's buffer-making methods
 * (upload, zeros, run/runNow, step/stepNow, gatherRows, placeRows) and release(), so it counts what
 * the interpreter keeps, not what a garbage collector happens to leave. Also the wasm arena's size.
 *
 *   npx tsx bench/memory.ts                  # W3 (2-layer biLSTM 256, B = 8, T = 100), examples/tiny_lm.nn (B = 8, T = 128), issue 19's self-attention at S = 8,000 and encoder–decoder at S = T = 3,000
 *   npx tsx bench/memory.ts --out /tmp/x     # results elsewhere (default bench/results/memory.{json,md})
 *
 * The script only uses the generated module's public surface and the executor interface, so the same
 * file measures an older checkout of nnc too (copy it there and run it) — that is how the "before"
 * numbers in bench/results/memory.md were taken.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compile } from '../src/driver.ts';
import { OUT, prng, ROOT } from '../test/helpers.ts';

interface Case {
  readonly name: string;
  /** The spec, relative to the repository root. */
  readonly file: string;
  readonly inputs: (r: () => number) => Record<string, unknown>;
}

const B = 8;
const CASES: Case[] = [
  {
    name: 'W3 (2-layer biLSTM 256, B = 8, T = 100)',
    file: 'bench/peers/specs/w3.nn',
    inputs: (r) => ({ x: { data: Float32Array.from({ length: B * 100 * 256 }, () => r() - 0.5), shape: [B, 100, 256] } }),
  },
  {
    name: 'tiny_lm (examples/tiny_lm.nn, B = 8, T = 128)',
    file: 'examples/tiny_lm.nn',
    inputs: (r) => ({ text: { data: Int32Array.from({ length: B * 128 }, () => Math.floor(r() * 96)), shape: [B, 128] } }),
  },
  {
    // issue 19: failed on wasm with a raw RangeError (Memory.grow past its maximum) while the scores
    // and weights [1, 4, S, S] were materialised (1 GiB each); attention in tiles holds neither
    name: 'issue 19 self-attention (embedding 32; attention self, heads = 4; B = 1, S = 8,000)',
    file: 'bench/long_self.nn',
    inputs: (r) => ({ x: { data: Int32Array.from({ length: 8000 }, () => Math.floor(r() * 50)), shape: [1, 8000] } }),
  },
  {
    name: 'issue 19 encoder–decoder Transformer (bench/long_translator.nn; B = 1, S = T = 3,000)',
    file: 'bench/long_translator.nn',
    inputs: (r) => ({
      source: { data: Int32Array.from({ length: 3000 }, () => Math.floor(r() * 50)), shape: [1, 3000] },
      target: { data: Int32Array.from({ length: 3000 }, () => Math.floor(r() * 50)), shape: [1, 3000] },
    }),
  },
];

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

/** Floats in a buffer handle of a host executor (a Float32Array, or an arena buffer with `len`). */
function floats(b: unknown): number {
  const x = b as { length?: number; len?: number };
  return typeof x.len === 'number' ? x.len : typeof x.length === 'number' ? x.length : 0;
}

/** Wraps an executor so that every buffer it hands out is counted until it is released. */
function instrument(ex: Record<string, unknown>) {
  const live = new Map<unknown, number>();
  let cur = 0;
  let peak = 0;
  const track = (b: unknown) => {
    if (b === undefined || b === null || live.has(b)) return b;
    const n = floats(b);
    live.set(b, n);
    cur += n;
    if (cur > peak) peak = cur;
    return b;
  };
  for (const m of ['upload', 'zeros', 'runNow', 'stepNow']) {
    const f = ex[m] as ((...a: unknown[]) => unknown) | undefined;
    if (typeof f === 'function') ex[m] = (...a: unknown[]) => track(f.apply(ex, a));
  }
  for (const m of ['run', 'step', 'gatherRows', 'placeRows']) {
    const f = ex[m] as ((...a: unknown[]) => Promise<unknown>) | undefined;
    if (typeof f === 'function') ex[m] = async (...a: unknown[]) => track(await f.apply(ex, a));
  }
  const rel = ex['release'] as (b: unknown) => void;
  ex['release'] = (b: unknown) => {
    const n = live.get(b);
    if (n !== undefined) {
      live.delete(b);
      cur -= n;
    }
    rel.call(ex, b);
  };
  return {
    reset() {
      peak = cur;
      return cur;
    },
    get peak() {
      return peak;
    },
    get current() {
      return cur;
    },
  };
}

async function main() {
  const outDir = arg('out', join(ROOT, 'bench/results'));
  mkdirSync(OUT, { recursive: true });
  const rows: { case: string; backend: string; peakFloats: number; peakMiB: number; heldAfterFloats: number; arenaMiB?: number; seconds: number }[] = [];
  for (const c of CASES) {
    // compiled under its own path: tiny_lm.nn names its vocabulary file relative to itself
    const r = compile(readFileSync(join(ROOT, c.file), 'utf8'), join(ROOT, c.file));
    if (!r.output) throw new Error(`${c.name}: compile failed`);
    const file = join(OUT, `bench_memory_${rows.length}.ts`);
    writeFileSync(file, r.output);
    const mod = (await import(file)) as { createModel(o: object): Promise<any> };
    for (const backend of ['cpu', 'wasm']) {
      const m = await mod.createModel(backend === 'wasm' ? { backend, threads: 1 } : { backend });
      try {
        const rnd = prng(7);
        const w: Record<string, Float32Array> = {};
        for (const wi of m.manifest.weights as { name: string; shape: number[] }[]) w[wi.name] = Float32Array.from({ length: wi.shape.reduce((a, d) => a * d, 1) }, () => (rnd() - 0.5) * 0.2);
        m.loadWeights(w);
        const ex = (m as { internals(): { ex: Record<string, unknown> } }).internals().ex;
        const meter = instrument(ex);
        const inputs = c.inputs(prng(11));
        await m.forward(inputs); // warm (the wasm arena grows once)
        const base = meter.reset();
        const t0 = performance.now();
        await m.forward(inputs);
        const seconds = +((performance.now() - t0) / 1000).toFixed(2);
        const peak = meter.peak - base;
        const arena = (ex as { arenaBytes?: number }).arenaBytes;
        rows.push({
          case: c.name, backend, peakFloats: peak, peakMiB: +(peak * 4 / 2 ** 20).toFixed(2), heldAfterFloats: meter.current - base, seconds,
          ...(arena !== undefined ? { arenaMiB: +(arena / 2 ** 20).toFixed(2) } : {}),
        });
      } finally {
        m.dispose();
      }
    }
  }
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'memory.json'), JSON.stringify({ date: new Date().toISOString(), load, rows }, null, 2) + '\n');
  const md = [
    '| case | backend | peak live buffers during forward (MiB) | floats | held after the call | wasm arena (MiB) | forward (s) |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((x) => `| ${x.case} | ${x.backend} | ${x.peakMiB} | ${x.peakFloats} | ${x.heldAfterFloats} | ${x.arenaMiB ?? '—'} | ${x.seconds} |`),
  ].join('\n');
  writeFileSync(join(outDir, 'memory.md'), `Peak live buffer memory of forward (beyond the weights), load ${load}\n\n${md}\n`);
  console.log(md);
}

await main();
