/**
 * Losses and their gradients with respect to the model output, as PyTorch computes them with
 * reduction = 'mean' over the valid positions only:
 *
 * - `nll`: the output holds log-probabilities; −log p[target] (torch.nn.NLLLoss).
 * - `nll_prob`: the output holds probabilities (a softmax); −log p[target] (torch.nn.NLLLoss on torch.log(p)).
 * - `cross_entropy`: the output holds logits; with label smoothing ε over C classes,
 *   (1 − ε)·(−log softmax[target]) + ε·mean_c(−log softmax[c]) (torch.nn.CrossEntropyLoss(label_smoothing = ε)).
 * - `mse`: (output − target)², averaged over every feature of every valid position (torch.nn.MSELoss).
 *
 * A per-step output [B, T, C] is scored at the positions t < lengths[b] (targets [B, T] class ids,
 * or [B, T, C] values for mse); a pooled output [B, C] at every row (targets [B], or [B, C]).
 * Arithmetic in float64; the gradient is returned as float32.
 */
import { NncError } from '../runtime/errors.ts';

export type LossKind = 'nll' | 'nll_prob' | 'cross_entropy' | 'mse';

export interface LossOptions {
  readonly kind: LossKind;
  /** cross_entropy only: ε in [0, 1]. */
  readonly labelSmoothing?: number;
}

export interface Targets {
  readonly data: Int32Array | Float32Array | Float64Array;
  readonly shape: readonly number[];
  /** Valid positions per row of a per-step output (default: all). */
  readonly lengths?: ArrayLike<number>;
}

export interface LossResult {
  /** The mean loss over valid positions. */
  readonly loss: number;
  /** d loss / d output, the output's layout (0 at padded positions). */
  readonly grad: Float32Array;
  /** Valid positions (tokens) scored. */
  readonly count: number;
  /** Positions whose arg-max is the target (class losses; 0 for mse). */
  readonly correct: number;
}

/** A loss call the caller got wrong: an NncError (nnc/runtime's), so one `instanceof` catches every user error of nnc. */
export class LossError extends NncError {
  constructor(message: string) {
    super(message);
    this.name = 'LossError';
  }
}

export function computeLoss(opts: LossOptions, output: { readonly data: ArrayLike<number>; readonly shape: readonly number[] }, targets: Targets): LossResult {
  const shape = output.shape;
  const seq = shape.length === 3;
  if (shape.length !== 2 && !seq) throw new LossError(`a loss needs an output [B, C] or [B, T, C], got [${shape.join(', ')}]`);
  const [B, T] = seq ? shape : [shape[0], 1];
  const C = shape[shape.length - 1];
  const classes = opts.kind !== 'mse';
  const want = classes ? shape.slice(0, -1) : shape;
  if (targets.shape.length !== want.length || targets.shape.some((d, i) => d !== want[i])) {
    throw new LossError(`${opts.kind} needs targets of shape [${want.join(', ')}] for an output [${shape.join(', ')}], got [${targets.shape.join(', ')}]`);
  }
  const eps = opts.labelSmoothing ?? 0;
  if (opts.kind !== 'cross_entropy' && eps !== 0) throw new LossError(`label smoothing applies to cross_entropy, not ${opts.kind}`);
  if (!(eps >= 0 && eps <= 1)) throw new LossError(`label smoothing must be in [0, 1], got ${eps}`);
  const valid = (b: number, t: number) => !seq || targets.lengths === undefined || t < targets.lengths[b];
  let count = 0;
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (valid(b, t)) count++;
  if (count === 0) throw new LossError('no valid position to score: every length is 0');
  const grad = new Float32Array(output.data.length);
  const y = output.data;
  let total = 0;
  let correct = 0;
  const row = new Float64Array(C);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      if (!valid(b, t)) continue;
      const base = (b * T + t) * C;
      if (!classes) {
        for (let c = 0; c < C; c++) {
          const d = y[base + c] - targets.data[base + c];
          total += d * d;
          grad[base + c] = (2 * d) / (count * C);
        }
        continue;
      }
      const target = targets.data[b * T + t];
      if (!Number.isInteger(target) || target < 0 || target >= C) throw new LossError(`target ${target} at row ${b}, step ${t} is not a class in [0, ${C})`);
      let best = 0;
      for (let c = 1; c < C; c++) if (y[base + c] > y[base + best]) best = c;
      if (best === target) correct++;
      if (opts.kind === 'nll') {
        total -= y[base + target];
        grad[base + target] = -1 / count;
        continue;
      }
      if (opts.kind === 'nll_prob') {
        total -= Math.log(y[base + target]);
        grad[base + target] = -1 / (count * y[base + target]);
        continue;
      }
      // log_softmax of the logits
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, y[base + c]);
      let s = 0;
      for (let c = 0; c < C; c++) s += Math.exp(y[base + c] - m);
      const lse = m + Math.log(s);
      let sumLogp = 0;
      for (let c = 0; c < C; c++) {
        row[c] = y[base + c] - lse;
        sumLogp += row[c];
      }
      total += -(1 - eps) * row[target] - (eps * sumLogp) / C;
      for (let c = 0; c < C; c++) grad[base + c] = (Math.exp(row[c]) - (c === target ? 1 - eps : 0) - eps / C) / count;
    }
  }
  return { loss: total / (classes ? count : count * C), grad, count, correct: classes ? correct : 0 };
}
