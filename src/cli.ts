/**
 * nnc compile | check | weights | torch | onnx | fmt | graph | lsp. Exit codes: 0 ok, 1 errors in the spec
 * (or, for `fmt --check`, unformatted files), 2 bad usage, 70 internal error.
 *
 * Startup: bin/nnc.js runs this file bundled (dist/cli.cjs); everything else is imported when a
 * command needs it — the compiler for compile/check/weights, the ONNX exporter (and protobufjs) for
 * onnx, the TypeScript compiler (through ts-morph) only for `compile --format js`, and each tool
 * (fmt.ts, graph.ts, lsp.ts) by its command.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { OptLevel, Stage } from './driver.ts';
import type { Diagnostic } from './diagnostics/diagnostic.ts';
import { neuralOnly } from './ngram/notes.ts';

// The compiler is imported lazily, inside main's error handling, so that a failure while loading it
// (e.g. the parser's grammar analysis) is an internal error (exit 70), not a bare stack trace: the
// front end (lower.ts) for every command, the passes and the module emitter (driver.ts) for
// `nnc compile` alone, so that `nnc check` loads no more than it runs.
type Lower = typeof import('./lower.ts')['lower'];
type Render = typeof import('./diagnostics/render.ts');
type Parse = typeof import('./syntax/parse.ts');
const STAGES: readonly Stage[] = ['ast', 'ir', 'ir-opt', 'ir-grad', 'ts'];
/** compile --checkpoint's largest K: the recomputing backward unrolls K forward and K reverse steps into one loop body. */
const MAX_CHECKPOINT = 64;

const USAGE = `usage:
  nnc compile FILE.nn [-o OUT.ts] [--format ts|js] [--emit=ast|ir|ir-opt|ir-grad|ts] [-O0|-O1|-O2] [--watch] [--no-train] [--checkpoint K]
  nnc check FILE.nn
  nnc weights FILE.nn [--json] [--check WEIGHTS.safetensors]
  nnc torch FILE.nn [-o OUT.py] [--train]
  nnc vocab CORPUS --level char|word [--min-count N] [--max-size N] [--lower] [--trim] [-o vocab.json]
  nnc train FILE.nn --data DATA.jsonl [--valid V.jsonl] [--epochs N] [--batch N] [--optimizer sgd|adam|adamw]
            [--lr X] [--clip X] [--schedule constant|step|cosine|noam] [--warmup N] [--backend wasm|cpu]
            [--threads N] [--out W.safetensors] [--checkpoint DIR] [--resume DIR] [--seed N] [--patience N]
            [--model NAME] (an n-gram model: --data CORPUS [--valid CORPUS] [--out model.arpa])
  nnc onnx FILE.nn --weights W.safetensors [-o OUT.onnx] [--model NAME]
  nnc fmt [--check | --stdout] FILE.nn...
  nnc graph FILE.nn [-o OUT.svg|OUT.dot|OUT.html] [--kernels]
  nnc lsp [--stdio]

  compile   writes one TypeScript module per .nn file (default: generated/<file>.ts);
            --format js writes OUT.js and OUT.d.ts instead (default: generated/<file>.js),
            for apps without a TypeScript loader; -o OUT.js (.mjs, .cjs) implies --format js,
            -o OUT.ts (.mts) TypeScript, another extension needs --format;
            --emit prints an intermediate stage instead (to stdout, or to -o);
            ir-grad is the backward graph of reverse mode;
            -O2 (default) runs every pass, -O1 no kernel fusion, -O0 no rewrites;
            --no-train leaves out the training program (vjp, nnc/train): a smaller module;
            --checkpoint K makes training keep every K-th state of each recurrence and recompute
            the rest in the backward: kept memory O(T / K) for one more forward (docs/training.md);
            --watch compiles again whenever the file is saved (until interrupted)
  check     reports diagnostics only
  weights   prints the weight manifest (name, shape, dtype, layer kind) in load order, and the
            PyTorch name of weights in stock Transformer layers; --check compares a checkpoint
            with it: what matches (and how), what is missing, what is extra, likely renames
            (exit 0 when it loads as it is, 1 when it does not)
  torch     writes a PyTorch module (default: <file>.py here) with nnc's weight names and
            semantics; --train also writes train_<OUT>.py beside it, a training script for
            torchrun (DistributedDataParallel) that writes safetensors nnc loads (docs/torch.md)
  vocab     builds a vocabulary file from a corpus (docs/text.md)
  train     trains a neural model on JSON Lines data (docs/training.md): a progress bar, validation
            loss, perplexity and token accuracy per epoch, a checkpoint every epoch and on Ctrl-C that
            --resume continues exactly, early stopping (--patience); more flags (--momentum,
            --weight-decay, --step-size, --gamma, --d-model, --label-smoothing, --init, --log) in
            docs/training.md. An n-gram model (ngram statement) is fitted by counting a corpus
            instead, and its ARPA file written (docs/ngram.md)
  onnx      writes the model as ONNX (opset 17; default: <file>.onnx here) with the weights as
            initializers; a model that generates also gets OUT.encoder.onnx (seq2seq) and
            OUT.decoder.onnx, one decoding step with past_key_values.* in and present.* out
            (docs/onnx.md); --model picks a model of a file that has several (default: the first)
  fmt       rewrites each file in its canonical layout (comments kept); --check writes nothing,
            lists the files that are not formatted and exits 1 if there are any; --stdout prints
  graph     draws the architecture: blocks as clusters, edges labelled with shapes, parameter
            counts, attention to the encoder memory; --kernels outlines fused kernels; without -o
            prints Graphviz DOT
  lsp       runs the language server on stdin/stdout (editors start it; see editors/vscode)
  --version prints nnc's version

exit codes: 0 ok, 1 errors in the spec, 2 bad usage, 70 internal error (fmt --check: 1 when a file is not formatted)`;

/** The tools with their own argument parsing, each loaded only by its command. */
const TOOLS: Readonly<Record<string, () => Promise<{ command(argv: string[], usage: (message: string) => number): Promise<number> }>>> = {
  fmt: () => import('./fmt-command.ts'),
  graph: () => import('./graph-command.ts'),
  lsp: () => import('./lsp.ts'),
  vocab: async () => (await import('./cli-text.ts')).vocab,
  train: async () => (await import('./cli-text.ts')).train,
};

class UsageError extends Error {}

/** Packages an emitted Python module imports: a module file of the same name beside it would shadow them. */
const PY_SHADOWED = new Set(['torch', 'numpy', 'json', 'math', 'struct', 'typing', 'os', 'sys', 'argparse', 'importlib', 'time', 'random']);

interface Args {
  command: string;
  file: string;
  out?: string;
  emit: Stage;
  /** --emit was given explicitly (then even --emit=ts prints to stdout unless -o is given). */
  emitGiven: boolean;
  json: boolean;
  /** weights --check: the checkpoint to compare with the manifest. */
  check?: string;
  level: OptLevel;
  format: 'ts' | 'js';
  watch: boolean;
  /** torch: also write the training script. */
  train: boolean;
  /** compile --no-train: no training program in the module. */
  noTrain: boolean;
  /** compile --checkpoint K: recomputation in the training program (every K-th state of each recurrence kept). */
  checkpoint?: number;
  /** onnx: the weights, and which model of the file. */
  weights?: string;
  model?: string;
}

/** Whether two paths name one file on disk (the same device and inode: through symlinks and hard links alike). */
function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false; // one of them does not exist
  }
}

/**
 * Reads at most `max` + 1 bytes of `path` (a regular file, or a device or pipe that may never end),
 * so that a huge input costs no more than that; `more` says whether it had more than `max`.
 */
function readBounded(path: string, max: number): { text: string; more: boolean } {
  const fd = openSync(path, 'r');
  try {
    if (fstatSync(fd).isDirectory()) throw Object.assign(new Error('it is a directory'), { code: 'EISDIR' });
    const buf = Buffer.allocUnsafe(max + 1);
    let n = 0;
    for (let r = 1; r > 0 && n <= max; n += r) r = readSync(fd, buf, n, max + 1 - n, null);
    return { text: buf.toString('utf8', 0, Math.min(n, max)), more: n > max };
  } finally {
    closeSync(fd);
  }
}

function parseArgs(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (!command) throw new UsageError('no command given');
  if (!['compile', 'check', 'weights', 'torch', 'onnx'].includes(command)) throw new UsageError(`unknown command '${command}'`);
  let file: string | undefined;
  let out: string | undefined;
  let emit: Stage = 'ts';
  let emitGiven = false;
  let json = false;
  let check: string | undefined;
  let level: OptLevel = 2;
  let format: 'ts' | 'js' | undefined;
  let watch = false;
  let train = false;
  let noTrain = false;
  let checkpoint: number | undefined;
  let weights: string | undefined;
  let model: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '-o' || a === '--out') {
      out = rest[++i];
      if (!out) throw new UsageError(`${a} needs a file name`);
      if (out.startsWith('-')) throw new UsageError(`${a} needs a file name, got the option '${out}'`);
    } else if (a === '--emit' || a.startsWith('--emit=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : rest[++i];
      if (!STAGES.includes(v as Stage)) throw new UsageError(`--emit must be one of ${STAGES.join(', ')}; got '${v ?? ''}'`);
      emit = v as Stage;
      emitGiven = true;
    } else if (a === '--format' || a.startsWith('--format=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : rest[++i];
      if (v !== 'ts' && v !== 'js') throw new UsageError(`--format must be ts or js; got '${v ?? ''}'`);
      format = v;
    } else if (a === '--check' || a.startsWith('--check=')) {
      check = a.includes('=') ? a.slice(a.indexOf('=') + 1) : rest[++i];
      if (!check || check.startsWith('-')) throw new UsageError(`--check needs a .safetensors file${check ? `, got the option '${check}'` : ''}`);
    } else if (a === '--weights' || a.startsWith('--weights=') || a === '--model' || a.startsWith('--model=')) {
      const flag = a.split('=')[0]!;
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : rest[++i];
      if (!v || v.startsWith('-')) throw new UsageError(`${flag} needs ${flag === '--model' ? 'a model name' : 'a .safetensors file'}${v ? `, got the option '${v}'` : ''}`);
      if (flag === '--model') model = v;
      else weights = v;
    } else if (a === '--json') json = true;
    else if (a === '--watch') watch = true;
    else if (a === '--train') train = true;
    else if (a === '--no-train') noTrain = true;
    else if (a === '--checkpoint' || a.startsWith('--checkpoint=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : rest[++i];
      if (!v || !/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_CHECKPOINT) throw new UsageError(`--checkpoint needs a whole number of steps from 1 to ${MAX_CHECKPOINT} (the backward unrolls that many steps); got '${v ?? ''}'`);
      checkpoint = Number(v);
    }
    else if (/^-O[012]$/.test(a)) level = Number(a[2]) as OptLevel;
    else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'`);
    else if (file) throw new UsageError(`one .nn file at a time (got '${file}' and '${a}')`);
    else file = a;
  }
  if (!file) throw new UsageError(`${command} needs a .nn file`);
  if (command !== 'compile' && command !== 'torch' && command !== 'onnx' && (out || emitGiven || level !== 2)) throw new UsageError(`-o, --emit and -O belong to 'compile'`);
  if ((command === 'torch' || command === 'onnx') && (emitGiven || level !== 2)) throw new UsageError(`--emit and -O belong to 'compile'`);
  if (command !== 'onnx' && (weights || model)) throw new UsageError(`--weights and --model belong to 'onnx'`);
  if (command === 'onnx' && !weights) throw new UsageError(`nnc onnx needs --weights W.safetensors: the weights become the graphs' initializers`);
  if (command !== 'torch' && train) throw new UsageError(`--train belongs to 'torch'`);
  if (command !== 'compile' && noTrain) throw new UsageError(`--no-train belongs to 'compile'`);
  if (command !== 'compile' && checkpoint) throw new UsageError(`--checkpoint belongs to 'compile'`);
  if (noTrain && checkpoint) throw new UsageError(`--checkpoint shapes the training program, which --no-train leaves out: drop one of them`);
  if (command !== 'weights' && json) throw new UsageError(`--json belongs to 'weights'`);
  if (command !== 'weights' && check) throw new UsageError(`--check belongs to 'weights'`);
  if (command !== 'compile' && format) throw new UsageError(`--format belongs to 'compile'`);
  if (command !== 'compile' && watch) throw new UsageError(`--watch belongs to 'compile'`);
  if (format && emitGiven) throw new UsageError(`--format writes a module; it does not go with --emit`);
  if (out) {
    if (/\.nn$/i.test(out)) throw new UsageError(`refusing to write to '${out}': -o names a .nn file (the output is ${emitGiven ? 'a compiler stage' : 'a module'}, not a spec)`);
    if (command === 'onnx' && !/\.onnx$/.test(out)) throw new UsageError(`nnc onnx writes an ONNX model; -o must end in .onnx, got '${out}'`);
    if (command === 'torch' && !/\.py$/.test(out)) throw new UsageError(`nnc torch writes a Python module; -o must end in .py, got '${out}'`);
    if (command === 'compile' && !emitGiven) format = moduleFormat(out, format);
  }
  return { command, file, out, emit, emitGiven, json, ...(check ? { check } : {}), level, format: format ?? 'ts', train, watch, noTrain, ...(checkpoint ? { checkpoint } : {}), ...(weights ? { weights } : {}), ...(model ? { model } : {}) };
}

/** The module file extensions `-o` may name, by language (JavaScript: .cjs is CommonJS; TypeScript is an ES module only). */
const MODULE_EXTENSIONS: Readonly<Record<'ts' | 'js', readonly string[]>> = { ts: ['.ts', '.mts'], js: ['.js', '.mjs', '.cjs'] };
const LANGUAGE = { ts: 'TypeScript', js: 'JavaScript' } as const;

/**
 * The language of the module `compile -o out` writes: the one its extension names (.ts, .mts →
 * TypeScript; .js, .mjs, .cjs → JavaScript with its declarations beside it), which `--format` may repeat but not
 * contradict; any other extension needs `--format`.
 */
function moduleFormat(out: string, format: 'ts' | 'js' | undefined): 'ts' | 'js' {
  const ext = extname(out).toLowerCase();
  const named = (['ts', 'js'] as const).find((f) => MODULE_EXTENSIONS[f].includes(ext));
  if (named && format && named !== format) {
    const other = MODULE_EXTENSIONS[format][0]!;
    throw new UsageError(`--format ${format} writes ${LANGUAGE[format]}, but -o '${out}' names a ${LANGUAGE[named]} file: use -o ${basename(out, extname(out))}${other} (or leave --format out)`);
  }
  if (named) return named;
  if (format) return format;
  const all = [...MODULE_EXTENSIONS.ts, ...MODULE_EXTENSIONS.js].join(', ');
  throw new UsageError(`-o '${out}': cannot tell from its extension whether to write TypeScript or JavaScript (${all}); name the file so, or pass --format ts|js`);
}

/**
 * Writes files, creating their directories; a failure is reported (exit 2). Nothing is written if
 * any of them is the spec by identity (a hard link or a symlink to it is it).
 */
function writeAll(files: readonly (readonly [string, string | Uint8Array])[], spec: string): boolean {
  for (const [path] of files) {
    if (sameFile(path, spec)) {
      process.stderr.write(`nnc: refusing to write to '${path}': it is the input file '${spec}' (the same file on disk)\n`);
      return false;
    }
  }
  for (const [path, text] of files) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    } catch (e) {
      process.stderr.write(`nnc: cannot write '${path}': ${(e as Error).message}\n`);
      return false;
    }
  }
  return true;
}

/** nnc torch: the PyTorch module (and with --train its training script). */
async function runTorch(args: Args, text: string, lower: Lower, report: (d: readonly Diagnostic[], t: string) => void): Promise<number> {
  const { diagnostics, models, resolved, ngrams } = lower(text, args.file);
  report(diagnostics, text);
  if (!models || !resolved) return 1;
  if (!neuralOnly('torch', ngrams, models.length)) return 2;
  const { emitTorch, emitTorchTrain } = await import('./export/torch.ts');
  const out = args.out ?? basename(args.file, extname(args.file)) + '.py';
  if (PY_SHADOWED.has(basename(out, '.py'))) {
    process.stderr.write(`nnc: refusing to write '${out}': a module named '${basename(out)}' would shadow Python's '${basename(out, '.py')}', which the module imports; choose another name with -o\n`);
    return 2;
  }
  const files: [string, string][] = [[out, emitTorch(models.map((ir) => ({ ir, resolved: resolved.find((r) => r.name === ir.name)! })), args.file, version())]];
  if (args.train) files.push([join(dirname(out), `train_${basename(out)}`), emitTorchTrain(basename(out), args.file, version())]);
  if (!writeAll(files, args.file)) return 2;
  process.stdout.write(`wrote ${files.map(([p]) => p).join(' and ')} (${models.map((m) => `${m.name}: ${m.weights.length} weights`).join('; ')})\n`);
  return 0;
}

async function run(args: Args, lower: Lower, { renderDiagnostics }: Render, { MAX_SOURCE_BYTES, sourceTooLarge }: Parse): Promise<number> {
  const report = (diags: readonly Diagnostic[], text: string): void => {
    if (diags.length) process.stderr.write(renderDiagnostics(diags, text) + '\n');
  };
  let text: string;
  try {
    const read = readBounded(args.file, MAX_SOURCE_BYTES);
    if (read.more) {
      report([sourceTooLarge(args.file)], '');
      return 1;
    }
    text = read.text;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    process.stderr.write(`nnc: cannot read '${args.file}': ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message}\n`);
    return 2;
  }
  if (args.command === 'torch') return runTorch(args, text, lower, report);
  if (args.command === 'onnx') {
    const { diagnostics, models, ngrams } = lower(text, args.file);
    report(diagnostics, text);
    if (!models) return 1;
    if (!neuralOnly('onnx', ngrams, models.length)) return 2;
    return (await import('./export/onnx-cli.ts')).runOnnx({ file: args.file, out: args.out, weights: args.weights!, model: args.model }, models, version(), (files) => writeAll(files, args.file));
  }
  if (args.command === 'weights') {
    const { diagnostics, models, ngrams } = lower(text, args.file);
    report(diagnostics, text);
    if (!models) return 1;
    if (!neuralOnly('weights', ngrams, models.length)) return 2;
    if (args.check) return checkWeights(args.check, models[0]!, models.length, args.json);
    const rows = models.flatMap((m) => {
      const stock = weightsCheck.stockNames(m.weights);
      return m.weights.map((w) => ({
        ...(models.length > 1 ? { model: m.name } : {}), name: w.name, shape: [...w.shape], dtype: w.dtype, layer: w.layer, ...(stock.has(w.name) ? { pytorch: stock.get(w.name) } : {}),
      }));
    });
    if (args.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else {
      const width = Math.max(4, ...rows.map((r) => r.name.length));
      process.stdout.write(rows.map((r) => `${r.name.padEnd(width)}  [${r.shape.join(', ')}]  ${r.dtype}  ${r.layer}${r.pytorch ? `  = ${r.pytorch}` : ''}`).join('\n') + (rows.length ? '\n' : ''));
      const total = rows.reduce((s, r) => s + r.shape.reduce((a, c) => a * c, 1), 0);
      process.stderr.write(`${rows.length} tensors, ${total} parameters\n`);
      if (rows.some((r) => r.pytorch)) process.stderr.write(`'= name': the weight's name in PyTorch's stock nn.Transformer* layout, which loadWeights accepts too (docs/checkpoints.md)\n`);
    }
    return 0;
  }
  if (args.command === 'check') {
    // the diagnostics are all lower()'s: nothing after it is run or printed
    const { diagnostics, models } = lower(text, args.file);
    report(diagnostics, text);
    return models ? 0 : 1;
  }
  const driver = await import('./driver.ts');
  if (driver.STAGES.join() !== STAGES.join()) throw new Error(`cli.ts and driver.ts disagree on the stages (${STAGES.join(', ')} vs ${driver.STAGES.join(', ')})`);
  const result = driver.compile(text, args.file, args.emit, args.level, { train: !args.noTrain, ...(args.checkpoint ? { checkpoint: args.checkpoint } : {}) });
  report(result.diagnostics, text);
  if (result.output === undefined) return 1;
  if (args.emitGiven && !args.out) {
    process.stdout.write(result.output);
    return 0;
  }
  const out = args.out ?? join('generated', basename(args.file, extname(args.file)) + (args.format === 'js' ? '.js' : '.ts'));
  const files: [string, string][] = args.format === 'js'
    ? (() => {
        const { js, dts } = emitJs(result.output!, basename(out));
        return [[out, js], [declarationsPath(out), dts]];
      })()
    : [[out, result.output]];
  if (!writeAll(files, args.file)) return 2;
  const what = args.emitGiven
    ? `--emit=${args.emit}`
    : [
        ...(result.models ?? []).map((m, i) => `${m.name}: ${result.kernels?.[i] ?? 0} kernels, ${m.weights.length} weights`),
        ...(result.ngrams ?? []).map((n) => `${n.name}: n-gram order ${n.spec.order}, ${n.spec.smoothing}`),
      ].join('; ');
  process.stdout.write(`wrote ${files.map(([p]) => p).join(' and ')} (${what})\n`);
  return 0;
}

/** The package's version (package.json). */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** A one-line report of an internal error: the message's first line (NNC_DEBUG=1 adds the stack). */
function internalError(e: unknown): number {
  const err = e instanceof Error ? e : new Error(String(e));
  const first = (err.message || String(e)).split('\n')[0]!.trim();
  process.stderr.write(`nnc: internal error: ${first} (a bug in nnc, not in your spec: please report it with the .nn file${process.env.NNC_DEBUG ? '' : '; NNC_DEBUG=1 shows the stack'})\n`);
  if (process.env.NNC_DEBUG) process.stderr.write(`${err.stack}\n`);
  return 70;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (argv[0] === '--version' || argv[0] === '-v') {
    process.stdout.write(`nnc ${version()}\n`);
    return 0;
  }
  const usage = (message: string): number => {
    process.stderr.write(`nnc: ${message}\n${USAGE}\n`);
    return 2;
  };
  const tool = argv[0] !== undefined && Object.hasOwn(TOOLS, argv[0]) ? TOOLS[argv[0]] : undefined;
  if (tool) {
    try {
      return await (await tool()).command(argv.slice(1), usage);
    } catch (e) {
      return internalError(e);
    }
  }
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return usage(e.message);
  }
  try {
    const { lower } = await import('./lower.ts');
    if (args.format === 'js') ({ emitJs, declarationsPath } = await import('./emit-js.ts'));
    if (args.command === 'weights') weightsCheck = await import('./weights-check.ts');
    const render = await import('./diagnostics/render.ts');
    const parse = await import('./syntax/parse.ts');
    if (args.watch) return await (await import('./watch.ts')).watch(args.file, () => run(args, lower, render, parse), internalError);
    return await run(args, lower, render, parse);
  } catch (e) {
    return internalError(e);
  }
}

/** `nnc weights --check`: the report printed, exit 0 when the checkpoint loads as it is, 1 when not, 2 when it cannot be read. */
function checkWeights(file: string, model: { name: string; weights: readonly import('./runtime/types.ts').WeightInfo[] }, models: number, json: boolean): number {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    process.stderr.write(`nnc: cannot read '${file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}\n`);
    return 2;
  }
  const r = weightsCheck.checkCheckpoint(bytes, model, file);
  if (models > 1) process.stderr.write(`nnc: the spec has ${models} models; checking '${model.name}', the first (what createModel builds)\n`);
  if (json) process.stdout.write(JSON.stringify(r.json, null, 2) + '\n');
  else if (r.json.error !== undefined) process.stderr.write(`nnc: ${file}: ${r.json.error}\n`);
  else process.stdout.write(r.text);
  return r.ok ? 0 : 1;
}

let weightsCheck: typeof import('./weights-check.ts');
let emitJs: typeof import('./emit-js.ts').emitJs;
let declarationsPath: typeof import('./emit-js.ts').declarationsPath;
