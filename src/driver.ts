/**
 * The whole pipeline, in order. Each stage can be printed (`nnc compile --emit=STAGE`).
 *   parse → check → expand (layers → core ops, shapes) → merge-matmuls → hoist → fuse → kernels → module
 */
import { DiagnosticBag, type Diagnostic } from './diagnostics/diagnostic.ts';
import { parse } from './syntax/parse.ts';
import { check } from './syntax/check.ts';
import { printAst } from './syntax/print.ts';
import type { ModelIR } from './ir/model.ts';
import { printModel } from './ir/print.ts';
import { compactIds } from './ir/graph.ts';
import { verifyModel } from './ir/verify.ts';
import { expand } from './passes/expand.ts';
import { mergeMatmuls } from './passes/merge-matmuls.ts';
import { hoistInputProjections } from './passes/hoist.ts';
import { fuse } from './passes/fuse.ts';
import { compileProgram } from './codegen/kernels.ts';
import { emitModule } from './codegen/module.ts';

export type Stage = 'ast' | 'ir' | 'ir-opt' | 'ts';
export const STAGES: readonly Stage[] = ['ast', 'ir', 'ir-opt', 'ts'];

export interface CompileResult {
  readonly diagnostics: readonly Diagnostic[];
  /** The requested stage's text; undefined when there were errors. */
  readonly output?: string;
  /** The lowered models (after optimisation for 'ir-opt' and 'ts'). */
  readonly models?: readonly ModelIR[];
}

/** Front end + expansion: the models as core-op graphs, or the diagnostics that stop compilation. */
export function lower(text: string, file: string): { diagnostics: Diagnostic[]; models?: ModelIR[]; ast?: ReturnType<typeof parse>['ast'] } {
  const { ast, diagnostics } = parse(text, file);
  const bag = new DiagnosticBag();
  diagnostics.forEach((d) => bag.add(d));
  const resolved = check(ast, bag);
  if (bag.hasErrors) return { diagnostics: bag.items, ast };
  const models = resolved.models.map((m) => expand(m, bag));
  models.forEach((m) => compactIds(m.graph));
  // a layer inside `repeat N` is lowered N times; say each thing once
  const seen = new Set<string>();
  const unique = bag.items.filter((d) => {
    const key = `${d.code}@${d.span.file}:${d.span.start}:${d.message}`;
    return !seen.has(key) && seen.add(key) !== undefined;
  });
  if (bag.hasErrors) return { diagnostics: unique, ast };
  return { diagnostics: unique, models, ast };
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

export function compile(text: string, file: string, stage: Stage = 'ts', level: OptLevel = 2): CompileResult {
  if (stage === 'ast') {
    const { ast, diagnostics } = parse(text, file);
    const bag = new DiagnosticBag();
    diagnostics.forEach((d) => bag.add(d));
    check(ast, bag);
    return bag.hasErrors ? { diagnostics: bag.items } : { diagnostics: bag.items, output: printAst(ast) };
  }
  const { diagnostics, models } = lower(text, file);
  if (!models) return { diagnostics };
  if (stage === 'ir') return { diagnostics, models, output: models.map(printModel).join('\n') };
  models.forEach((m) => optimize(m, level));
  if (stage === 'ir-opt') return { diagnostics, models, output: models.map(printModel).join('\n') };
  const compiled = models.map((ir) => ({ ir, program: compileProgram(ir) }));
  return { diagnostics, models, output: emitModule(compiled, file) };
}
