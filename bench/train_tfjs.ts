/**
 * bench/train.ts's TensorFlow.js side: the same three training steps (T1, T2, W1) written with
 * tfjs-core ops (an LSTM as a loop of matMul and gates, attention and layer norm by hand, as
 * bench/peers/run.ts writes its forward passes) and trained with its autodiff (tf.variableGrads) and
 * tf.train.adam (lr 1e-3, β 0.9 / 0.999, ε 1e-8 as torch.optim.Adam), on backends 'wasm' and 'cpu'.
 * The peers are bench/peers' own dependencies (tfjs-core, tfjs-backend-cpu and -wasm 4.22.0).
 *
 * Token inputs are one-hot float rows multiplied by the embedding table, on both backends: the
 * wasm backend has no gradient for an embedding lookup (tf.gather's gradient, UnsortedSegmentSum,
 * is not registered there), so the lookup is written as the product it equals.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

export interface TfCase {
  readonly name: 'T1' | 'T2' | 'W1';
  readonly B: number;
  readonly T: number;
  readonly loss: 'cross_entropy' | 'mse';
  readonly out: number;
}

let tf: Any;

/** tfjs-core with both backends registered (bench/peers must be installed: npm ci --prefix bench/peers). */
export async function loadTf(root: string): Promise<Any> {
  if (tf) return tf;
  const req = createRequire(join(root, 'bench/peers/package.json'));
  tf = req('@tensorflow/tfjs-core');
  // the gradients (the @tensorflow/tfjs bundle registers them; tfjs-core alone does not)
  req('@tensorflow/tfjs-core/dist/register_all_gradients');
  tf.env().set('PROD', true);
  req('@tensorflow/tfjs-backend-cpu');
  req('@tensorflow/tfjs-backend-wasm');
  // Node has no threads for tfjs's wasm backend: one thread (bench/peers/run.ts does the same)
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  return tf;
}

/** The model's loss on (x, y) from variables `v` (PyTorch names, PyTorch layouts). */
function lossFn(c: TfCase, v: Record<string, Any>, x: Any, y: Any): Any {
  const { B, T } = c;
  const linear = (h: Any, w: string, b: string) => tf.add(tf.matMul(h, v[w], false, true), v[b]);
  const flat = (h: Any) => tf.reshape(h, [B * T, h.shape[h.shape.length - 1]]);
  let logits: Any;
  if (c.name === 'T1' || c.name === 'W1') {
    const H = c.name === 'T1' ? 256 : 512;
    const input = c.name === 'T1' ? tf.matMul(flat(x), v['embedding0.weight']) : flat(x);
    // x·W_ihᵀ + b_ih + b_hh for all steps at once, then the recurrence step by step
    const xp = tf.reshape(tf.add(tf.matMul(input, v['lstm0.weight_ih_l0'], false, true), tf.add(v['lstm0.bias_ih_l0'], v['lstm0.bias_hh_l0'])), [B, T, 4 * H]);
    const xs = tf.unstack(xp, 1);
    let h = tf.zeros([B, H]);
    let cc = tf.zeros([B, H]);
    const hs: Any[] = [];
    for (let t = 0; t < T; t++) {
      const [i, f, g, o] = tf.split(tf.add(xs[t], tf.matMul(h, v['lstm0.weight_hh_l0'], false, true)), 4, 1);
      cc = tf.add(tf.mul(tf.sigmoid(f), cc), tf.mul(tf.sigmoid(i), tf.tanh(g)));
      h = tf.mul(tf.sigmoid(o), tf.tanh(cc));
      hs.push(h);
    }
    const seq = tf.reshape(tf.stack(hs, 1), [B * T, H]);
    if (c.name === 'W1') return tf.mean(tf.square(tf.sub(seq, flat(y))));
    logits = linear(seq, 'linear0.weight', 'linear0.bias');
  } else {
    const d = 128;
    const heads = 4;
    const dh = d / heads;
    const layerNorm = (h: Any, p: string) => {
      const { mean, variance } = tf.moments(h, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5))), v[`${p}.weight`]), v[`${p}.bias`]);
    };
    // causal mask: −∞ (a large negative) above the diagonal
    const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);
    let h = tf.add(tf.matMul(flat(x), v['embedding0.weight']), tf.tile(tf.slice(v['positional0.weight'], [0, 0], [T, d]), [B, 1]));
    for (const blk of ['repeat0.0', 'repeat0.1']) {
      const a = `${blk}.residual0.attention0`;
      const n1 = layerNorm(h, `${blk}.residual0.layernorm0`);
      const qkv = tf.add(tf.matMul(n1, v[`${a}.in_proj_weight`], false, true), v[`${a}.in_proj_bias`]);
      const [q, k, vv] = tf.split(qkv, 3, 1).map((z: Any) => tf.transpose(tf.reshape(z, [B, T, heads, dh]), [0, 2, 1, 3]));
      const scores = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(dh)), mask);
      const ctx = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), vv), [0, 2, 1, 3]), [B * T, d]);
      h = tf.add(h, linear(ctx, `${a}.out_proj.weight`, `${a}.out_proj.bias`));
      const n2 = layerNorm(h, `${blk}.residual1.layernorm0`);
      const u = linear(n2, `${blk}.residual1.linear0.weight`, `${blk}.residual1.linear0.bias`);
      const gelu = tf.mul(tf.mul(u, 0.5), tf.add(1, tf.erf(tf.div(u, Math.SQRT2))));
      h = tf.add(h, linear(gelu, `${blk}.residual1.linear1.weight`, `${blk}.residual1.linear1.bias`));
    }
    logits = linear(layerNorm(h, 'layernorm0'), 'linear0.weight', 'linear0.bias');
  }
  // cross-entropy on logits, averaged over the B·T positions (targets one-hot)
  return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), -1)));
}

/**
 * One training step's loss and times on `backend`: the first step's loss (to compare with PyTorch's
 * before timing), then up to `steps` timed steps, stopping early once `budgetMs` has been spent.
 */
export async function tfjsTrain(c: TfCase, backend: 'wasm' | 'cpu', weights: ReadonlyMap<string, { data: Float32Array; shape: number[] }>, xs: Float32Array, ys: Float32Array, steps: number, budgetMs: number): Promise<{ first: number; times: number[] }> {
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
  const { B, T } = c;
  const v: Record<string, Any> = {};
  for (const [name, w] of weights) v[name] = tf.variable(tf.tensor(w.data, w.shape, 'float32'));
  const onehot = (ids: Float32Array, n: number) => tf.tidy(() => tf.cast(tf.reshape(tf.oneHot(tf.tensor1d(Int32Array.from(ids), 'int32'), n), [B, T, n]), 'float32'));
  const x = c.name === 'W1' ? tf.tensor(xs, [B, T, 256]) : onehot(xs, 96);
  const y = c.loss === 'mse' ? tf.tensor(ys, [B, T, c.out]) : tf.reshape(onehot(ys, c.out), [B * T, c.out]);
  const opt = tf.train.adam(1e-3, 0.9, 0.999, 1e-8);
  const step = (): number => {
    const cost = opt.minimize(() => lossFn(c, v, x, y), true, Object.values(v));
    const value = cost.dataSync()[0];
    cost.dispose();
    return value;
  };
  try {
    const first = step();
    const times: number[] = [];
    const start = performance.now();
    for (let k = 0; k < steps && performance.now() - start < budgetMs; k++) {
      const t0 = performance.now();
      step();
      times.push(performance.now() - t0);
    }
    return { first, times };
  } finally {
    opt.dispose();
    for (const t of [x, y, ...Object.values(v)]) t.dispose();
  }
}
