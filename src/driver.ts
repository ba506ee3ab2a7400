/**
 * The whole pipeline, in order. Each stage can be printed (`nnc compile --emit=STAGE`).
 *   parse → check → expand (layers → core ops, shapes) → merge-matmuls → hoist → fuse → kernel IR + plan → module
 */
import { DiagnosticBag, type Diagnostic } from './diagnostics/diagnostic.ts';
import { printAst } from './syntax/print.ts';
import type { ModelIR } from './ir/model.ts';
import { printModel } from './ir/print.ts';
import { compactIds } from './ir/graph.ts';
import { verifyModel } from './ir/verify.ts';
import { front, lower, stage } from './front.ts';
import { mergeMatmuls } from './passes/merge-matmuls.ts';
import { hoistInputProjections } from './passes/hoist.ts';
import { fuse } from './passes/fuse.ts';
import { compileProgram } from './codegen/plan.ts';
import { emitModule } from './codegen/module.ts';

export { InternalError, lower } from './front.ts';

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
export function compile(text: string, file: string, stage: Stage = 'ts', level: OptLevel = 2): CompileResult {
  if (stage === 'ast') {
    const bag = new DiagnosticBag();
    const { ast } = front(text, file, bag);
    return bag.hasErrors ? { diagnostics: bag.items } : { diagnostics: bag.items, output: runStage('print', () => printAst(ast)) };
  }
  const { diagnostics, models } = lower(text, file);
  if (!models) return { diagnostics };
  if (stage === 'ir') return { diagnostics, models, output: runStage('print', () => models.map((m) => printModel(m)).join('\n')) };
  runStage('optimize', () => models.forEach((m) => optimize(m, level)));
  // ir-opt also shows how the host backends run each kernel's matmuls (codegen's GEMM forms)
  if (stage === 'ir-opt') return { diagnostics, models, output: runStage('print', () => models.map((m) => printModel(m, compileProgram(m).notes)).join('\n')) };
  const compiled = runStage('codegen', () => models.map((ir) => ({ ir, program: compileProgram(ir) })));
  const output = runStage('codegen', () => emitModule(compiled, file, text));
  return { diagnostics, models, output, kernels: compiled.map((c) => c.program.kernels.length) };
}

const runStage = stage;
