/**
 * nnc compile | check | weights. Exit codes: 0 ok, 1 errors in the spec, 2 bad usage, 70 internal error.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { OptLevel, Stage } from './driver.ts';
import type { Diagnostic } from './diagnostics/diagnostic.ts';

// The compiler is imported lazily, inside main's error handling, so that a failure while loading it
// (e.g. the parser's grammar analysis) is an internal error (exit 70), not a bare stack trace.
type Driver = typeof import('./driver.ts');
type Render = typeof import('./diagnostics/render.ts');
const STAGES: readonly Stage[] = ['ast', 'ir', 'ir-opt', 'ts'];

const USAGE = `usage:
  nnc compile FILE.nn [-o OUT.ts] [--emit=ast|ir|ir-opt|ts] [-O0|-O1|-O2]
  nnc check FILE.nn
  nnc weights FILE.nn [--json]

  compile   writes one TypeScript module per .nn file (default: generated/<file>.ts);
            --emit prints an intermediate stage instead (to stdout, or to -o);
            -O2 (default) runs every pass, -O1 no kernel fusion, -O0 no rewrites
  check     reports diagnostics only
  weights   prints the weight manifest (name, shape, dtype, layer kind) in load order

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
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '-o' || a === '--out') {
      out = rest[++i];
      if (!out) throw new UsageError(`${a} needs a file name`);
      if (out.startsWith('-')) throw new UsageError(`${a} needs a file name, got the option '${out}'`);
    } else if (a === '--emit' || a.startsWith('--emit=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : rest[++i];
      if (!STAGES.includes(v as Stage)) throw new UsageError(`--emit must be one of ${STAGES.join(', ')}; got '${v ?? ''}'`);
      emit = v as Stage;
      emitGiven = true;
    } else if (a === '--json') json = true;
    else if (/^-O[012]$/.test(a)) level = Number(a[2]) as OptLevel;
    else if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'`);
    else if (file) throw new UsageError(`one .nn file at a time (got '${file}' and '${a}')`);
    else file = a;
  }
  if (!file) throw new UsageError(`${command} needs a .nn file`);
  if (command !== 'compile' && (out || emitGiven || level !== 2)) throw new UsageError(`-o, --emit and -O belong to 'compile'`);
  if (command !== 'weights' && json) throw new UsageError(`--json belongs to 'weights'`);
  return { command, file, out, emit, emitGiven, json, level };
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
  const out = args.out ?? join('generated', basename(args.file, extname(args.file)) + '.ts');
  try {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, result.output);
  } catch (e) {
    process.stderr.write(`nnc: cannot write '${out}': ${(e as Error).message}\n`);
    return 2;
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
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
    return run(args, driver, await import('./diagnostics/render.ts'));
  } catch (e) {
    process.stderr.write(`nnc: internal error: ${(e as Error).message ?? e}\n` +
      `This is a bug in nnc, not in your spec; please report it with the .nn file.${process.env.NNC_DEBUG ? '\n' + (e as Error).stack : ' (NNC_DEBUG=1 shows the stack)'}\n`);
    return 70;
  }
}
