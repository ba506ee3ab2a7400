/**
 * `createTrainer` (docs/training.md, the contract in shared/design/training-api.md): training steps
 * on a compiled model, composed from the model's training forward and backward (src/runtime/model.ts,
 * the compiler's training program) and this folder's numeric core, in PyTorch's order:
 *
 *   training forward (dropout masks seeded by (seed, step, layer)) → loss and its gradient →
 *   backward → gradient norm (before clipping) → value clipping → global-norm clipping →
 *   this step's learning rate → optimiser update → the new weights written back (the model
 *   repacks its GEMM weight blocks).
 *
 * The weights are read from the model at every step, so a loadWeights() between steps is honoured.
 */
import { NncError } from '../runtime/errors.ts';
import type { DropoutMasks, Trainable } from '../runtime/model.ts';
import { dropoutMask } from './dropout.ts';
import { computeLoss, type LossKind, type Targets } from './losses.ts';
import { clipGradNorm, clipGradValue, createOptimizer, type OptimizerOptions } from './optim.ts';
import { checkSchedule, learningRate, type ScheduleOptions } from './schedule.ts';
import { restoreOptimizerState, saveOptimizerState } from './state.ts';

export interface TrainerOptions {
  /** 'nll' (log-probability outputs), 'nll_prob' (probability outputs), 'cross_entropy' (logits) or 'mse'. */
  readonly loss: LossKind;
  /** cross_entropy: as torch.nn.CrossEntropyLoss(label_smoothing). */
  readonly labelSmoothing?: number;
  readonly optimizer: OptimizerOptions;
  /** maxNorm: torch.nn.utils.clip_grad_norm_; value: clip_grad_value_ (applied first). */
  readonly clip?: { readonly maxNorm?: number; readonly value?: number };
  readonly schedule?: ScheduleOptions;
  /** Seeds the dropout masks (default 0). */
  readonly seed?: number;
}

/** A batch: the model's inputs (as forward takes them) and the targets its loss scores. */
export interface Batch {
  readonly inputs: unknown;
  readonly targets: Targets;
}

export interface StepResult {
  /** The loss before the update. */
  readonly loss: number;
  /** The gradients' global norm before clipping. */
  readonly gradNorm: number;
  /** The learning rate this step used. */
  readonly lr: number;
  /** Valid target positions scored. */
  readonly tokens: number;
}

export interface EvalResult {
  readonly loss: number;
  readonly tokens: number;
  /** Share of scored positions whose arg-max is the target (0 for mse). */
  readonly accuracy: number;
}

export interface Trainer {
  /** One optimiser step on a batch. */
  step(batch: Batch): Promise<StepResult>;
  /** The loss (dropout off, no update). */
  evaluate(batch: Batch): Promise<EvalResult>;
  /** Optimiser state as safetensors bytes (buffers, step count): restore() resumes exactly. */
  state(): Uint8Array;
  restore(bytes: Uint8Array): void;
  /** Optimiser steps taken. */
  readonly steps: number;
}

/** A model nnc compiled (a generated module's createModel()), not one running in a worker. */
interface TrainableModel extends Trainable {
  readonly manifest: { readonly model: string; readonly weights: readonly { readonly name: string }[] };
  forward(inputs: unknown): Promise<Record<string, { data: Float32Array; shape: number[] }>>;
}

export function createTrainer(model: unknown, options: TrainerOptions): Trainer {
  const m = model as TrainableModel;
  if (typeof m?.trainForward !== 'function') throw new NncError('createTrainer(): the model must be one a generated module created (createModel()), not one running in a worker');
  if (!options || typeof options !== 'object') throw new NncError("createTrainer(model, options): options are required ({ loss, optimizer, … }, docs/training.md)");
  const lossOpts = { kind: options.loss, labelSmoothing: options.labelSmoothing ?? 0 };
  if (!['nll', 'nll_prob', 'cross_entropy', 'mse'].includes(lossOpts.kind)) throw new NncError(`createTrainer(): loss '${String(lossOpts.kind)}' is not one of nll, nll_prob, cross_entropy, mse`);
  if (options.schedule) checkSchedule(options.schedule);
  const clip = options.clip ?? {};
  for (const [k, v] of Object.entries(clip)) {
    if (k !== 'maxNorm' && k !== 'value') throw new NncError(`createTrainer(): clip.${k} is not an option (maxNorm, value)`);
    if (!(typeof v === 'number' && v > 0)) throw new NncError(`createTrainer(): clip.${k} must be a number > 0, got ${String(v)}`);
  }
  const seed = options.seed ?? 0;
  const opt = createOptimizer(options.optimizer);
  const names = m.manifest.weights.map((w) => w.name);

  return {
    get steps() {
      return opt.steps;
    },
    async step(batch) {
      const masks: DropoutMasks = (layer, p, size) => dropoutMask(p, seed, opt.steps, layer, size);
      const run = await m.trainForward(batch.inputs, masks, 'trainer.step');
      let L;
      try {
        L = computeLoss(lossOpts, run.output, batch.targets);
      } catch (e) {
        m.releaseTraining(run);
        throw e;
      }
      const g = await m.backward(run, L.grad);
      const grads = new Map(names.map((n) => [n, g.weights[n]!]));
      const gradNorm = clipGradNorm(grads);
      if (clip.value !== undefined) clipGradValue(grads, clip.value);
      if (clip.maxNorm !== undefined) clipGradNorm(grads, clip.maxNorm);
      const lr = learningRate(options.optimizer.lr, options.schedule, opt.steps);
      const values = await m.readWeights('trainer.step');
      opt.step(new Map(names.map((n, i) => [n, values[i]!])), grads, lr);
      m.writeWeights(values);
      return { loss: L.loss, gradNorm, lr, tokens: L.count };
    },
    async evaluate(batch) {
      const out = await m.forward(batch.inputs);
      const y = Object.values(out)[0]!;
      const L = computeLoss(lossOpts, y, batch.targets);
      return { loss: L.loss, tokens: L.count, accuracy: L.count ? L.correct / L.count : 0 };
    },
    state: () => saveOptimizerState(opt),
    restore: (bytes) => restoreOptimizerState(opt, bytes),
  };
}
