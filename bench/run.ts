/**
 * `npm run bench:levels` — forward latency of nnc-compiled models per backend and optimisation level
 * (`npm run bench` is nnc beside its peers: bench/peers/run.ts).
 *
 *   xvfb-run -a npm run bench:levels                      # full run (3½–4½ min on 2 cores); gpu needs the display
 *   npm run bench:levels -- --quick                        # smoke test: small sizes, few repetitions (→ results/quick.*)
 *   npm run bench:levels -- --backends cpu,webasm          # a subset of cpu, webasm, gpu
 *   npm run bench:levels -- --models char_lm,elman --reps 9 --warmup 2 --out /tmp/b
 *   npm run bench:levels -- --no-profile                   # skip the one profiled forward per variant
 *
 * Every model is compiled from its spec at -O0, -O1 and -O2 and instantiated on every backend; each
 * repetition runs every (backend, level) variant once, in an order rotated per repetition, so that
 * drift and noise hit all variants alike. Warm-up runs (gpu.js compiles its kernels on first use)
 * are excluded. Before timing, one extra forward per variant counts kernel launches (by wrapping
 * the model's executor) and compares its output with the cpu -O0 reference (max |diff| ≤ 1e-4);
 * after timing, one more forward per variant is profiled kernel by kernel (not part of the timings).
 * Results: bench/results/latest.json and latest.md (quick.json and quick.md with --quick, so that a
 * smoke test does not overwrite the full results), and the table on stdout. See docs/benchmarks.md.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { compile, type OptLevel } from '../src/driver.ts';
import { renderDiagnostics } from '../src/diagnostics/render.ts';
import { maxAbsDiff, prng } from '../test/helpers.ts';

// ───────────── options ─────────────

type Backend = 'cpu' | 'webasm' | 'gpu';
const ALL_BACKENDS: Backend[] = ['cpu', 'webasm', 'gpu'];
const LEVELS: OptLevel[] = [0, 1, 2];
const TOL = 1e-4;

function parseArgs(argv: string[]) {
  const o = { quick: false, profile: true, backends: [...ALL_BACKENDS], models: undefined as string[] | undefined, reps: 0, warmup: 0, out: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === '--quick') o.quick = true;
    else if (flag === '--profile') o.profile = true;
    else if (flag === '--no-profile') o.profile = false;
    else if (flag === '--backends') {
      const list = value().split(',').map((s) => s.trim()).filter(Boolean);
      for (const b of list) if (!ALL_BACKENDS.includes(b as Backend)) usage(`unknown backend '${b}' (expected ${ALL_BACKENDS.join(', ')})`);
      o.backends = ALL_BACKENDS.filter((b) => list.includes(b));
    } else if (flag === '--models') o.models = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (flag === '--reps') o.reps = Number(value());
    else if (flag === '--warmup') o.warmup = Number(value());
    else if (flag === '--out') o.out = value();
    else if (flag === '--help' || flag === '-h') usage();
    else usage(`unknown option '${a}'`);
  }
  if (!o.backends.length) usage('--backends selects nothing');
  return o;
}

function usage(msg?: string): never {
  if (msg) console.error(`bench: ${msg}`);
  console.error('usage: tsx bench/run.ts [--quick] [--backends cpu,webasm,gpu] [--models a,b] [--reps N] [--warmup N] [--no-profile] [--out DIR]');
  process.exit(msg ? 2 : 0);
}

const opts = parseArgs(process.argv.slice(2));
const QUICK = opts.quick;
const REPS = opts.reps > 0 ? opts.reps : QUICK ? 3 : 21;
const WARMUP = opts.warmup > 0 ? opts.warmup : QUICK ? 1 : 2;
const B = QUICK ? 4 : 8;
const T = QUICK ? 8 : 32;
const ROOT = new URL('..', import.meta.url).pathname;
const OUT_DIR = opts.out || join(ROOT, 'bench/results');

// ───────────── models: the examples' layer structure at sizes that keep a run to minutes ─────────────

interface BenchModel {
  readonly key: string;
  readonly title: string;
  readonly spec: string;
}

function models(): BenchModel[] {
  const s = (full: number, quick: number) => (QUICK ? quick : full);
  return [
    {
      key: 'char_lm',
      title: `char LSTM LM (emb ${s(32, 8)}, lstm ${s(128, 16)}×2, linear 96)`,
      spec: `model CharLM {
  input  text: tokens(vocab = 96)
  output next
  embedding dim = ${s(32, 8)}
  lstm hidden = ${s(128, 16)}, layers = 2
  dropout 0.1
  linear 96
  log_softmax
}`,
    },
    {
      key: 'bigru_cls',
      title: `biGRU classifier (emb ${s(16, 8)}, gru ${s(32, 8)}×2 bidir, pool max, linear 2)`,
      spec: `model Brackets {
  input text: tokens(vocab = 5)
  output label
  embedding dim = ${s(16, 8)}
  gru hidden = ${s(32, 8)}, layers = 2, bidirectional
  pool max
  linear 2
  softmax
}`,
    },
    {
      key: 'bilstm_tagger',
      title: `biLSTM tagger (emb ${s(64, 8)}, lstm ${s(64, 8)} bidir, linear 17)`,
      spec: `model Tagger {
  input  words: tokens(vocab = 5000)
  output tags
  embedding dim = ${s(64, 8)}
  lstm hidden = ${s(64, 8)}, bidirectional
  linear 17
  log_softmax
}`,
    },
    {
      key: 'elman',
      title: `Elman RNN LM (emb ${s(32, 8)}, rnn ${s(128, 16)}, linear 96)`,
      spec: `model Elman {
  input  text: tokens(vocab = 96)
  output next
  embedding dim = ${s(32, 8)}
  rnn hidden = ${s(128, 16)}
  linear 96
  log_softmax
}`,
    },
  ];
}

// ───────────── helpers ─────────────


interface WeightInfo {
  name: string;
  shape: number[];
  layer: string;
}

/** Uniform(-k, k) with PyTorch's k = 1/sqrt(fan_in) (last dim); embeddings uniform(-1, 1). */
function randomWeights(manifest: WeightInfo[], seed: number): Record<string, Float32Array> {
  const r = prng(seed);
  const out: Record<string, Float32Array> = {};
  for (const w of manifest) {
    const n = w.shape.reduce((a, c) => a * c, 1);
    const k = w.layer === 'embedding' ? 1 : 1 / Math.sqrt(w.shape[w.shape.length - 1]);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (2 * r() - 1) * k;
    out[w.name] = a;
  }
  return out;
}

/** A fixed padded batch: row 0 full length, the others shorter (down to T/4), tokens uniform. */
function makeInputs(manifest: { inputs: { name: string; form: string; vocab?: number; dim?: number }[] }, seed: number): Record<string, unknown> {
  const r = prng(seed);
  const lengths = makeLengths();
  const inputs: Record<string, unknown> = {};
  for (const inp of manifest.inputs) {
    if (inp.form === 'tokens') {
      inputs[inp.name] = { data: Int32Array.from({ length: B * T }, () => Math.floor(r() * inp.vocab!)), shape: [B, T], lengths };
    } else {
      inputs[inp.name] = { data: Float32Array.from({ length: B * T * inp.dim! }, () => 2 * r() - 1), shape: [B, T, inp.dim!], lengths };
    }
  }
  return inputs;
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q1 = quantile(s, 0.25);
  const q3 = quantile(s, 0.75);
  return { median: quantile(s, 0.5), q1, q3, iqr: q3 - q1, min: s[0], max: s[s.length - 1] };
}


const fmtMs = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtX = (x: number) => (Number.isFinite(x) ? `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×` : '—');

// ───────────── environment ─────────────

const require = createRequire(import.meta.url);

async function loadGpu(): Promise<{ GPU?: any; version?: string; note?: string }> {
  try {
    const m = (await import('gpu.js')) as any;
    const GPU = m.GPU ?? m.default?.GPU;
    let version: string | undefined;
    try {
      version = (require('gpu.js/package.json') as { version: string }).version;
    } catch {
      /* not essential */
    }
    return { GPU, version };
  } catch (e) {
    return { note: `gpu.js could not be loaded: ${(e as Error).message}` };
  }
}

/** The GL renderer headless-gl runs on (under Xvfb this is usually Mesa llvmpipe, i.e. software). */
function glRenderer(): string | undefined {
  try {
    const createGL = require('gl') as (w: number, h: number) => any;
    const gl = createGL(1, 1);
    if (!gl) return undefined;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const r = `${gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER)} (${gl.getParameter(gl.VERSION)})`;
    gl.getExtension('STACKGL_destroy_context')?.destroy();
    // which Mesa driver the GL context underneath loads (under Xvfb: swrast, i.e. llvmpipe on the CPU)
    const probe = spawnSync(process.execPath, ['-e', "require('gl')(1, 1)"], { cwd: ROOT, env: { ...process.env, LIBGL_DEBUG: 'verbose' }, encoding: 'utf8', timeout: 20000 });
    const dri = /dri\/(\w+)_dri\.so/.exec(`${probe.stderr}`)?.[1];
    return dri ? `${r} over Mesa ${dri}` : r;
  } catch {
    return undefined;
  }
}

// ───────────── compile, instantiate, instrument ─────────────

interface Variant {
  backend: Backend;
  level: OptLevel;
  model: any;
  times: number[];
  launches?: { run: number; step: number; uploads: number; kernels: number };
  maxDiff?: number;
  impl?: string[];
  profile?: { total_ms: number; run_ms: number; step_ms: number; top: { kernel: string; step: boolean; calls: number; ms: number }[] };
}

// inside the repository (test/.out/, ignored), where generated modules resolve their `nnc/runtime` import
mkdirSync(join(ROOT, 'test/.out'), { recursive: true });
const WORK = mkdtempSync(join(ROOT, 'test/.out', 'bench-'));
process.on('exit', () => rmSync(WORK, { recursive: true, force: true }));

async function compileLevel(m: BenchModel, level: OptLevel): Promise<any> {
  const file = `bench/${m.key}.nn`;
  const r = compile(m.spec, file, 'ts', level);
  if (r.output === undefined) throw new Error(`${m.key} -O${level} does not compile:\n${renderDiagnostics(r.diagnostics, m.spec)}`);
  const path = join(WORK, `${m.key}.O${level}.ts`);
  writeFileSync(path, r.output);
  return import(path);
}

/**
 * Runs one forward with the executor's methods wrapped. Counts kernel launches (`run`, and `step`:
 * gpu.js's step calls `run` itself, which is not counted twice) and uploads (`upload`/`zeros`: on
 * the gpu backend each is an extra copy kernel, elsewhere an allocation). With `profile`, also
 * times every launch per kernel; on gpu each launch is then followed by a read-back so that the
 * time is the kernel's and not merely its enqueueing (this inflates gpu totals).
 */
async function instrumentedForward(model: any, inputs: Record<string, unknown>, profile = false) {
  const ex = model.ex;
  const counts = { run: 0, step: 0, uploads: 0, kernels: 0 };
  const perKernel = new Map<string, { ms: number; calls: number; step: boolean }>();
  let inStep = 0;
  const sync = async (out: unknown) => {
    if (profile && ex.backend === 'gpu') await ex.read(out, 1);
  };
  const time = (name: string, step: boolean, ms: number) => {
    const e = perKernel.get(name) ?? { ms: 0, calls: 0, step };
    e.ms += ms;
    e.calls++;
    perKernel.set(name, e);
  };
  const methods = ['run', 'step', 'upload', 'zeros'] as const;
  const saved = methods.map((m) => [m, Object.prototype.hasOwnProperty.call(ex, m), ex[m]] as const);
  const proto = Object.fromEntries(saved.map(([m, , f]) => [m, f])) as Record<(typeof methods)[number], Function>;
  ex.run = async function (k: { name: string }, ...rest: unknown[]) {
    if (inStep) return proto.run.call(this, k, ...rest);
    counts.run++;
    const s = performance.now();
    const out = await proto.run.call(this, k, ...rest);
    await sync(out);
    time(k.name, false, performance.now() - s);
    return out;
  };
  ex.step = async function (k: { name: string }, ...rest: unknown[]) {
    counts.step++;
    inStep++;
    try {
      const s = performance.now();
      const out = await proto.step.call(this, k, ...rest);
      await sync(out);
      time(k.name, true, performance.now() - s);
      return out;
    } finally {
      inStep--;
    }
  };
  ex.upload = function (...rest: unknown[]) {
    counts.uploads++;
    return proto.upload.apply(this, rest);
  };
  ex.zeros = function (...rest: unknown[]) {
    if (!inStep) counts.uploads++;
    return proto.zeros.apply(this, rest);
  };
  try {
    const s = performance.now();
    const out = await model.forward(inputs);
    const total = performance.now() - s;
    counts.kernels = perKernel.size;
    return { out, counts, perKernel, total };
  } finally {
    for (const [m, own, f] of saved) {
      if (own) ex[m] = f;
      else delete ex[m];
    }
  }
}

/** The gpu.js kernel classes behind an executor's kernels ([] for the cpu executor). */
function implementations(ex: any): string[] {
  const ks = ex?.kernels;
  if (!(ks instanceof Map)) return typeof ex?.implementations === 'function' ? ex.implementations() : [];
  return [...ks.values()].map((k: any) => {
    const inner = k?.kernel;
    const name = inner?.constructor?.name ?? '?';
    return inner?.fallbackReason ? `${name} (fallback: ${inner.fallbackReason})` : name;
  });
}

function flatOutputs(out: Record<string, { data: Float32Array; shape: number[] }>): Float32Array[] {
  return Object.keys(out)
    .sort()
    .map((k) => out[k].data);
}

/**
 * What one kernel launch costs with (almost) no work: `n` launches of a 64-element copy kernel
 * through the model's own executor, then one read-back (gpu launches are asynchronous). Median over
 * `batches` batches, in µs per launch. This is the most that fusing launches away can save.
 */
async function launchOverhead(backend: Backend, GPU: unknown, n = 200, batches = 7): Promise<number> {
  const mod = await compileLevel({ key: 'overhead', title: '', spec: 'model Tiny {\n  input x: tokens(vocab = 4)\n  output y\n  embedding dim = 4\n}' }, 2);
  const model = await mod.createModel({ backend, gpu: GPU ? { GPU } : undefined });
  try {
    const ex = model.ex;
    const k = {
      name: '__bench_copy',
      step: false,
      scalars: [],
      cpu: (out: Float32Array, a: Float32Array[]) => {
        for (let i = 0; i < out.length; i++) out[i] = a[0][i];
      },
      gpu: 'function (a) { return a[this.thread.x]; }',
    };
    const src = ex.upload(Float32Array.from({ length: 64 }, (_, i) => i));
    const per: number[] = [];
    for (let b = -1; b < batches; b++) {
      const s = performance.now();
      let last: unknown;
      for (let i = 0; i < n; i++) {
        if (last !== undefined) ex.release(last);
        last = await ex.run(k, [src], {}, 64);
      }
      await ex.read(last, 64);
      ex.release(last);
      if (b >= 0) per.push(((performance.now() - s) * 1000) / n); // batch -1 is a warm-up
    }
    ex.release(src);
    return summary(per).median;
  } finally {
    model.dispose();
  }
}

// ───────────── main ─────────────

interface Row {
  model: string;
  title: string;
  backend: Backend;
  level: OptLevel;
  median_ms: number;
  iqr_ms: number;
  q1_ms: number;
  q3_ms: number;
  min_ms: number;
  max_ms: number;
  runs: number;
  launches: number;
  run_launches: number;
  step_launches: number;
  uploads: number;
  distinct_kernels: number;
  max_abs_diff_vs_cpu_O0: number;
  agrees: boolean;
  /** gpu.js kernel classes that ran (checked: no quiet fallback) */
  implementation: string;
  /** min and max of the 1-minute load average sampled after each of this model's timed repetitions */
  load_avg_1m: [number, number];
  profile?: Variant['profile'];
}

interface Ratio {
  model: string;
  backend: Backend;
  what: string;
  ratio: number;
  /** quartiles of the per-repetition paired ratio (same repetition, adjacent in time) */
  paired_q1: number;
  paired_q3: number;
}

async function main() {
  const t0 = performance.now();
  const gpu = await loadGpu();
  const backends: Backend[] = [];
  const notes: string[] = [];
  for (const b of opts.backends) {
    if (b === 'cpu') backends.push(b);
    else if (!gpu.GPU) notes.push(`skipping ${b}: ${gpu.note}`);
    else if (b === 'gpu' && !gpu.GPU.isHeadlessGLSupported) {
      notes.push("skipping gpu: headless-gl is unavailable (the 'gl' package did not build, or there is no X display — run under `xvfb-run -a npm run bench`)");
    } else if (b === 'webasm' && gpu.GPU.isWebAssemblySupported === false) notes.push('skipping webasm: gpu.js reports no WebAssembly support');
    else backends.push(b);
  }
  const renderer = backends.includes('gpu') ? glRenderer() : undefined;
  const cpuList = cpus();
  const machine = {
    node: process.version,
    platform: `${platform()} ${release()}`,
    cpu_model: cpuList[0]?.model ?? 'unknown',
    cores: cpuList.length,
    memory_gib: +(totalmem() / 2 ** 30).toFixed(1),
    gpu_js: gpu.version,
    gl_renderer: renderer,
  };
  for (const n of notes) console.log(`note: ${n}`);
  if (loadavg()[0] > cpuList.length) console.log(`note: the 1-minute load average is ${loadavg()[0].toFixed(1)} on ${cpuList.length} cores: other work is running, and absolute times will be inflated`);
  console.log(`nnc bench${QUICK ? ' (--quick)' : ''}: B=${B} T=${T}, ${REPS} timed repetitions after ${WARMUP} warm-up, backends ${backends.join(', ')}`);
  console.log(`machine: node ${machine.node}, ${machine.cpu_model} × ${machine.cores}${renderer ? `, GL: ${renderer}` : ''}`);

  const overhead: Partial<Record<Backend, number>> = {};
  for (const b of backends) {
    try {
      overhead[b] = +(await launchOverhead(b, gpu.GPU)).toFixed(1);
    } catch (e) {
      console.log(`note: could not measure the launch overhead on ${b}: ${(e as Error).message}`);
    }
  }
  console.log(`launch overhead (64-element copy kernel, µs per launch): ${Object.entries(overhead).map(([b, us]) => `${b} ${us}`).join(', ')}`);

  const selected = models().filter((m) => !opts.models || opts.models.includes(m.key));
  if (!selected.length) usage(`--models selects nothing (have ${models().map((m) => m.key).join(', ')})`);

  const rows: Row[] = [];
  const ratios: Ratio[] = [];
  const failures: string[] = [];

  for (const [mi, bm] of selected.entries()) {
    const tm = performance.now();
    console.log(`\n── ${bm.key}: ${bm.title}`);
    const mods = new Map<OptLevel, any>();
    for (const level of LEVELS) mods.set(level, await compileLevel(bm, level));
    const manifest = mods.get(2).manifest;
    const weights = randomWeights(manifest.weights, 1000 + mi);
    const inputs = makeInputs(manifest, 2000 + mi);

    // the reference: cpu at -O0 (no rewrites), computed on its own
    const refModel = await mods.get(0).createModel({ backend: 'cpu' });
    refModel.loadWeights(weights);
    const ref = flatOutputs(await refModel.forward(inputs));
    refModel.dispose();

    const variants: Variant[] = [];
    for (const backend of [...backends]) {
      const made: Variant[] = [];
      try {
        for (const level of LEVELS) {
          const model = await mods.get(level).createModel({ backend, gpu: gpu.GPU ? { GPU: gpu.GPU } : undefined });
          made.push({ backend, level, model, times: [] });
          if (model.backend !== backend) throw new Error(`asked for backend ${backend}, got ${model.backend}`);
          model.loadWeights(weights);
        }
        variants.push(...made);
      } catch (e) {
        // a benchmark, not a test: say so, and go on without this backend
        for (const v of made) v.model.dispose();
        const note = `skipping ${backend} from ${bm.key} on: ${(e as Error).message}`;
        console.log(`note: ${note}`);
        notes.push(note);
        backends.splice(backends.indexOf(backend), 1);
      }
    }

    // launches + correctness (this forward also compiles the gpu.js kernels: it is a warm-up too)
    for (const v of variants) {
      const { out, counts } = await instrumentedForward(v.model, inputs);
      v.launches = counts;
      v.impl = implementations(v.model.ex);
      const want = v.backend === 'gpu' ? 'HeadlessGLKernel' : v.backend === 'webasm' ? 'WebAssemblyKernel' : undefined;
      if (want && v.impl.some((c) => c !== want)) failures.push(`${bm.key} ${v.backend} -O${v.level}: gpu.js ran ${[...new Set(v.impl)].join(', ')}, not ${want}`);
      const got = flatOutputs(out);
      v.maxDiff = Math.max(...got.map((g, i) => maxAbsDiff(g, ref[i] ?? new Float32Array())), got.length === ref.length ? 0 : Infinity);
      if (!(v.maxDiff <= TOL)) failures.push(`${bm.key} ${v.backend} -O${v.level}: max |diff| vs cpu -O0 = ${v.maxDiff}`);
    }
    for (let w = 1; w < WARMUP; w++) for (const v of variants) await v.model.forward(inputs);
    const loads: number[] = [loadavg()[0]];
    const tTimed = performance.now();

    // timed repetitions, variants interleaved, order rotated per repetition
    const n = variants.length;
    for (let r = 0; r < REPS; r++) {
      for (let j = 0; j < n; j++) {
        const v = variants[(j + r) % n];
        const s = performance.now();
        await v.model.forward(inputs);
        v.times.push(performance.now() - s);
      }
      loads.push(loadavg()[0]);
    }

    const tTimedEnd = performance.now();
    if (opts.profile) {
      for (const v of variants) {
        const { perKernel, total } = await instrumentedForward(v.model, inputs, true);
        const all = [...perKernel].map(([kernel, e]) => ({ kernel, step: e.step, calls: e.calls, ms: +e.ms.toFixed(2) }));
        v.profile = {
          total_ms: +total.toFixed(2),
          run_ms: +all.filter((e) => !e.step).reduce((a, e) => a + e.ms, 0).toFixed(2),
          step_ms: +all.filter((e) => e.step).reduce((a, e) => a + e.ms, 0).toFixed(2),
          top: all.sort((a, b) => b.ms - a.ms).slice(0, 5),
        };
      }
    }

    for (const v of variants) {
      const st = summary(v.times);
      const l = v.launches!;
      rows.push({
        model: bm.key,
        title: bm.title,
        backend: v.backend,
        level: v.level,
        median_ms: +st.median.toFixed(3),
        iqr_ms: +st.iqr.toFixed(3),
        q1_ms: +st.q1.toFixed(3),
        q3_ms: +st.q3.toFixed(3),
        min_ms: +st.min.toFixed(3),
        max_ms: +st.max.toFixed(3),
        runs: v.times.length,
        launches: l.run + l.step,
        run_launches: l.run,
        step_launches: l.step,
        uploads: l.uploads,
        distinct_kernels: l.kernels,
        max_abs_diff_vs_cpu_O0: v.maxDiff!,
        agrees: v.maxDiff! <= TOL,
        implementation: v.impl!.length ? [...new Set(v.impl!)].join(', ') : 'emitted TypeScript',
        load_avg_1m: [+Math.min(...loads).toFixed(2), +Math.max(...loads).toFixed(2)],
        ...(v.profile ? { profile: v.profile } : {}),
      });
      v.model.dispose();
    }

    const find = (b: Backend, l: OptLevel) => variants.find((v) => v.backend === b && v.level === l)!;
    const ratio = (num: Variant, den: Variant, what: string, backend: Backend) => {
      const paired = summary(num.times.map((x, i) => x / den.times[i]));
      ratios.push({
        model: bm.key,
        backend,
        what,
        ratio: +(summary(num.times).median / summary(den.times).median).toFixed(3),
        paired_q1: +paired.q1.toFixed(3),
        paired_q3: +paired.q3.toFixed(3),
      });
    };
    for (const b of backends) {
      ratio(find(b, 0), find(b, 2), 'O2 vs O0', b);
      ratio(find(b, 1), find(b, 2), 'O2 vs O1', b);
      if (b !== 'cpu' && backends.includes('cpu')) ratio(find('cpu', 2), find(b, 2), `${b} vs cpu at O2`, b);
    }
    for (const row of rows.filter((x) => x.model === bm.key)) {
      console.log(
        `  ${row.backend.padEnd(6)} -O${row.level}  median ${fmtMs(row.median_ms).padStart(7)} ms  IQR ${fmtMs(row.iqr_ms).padStart(6)}  launches ${String(row.launches).padStart(5)}  ${row.agrees ? 'ok' : `MISMATCH ${row.max_abs_diff_vs_cpu_O0}`}`,
      );
    }
    console.log(`  (${((performance.now() - tm) / 1000).toFixed(1)} s: compile, kernel build and warm-up ${((tTimed - tm) / 1000).toFixed(1)} s, timed runs ${((tTimedEnd - tTimed) / 1000).toFixed(1)} s)`);
  }

  const total_s = (performance.now() - t0) / 1000;
  const result = {
    generated: new Date().toISOString(),
    command: `tsx bench/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
    quick: QUICK,
    machine,
    launch_overhead_us: overhead,
    config: { B, T, lengths: makeLengths(), reps: REPS, warmup: WARMUP, tolerance: TOL, reference: 'cpu -O0', backends, skipped: notes },
    models: selected.map((m) => ({ key: m.key, title: m.title, spec: m.spec })),
    results: rows,
    ratios,
    failures,
    total_s: +total_s.toFixed(1),
  };
  const md = markdown(result, rows, ratios);
  mkdirSync(OUT_DIR, { recursive: true });
  const base = QUICK ? 'quick' : 'latest';
  writeFileSync(join(OUT_DIR, `${base}.json`), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(OUT_DIR, `${base}.md`), md);
  console.log('\n' + md);
  console.log(`wrote ${join(OUT_DIR, `${base}.json`)} and ${base}.md (${total_s.toFixed(0)} s)`);
  if (failures.length) {
    console.error(`\nFAILED CHECKS (outputs must agree within ${TOL}; gpu.js must run the backend asked for):\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

function makeLengths(): number[] {
  return Array.from({ length: B }, (_, b) => (b === 0 ? T : Math.max(1, Math.round(T - ((T * 3) / 4) * (b / Math.max(1, B - 1))))));
}

function markdown(
  result: { machine: Record<string, unknown>; generated: string; total_s: number; failures: string[]; launch_overhead_us: Partial<Record<Backend, number>> },
  rows: Row[],
  ratios: Ratio[],
): string {
  const m = result.machine;
  const L: string[] = [];
  L.push(`# nnc forward latency${QUICK ? ' (--quick)' : ''}`);
  L.push('');
  L.push(
    `${result.generated} · node ${m.node} · ${m.cpu_model} × ${m.cores} cores · gpu.js ${m.gpu_js ?? '—'}${m.gl_renderer ? ` · GL renderer: ${m.gl_renderer}` : ''}`,
  );
  L.push(`B = ${B}, T = ${T} (lengths ${makeLengths().join(', ')}); ${REPS} timed repetitions per variant after ${WARMUP} warm-up, all variants interleaved; total ${result.total_s} s.`);
  const loads = rows.flatMap((r) => r.load_avg_1m);
  if (loads.length) {
    L.push(
      `1-minute load average during timing: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${m.cores} cores, about 1 of it this benchmark${Math.max(...loads) > Number(m.cores) + 1 ? ' (other work was running: absolute times are inflated; ratios are fairer, as variants are interleaved)' : ''}.`,
    );
  }
  L.push('');
  const oh = Object.entries(result.launch_overhead_us);
  if (oh.length) L.push(`Launch overhead (a 64-element copy kernel, through the executor): ${oh.map(([b, us]) => `${b} ${us} µs`).join(', ')} per launch.`);
  L.push('');
  L.push('Median forward time in ms (IQR in parentheses), kernel launches per forward, and max |diff| against cpu -O0.');
  L.push('');
  L.push('| model | backend | -O0 ms | -O1 ms | -O2 ms | launches O0 / O1 / O2 | O2 vs O0 | O2 vs O1 | vs cpu at O2 | max diff |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const models = [...new Set(rows.map((r) => r.model))];
  for (const mk of models) {
    for (const b of ALL_BACKENDS.filter((x) => rows.some((r) => r.model === mk && r.backend === x))) {
      const at = (l: OptLevel) => rows.find((r) => r.model === mk && r.backend === b && r.level === l)!;
      const rs = [at(0), at(1), at(2)];
      const rat = (what: string) => ratios.find((x) => x.model === mk && x.backend === b && x.what === what);
      const cell = (x?: Ratio) => (x ? fmtX(x.ratio) : '—');
      const diff = Math.max(...rs.map((r) => r.max_abs_diff_vs_cpu_O0));
      L.push(
        `| ${mk} | ${b} | ${rs.map((r) => `${fmtMs(r.median_ms)} (${fmtMs(r.iqr_ms)})`).join(' | ')} | ${rs.map((r) => r.launches).join(' / ')} | ${cell(rat('O2 vs O0'))} | ${cell(rat('O2 vs O1'))} | ${b === 'cpu' ? '1×' : cell(rat(`${b} vs cpu at O2`))} | ${diff.toExponential(1)}${rs.every((r) => r.agrees) ? '' : ' ✗'} |`,
      );
    }
  }
  L.push('');
  L.push('Speed-ups are ratios of medians (> 1× means -O2 / the backend is faster); the per-repetition paired ratios');
  L.push('have these interquartile ranges:');
  L.push('');
  L.push('| model | backend | O2 vs O0 | O2 vs O1 | vs cpu at O2 |');
  L.push('|---|---|---|---|---|');
  for (const mk of models) {
    for (const b of ALL_BACKENDS.filter((x) => rows.some((r) => r.model === mk && r.backend === x))) {
      const span = (what: string) => {
        const x = ratios.find((r) => r.model === mk && r.backend === b && r.what === what);
        return x ? `${x.paired_q1.toFixed(2)}–${x.paired_q3.toFixed(2)}` : '—';
      };
      L.push(`| ${mk} | ${b} | ${span('O2 vs O0')} | ${span('O2 vs O1')} | ${b === 'cpu' ? '—' : span(`${b} vs cpu at O2`)} |`);
    }
  }
  const profiled = rows.filter((r) => r.profile && r.level === 2);
  if (profiled.length) {
    L.push('');
    L.push('Where -O2 spends a forward: one extra, profiled forward per variant after the timed ones (each launch timed');
    L.push('separately; on gpu each is followed by a read-back, so gpu totals are inflated). "step" = the fused per-time-step kernels.');
    L.push('');
    L.push('| model | backend | -O2 profiled ms | in step kernels | step launches | ms per step launch |');
    L.push('|---|---|---:|---:|---:|---:|');
    for (const r of profiled) {
      const p = r.profile!;
      L.push(`| ${r.model} | ${r.backend} | ${fmtMs(p.total_ms)} | ${fmtMs(p.step_ms)} (${((100 * p.step_ms) / Math.max(p.total_ms, 1e-9)).toFixed(0)}%) | ${r.step_launches} | ${fmtMs(p.step_ms / Math.max(r.step_launches, 1))} |`);
    }
  }
  if (result.failures.length) {
    L.push('');
    L.push(`**Failed checks:** ${result.failures.join('; ')}`);
  }
  L.push('');
  return L.join('\n');
}

await main();
