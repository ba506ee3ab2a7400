/**
 * The whole pipeline, in order. Each stage can be printed (`nnc compile --emit=STAGE`).
 *   parse → check → expand (layers → core ops, shapes) → merge-matmuls → hoist → fuse → kernel IR + plan → module
 */
import { DiagnosticBag, type Diagnostic } from './diagnostics/diagnostic.ts';
import type { SpecFiles } from './syntax/check.ts';
import type { NgramDecl } from './ngram/compile.ts';
import { printAst } from './syntax/print.ts';
import type { ModelIR } from './ir/model.ts';
import { printModel } from './ir/print.ts';
import { compactIds } from './ir/graph.ts';
import { verifyModel } from './ir/verify.ts';
import { front, lower, specFiles, stage, type CompileOptions } from './front.ts';
import { mergeMatmuls } from './passes/merge-matmuls.ts';
import { hoistInputProjections } from './passes/hoist.ts';
import { fuse } from './passes/fuse.ts';
import { compileProgram } from './codegen/plan.ts';
import { emitModule } from './codegen/module.ts';

export { InternalError, lower, specFiles, type CompileOptions } from './front.ts';

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
  // the files the spec reads go into the module beside its text (backend 'onnxruntime' lowers it again)
  const base = options.files ?? specFiles(file);
  const read: Record<string, string> = {};
  const files: SpecFiles = { read: (path) => (read[path] = base.read(path)) };
  const { diagnostics, models, texts, ngrams = [] } = lower(text, file, { ...options, files });
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
  const output = runStage('codegen', () => emitModule(all, file, { text, files: read }));
  return { diagnostics, models, output, kernels: compiled.map((c) => c.program.kernels.length), ngrams: ngrams.map((n) => n.decl) };
}

const runStage = stage;
