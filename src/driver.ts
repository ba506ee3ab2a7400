/**
 * The whole pipeline, in order. Each stage can be printed (`nnc compile --emit=STAGE`).
 *   parse → check → expand (layers → core ops, shapes) → merge-matmuls → hoist → fuse → kernel IR + plan → module
 * (`ir-grad`: reverse mode, src/passes/grad, on the graph before fusion.)
 */
import { DiagnosticBag, type Diagnostic } from './diagnostics/diagnostic.ts';
import type { SpecFiles } from './syntax/check.ts';
import type { NgramDecl } from './ngram/compile.ts';
import { printAst } from './syntax/print.ts';
import type { ModelIR } from './ir/model.ts';
import { printModel } from './ir/print.ts';
import { compactIds } from './ir/graph.ts';
import { verifyModel } from './ir/verify.ts';
import { front, stage, type CompileOptions } from './front.ts';
import { lower, specFiles } from './lower.ts';
import { mergeMatmuls } from './passes/merge-matmuls.ts';
import { hoistInputProjections } from './passes/hoist.ts';
import { fuse } from './passes/fuse.ts';
import { removeDropout } from './passes/inference.ts';
import { gradModel, printGrad, type GradIR, type GradOptions } from './passes/grad/index.ts';
import { compileProgram, type TrainGraphs } from './codegen/plan.ts';
import { emitModule } from './codegen/module.ts';

export { InternalError, type CompileOptions } from './front.ts';
export { lower, specFiles } from './lower.ts';


export type Stage = 'ast' | 'ir' | 'ir-opt' | 'ir-grad' | 'ts';
export const STAGES: readonly Stage[] = ['ast', 'ir', 'ir-opt', 'ir-grad', 'ts'];

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
  rewrite(m, level, verify);
  return finish(m, level, verify);
}

/** The rewrites before reverse mode: merge-matmuls and hoist (at -O1 and up). */
function rewrite(m: ModelIR, level: OptLevel, verify: boolean): void {
  const check = verify ? () => verifyModel(m.graph) : () => {};
  check();
  if (level >= 1) {
    mergeMatmuls(m.graph);
    check();
    hoistInputProjections(m.graph);
    check();
  }
}

/** What forward and generate run: dropout removed (the identity outside training), then fused. */
function finish(m: ModelIR, level: OptLevel, verify: boolean): ModelIR {
  const check = verify ? () => verifyModel(m.graph) : () => {};
  removeDropout(m.graph);
  check();
  fuse(m.graph, { inline: level >= 2 });
  check();
  compactIds(m.graph);
  check();
  return m;
}

/**
 * The model's training graphs (src/passes/grad: its training forward and backward graphs, each
 * fused; codegen plans them on the forward's kernel table), from the graph after `rewrite` and before `finish`.
 */
export function trainingGraphs(m: ModelIR, level: OptLevel = 2, options: GradOptions = {}): GradIR {
  const gr = gradModel(m, options);
  for (const x of [gr.forward, gr.backward]) fuse(x.graph, { inline: level >= 2, training: true });
  return gr;
}

/** Optimises a model for forward and generate and builds its training graphs (before dropout is removed). */
export function optimizeWithTraining(m: ModelIR, level: OptLevel = 2, verify = false, grad: GradOptions = {}): { ir: ModelIR; train: TrainGraphs } {
  rewrite(m, level, verify);
  const train = trainingGraphs(m, level, grad);
  return { ir: finish(m, level, verify), train };
}

/**
 * The pipeline up to `stage` (`ts`: the module carries the training program, for vjp and nnc/train, unless `options.train` is false). Problems in the spec are diagnostics (and no output); a failure of
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
  const grad: GradOptions = options.checkpoint ? { checkpoint: options.checkpoint } : {};
  // reverse mode differentiates the graph before fusion (after merge-matmuls and hoist at -O1 and up)
  // it is printed as ir-opt prints the forward: fused, with how the host backends run each kernel
  if (stage === 'ir-grad') {
    const grads = runStage('grad', () => models.map((m) => {
      rewrite(m, level, false);
      return trainingGraphs(m, level, grad);
    }));
    const notes = runStage('codegen', () => models.map((m, i) => compileProgram(finish(m, level, false), grads[i]).backwardNotes));
    return { diagnostics, models, output: runStage('print', () => grads.map((g, i) => printGrad(g, notes[i])).join('\n')) + counted };
  }
  if (stage === 'ir-opt') {
    runStage('optimize', () => models.forEach((m) => optimize(m, level)));
    // ir-opt also shows how the host backends run each kernel's matmuls (codegen's GEMM forms)
    return { diagnostics, models, output: runStage('print', () => models.map((m) => printModel(m, compileProgram(m).notes)).join('\n')) + counted };
  }
  // the training program is built at every level (at -O0 and -O1 from the graph those levels run)
  const train = options.train ?? true;
  const optimized = runStage('optimize', () => models.map((m) => (train ? optimizeWithTraining(m, level, false, grad) : { ir: optimize(m, level), train: undefined })));
  const compiled = runStage('codegen', () => optimized.map(({ ir, train }, i) => ({ ir, program: compileProgram(ir, train), ...(texts?.[i] ? { text: texts[i] } : {}) })));
  // the file's models in order: n-gram models at their places, the compiled ones around them
  const all: Parameters<typeof emitModule>[0][number][] = [...compiled];
  for (const n of ngrams) all.splice(n.index, 0, n.decl);
  const output = runStage('codegen', () => emitModule(all, file, { text, files: read }));
  return { diagnostics, models, output, kernels: compiled.map((c) => c.program.forwardKernels), ngrams: ngrams.map((n) => n.decl) };
}

const runStage = stage;
