/**
 * Optimisers and gradient clipping exactly as torch.optim / torch.nn.utils (PyTorch 1.13, the
 * single-tensor CPU paths), on plain Float32Arrays keyed by weight name. Every tensor operation is
 * done in torch's order with float32 rounding after each one (`fround`; a float64 operation
 * rounded once is the correctly rounded float32 result), and the scalar hyperparameter arithmetic
 * in float64 as Python does it, so an update equals torch's to the last bit or two.
 *
 * - SGD (`torch.optim.SGD`): d = g + wd·w; with momentum μ: buf = d at the first step, then
 *   buf = μ·buf + (1 − dampening)·d; Nesterov d = d + μ·buf, else d = buf; w = w − lr·d.
 * - Adam (`torch.optim.Adam`): g = g + wd·w (L2); m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²;
 *   w = w − (lr / (1 − β1^t))·m / (√v / √(1 − β2^t) + ε).
 * - AdamW (`torch.optim.AdamW`): w = w·(1 − lr·wd) first (decoupled decay), then Adam without the L2 term.
 *   amsgrad is not supported.
 */
import { NncError } from '../runtime/errors.ts';

const f = Math.fround;

export type OptimizerOptions =
  | { readonly kind: 'sgd'; readonly lr: number; readonly momentum?: number; readonly dampening?: number; readonly nesterov?: boolean; readonly weightDecay?: number }
  | { readonly kind: 'adam' | 'adamw'; readonly lr: number; readonly betas?: readonly [number, number]; readonly eps?: number; readonly weightDecay?: number };

export type Weights = ReadonlyMap<string, Float32Array>;

/** An optimiser option the caller got wrong: an NncError (nnc/runtime's), so one `instanceof` catches every user error of nnc. */
export class OptimizerError extends NncError {
  constructor(message: string) {
    super(message);
    this.name = 'OptimizerError';
  }
}

/** An optimiser's state: its step count and named per-weight buffers (`adam.exp_avg.<weight>`, …). */
export interface Optimizer {
  readonly options: OptimizerOptions;
  /** Optimiser steps taken. */
  readonly steps: number;
  /** One update of every weight in place, with this step's learning rate. */
  step(weights: Weights, grads: Weights, lr: number): void;
  /** The state buffers by name (for saving). */
  buffers(): Map<string, Float32Array>;
  /** Restores the step count and buffers saved by `buffers()`. */
  restore(steps: number, buffers: ReadonlyMap<string, Float32Array>): void;
}

export function createOptimizer(options: OptimizerOptions): Optimizer {
  check(options);
  return options.kind === 'sgd' ? new Sgd(options) : new Adam(options);
}

function check(o: OptimizerOptions): void {
  if (!o || typeof o !== 'object') throw new OptimizerError(`optimizer must be { kind: 'sgd' | 'adam' | 'adamw', lr, … } (docs/training.md), got ${String(o)}`);
  if (!['sgd', 'adam', 'adamw'].includes(o.kind)) throw new OptimizerError(`optimizer kind '${String(o.kind)}' is not one of sgd, adam, adamw`);
  const bad = (what: string) => {
    throw new OptimizerError(`${o.kind}: ${what}`);
  };
  if (!(o.lr >= 0) || !Number.isFinite(o.lr)) bad(`lr must be a finite number ≥ 0, got ${o.lr}`);
  if (!((o.weightDecay ?? 0) >= 0)) bad(`weightDecay must be ≥ 0, got ${o.weightDecay}`);
  if (o.kind === 'sgd') {
    if (!((o.momentum ?? 0) >= 0)) bad(`momentum must be ≥ 0, got ${o.momentum}`);
    if (o.nesterov && (!(o.momentum! > 0) || (o.dampening ?? 0) !== 0)) bad('Nesterov momentum needs momentum > 0 and dampening = 0 (as torch.optim.SGD)');
  } else {
    const [b1, b2] = o.betas ?? [0.9, 0.999];
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) bad(`betas must be in [0, 1), got [${b1}, ${b2}]`);
    if (!((o.eps ?? 1e-8) >= 0)) bad(`eps must be ≥ 0, got ${o.eps}`);
  }
}

function each(weights: Weights, grads: Weights, fn: (name: string, w: Float32Array, g: Float32Array) => void): void {
  for (const [name, w] of weights) {
    const g = grads.get(name);
    if (!g) throw new OptimizerError(`no gradient for weight '${name}'`);
    if (g.length !== w.length) throw new OptimizerError(`the gradient of '${name}' has ${g.length} values, the weight ${w.length}`);
    fn(name, w, g);
  }
}

class Sgd implements Optimizer {
  steps = 0;
  private readonly momentum = new Map<string, Float32Array>();
  constructor(readonly options: Extract<OptimizerOptions, { kind: 'sgd' }>) {}

  step(weights: Weights, grads: Weights, lr: number): void {
    const wd = f(this.options.weightDecay ?? 0);
    const mu = f(this.options.momentum ?? 0);
    const damp = f(1 - (this.options.dampening ?? 0));
    const nesterov = !!this.options.nesterov;
    const neg = f(-lr);
    each(weights, grads, (name, w, g) => {
      let buf = this.momentum.get(name);
      const first = mu !== 0 && !buf;
      if (mu !== 0 && !buf) this.momentum.set(name, (buf = new Float32Array(w.length)));
      for (let i = 0; i < w.length; i++) {
        let d = g[i];
        if (wd !== 0) d = f(d + f(wd * w[i]));
        if (buf) {
          buf[i] = first ? d : f(f(buf[i] * mu) + f(damp * d));
          d = nesterov ? f(d + f(mu * buf[i])) : buf[i];
        }
        w[i] = f(w[i] + f(neg * d));
      }
    });
    this.steps++;
  }
  buffers(): Map<string, Float32Array> {
    return new Map([...this.momentum].map(([k, v]) => [`sgd.momentum_buffer.${k}`, v]));
  }
  restore(steps: number, buffers: ReadonlyMap<string, Float32Array>): void {
    this.steps = steps;
    this.momentum.clear();
    for (const [k, v] of buffers) this.momentum.set(stripPrefix(k, 'sgd.momentum_buffer.'), Float32Array.from(v));
  }
}

class Adam implements Optimizer {
  steps = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  constructor(readonly options: Extract<OptimizerOptions, { kind: 'adam' | 'adamw' }>) {}

  step(weights: Weights, grads: Weights, lr: number): void {
    const o = this.options;
    const [beta1, beta2] = o.betas ?? [0.9, 0.999];
    const wdRaw = o.weightDecay ?? (o.kind === 'adamw' ? 0.01 : 0);
    const t = ++this.steps;
    // Python float arithmetic on the scalars
    const stepSize = lr / (1 - beta1 ** t);
    const bc2sqrt = f(Math.sqrt(1 - beta2 ** t));
    const decay = f(1 - lr * wdRaw);
    const [b1, b2, c1, c2, wd, eps, negStep] = [f(beta1), f(beta2), f(1 - beta1), f(1 - beta2), f(wdRaw), f(o.eps ?? 1e-8), f(-stepSize)];
    each(weights, grads, (name, w, g) => {
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (!m || !v) {
        this.m.set(name, (m = new Float32Array(w.length)));
        this.v.set(name, (v = new Float32Array(w.length)));
      }
      for (let i = 0; i < w.length; i++) {
        let gi = g[i];
        if (o.kind === 'adamw') w[i] = f(w[i] * decay);
        else if (wd !== 0) gi = f(gi + f(wd * w[i]));
        m[i] = f(f(m[i] * b1) + f(c1 * gi));
        v[i] = f(f(v[i] * b2) + f(f(c2 * gi) * gi));
        const denom = f(f(f(Math.sqrt(v[i])) / bc2sqrt) + eps);
        w[i] = f(w[i] + f(f(negStep * m[i]) / denom));
      }
    });
  }
  buffers(): Map<string, Float32Array> {
    const k = this.options.kind;
    return new Map([...[...this.m].map(([n, x]) => [`${k}.exp_avg.${n}`, x] as const), ...[...this.v].map(([n, x]) => [`${k}.exp_avg_sq.${n}`, x] as const)]);
  }
  restore(steps: number, buffers: ReadonlyMap<string, Float32Array>): void {
    const k = this.options.kind;
    this.steps = steps;
    this.m.clear();
    this.v.clear();
    for (const [name, x] of buffers) {
      if (name.startsWith(`${k}.exp_avg_sq.`)) this.v.set(stripPrefix(name, `${k}.exp_avg_sq.`), Float32Array.from(x));
      else this.m.set(stripPrefix(name, `${k}.exp_avg.`), Float32Array.from(x));
    }
  }
}

function stripPrefix(name: string, prefix: string): string {
  if (!name.startsWith(prefix)) throw new OptimizerError(`optimiser state '${name}' is not a ${prefix}* buffer`);
  return name.slice(prefix.length);
}

/**
 * torch.nn.utils.clip_grad_norm_(max_norm): the 2-norm over all gradients together (each tensor's
 * norm, then the norm of those, accumulated in float64 as PyTorch's CPU reduction does, rounded to
 * float32); when it exceeds maxNorm every gradient is scaled in place by maxNorm / (norm + 1e-6).
 * Returns the norm before clipping. Without `maxNorm`, only measures it.
 */
export function clipGradNorm(grads: Weights, maxNorm?: number): number {
  let sq = 0;
  for (const g of grads.values()) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
    const n = f(Math.sqrt(s));
    sq += n * n;
  }
  const total = f(Math.sqrt(sq));
  if (maxNorm === undefined) return total;
  if (!(maxNorm > 0)) throw new OptimizerError(`clip maxNorm must be > 0, got ${maxNorm}`);
  // max_norm / (total_norm + 1e-6) on a float32 tensor: reciprocal, then times max_norm; clamped to 1
  const coef = Math.min(f(f(1 / f(total + f(1e-6))) * f(maxNorm)), 1);
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = f(g[i] * coef);
  return total;
}

/** torch.nn.utils.clip_grad_value_(value): every gradient value clamped to [−value, value] in place. */
export function clipGradValue(grads: Weights, value: number): void {
  if (!(value > 0)) throw new OptimizerError(`clip value must be > 0, got ${value}`);
  const v = f(value);
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] = Math.min(Math.max(g[i], -v), v);
}
