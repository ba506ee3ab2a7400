/**
 * The front end and expansion: text → checked models → core-op graphs (`lower`). Kept apart from
 * the driver's later stages (driver.ts) so that what needs only the IR — `nnc onnx`, and the
 * `onnxruntime` backends, which build their graphs from the spec when a model is created — loads
 * neither the passes nor the module emitter (ts-morph). It imports nothing of Node's (the files a
 * spec names come through `files`; driver.ts reads them from the disk), so that it bundles for
 * browsers (nnc/onnx, backend 'onnxruntime-web').
 */
import { DiagnosticBag, type Diagnostic } from './diagnostics/diagnostic.ts';
import { parse } from './syntax/parse.ts';
import { check, type SpecFiles } from './syntax/check.ts';
import { ngramDecl, type NgramDecl } from './ngram/compile.ts';
import type { VocabData } from './runtime/text/vocab.ts';
import type { ModelIR } from './ir/model.ts';
import { compactIds } from './ir/graph.ts';
import { expand } from './passes/expand.ts';

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
export function stage<T>(name: string, f: () => T): T {
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

export interface CompileOptions {
  /** Reads the files the spec names (default: from the disk, relative to the spec's file). */
  readonly files?: SpecFiles;
  /** The module carries the training program (vjp, nnc/train); default true (`--no-train`: false). */
  readonly train?: boolean;
  /** Recomputation in the training program: keep every k-th state of each recurrence and recompute the rest in the backward (`--checkpoint K`; docs/training.md). */
  readonly checkpoint?: number;
}

/** The front end: parse and check, with internal failures thrown as InternalError. */
export function front(text: string, file: string, bag: DiagnosticBag, files: SpecFiles): { ast: ReturnType<typeof parse>['ast']; resolved: ReturnType<typeof check> } {
  const { ast, diagnostics } = stage('parse', () => parse(text, file));
  rethrowInternal(diagnostics, 'parse');
  diagnostics.forEach((d) => bag.add(d));
  const resolved = stage('check', () => check(ast, bag, files));
  rethrowInternal(bag.items, 'check');
  return { ast, resolved };
}

/**
 * Front end + expansion: the models as core-op graphs, or the diagnostics that stop compilation.
 * Throws InternalError on a compiler bug.
 */
export function lower(text: string, file: string, options: CompileOptions & { readonly files: SpecFiles }): {
  diagnostics: Diagnostic[]; models?: ModelIR[]; ast?: ReturnType<typeof parse>['ast'];
  /** Per model of `models`: the vocabularies its inputs declare. */
  texts?: (Readonly<Record<string, VocabData>> | undefined)[];
  /** The file's n-gram models (not lowered to IR), with their place among the file's models. */
  ngrams?: { index: number; decl: NgramDecl }[];
  /** The checked models (all of them, n-gram models included). */
  resolved?: ReturnType<typeof check>['models'];
} {
  const bag = new DiagnosticBag();
  const { ast, resolved } = front(text, file, bag, options.files);
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
