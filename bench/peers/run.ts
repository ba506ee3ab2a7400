/**
 * `npm run bench` — nnc beside its JavaScript peers (onnxruntime-node, onnxruntime-web, TensorFlow.js).
 *
 *   npm run bench                          # full run (under xvfb-run automatically when there is no display)
 *   npm run bench -- --quick               # smoke run: 3 repetitions, 1 warm-up (→ results/peers-quick.*)
 *   npm run bench -- --only W1,W4 --reps 15 --warmup 3
 *   npm run bench -- --no-xvfb --out /tmp/p --max-call-s 0   # no display (nnc gpu unavailable); skip nothing
 *
 * Workloads (bench/peers/specs/w1.nn … w5.nn; bench/peers/setup.py builds the PyTorch modules):
 *   W1 LSTM 256→512 (T=100, B=1, 32)   W2 GRU 256→512 (T=100, B=1, 32)   W3 2-layer biLSTM 256→256 (T=100, B=8)
 *   W4 nn.MultiheadAttention d=512, 8 heads, self, no mask (T=128, B=1, 8)   W5 tanh RNN 128→256 (T=200, B=1)
 *
 * 1. The peers are the benchmark's own dependencies (bench/peers/package.json), installed on first use with
 *    `npm ci --prefix bench/peers` (ONNXRUNTIME_NODE_INSTALL=skip: the CPU binaries are in the tarball).
 * 2. /usr/bin/python3 bench/peers/setup.py writes, under bench/.cache/peers/, the seeded weights (safetensors),
 *    one ONNX export per (workload, B), the input and PyTorch's output (raw float32) and manifest.json; it is
 *    re-run when setup.py's sha256 differs from the manifest's or a file is missing.
 * 3. Every implementation's first output is compared with PyTorch's (max |diff| ≤ 1e-3): one that differs is
 *    reported as wrong and not timed; one that cannot start is reported as unavailable, with its reason.
 * 4. Warm-up calls, then repetitions; within each repetition every implementation of the case runs once, in an
 *    order rotated per repetition. Calls slower than --slow-ms (2 s) get at most 3 repetitions (1 with
 *    --quick; about 20 s of them) and no further warm-up; an implementation whose call is predicted to take
 *    more than --max-call-s (15 s) — from its earlier cases, scaled by FLOPs — is skipped. The output says which.
 * 5. Medians → ms, GFLOP/s (FLOPs from the manifest: 2·M·N·K per matmul, recurrent ones included) and
 *    "nnc best ÷ peer" time ratios from the same run; plus nnc's in-process compile time per example
 *    (median of 5) and the generated module's size. bench/results/peers.{json,md}; tables on stdout.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compile } from '../../src/driver.ts';
import { renderDiagnostics } from '../../src/diagnostics/render.ts';
import { maxAbsDiff } from '../../test/helpers.ts';

// ───────────── options ─────────────

const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const PEERS = join(ROOT, 'bench/peers');
const CACHE = join(ROOT, 'bench/.cache/peers');
/** nnc variants: a backend, and for `wasm 1t` the wasm backend on one thread (`wasm` uses its default: the cores, at most 4). */
const NNC_BACKENDS = ['wasm', 'wasm 1t', 'cpu', 'webasm', 'gpu'] as const;
const TOL = 1e-3;
const WORKLOAD_IDS = ['W1', 'W2', 'W3', 'W4', 'W5'];

function usage(msg?: string): never {
  if (msg) console.error(`bench: ${msg}`);
  console.error('usage: tsx bench/peers/run.ts [--quick] [--only W1,W4] [--reps N] [--warmup N] [--slow-ms MS] [--max-call-s S] [--out DIR] [--no-xvfb]');
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv: string[]) {
  const o = { quick: false, only: [...WORKLOAD_IDS], reps: 0, warmup: -1, slowMs: 2000, maxCallS: 15, out: '', xvfb: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    const int = (min: number) => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) usage(`${flag} expects an integer ≥ ${min}, got '${v}'`);
      return n;
    };
    if (flag === '--quick') o.quick = true;
    else if (flag === '--only') {
      const list = value().split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
      for (const w of list) if (!WORKLOAD_IDS.includes(w)) usage(`unknown workload '${w}' (expected ${WORKLOAD_IDS.join(', ')})`);
      if (!list.length) usage('--only selects nothing');
      o.only = WORKLOAD_IDS.filter((w) => list.includes(w));
    } else if (flag === '--reps') o.reps = int(1);
    else if (flag === '--warmup') o.warmup = int(0);
    else if (flag === '--slow-ms') o.slowMs = int(1);
    else if (flag === '--max-call-s') o.maxCallS = int(0);
    else if (flag === '--out') o.out = value();
    else if (flag === '--no-xvfb') o.xvfb = false;
    else if (flag === '--help' || flag === '-h') usage();
    else usage(`unknown option '${a}'`);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const QUICK = opts.quick;
const REPS = opts.reps || (QUICK ? 3 : 11);
const WARMUP = opts.warmup >= 0 ? opts.warmup : QUICK ? 1 : 3;
const SLOW_MS = opts.slowMs;
const SLOW_REPS = Math.min(REPS, QUICK ? 1 : 3);
/** slow calls: at most SLOW_REPS repetitions, and no more than fit in this many ms (at least 1) */
const SLOW_BUDGET_MS = 20_000;
/** an implementation whose call is predicted to take longer than this is skipped (0: never) */
const MAX_CALL_MS = opts.maxCallS * 1000;
const OUT_DIR = opts.out || join(ROOT, 'bench/results');
const OUT_BASE = QUICK && !opts.out ? 'peers-quick' : 'peers';

// ───────────── helpers ─────────────

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), q1: quantile(s, 0.25), q3: quantile(s, 0.75), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

const r3 = (x: number) => (Number.isFinite(x) ? +x.toPrecision(4) : x);
const fmtMs = (x: number) => (!Number.isFinite(x) ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtG = (x: number) => (!Number.isFinite(x) ? '—' : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
const fmtX = (x: number) => (!Number.isFinite(x) ? '—' : x >= 100 ? `${x.toFixed(0)}×` : x >= 10 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`);
const oneLine = (e: unknown) => String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 300);

function readF32(path: string): Float32Array {
  const b = readFileSync(path);
  const out = new Float32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** safetensors (F32 only) → name → { shape, data }; the weights the tfjs implementations use. */
function readSafetensors(bytes: Uint8Array): Map<string, { shape: number[]; data: Float32Array }> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${name}: dtype ${info.dtype}, expected F32`);
    const [b, e] = info.data_offsets;
    const data = new Float32Array((e - b) / 4);
    new Uint8Array(data.buffer).set(bytes.subarray(8 + n + b, 8 + n + e));
    out.set(name, { shape: info.shape, data });
  }
  return out;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

// ───────────── environment: display, peers, reference data ─────────────

/** Re-runs this script under `xvfb-run -a` when there is no display (the nnc `gpu` backend is headless-gl). */
function maybeReexecUnderXvfb(): void {
  if (!opts.xvfb || process.env.DISPLAY || process.env.NNC_UNDER_XVFB) return;
  if (spawnSync('sh', ['-c', 'command -v xvfb-run'], { encoding: 'utf8' }).status !== 0) return;
  const r = spawnSync('xvfb-run', ['-a', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, NNC_UNDER_XVFB: '1' },
  });
  process.exit(r.status ?? 1);
}

function ensurePeersInstalled(): string | undefined {
  if (existsSync(join(PEERS, 'node_modules'))) return undefined;
  console.log('peers: installing bench/peers (npm ci --prefix bench/peers, ONNXRUNTIME_NODE_INSTALL=skip) …');
  const t = performance.now();
  const r = spawnSync('npm', ['ci', '--prefix', PEERS, '--no-audit', '--no-fund'], {
    cwd: ROOT,
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) {
    const why = `npm ci --prefix bench/peers failed (exit ${r.status}): ${`${r.stderr}`.trim().split('\n').slice(-3).join(' | ')}`;
    console.log(`peers: ${why}`);
    return why;
  }
  console.log(`peers: installed in ${((performance.now() - t) / 1000).toFixed(0)} s`);
  return undefined;
}

interface CaseInfo {
  B: number;
  input: string;
  input_shape: number[];
  output: string;
  output_shape: number[];
  onnx: string;
  onnx_ops: string[];
  flops: number;
}
interface WorkloadInfo {
  id: string;
  title: string;
  spec: string;
  weights: string;
  weight_shapes: Record<string, number[]>;
  D: number;
  T: number;
  out: number;
  flops_formula: string;
  cases: CaseInfo[];
}
interface Manifest {
  setup_sha256: string;
  seed: number;
  torch: string;
  python: string;
  opset: number;
  init: string;
  setup_s: number;
  workloads: WorkloadInfo[];
}

function readManifest(): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(join(CACHE, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

function manifestIsCurrent(m: Manifest | undefined, hash: string): m is Manifest {
  if (!m || m.setup_sha256 !== hash) return false;
  const files = m.workloads.flatMap((w) => [w.weights, ...w.cases.flatMap((c) => [c.input, c.output, c.onnx])]);
  return WORKLOAD_IDS.every((id) => m.workloads.some((w) => w.id === id)) && files.every((f) => existsSync(join(CACHE, f)));
}

function ensureReferenceData(): Manifest {
  const script = join(PEERS, 'setup.py');
  const hash = sha256(script);
  const have = readManifest();
  if (manifestIsCurrent(have, hash)) return have;
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  console.log(`setup: ${have ? 'setup.py changed or files are missing' : 'no reference data yet'}: running ${python} bench/peers/setup.py (about a minute) …`);
  const r = spawnSync(python, [script, CACHE], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PYTHONWARNINGS: 'ignore' }, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const line of `${r.stdout}`.split('\n')) if (line.startsWith('setup:')) console.log(line);
  if (r.status !== 0) {
    console.error(`${r.stderr}`.trim().split('\n').slice(-15).join('\n'));
    console.error(`bench: bench/peers/setup.py failed (exit ${r.status}); nothing can be cross-checked without PyTorch's outputs`);
    process.exit(1);
  }
  const m = readManifest();
  if (!manifestIsCurrent(m, hash)) {
    console.error('bench: bench/peers/setup.py ran but its manifest is still incomplete');
    process.exit(1);
  }
  return m;
}

// ───────────── the peers ─────────────

/* The peers live in bench/peers/node_modules, which a fresh checkout does not have: they are loaded with
   require at run time and typed loosely here, so that `tsc` does not need them. */
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Peers {
  ortNode?: Any;
  ortWeb?: Any;
  tf?: Any;
  tfBackends: Record<'wasm' | 'cpu', string | undefined>; // undefined = ready, else why not
  versions: Record<string, string>;
  errors: Record<string, string>;
  notes: string[];
}

async function loadPeers(installError?: string): Promise<Peers> {
  const p: Peers = { tfBackends: { wasm: 'not loaded', cpu: 'not loaded' }, versions: {}, errors: {}, notes: [] };
  if (installError) {
    for (const k of ['onnxruntime-node', 'onnxruntime-web', 'tfjs']) p.errors[k] = installError;
    p.tfBackends = { wasm: installError, cpu: installError };
    return p;
  }
  const req = createRequire(join(PEERS, 'package.json'));
  const version = (name: string) => {
    try {
      // read directly: some packages' `exports` maps do not export package.json
      p.versions[name] = (JSON.parse(readFileSync(join(PEERS, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      /* reported through the load error */
    }
  };
  for (const n of ['onnxruntime-node', 'onnxruntime-web', 'onnxruntime-common', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm']) version(n);
  // onnxruntime-node first: both packages register with the one onnxruntime-common, whose registry keeps the
  // first backend registered under a name ('cpu' is claimed by both); sessions are checked below anyway
  try {
    p.ortNode = req('onnxruntime-node');
  } catch (e) {
    p.errors['onnxruntime-node'] = oneLine(e);
  }
  try {
    p.ortWeb = req('onnxruntime-web');
    p.ortWeb.env.wasm.numThreads = 1;
    p.ortWeb.env.wasm.simd = true; // the 1.2x+ builds are SIMD only; kept for older versions
    p.ortWeb.env.wasm.proxy = false;
  } catch (e) {
    p.errors['onnxruntime-web'] = oneLine(e);
  }
  try {
    p.tf = req('@tensorflow/tfjs-core');
    p.tf.env().set('PROD', true);
    for (const [b, pkg] of [['cpu', '@tensorflow/tfjs-backend-cpu'], ['wasm', '@tensorflow/tfjs-backend-wasm']] as const) {
      try {
        req(pkg);
        // (registered by the wasm backend) not available in Node anyway: one thread, as ort-web
        if (b === 'wasm') p.tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
        p.tfBackends[b] = (await p.tf.setBackend(b)) ? undefined : `tf.setBackend('${b}') returned false`;
      } catch (e) {
        p.tfBackends[b] = oneLine(e);
      }
    }
    if (!p.tfBackends.wasm) p.notes.push(`tfjs wasm: SIMD ${await p.tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')}, 1 thread`);
  } catch (e) {
    p.tfBackends = { wasm: oneLine(e), cpu: oneLine(e) };
  }
  return p;
}

// ───────────── implementations ─────────────

interface Runner {
  id: string;
  family: 'nnc' | 'peer';
  /** run before the timer starts (tfjs: select its backend) */
  prepare?: () => Promise<void>;
  call: (x: Float32Array, shape: number[]) => Promise<Float32Array>;
  note?: string;
}

type Maybe<T> = { ok: T } | { unavailable: string };

// nnc: one compiled module per workload, one model per backend (weights loaded once)

mkdirSync(join(ROOT, 'test/.out'), { recursive: true });
const WORK = mkdtempSync(join(ROOT, 'test/.out', 'peers-'));
process.on('exit', () => rmSync(WORK, { recursive: true, force: true }));

interface NncWorkload {
  models: Map<string, Maybe<Any>>;
  compile_ms: number;
  module_bytes: number;
  kernels: number;
  dispose(): void;
}

async function nncWorkload(w: WorkloadInfo, weights: Uint8Array): Promise<NncWorkload> {
  const text = readFileSync(join(ROOT, w.spec), 'utf8');
  const t = performance.now();
  const r = compile(text, w.spec, 'ts', 2);
  const compile_ms = performance.now() - t;
  if (r.output === undefined) throw new Error(`${w.spec} does not compile:\n${renderDiagnostics(r.diagnostics, text)}`);
  const path = join(WORK, `${w.id.toLowerCase()}.ts`);
  writeFileSync(path, r.output);
  const mod = (await import(path)) as { createModel(o: { backend: string; threads?: number }): Promise<Any> };
  const models = new Map<string, Maybe<Any>>();
  for (const backend of NNC_BACKENDS) {
    let model: Any;
    try {
      const name = backend.split(' ')[0]!;
      model = await mod.createModel(backend === 'wasm 1t' ? { backend: name, threads: 1 } : { backend: name });
      if (model.backend !== name) throw new Error(`asked for backend '${name}', got '${model.backend}'`);
      model.loadWeights(weights);
      models.set(backend, { ok: model });
    } catch (e) {
      try {
        model?.dispose();
      } catch {
        /* already broken */
      }
      models.set(backend, { unavailable: oneLine(e) });
    }
  }
  return {
    models,
    compile_ms,
    module_bytes: Buffer.byteLength(r.output),
    kernels: r.kernels?.[0] ?? 0,
    dispose() {
      for (const m of models.values()) if ('ok' in m) m.ok.dispose();
    },
  };
}

function nncRunner(backend: string, model: Any): Runner {
  return {
    id: `nnc ${backend}`,
    family: 'nnc',
    async call(x, shape) {
      const out = (await model.forward({ x: { data: x, shape } })) as Record<string, { data: Float32Array }>;
      return out.y!.data;
    },
  };
}

// onnxruntime: one session per (workload, B)

/** onnxruntime-web's session handler copies the model into wasm memory; onnxruntime-node's does not. */
const isWasmSession = (s: Any) => typeof Object.getPrototypeOf(s?.handler ?? {})?.fetchModelAndCopyToWasmMemory === 'function';

async function ortRunner(id: string, ort: Any, bytes: Uint8Array, options: Record<string, unknown>, wantWasm: boolean): Promise<Maybe<{ runner: Runner; release: () => Promise<void> }>> {
  let session: Any;
  try {
    session = await ort.InferenceSession.create(new Uint8Array(bytes), options);
    if (isWasmSession(session) !== wantWasm) {
      await session.release();
      return { unavailable: `the session runs on ${wantWasm ? 'onnxruntime-node' : 'the wasm backend'}, not ${wantWasm ? 'wasm' : 'onnxruntime-node'} (both register with one onnxruntime-common)` };
    }
  } catch (e) {
    return { unavailable: oneLine(e) };
  }
  return {
    ok: {
      runner: {
        id,
        family: 'peer',
        async call(x, shape) {
          const res = await session.run({ x: new ort.Tensor('float32', x, shape) });
          return res.y.data as Float32Array;
        },
      },
      release: () => session.release(),
    },
  };
}

// TensorFlow.js: the workloads written with tf ops, PyTorch's gate forms, weights from the same safetensors

interface TfDir {
  /** W_ih^T [D, G·H] */
  wihT: Any;
  /** W_hh^T [H, G·H] */
  whhT: Any;
  /** b_ih (+ b_hh for LSTM and RNN, where the sum is exactly PyTorch's) [G·H] */
  bx: Any;
  /** b_hh (GRU only: r multiplies W_hn h + b_hn) */
  bh?: Any;
}
interface TfLayer {
  dirs: TfDir[];
  /** the directions' W_ih^T side by side, [D, dirs·G·H], and their input biases: one matMul for all steps */
  wihCat: Any;
  bxCat: Any;
}

type Kind = 'lstm' | 'gru' | 'rnn';
const GATES: Record<Kind, number> = { lstm: 4, gru: 3, rnn: 1 };

function kindOf(w: WorkloadInfo): { kind: Kind; prefix: string; H: number; layers: number; bidir: boolean } | undefined {
  const names = Object.keys(w.weight_shapes);
  const prefix = names[0]!.split('.')[0]!;
  const kind = prefix.replace(/\d+$/, '') as Kind;
  if (!(kind in GATES)) return undefined;
  const H = w.weight_shapes[`${prefix}.weight_hh_l0`]![1]!;
  const layers = new Set(names.map((n) => /_l(\d+)/.exec(n)?.[1])).size;
  return { kind, prefix, H, layers, bidir: names.some((n) => n.endsWith('_reverse')) };
}

interface TfModel {
  forward(x: Any): Any;
  dispose(): void;
}

function tfModel(tf: Any, w: WorkloadInfo, weights: Map<string, { shape: number[]; data: Float32Array }>): TfModel {
  const kept: Any[] = [];
  const keep = <T,>(t: T): T => {
    kept.push(t);
    return t;
  };
  const get = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`weight ${name} is missing`);
    return tf.tensor(t.data, t.shape, 'float32');
  };
  const transposed = (name: string) => keep(tf.tidy(() => tf.transpose(get(name))));
  const dispose = () => kept.forEach((t) => t.dispose());

  const rec = kindOf(w);
  if (rec) {
    const { kind, prefix, H, layers: L, bidir } = rec;
    const G = GATES[kind] * H;
    const layers: TfLayer[] = [];
    for (let l = 0; l < L; l++) {
      const dirs: TfDir[] = [];
      for (const sfx of bidir ? ['', '_reverse'] : ['']) {
        const n = (p: string) => `${prefix}.${p}_l${l}${sfx}`;
        const bx = kind === 'gru' ? keep(get(n('bias_ih'))) : keep(tf.tidy(() => tf.add(get(n('bias_ih')), get(n('bias_hh')))));
        dirs.push({ wihT: transposed(n('weight_ih')), whhT: transposed(n('weight_hh')), bx, bh: kind === 'gru' ? keep(get(n('bias_hh'))) : undefined });
      }
      layers.push({
        dirs,
        wihCat: dirs.length === 1 ? dirs[0]!.wihT : keep(tf.concat(dirs.map((d) => d.wihT), 1)),
        bxCat: dirs.length === 1 ? dirs[0]!.bx : keep(tf.concat(dirs.map((d) => d.bx), 0)),
      });
    }
    const cell = (x: Any, h: Any, c: Any, d: TfDir): [Any, Any] => {
      if (kind === 'lstm') {
        // i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh); c' = σ(f)∘c + σ(i)∘tanh(g); h' = σ(o)∘tanh(c')
        const [i, f, g, o] = tf.split(tf.add(x, tf.matMul(h, d.whhT)), 4, 1);
        const c2 = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(g)));
        return [tf.mul(tf.sigmoid(o), tf.tanh(c2)), c2];
      }
      if (kind === 'gru') {
        // r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(…), n = tanh(W_in x + b_in + r∘(W_hn h + b_hn)), h' = (1−z)∘n + z∘h
        const [xr, xz, xn] = tf.split(x, 3, 1);
        const [hr, hz, hn] = tf.split(tf.add(tf.matMul(h, d.whhT), d.bh), 3, 1);
        const r = tf.sigmoid(tf.add(xr, hr));
        const z = tf.sigmoid(tf.add(xz, hz));
        const nn = tf.tanh(tf.add(xn, tf.mul(r, hn)));
        return [tf.add(nn, tf.mul(z, tf.sub(h, nn))), c];
      }
      // h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
      return [tf.tanh(tf.add(x, tf.matMul(h, d.whhT))), c];
    };
    return {
      dispose,
      forward(x: Any) {
        const [B, T] = x.shape as number[];
        let seq = x;
        for (const layer of layers) {
          const D = seq.shape[2] as number;
          const nd = layer.dirs.length;
          // the input projection of every step (and both directions) as one matMul
          const xp = tf.add(tf.matMul(tf.reshape(seq, [B! * T!, D]), layer.wihCat), layer.bxCat);
          const perDir = tf.split(tf.transpose(tf.reshape(xp, [B, T, nd * G]), [1, 0, 2]), nd, 2) as Any[];
          const outs = perDir.map((xd: Any, di: number) => {
            const xs = tf.unstack(xd) as Any[]; // T × [B, G]
            const d = layer.dirs[di]!;
            let h = tf.zeros([B, H]);
            let c = tf.zeros([B, H]);
            const hs: Any[] = new Array(T);
            for (let s = 0; s < T!; s++) {
              const t = di === 1 ? T! - 1 - s : s; // the reverse direction runs from the last step
              [h, c] = tf.tidy(() => cell(xs[t], h, c, d));
              hs[t] = h;
            }
            return tf.stack(hs, 1); // [B, T, H]
          });
          seq = nd === 1 ? outs[0] : tf.concat(outs, 2);
        }
        return seq;
      },
    };
  }

  // W4: nn.MultiheadAttention(d, heads, batch_first=True) as self-attention, no mask
  const heads = 8;
  const pre = 'attention0';
  const inT = transposed(`${pre}.in_proj_weight`); // [d, 3d]
  const inB = keep(get(`${pre}.in_proj_bias`));
  const outT = transposed(`${pre}.out_proj.weight`);
  const outB = keep(get(`${pre}.out_proj.bias`));
  return {
    dispose,
    forward(x: Any) {
      const [B, T, d] = x.shape as number[];
      const dh = d! / heads;
      const qkv = tf.add(tf.matMul(tf.reshape(x, [B! * T!, d]), inT), inB); // [B·T, 3d]
      const [q, k, v] = (tf.split(qkv, 3, 1) as Any[]).map((m: Any) => tf.transpose(tf.reshape(m, [B, T, heads, dh]), [0, 2, 1, 3])); // [B, h, T, dh]
      // PyTorch: q / √dh, then q·kᵀ, softmax over keys, weights·v
      const scores = tf.matMul(tf.mul(q, tf.scalar(1 / Math.sqrt(dh))), k, false, true); // [B, h, T, T]
      const ctx = tf.matMul(tf.softmax(scores), v); // [B, h, T, dh]
      const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B! * T!, d]);
      return tf.reshape(tf.add(tf.matMul(merged, outT), outB), [B, T, d]);
    },
  };
}

function tfRunner(tf: Any, backend: 'wasm' | 'cpu', model: TfModel): Runner {
  return {
    id: `tfjs ${backend}`,
    family: 'peer',
    prepare: async () => {
      if (tf.getBackend() !== backend) await tf.setBackend(backend);
    },
    async call(x, shape) {
      const y = tf.tidy(() => model.forward(tf.tensor(x, shape, 'float32')));
      const data = (await y.data()) as Float32Array;
      y.dispose();
      return data;
    },
  };
}

// ───────────── measuring ─────────────

type Status = 'ok' | 'wrong' | 'unavailable' | 'skipped' | 'error';

interface ImplResult {
  impl: string;
  family: 'nnc' | 'peer';
  status: Status;
  reason?: string;
  max_abs_diff?: number;
  first_call_ms?: number;
  warmup_ms?: number[];
  times_ms?: number[];
  reps?: number;
  capped?: boolean;
  /** status 'skipped': the predicted time of one call */
  estimated_ms?: number;
  median_ms?: number;
  q1_ms?: number;
  q3_ms?: number;
  min_ms?: number;
  gflops?: number;
}

interface CaseResult {
  workload: string;
  title: string;
  B: number;
  T: number;
  D: number;
  flops: number;
  flops_formula: string;
  input_shape: number[];
  output_shape: number[];
  impls: ImplResult[];
  nnc_best?: { impl: string; median_ms: number };
  ratios: { peer: string; nnc_best_over_peer: number }[];
  load_avg_1m: [number, number];
  wall_s: number;
}

const IMPL_ORDER = ['nnc wasm', 'nnc wasm 1t', 'nnc cpu', 'nnc webasm', 'nnc gpu', 'ort-node 2t', 'ort-node 1t', 'ort-web wasm 1t', 'tfjs wasm', 'tfjs cpu'];

async function measureCase(w: WorkloadInfo, c: CaseInfo, runners: Runner[], unavailable: ImplResult[]): Promise<CaseResult> {
  const t0 = performance.now();
  const x = readF32(join(CACHE, c.input));
  const ref = readF32(join(CACHE, c.output));
  const shape = c.input_shape;
  const results = new Map<string, ImplResult>();
  for (const u of unavailable) results.set(u.impl, u);
  const live: { r: Runner; res: ImplResult; reps: number }[] = [];
  const loads = [loadavg()[0]!];

  const timed = async (r: Runner) => {
    await r.prepare?.();
    const s = performance.now();
    const out = await r.call(x, shape);
    return { out, ms: performance.now() - s };
  };

  // cross-check (the first call; for gpu.js backends it also compiles the kernels)
  for (const r of runners) {
    const res: ImplResult = { impl: r.id, family: r.family, status: 'ok' };
    results.set(r.id, res);
    try {
      const { out, ms } = await timed(r);
      res.first_call_ms = r3(ms);
      res.max_abs_diff = maxAbsDiff(out, ref);
      if (out.length !== ref.length) res.reason = `output has ${out.length} values, PyTorch's ${ref.length}`;
      if (!(res.max_abs_diff <= TOL)) {
        res.status = 'wrong';
        res.reason ??= `max |diff| ${res.max_abs_diff.toExponential(2)} > ${TOL}`;
      }
      console.log(`  ${r.id.padEnd(16)} ${res.status === 'ok' ? 'ok   ' : 'WRONG'} max |diff| vs PyTorch ${Number.isFinite(res.max_abs_diff) ? res.max_abs_diff.toExponential(2) : String(res.max_abs_diff)}  (first call ${fmtMs(ms)} ms)`);
      if (res.status === 'ok') live.push({ r, res, reps: REPS });
    } catch (e) {
      res.status = 'error';
      res.reason = oneLine(e);
      console.log(`  ${r.id.padEnd(16)} ERROR ${res.reason}`);
    }
  }

  // warm-up: WARMUP calls each; a call slower than SLOW_MS ends its warm-up and caps its repetitions
  for (const l of live) {
    l.res.warmup_ms = [];
    let last = l.res.first_call_ms!;
    for (let i = 0; i < WARMUP && last <= SLOW_MS; i++) {
      try {
        last = (await timed(l.r)).ms;
        l.res.warmup_ms.push(r3(last));
      } catch (e) {
        l.res.status = 'error';
        l.res.reason = `warm-up: ${oneLine(e)}`;
        break;
      }
    }
    if (last > SLOW_MS) {
      l.reps = Math.max(1, Math.min(SLOW_REPS, Math.floor(SLOW_BUDGET_MS / last)));
      l.res.capped = true;
    }
  }
  const active = live.filter((l) => l.res.status === 'ok');
  const capped = active.filter((l) => l.res.capped);
  if (capped.length) console.log(`  capped (a call takes > ${SLOW_MS / 1000} s): ${capped.map((l) => `${l.r.id} ${l.reps} rep${l.reps > 1 ? 's' : ''}`).join(', ')}`);

  // repetitions: every implementation once per repetition, the order rotated by one each time
  for (const l of active) l.res.times_ms = [];
  for (let rep = 0; rep < REPS; rep++) {
    const inRep = active.filter((l) => rep < l.reps && l.res.status === 'ok');
    if (!inRep.length) break;
    const order = inRep.map((_, i) => inRep[(i + rep) % inRep.length]!);
    for (const l of order) {
      try {
        l.res.times_ms!.push(r3((await timed(l.r)).ms));
      } catch (e) {
        l.res.status = 'error';
        l.res.reason = `repetition ${rep + 1}: ${oneLine(e)}`;
      }
    }
    loads.push(loadavg()[0]!);
  }
  for (const l of active) {
    if (l.res.status !== 'ok' || !l.res.times_ms!.length) continue;
    const s = summary(l.res.times_ms!);
    Object.assign(l.res, { reps: l.res.times_ms!.length, median_ms: r3(s.median), q1_ms: r3(s.q1), q3_ms: r3(s.q3), min_ms: r3(s.min), gflops: r3(c.flops / (s.median * 1e6)) });
  }

  const impls = [...results.values()].sort((a, b) => IMPL_ORDER.indexOf(a.impl) - IMPL_ORDER.indexOf(b.impl));
  const nncOk = impls.filter((r) => r.family === 'nnc' && r.median_ms !== undefined);
  const best = nncOk.sort((a, b) => a.median_ms! - b.median_ms!)[0];
  const ratios = best ? impls.filter((r) => r.family === 'peer' && r.median_ms !== undefined).map((r) => ({ peer: r.impl, nnc_best_over_peer: r3(best.median_ms! / r.median_ms!) })) : [];
  return {
    workload: w.id,
    title: w.title,
    B: c.B,
    T: w.T,
    D: w.D,
    flops: c.flops,
    flops_formula: w.flops_formula,
    input_shape: c.input_shape,
    output_shape: c.output_shape,
    impls,
    nnc_best: best ? { impl: best.impl, median_ms: best.median_ms! } : undefined,
    ratios,
    load_avg_1m: [r3(Math.min(...loads)), r3(Math.max(...loads))],
    wall_s: r3((performance.now() - t0) / 1000),
  };
}

/**
 * The predicted time of one call of `impl` on a case with `flops`: its median on a smaller case of the same
 * workload scaled by FLOPs, or else FLOPs over the median of the GFLOP/s it reached on the earlier cases.
 */
function estimateMs(done: CaseResult[], impl: string, workload: string, flops: number): number | undefined {
  const seen = done.flatMap((c) => c.impls.filter((r) => r.impl === impl && r.median_ms !== undefined).map((r) => ({ c, r })));
  const same = seen.filter((x) => x.c.workload === workload).sort((a, b) => b.c.flops - a.c.flops)[0];
  if (same) return (same.r.median_ms! * flops) / same.c.flops;
  const rate = summary(seen.map((x) => x.r.gflops!)).median;
  return seen.length && rate > 0 ? flops / (rate * 1e6) : undefined;
}

// ───────────── compile time of the examples ─────────────

interface CompileRow {
  example: string;
  median_ms: number;
  min_ms: number;
  first_ms: number;
  module_bytes: number;
  kernels: number[];
}

function compileTimes(): CompileRow[] {
  const rows: CompileRow[] = [];
  const files = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn')).sort();
  for (const f of files) {
    const file = `examples/${f}`;
    const text = readFileSync(join(ROOT, file), 'utf8');
    const times: number[] = [];
    let bytes = 0;
    let kernels: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = compile(text, file, 'ts', 2);
      times.push(performance.now() - t);
      if (r.output === undefined) throw new Error(`${file} does not compile:\n${renderDiagnostics(r.diagnostics, text)}`);
      bytes = Buffer.byteLength(r.output);
      kernels = [...(r.kernels ?? [])];
    }
    const s = summary(times);
    rows.push({ example: file, median_ms: r3(s.median), min_ms: r3(s.min), first_ms: r3(times[0]!), module_bytes: bytes, kernels });
  }
  return rows;
}

// ───────────── report ─────────────

function glRenderer(): string | undefined {
  try {
    const createGL = createRequire(join(ROOT, 'package.json'))('gl') as (w: number, h: number) => Any;
    const gl = createGL(1, 1);
    if (!gl) return undefined;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const r = `${gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER)} (${gl.getParameter(gl.VERSION)})`;
    gl.getExtension('STACKGL_destroy_context')?.destroy();
    return r;
  } catch {
    return undefined;
  }
}

function cell(r: ImplResult | undefined): string {
  if (!r) return '—';
  if (r.status === 'unavailable') return 'unavailable';
  if (r.status === 'skipped') return `skipped (≈${Math.round(r.estimated_ms! / 1000)} s)`;
  if (r.status === 'wrong') return `wrong (max diff ${Number.isFinite(r.max_abs_diff) ? r.max_abs_diff!.toExponential(1) : String(r.max_abs_diff)})`;
  if (r.status === 'error' || r.median_ms === undefined) return 'error';
  return `${fmtMs(r.median_ms)}${r.capped ? '*' : ''}`;
}

function renderMarkdown(result: Any): string {
  const L: string[] = [];
  const m = result.machine;
  const cases = result.cases as CaseResult[];
  const impls = IMPL_ORDER.filter((id) => cases.some((c) => c.impls.some((r) => r.impl === id)));
  L.push(`# nnc beside its JavaScript peers${result.quick ? ' (--quick smoke run: not for quoting)' : ''}`);
  L.push('');
  L.push(`${result.date}. ${m.cpu_model}, ${m.cores} cores, ${m.memory_gib} GiB, Node ${m.node}, ${m.platform}; 1-minute load average ${m.load_avg_start.join(' / ')} at the start and ${m.load_avg_end.join(' / ')} at the end (1 / 5 / 15 min).`);
  L.push(`Peers: ${Object.entries(result.peers.versions as Record<string, string>).map(([k, v]) => `${k} ${v}`).join(', ')}. Reference: PyTorch ${result.reference.torch} (setup.py, seed ${result.reference.seed}, ONNX opset ${result.reference.opset}).${m.gl_renderer ? ` nnc gpu: headless-gl on ${m.gl_renderer}.` : ''}`);
  L.push(`${result.settings.reps} timed repetitions after ${result.settings.warmup} warm-up calls (and one cross-check call), implementations interleaved with the order rotated per repetition; * = a call slower than ${result.settings.slow_ms / 1000} s: no further warm-up, at most ${result.settings.slow_reps} repetition(s) and about ${result.settings.slow_budget_ms / 1000} s of them; skipped (≈N s) = one call was predicted to take more than ${result.settings.max_call_ms / 1000} s (from its time on the same workload at a smaller batch, scaled by FLOPs, or else from the median of its GFLOP/s on the earlier cases), so it was neither run nor checked. Total ${result.total_s} s.`);
  L.push('');
  L.push('Implementations: `nnc <backend>` = the spec compiled at -O2, `createModel({ backend })` (`nnc wasm` with its default threads: the cores, at most 4; `nnc wasm 1t` with `threads: 1`); `ort-node 2t` / `1t` = onnxruntime-node CPU EP with intraOpNumThreads 2 / 1; `ort-web wasm 1t` = onnxruntime-web in Node, wasm EP, SIMD, 1 thread; `tfjs wasm` / `tfjs cpu` = TensorFlow.js ops (per-step matMul in tf.tidy, input projection as one matMul; MHA as matMuls) on its wasm (SIMD, 1 thread) / plain-JS cpu backend.');
  L.push('');
  L.push('## Median forward time (ms)');
  L.push('');
  L.push(`| workload | B | GFLOP | ${impls.join(' | ')} |`);
  L.push(`|---|---:|---:|${impls.map(() => '---:').join('|')}|`);
  for (const c of cases) L.push(`| ${c.workload} | ${c.B} | ${(c.flops / 1e9).toFixed(3)} | ${impls.map((id) => cell(c.impls.find((r) => r.impl === id))).join(' | ')} |`);
  L.push('');
  L.push('## Spread: interquartile range of the timed calls (ms), and the 1-minute load average during the case');
  L.push('');
  L.push(`| workload | B | ${impls.join(' | ')} | load |`);
  L.push(`|---|---:|${impls.map(() => '---:').join('|')}|---:|`);
  for (const c of cases) {
    L.push(`| ${c.workload} | ${c.B} | ${impls.map((id) => {
      const r = c.impls.find((x) => x.impl === id);
      return r?.q1_ms !== undefined ? `${fmtMs(r.q1_ms)}–${fmtMs(r.q3_ms!)} (${r.reps})` : '—';
    }).join(' | ')} | ${c.load_avg_1m.map((x) => x.toFixed(1)).join('–')} |`);
  }
  L.push('');
  L.push('(In parentheses: the number of timed calls.)');
  L.push('');
  L.push('## GFLOP/s (FLOPs / median time; 2·M·N·K per matmul, recurrent ones included)');
  L.push('');
  L.push(`| workload | B | ${impls.join(' | ')} |`);
  L.push(`|---|---:|${impls.map(() => '---:').join('|')}|`);
  for (const c of cases) {
    L.push(`| ${c.workload} | ${c.B} | ${impls.map((id) => {
      const r = c.impls.find((x) => x.impl === id);
      return r?.gflops !== undefined ? fmtG(r.gflops) : '—';
    }).join(' | ')} |`);
  }
  const peers = impls.filter((id) => !id.startsWith('nnc '));
  L.push('');
  L.push('## nnc best ÷ peer (ratio of median times from the same run; > 1 = nnc is slower)');
  L.push('');
  L.push(`| workload | B | nnc best | ms | ${peers.join(' | ')} |`);
  L.push(`|---|---:|---|---:|${peers.map(() => '---:').join('|')}|`);
  for (const c of cases) {
    L.push(`| ${c.workload} | ${c.B} | ${c.nnc_best?.impl ?? 'none'} | ${c.nnc_best ? fmtMs(c.nnc_best.median_ms) : '—'} | ${peers.map((p) => {
      const x = c.ratios.find((r) => r.peer === p);
      return x ? fmtX(x.nnc_best_over_peer) : '—';
    }).join(' | ')} |`);
  }
  L.push('');
  L.push('## Cross-check against PyTorch (max |diff|, tolerance 1e-3)');
  L.push('');
  L.push(`| workload | B | ${impls.join(' | ')} |`);
  L.push(`|---|---:|${impls.map(() => '---:').join('|')}|`);
  for (const c of cases) {
    L.push(`| ${c.workload} | ${c.B} | ${impls.map((id) => {
      const r = c.impls.find((x) => x.impl === id);
      return r?.max_abs_diff !== undefined ? `${Number.isFinite(r.max_abs_diff) ? r.max_abs_diff.toExponential(1) : String(r.max_abs_diff)}${r.status === 'wrong' ? ' ✗' : ''}` : '—';
    }).join(' | ')} |`);
  }
  // what was not measured, and why: one line per (implementation, reason), with the cases it applies to
  const unmeasured = new Map<string, string[]>();
  for (const c of cases) {
    for (const r of c.impls) {
      if (r.status === 'ok' && r.median_ms !== undefined) continue;
      const key = `\`${r.impl}\` — ${r.status}: ${r.reason ?? 'no timings'}`;
      unmeasured.set(key, [...(unmeasured.get(key) ?? []), `${c.workload} B=${c.B}`]);
    }
  }
  if (unmeasured.size) {
    L.push('');
    L.push('Not measured:');
    L.push('');
    for (const [what, where] of unmeasured) L.push(`* ${what} (${where.join(', ')})`);
  }
  L.push('');
  L.push('## Workloads');
  L.push('');
  L.push('| workload | what | T | FLOPs per forward |');
  L.push('|---|---|---:|---|');
  for (const w of result.workloads as Any[]) L.push(`| ${w.id} | ${w.title} (\`${w.spec}\`) | ${w.T} | ${w.flops_formula} |`);
  L.push('');
  L.push('## nnc compile time (in-process `compile()`, -O2, median of 5) and generated module size');
  L.push('');
  L.push('| spec | median ms | min ms | first ms | module bytes | kernels |');
  L.push('|---|---:|---:|---:|---:|---:|');
  for (const r of result.compile as CompileRow[]) L.push(`| ${r.example} | ${fmtMs(r.median_ms)} | ${fmtMs(r.min_ms)} | ${fmtMs(r.first_ms)} | ${r.module_bytes} | ${r.kernels.join(', ')} |`);
  for (const w of result.workloads as Any[]) if (w.nnc_compile) L.push(`| ${w.spec} | ${fmtMs(w.nnc_compile.ms)} (one) | — | — | ${w.nnc_compile.module_bytes} | ${w.nnc_compile.kernels} |`);
  if (result.notes.length) {
    L.push('');
    L.push('Notes:');
    L.push('');
    for (const n of result.notes as string[]) L.push(`* ${n}`);
  }
  L.push('');
  return L.join('\n');
}

// ───────────── main ─────────────

async function main() {
  maybeReexecUnderXvfb();
  const t0 = performance.now();
  const notes: string[] = [];
  const installError = ensurePeersInstalled();
  const manifest = ensureReferenceData();
  const peers = await loadPeers(installError);
  notes.push(...peers.notes);
  const cpuList = cpus();
  const gl = process.env.DISPLAY ? glRenderer() : undefined;
  const machine = {
    cpu_model: cpuList[0]?.model ?? 'unknown',
    cores: cpuList.length,
    memory_gib: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${platform()} ${release()}`,
    display: process.env.DISPLAY ? `${process.env.DISPLAY}${process.env.NNC_UNDER_XVFB ? ' (xvfb-run)' : ''}` : null,
    gl_renderer: gl,
    load_avg_start: loadavg().map((x) => +x.toFixed(2)),
    load_avg_end: [] as number[],
  };
  console.log(`nnc vs peers${QUICK ? ' (--quick)' : ''}: ${opts.only.join(', ')}; ${REPS} repetitions after ${WARMUP} warm-up; calls > ${SLOW_MS / 1000} s capped at ${SLOW_REPS} repetition(s)`);
  console.log(`machine: ${machine.cpu_model} × ${machine.cores}, node ${machine.node}, load ${machine.load_avg_start.join(' ')}${gl ? `, GL ${gl}` : ', no display (nnc gpu unavailable)'}`);
  console.log(`peers: ${Object.entries(peers.versions).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  if (loadavg()[0]! > cpuList.length) notes.push(`the 1-minute load average was ${loadavg()[0]!.toFixed(1)} on ${cpuList.length} cores at the start: other work was running; absolute times are inflated, ratios (interleaved) less so`);

  const cases: CaseResult[] = [];
  const workloads: Any[] = [];
  for (const w of manifest.workloads.filter((x) => opts.only.includes(x.id))) {
    console.log(`\n── ${w.id}: ${w.title}`);
    const weightBytes = new Uint8Array(readFileSync(join(CACHE, w.weights)));
    const nnc = await nncWorkload(w, weightBytes);
    workloads.push({ id: w.id, title: w.title, spec: w.spec, T: w.T, D: w.D, flops_formula: w.flops_formula, nnc_compile: { ms: r3(nnc.compile_ms), module_bytes: nnc.module_bytes, kernels: nnc.kernels } });
    for (const [b, m] of nnc.models) if ('unavailable' in m) console.log(`  nnc ${b}: unavailable — ${m.unavailable}`);

    // tfjs: weights as tensors on each backend (a tensor stays on the backend it was made on)
    const tfModels = new Map<'wasm' | 'cpu', Maybe<TfModel>>();
    const st = readSafetensors(weightBytes);
    for (const b of ['wasm', 'cpu'] as const) {
      const why = peers.tfBackends[b];
      if (why || !peers.tf) {
        tfModels.set(b, { unavailable: why ?? 'tfjs not loaded' });
        continue;
      }
      try {
        await peers.tf.setBackend(b);
        tfModels.set(b, { ok: tfModel(peers.tf, w, st) });
      } catch (e) {
        tfModels.set(b, { unavailable: oneLine(e) });
      }
    }

    for (const c of w.cases) {
      console.log(` ${w.id} B=${c.B} T=${w.T} (${(c.flops / 1e9).toFixed(3)} GFLOP)`);
      const runners: Runner[] = [];
      const unavailable: ImplResult[] = [];
      const na = (impl: string, family: 'nnc' | 'peer', reason: string) => {
        unavailable.push({ impl, family, status: 'unavailable', reason });
        console.log(`  ${impl.padEnd(16)} unavailable: ${reason}`);
      };
      for (const [b, m] of nnc.models) {
        if ('ok' in m) runners.push(nncRunner(b, m.ok));
        else unavailable.push({ impl: `nnc ${b}`, family: 'nnc', status: 'unavailable', reason: m.unavailable });
      }
      const onnx = new Uint8Array(readFileSync(join(CACHE, c.onnx)));
      const releases: (() => Promise<void>)[] = [];
      const addOrt = async (id: string, ort: Any, err: string | undefined, options: Record<string, unknown>, wasm: boolean) => {
        if (!ort) return na(id, 'peer', err ?? 'not loaded');
        const s = await ortRunner(id, ort, onnx, options, wasm);
        if ('ok' in s) {
          runners.push(s.ok.runner);
          releases.push(s.ok.release);
        } else na(id, 'peer', s.unavailable);
      };
      const nodeOpts = (n: number) => ({ executionProviders: ['cpu'], intraOpNumThreads: n, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
      await addOrt('ort-node 2t', peers.ortNode, peers.errors['onnxruntime-node'], nodeOpts(2), false);
      await addOrt('ort-node 1t', peers.ortNode, peers.errors['onnxruntime-node'], nodeOpts(1), false);
      await addOrt('ort-web wasm 1t', peers.ortWeb, peers.errors['onnxruntime-web'], { executionProviders: ['wasm'], graphOptimizationLevel: 'all' }, true);
      for (const b of ['wasm', 'cpu'] as const) {
        const m = tfModels.get(b)!;
        if ('ok' in m) runners.push(tfRunner(peers.tf, b, m.ok));
        else na(`tfjs ${b}`, 'peer', m.unavailable);
      }
      // skip what would take too long: the estimate from this implementation's earlier cases
      const kept: Runner[] = [];
      for (const r of runners) {
        const est = estimateMs(cases, r.id, w.id, c.flops);
        if (MAX_CALL_MS > 0 && est !== undefined && est > MAX_CALL_MS) {
          const reason = `one call predicted to take ≈${(est / 1000).toFixed(0)} s (> --max-call-s ${MAX_CALL_MS / 1000})`;
          unavailable.push({ impl: r.id, family: r.family, status: 'skipped', reason, estimated_ms: r3(est) });
          console.log(`  ${r.id.padEnd(16)} skipped: ${reason}`);
        } else kept.push(r);
      }
      const res = await measureCase(w, c, kept, unavailable);
      cases.push(res);
      for (const rel of releases) await rel().catch(() => undefined);
      const line = res.impls
        .filter((r) => r.median_ms !== undefined)
        .map((r) => `${r.impl} ${fmtMs(r.median_ms!)}${r.capped ? '*' : ''}`)
        .join(', ');
      console.log(`  median ms: ${line}  [${res.wall_s} s]`);
    }
    nnc.dispose();
    for (const m of tfModels.values()) if ('ok' in m) m.ok.dispose();
  }

  console.log('\n── nnc compile time per example (in-process, -O2, median of 5)');
  const compileRows = compileTimes();
  for (const r of compileRows) console.log(`  ${r.example.padEnd(36)} ${fmtMs(r.median_ms).padStart(7)} ms  ${r.module_bytes} bytes`);

  machine.load_avg_end = loadavg().map((x) => +x.toFixed(2));
  const skipped = cases.flatMap((c) => c.impls.filter((r) => r.status === 'skipped').map((r) => `${r.impl} (${c.workload} B=${c.B}, ≈${Math.round(r.estimated_ms! / 1000)} s)`));
  if (skipped.length) notes.push(`skipped, as one call was predicted to take more than ${MAX_CALL_MS / 1000} s (--max-call-s): ${skipped.join(', ')}`);
  const capped = [...new Set(cases.flatMap((c) => c.impls.filter((r) => r.capped).map((r) => `${r.impl} (${c.workload} B=${c.B})`)))];
  if (capped.length) notes.push(`calls slower than ${SLOW_MS / 1000} s got no further warm-up and at most ${SLOW_REPS} repetition(s): ${capped.join(', ')}`);
  const wrong = cases.flatMap((c) => c.impls.filter((r) => r.status === 'wrong').map((r) => `${r.impl} on ${c.workload} B=${c.B} (${r.reason})`));
  if (wrong.length) notes.push(`outputs that disagree with PyTorch (not timed): ${wrong.join('; ')}`);
  const result = {
    date: new Date().toISOString().slice(0, 10),
    quick: QUICK,
    machine,
    settings: { reps: REPS, warmup: WARMUP, slow_ms: SLOW_MS, slow_reps: SLOW_REPS, slow_budget_ms: SLOW_BUDGET_MS, max_call_ms: MAX_CALL_MS, tolerance: TOL, only: opts.only, nnc_opt_level: 2 },
    peers: { versions: peers.versions, load_errors: peers.errors, tfjs_backend_errors: peers.tfBackends },
    reference: { torch: manifest.torch, python: manifest.python, seed: manifest.seed, opset: manifest.opset, init: manifest.init, setup_sha256: manifest.setup_sha256, cache: relative(ROOT, CACHE) },
    workloads,
    cases,
    compile: compileRows,
    notes,
    total_s: r3((performance.now() - t0) / 1000),
  };
  const md = renderMarkdown(result);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, `${OUT_BASE}.json`), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(OUT_DIR, `${OUT_BASE}.md`), md);
  console.log(`\n${md}`);
  console.log(`wrote ${relative(ROOT, join(OUT_DIR, `${OUT_BASE}.json`))} and ${OUT_BASE}.md in ${result.total_s} s`);
}

await main();
