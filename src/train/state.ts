/**
 * Optimiser state as safetensors bytes, to resume a run exactly: the optimiser's buffers under
 * PyTorch-like names (`adam.exp_avg.<weight>`, `adam.exp_avg_sq.<weight>`, `adamw.…`,
 * `sgd.momentum_buffer.<weight>`), all F32, and in `__metadata__` the optimiser kind and the number
 * of steps taken (which also places the schedule and the dropout masks).
 */
import { NncError } from '../runtime/errors.ts';
import { decodeTensor, encodeSafetensors, readSafetensors } from '../runtime/safetensors.ts';
import type { Optimizer } from './optim.ts';

export { encodeSafetensors };

/** Optimiser state the caller got wrong: an NncError (nnc/runtime's), so one `instanceof` catches every user error of nnc. */
export class StateError extends NncError {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}

export function saveOptimizerState(opt: Optimizer): Uint8Array {
  const tensors = new Map([...opt.buffers()].map(([k, v]) => [k, { data: v, shape: [v.length] }]));
  return encodeSafetensors(tensors, { optimizer: opt.options.kind, steps: String(opt.steps) });
}

export function restoreOptimizerState(opt: Optimizer, bytes: Uint8Array): void {
  const file = readSafetensors(bytes);
  const meta = file.metadata ?? {};
  if (meta.optimizer !== opt.options.kind) throw new StateError(`the saved state is a ${meta.optimizer ?? 'unknown'} optimiser's, this trainer's is ${opt.options.kind}`);
  const steps = Number(meta.steps);
  if (!Number.isInteger(steps) || steps < 0) throw new StateError(`the saved state's step count '${meta.steps}' is not a whole number`);
  const buffers = new Map<string, Float32Array>();
  for (const t of file.entries) {
    if (t.dtype !== 'F32') throw new StateError(`optimiser state '${t.name}' is ${t.dtype}, expected F32`);
    buffers.set(t.name, decodeTensor(file, t)!);
  }
  opt.restore(steps, buffers);
}
