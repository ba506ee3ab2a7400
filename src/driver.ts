/**
 * The whole pipeline, in order. Each stage can be printed (`nnc compile --emit=STAGE`).
 *   parse → check → expand (layers → core ops, shapes) → merge-matmuls → hoist → fuse → kernel IR + plan → module
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { DiagnosticBag, type Diagnostic } from './diagnostics/diagnostic.ts';
import { parse } from './syntax/parse.ts';
import { check, type SpecFiles } from './syntax/check.ts';
import { ngramDecl, type NgramDecl } from './ngram/compile.ts';
import type { VocabData } from './runtime/text/vocab.ts';
import { printAst } from './syntax/print.ts';
import type { ModelIR } from './ir/model.ts';
import { printModel } from './ir/print.ts';
import { compactIds } from './ir/graph.ts';
import { verifyModel } from './ir/verify.ts';
import { expand } from './passes/expand.ts';
import { mergeMatmuls } from './passes/merge-matmuls.ts';
import { hoistInputProjections } from './passes/hoist.ts';
import { fuse } from './passes/fuse.ts';
import { compileProgram } from './codegen/plan.ts';
import { emitModule } from './codegen/module.ts';

/**
 * A failure of the compiler itself (a bug), never a problem with the spec: thrown by lower() and
 * compile() — the CLI reports it in one line and exits 70. The front end turns an exception of its
 * own into diagnostic E0900 so that it never throws; the driver turns that back into this error.
 */
export class InternalError extends Error {
  /** The pipeline stage that failed: parse, check, expand, optimize, codegen. */
  readonly stage: string;
  constructor(stage: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InternalError';
    this.stage = stage;
  }
}

/** Runs one stage; any exception in it is an InternalError. */
function stage<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof InternalError) throw e;
    throw new InternalError(name, `${name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Diagnostic E0900 (the front end caught an exception of its own) is an internal error. */
function rethrowInternal(diags: readonly Diagnostic[], name: string): void {
  const d = diags.find((x) => x.code === 'E0900');
  if (d) throw new InternalError(name, d.message);
}

/** The files a spec names (vocabularies), read from the disk relative to the spec's folder. */
export function specFiles(file: string): SpecFiles {
  return {
    read(path) {
      try {
        return readFileSync(isAbsolute(path) ? path : join(dirname(file), path), 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new Error(code === 'ENOENT' ? `no such file (looked for ${join(dirname(file), path)})` : code === 'EISDIR' ? 'it is a folder' : (e as Error).message);
      }
    },
  };
}

export interface CompileOptions {
  /** Reads the files the spec names (default: from the disk, relative to the spec's file). */
  readonly files?: SpecFiles;
}

/** The front end: parse and check, with internal failures thrown as InternalError. */
function front(text: string, file: string, bag: DiagnosticBag, files: SpecFiles): { ast: ReturnType<typeof parse>['ast']; resolved: ReturnType<typeof check> } {
  const { ast, diagnostics } = stage('parse', () => parse(text, file));
  rethrowInternal(diagnostics, 'parse');
  diagnostics.forEach((d) => bag.add(d));
  const resolved = stage('check', () => check(ast, bag, files));
  rethrowInternal(bag.items, 'check');
  return { ast, resolved };
}

export type Stage = 'ast' | 'ir' | 'ir-opt' | 'ts';
export const STAGES: readonly Stage[] = ['ast', 'ir', 'ir-opt', 'ts'];

export interface CompileResult {
  readonly diagnostics: readonly Diagnostic[];
  /** The requested stage's text; undefined when there were errors. */
  readonly output?: string;
  /** The lowered models (after optimisation for 'ir-opt' and 'ts'). */
  readonly models?: readonly ModelIR[];
  /** Per model, how many kernels its module holds (stage 'ts'). */
  readonly kernels?: readonly number[];
  /** The file's n-gram models (stage 'ts'). */
  readonly ngrams?: readonly NgramDecl[];
}

/**
 * Front end + expansion: the models as core-op graphs, or the diagnostics that stop compilation.
 * Throws InternalError on a compiler bug.
 */
export function lower(text: string, file: string, options: CompileOptions = {}): {
  diagnostics: Diagnostic[]; models?: ModelIR[]; ast?: ReturnType<typeof parse>['ast'];
  /** Per model of `models`: the vocabularies its inputs declare. */
  texts?: (Readonly<Record<string, VocabData>> | undefined)[];
  /** The file's n-gram models (not lowered to IR), with their place among the file's models. */
  ngrams?: { index: number; decl: NgramDecl }[];
  /** The checked models (all of them, n-gram models included). */
  resolved?: ReturnType<typeof check>['models'];
} {
  const bag = new DiagnosticBag();
  const { ast, resolved } = front(text, file, bag, options.files ?? specFiles(file));
  if (bag.hasErrors) return { diagnostics: bag.items, ast };
  const neural = resolved.models.filter((m) => !m.ngram);
  const ngrams = resolved.models.flatMap((m, index) => (m.ngram ? [{ index, decl: ngramDecl(m) }] : []));
  const texts = neural.map((m) => {
    const t = Object.fromEntries(m.inputs.flatMap((i) => (i.text ? [[i.name, i.text] as const] : [])));
    return Object.keys(t).length > 0 ? t : undefined;
  });
  const models = stage('expand', () => neural.map((m) => expand(m, bag)));
  models.forEach((m) => compactIds(m.graph));
  // a layer inside `repeat N` is lowered N times; say each thing once
  const seen = new Set<string>();
  const unique = bag.items.filter((d) => {
    const key = `${d.code}@${d.span.file}:${d.span.start}:${d.message}`;
    return !seen.has(key) && seen.add(key) !== undefined;
  });
  if (bag.hasErrors) return { diagnostics: unique, ast };
  return { diagnostics: unique, models, ast, texts, ngrams, resolved: resolved.models };
}

/**
 * 2 (default): every pass. 1: stack gate matmuls and hoist input projections, but one kernel per
 * op. 0: no rewrites, one kernel per op (weight row blocks are read in place, not copied).
 * Lower levels exist to measure what each pass buys.
 */
export type OptLevel = 0 | 1 | 2;

export function optimize(m: ModelIR, level: OptLevel = 2, verify = false): ModelIR {
  const check = verify ? () => verifyModel(m.graph) : () => {};
  check();
  if (level >= 1) {
    mergeMatmuls(m.graph);
    check();
    hoistInputProjections(m.graph);
    check();
  }
  fuse(m.graph, { inline: level >= 2 });
  check();
  compactIds(m.graph);
  check();
  return m;
}

/**
 * The pipeline up to `stage`. Problems in the spec are diagnostics (and no output); a failure of
 * the compiler itself throws InternalError.
 */
export function compile(text: string, file: string, stage: Stage = 'ts', level: OptLevel = 2, options: CompileOptions = {}): CompileResult {
  if (stage === 'ast') {
    const bag = new DiagnosticBag();
    const { ast } = front(text, file, bag, options.files ?? specFiles(file));
    return bag.hasErrors ? { diagnostics: bag.items } : { diagnostics: bag.items, output: runStage('print', () => printAst(ast)) };
  }
  const { diagnostics, models, texts, ngrams = [] } = lower(text, file, options);
  if (!models) return { diagnostics };
  // an n-gram model has no IR: its line says so
  const counted = ngrams.map(({ decl: d }) => `model ${d.name}: n-gram, order ${d.spec.order}, ${d.spec.smoothing} (counted, not lowered to IR)\n`).join('');
  if (stage === 'ir') return { diagnostics, models, output: runStage('print', () => models.map((m) => printModel(m)).join('\n')) + counted };
  runStage('optimize', () => models.forEach((m) => optimize(m, level)));
  // ir-opt also shows how the host backends run each kernel's matmuls (codegen's GEMM forms)
  if (stage === 'ir-opt') return { diagnostics, models, output: runStage('print', () => models.map((m) => printModel(m, compileProgram(m).notes)).join('\n')) + counted };
  const compiled = runStage('codegen', () => models.map((ir, i) => ({ ir, program: compileProgram(ir), ...(texts?.[i] ? { text: texts[i] } : {}) })));
  // the file's models in order: n-gram models at their places, the compiled ones around them
  const all: Parameters<typeof emitModule>[0][number][] = [...compiled];
  for (const n of ngrams) all.splice(n.index, 0, n.decl);
  const output = runStage('codegen', () => emitModule(all, file));
  return { diagnostics, models, output, kernels: compiled.map((c) => c.program.kernels.length), ngrams: ngrams.map((n) => n.decl) };
}

const runStage = stage;
