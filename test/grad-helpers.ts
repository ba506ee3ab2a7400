/** Running reverse mode's graphs (src/passes/grad) on the float64 interpreter, and finite differences. */
import { evaluate, type InterpEnv, type Tensor } from '../src/ir/interp.ts';
import type { GradIR } from '../src/passes/grad/index.ts';
import { prng } from './helpers.ts';

/**
 * The training forward, then the backward graph on its residuals: the model output, every gradient,
 * and the first backward value (outer graph) that is not finite, if any.
 */
export function runGrad(gr: GradIR, env: InterpEnv, cotangent: Tensor): { output: Tensor; grads: Record<string, Tensor>; nonFinite?: string } {
  const fwd = evaluate(gr.forward.graph, env);
  const saved = Object.fromEntries(gr.saved.map((s) => [s.name, fwd.outputs[s.name]]));
  const name = gr.forward.output.name;
  const bwd = evaluate(gr.backward.graph, { ...env, saved, cotangents: { [name]: cotangent } });
  const bad = gr.backward.graph.ordered().find((n) => bwd.values.get(n.id)!.data.some((v) => !Number.isFinite(v)));
  return { output: fwd.outputs[name], grads: bwd.outputs, nonFinite: bad && `%${bad.id} ${bad.op} (${bad.label})` };
}

/** Σ output ⊙ cotangent of the model's forward graph. */
export function objective(gr: GradIR, env: InterpEnv, cotangent: Tensor): number {
  const y = evaluate(gr.forward.graph, env).outputs[gr.forward.output.name];
  let s = 0;
  for (let i = 0; i < y.data.length; i++) s += y.data[i] * cotangent.data[i];
  return s;
}

export function randomTensor(shape: readonly number[], seed: number, scale = 1): Tensor {
  const r = prng(seed);
  return { shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * r() - 1) * scale) };
}

/**
 * Central differences along a random direction through every weight and float input:
 * (f(θ + εv) - f(θ - εv)) / 2ε against Σ gradient · v. Returns both.
 */
export function directional(gr: GradIR, env: InterpEnv, cotangent: Tensor, grads: Record<string, Tensor>, seed: number, eps = 1e-6): { fd: number; ad: number } {
  const r = prng(seed);
  const dirs: Record<string, Float64Array> = {};
  let ad = 0;
  const moved = (sign: number): InterpEnv => {
    const params: Record<string, Float64Array> = {};
    for (const [k, w] of Object.entries(env.params ?? {})) params[k] = Float64Array.from(w, (x, i) => x + sign * eps * dirs[k][i]);
    const inputs: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(env.inputs ?? {})) {
      inputs[k] = t.data instanceof Int32Array ? t : { shape: t.shape, data: Float64Array.from(t.data, (x, i) => x + sign * eps * dirs[`input:${k}`][i]) };
    }
    return { ...env, params, inputs };
  };
  for (const [k, w] of Object.entries(env.params ?? {})) dirs[k] = Float64Array.from({ length: w.length }, () => 2 * r() - 1);
  for (const [k, t] of Object.entries(env.inputs ?? {})) if (!(t.data instanceof Int32Array)) dirs[`input:${k}`] = Float64Array.from({ length: t.data.length }, () => 2 * r() - 1);
  for (const [k, d] of Object.entries(dirs)) {
    const g = grads[k];
    if (!g) throw new Error(`no gradient for ${k}`);
    for (let i = 0; i < d.length; i++) ad += g.data[i] * d[i];
  }
  const fd = (objective(gr, moved(1), cotangent) - objective(gr, moved(-1), cotangent)) / (2 * eps);
  return { fd, ad };
}

/**
 * Central differences of Σ output ⊙ cotangent for every element of every weight and float input,
 * against the gradient: the largest |fd - ad| relative to the largest |ad| (or |fd|, or 1e-3) of that tensor.
 */
export function elementwiseError(gr: GradIR, env: InterpEnv, cotangent: Tensor, grads: Record<string, Tensor>, eps = 1e-6): { worst: number; where: string } {
  let worst = 0;
  let where = '';
  const check = (key: string, base: ArrayLike<number>, with_: (data: Float64Array) => InterpEnv) => {
    const g = grads[key];
    if (!g) throw new Error(`no gradient for ${key}`);
    const fd = new Float64Array(base.length);
    for (let i = 0; i < base.length; i++) {
      const d = Float64Array.from(base);
      d[i] = base[i] + eps;
      const up = objective(gr, with_(d), cotangent);
      d[i] = base[i] - eps;
      fd[i] = (up - objective(gr, with_(d), cotangent)) / (2 * eps);
    }
    // relative to the tensor's largest gradient, but not below 1e-3: central differences of an O(1)
    // objective carry ~1e-10 of rounding noise, which must not count against a tensor of tiny gradients
    let scale = 1e-3;
    for (let i = 0; i < fd.length; i++) scale = Math.max(scale, Math.abs(fd[i]), Math.abs(g.data[i]));
    for (let i = 0; i < fd.length; i++) {
      const e = Math.abs(fd[i] - g.data[i]) / scale;
      if (e > worst) [worst, where] = [e, `${key}[${i}]: fd ${fd[i]}, ad ${g.data[i]}`];
    }
  };
  for (const [k, w] of Object.entries(env.params ?? {})) check(k, w, (d) => ({ ...env, params: { ...env.params, [k]: d } }));
  for (const [k, t] of Object.entries(env.inputs ?? {})) {
    if (t.data instanceof Int32Array) continue;
    check(`input:${k}`, t.data, (d) => ({ ...env, inputs: { ...env.inputs, [k]: { shape: t.shape, data: d } } }));
  }
  return { worst, where };
}
