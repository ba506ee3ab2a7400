/**
 * nnc compile | check | weights. Exit codes: 0 ok, 1 errors in the spec, 2 bad usage, 70 internal error.
 */
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { OptLevel, Stage } from './driver.ts';
import type { Diagnostic } from './diagnostics/diagnostic.ts';

// The compiler is imported lazily, inside main's error handling, so that a failure while loading it
// (e.g. the parser's grammar analysis) is an internal error (exit 70), not a bare stack trace.
type Driver = typeof import('./driver.ts');
type Render = typeof import('./diagnostics/render.ts');
const STAGES: readonly Stage[] = ['ast', 'ir', 'ir-opt', 'ts'];

const USAGE = `usage:
  nnc compile FILE.nn [-o OUT.ts] [--format ts|js] [--emit=ast|ir|ir-opt|ts] [-O0|-O1|-O2]
  nnc check FILE.nn
  nnc weights FILE.nn [--json]
  nnc vocab CORPUS --level char|word [--min-count N] [--max-size N] [--lower] [--trim] [-o vocab.json]
  nnc train FILE.nn --data CORPUS [--valid CORPUS] [--model NAME] [--out model.arpa]

  compile   writes one TypeScript module per .nn file (default: generated/<file>.ts);
            --format js writes OUT.js and OUT.d.ts instead (default: generated/<file>.js),
            for apps without a TypeScript loader;
            --emit prints an intermediate stage instead (to stdout, or to -o);
            -O2 (default) runs every pass, -O1 no kernel fusion, -O0 no rewrites
  check     reports diagnostics only
  weights   prints the weight manifest (name, shape, dtype, layer kind) in load order
  vocab     builds a vocabulary file from a corpus (docs/text.md)
  train     fits an n-gram model (ngram statement) by counting a corpus, writes its ARPA file (docs/ngram.md)
  --version prints nnc's version

exit codes: 0 ok, 1 errors in the spec, 2 bad usage, 70 internal error`;

class UsageError extends Error {}

interface Args {
  command: string;
  file: string;
  out?: string;
  emit: Stage;
  /** --emit was given explicitly (then even --emit=ts prints to stdout unless -o is given). */
  emitGiven: boolean;
  json: boolean;
  level: OptLevel;
  format: 'ts' | 'js';
}

/** Whether two paths name one file (through symlinks where they exist). */
function sameFile(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      try {
        return join(realpathSync(dirname(p)), basename(p));
      } catch {
        return resolve(p);
      }
    }
  };
  return real(a) === real(b);
}

function parseArgs(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (!command) throw new UsageError('no command given');
  if (!['compile', 'check', 'weights'].includes(command)) throw new UsageError(`unknown command '${command}'`);
  let file: string | undefined;
  let out: string | undefined;
  let emit: Stage = 'ts';
  let emitGiven = false;
  let json = false;
  let level: OptLevel = 2;
  let format: 'ts' | 'js' | undefined;
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
    } else if (a === '--json') json = true;
    else if (/^-O[012]$/.test(a)) level = Number(a[2]) as OptLevel;
    else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'`);
    else if (file) throw new UsageError(`one .nn file at a time (got '${file}' and '${a}')`);
    else file = a;
  }
  if (!file) throw new UsageError(`${command} needs a .nn file`);
  if (command !== 'compile' && (out || emitGiven || level !== 2)) throw new UsageError(`-o, --emit and -O belong to 'compile'`);
  if (command !== 'weights' && json) throw new UsageError(`--json belongs to 'weights'`);
  if (command !== 'compile' && format) throw new UsageError(`--format belongs to 'compile'`);
  if (format && emitGiven) throw new UsageError(`--format writes a module; it does not go with --emit`);
  if (out) {
    if (/\.nn$/i.test(out)) throw new UsageError(`refusing to write to '${out}': -o names a .nn file (the output is ${emitGiven ? 'a compiler stage' : 'a module'}, not a spec)`);
    if (sameFile(out, file)) throw new UsageError(`refusing to write to '${out}': it is the input file ${file}`);
    if (format === 'js' && !/\.m?js$/.test(out)) throw new UsageError(`--format js writes a .js module (and its .d.ts); -o must end in .js, got '${out}'`);
  }
  return { command, file, out, emit, emitGiven, json, level, format: format ?? 'ts' };
}

function run(args: Args, { compile, lower }: Driver, { renderDiagnostics }: Render): number {
  const report = (diags: readonly Diagnostic[], text: string): void => {
    if (diags.length) process.stderr.write(renderDiagnostics(diags, text) + '\n');
  };
  let text: string;
  try {
    text = readFileSync(args.file, 'utf8');
  } catch (e) {
    process.stderr.write(`nnc: cannot read '${args.file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}\n`);
    return 2;
  }
  if (args.command === 'weights') {
    const { diagnostics, models } = lower(text, args.file);
    report(diagnostics, text);
    if (!models) return 1;
    const rows = models.flatMap((m) => m.weights.map((w) => ({ ...(models.length > 1 ? { model: m.name } : {}), name: w.name, shape: [...w.shape], dtype: w.dtype, layer: w.layer })));
    if (args.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    else {
      const width = Math.max(4, ...rows.map((r) => r.name.length));
      process.stdout.write(rows.map((r) => `${r.name.padEnd(width)}  [${r.shape.join(', ')}]  ${r.dtype}  ${r.layer}`).join('\n') + (rows.length ? '\n' : ''));
      const total = rows.reduce((s, r) => s + r.shape.reduce((a, c) => a * c, 1), 0);
      process.stderr.write(`${rows.length} tensors, ${total} parameters\n`);
    }
    return 0;
  }
  const result = compile(text, args.file, args.command === 'check' ? 'ir' : args.emit, args.level);
  report(result.diagnostics, text);
  if (result.output === undefined) return 1;
  if (args.command === 'check') return 0;
  if (args.emitGiven && !args.out) {
    process.stdout.write(result.output);
    return 0;
  }
  const out = args.out ?? join('generated', basename(args.file, extname(args.file)) + (args.format === 'js' ? '.js' : '.ts'));
  const files: [string, string][] = args.format === 'js'
    ? (() => {
        const warning = ensureRuntimeJs();
        if (warning) process.stderr.write(`nnc: warning: ${warning}\n`);
        const { js, dts } = emitJs(result.output!, basename(out));
        return [[out, js], [out.replace(/\.m?js$/, (e) => (e === '.mjs' ? '.d.mts' : '.d.ts')), dts]];
      })()
    : [[out, result.output]];
  try {
    for (const [path, text] of files) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
  } catch (e) {
    process.stderr.write(`nnc: cannot write '${out}': ${(e as Error).message}\n`);
    return 2;
  }
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
  if (argv[0] === 'vocab' || argv[0] === 'train') return textCommand(argv);
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`nnc: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  try {
    const driver: Driver = await import('./driver.ts');
    if (driver.STAGES.join() !== STAGES.join()) throw new Error(`cli.ts and driver.ts disagree on the stages (${STAGES.join(', ')} vs ${driver.STAGES.join(', ')})`);
    ({ emitJs, ensureRuntimeJs } = await import('./emit-js.ts'));
    return run(args, driver, await import('./diagnostics/render.ts'));
  } catch (e) {
    return internalError(e);
  }
}

/** nnc vocab | train (src/cli-text.ts). */
async function textCommand(argv: string[]): Promise<number> {
  try {
    const t = await import('./cli-text.ts');
    try {
      if (argv[0] === 'vocab') return t.vocabCommand(argv.slice(1));
      const { renderDiagnostics } = await import('./diagnostics/render.ts');
      return await t.trainCommand(argv.slice(1), (diags, text) => {
        if (diags.length) process.stderr.write(renderDiagnostics(diags, text) + '\n');
      });
    } catch (e) {
      if (!(e instanceof t.TextUsageError)) throw e;
      process.stderr.write(`nnc: ${e.message}\n${USAGE}\n`);
      return 2;
    }
  } catch (e) {
    return internalError(e);
  }
}

let emitJs: typeof import('./emit-js.ts').emitJs;
let ensureRuntimeJs: typeof import('./emit-js.ts').ensureRuntimeJs;
