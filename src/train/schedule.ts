/**
 * Learning-rate schedules, stepped once per optimiser step, as torch.optim.lr_scheduler's closed
 * forms with the optimiser's `lr` as base_lr. `step` counts optimiser steps already taken (0 for
 * the first update):
 *
 * - constant: lr.
 * - step (StepLR(step_size = stepSize, gamma)): lr · gamma^⌊step / stepSize⌋.
 * - cosine (CosineAnnealingLR(T_max = tMax, eta_min = etaMin)): etaMin + (lr − etaMin)·(1 + cos(π·step / tMax)) / 2
 *   (past tMax the cosine continues, as PyTorch's does).
 * - noam (LambdaLR with Vaswani et al.'s rate): lr · dModel^−0.5 · min(s^−0.5, s · warmup^−1.5), s = step + 1;
 *   here `lr` is the rate's factor: 1 gives the paper's schedule (its peak, at s = warmup, is
 *   (dModel · warmup)^−0.5).
 */
import { NncError } from '../runtime/errors.ts';

export type ScheduleOptions =
  | { readonly kind: 'constant' }
  | { readonly kind: 'step'; readonly stepSize: number; readonly gamma?: number }
  | { readonly kind: 'cosine'; readonly tMax: number; readonly etaMin?: number }
  | { readonly kind: 'noam'; readonly warmup: number; readonly dModel: number };

/** A schedule the caller got wrong: an NncError (nnc/runtime's), so one `instanceof` catches every user error of nnc. */
export class ScheduleError extends NncError {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

export function checkSchedule(s: ScheduleOptions): void {
  const bad = (what: string) => {
    throw new ScheduleError(`schedule ${s.kind}: ${what}`);
  };
  const whole = (v: number, name: string) => (Number.isInteger(v) && v > 0 ? undefined : bad(`${name} must be a whole number > 0, got ${v}`));
  if (s.kind === 'step') whole(s.stepSize, 'stepSize');
  else if (s.kind === 'cosine') whole(s.tMax, 'tMax');
  else if (s.kind === 'noam') {
    whole(s.warmup, 'warmup');
    whole(s.dModel, 'dModel');
  } else if (s.kind !== 'constant') bad('unknown kind (constant, step, cosine, noam)');
}

/** The learning rate of optimiser step `step` (0-based). */
export function learningRate(lr: number, schedule: ScheduleOptions | undefined, step: number): number {
  const s = schedule ?? { kind: 'constant' };
  switch (s.kind) {
    case 'constant':
      return lr;
    case 'step':
      return lr * (s.gamma ?? 0.1) ** Math.floor(step / s.stepSize);
    case 'cosine': {
      const etaMin = s.etaMin ?? 0;
      return etaMin + ((lr - etaMin) * (1 + Math.cos((Math.PI * step) / s.tMax))) / 2;
    }
    case 'noam': {
      const n = step + 1;
      return lr * (s.dModel ** -0.5 * Math.min(n ** -0.5, n * s.warmup ** -1.5));
    }
  }
}
