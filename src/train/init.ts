/**
 * Initial weights for training from scratch, seeded, after PyTorch's defaults for each layer kind
 * (the distributions, not PyTorch's random streams):
 *
 * - embedding, positional tables: N(0, 1) (nn.Embedding);
 * - lstm / gru / rnn: U(−1/√hidden, 1/√hidden) for every weight and bias (nn.LSTM, nn.GRU, nn.RNN);
 * - layernorm / rmsnorm: weight 1, bias 0;
 * - attention: matrices Xavier-uniform, biases 0 (nn.MultiheadAttention);
 * - any other matrix [out, in]: U(−1/√in, 1/√in) with its bias alike (nn.Linear's kaiming_uniform(a = √5)).
 */
import { streamOf } from './random.ts';

interface WeightLike {
  readonly name: string;
  readonly shape: readonly number[];
  readonly layer: string;
}

export function initialWeights(weights: readonly WeightLike[], seed: number): Record<string, Float32Array> {
  const random = streamOf(seed, 'init');
  const byName = new Map(weights.map((w) => [w.name, w]));
  const out: Record<string, Float32Array> = {};
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * random.next() - 1) * bound);
  for (const w of weights) {
    const n = w.shape.reduce((a, c) => a * c, 1);
    const leaf = w.name.slice(w.name.lastIndexOf('.') + 1);
    const prefix = w.name.slice(0, w.name.length - leaf.length);
    if (w.layer === 'embedding' || w.layer === 'positional') out[w.name] = Float32Array.from({ length: n }, () => random.normal());
    else if (/norm/.test(w.layer)) out[w.name] = new Float32Array(n).fill(leaf.includes('bias') ? 0 : 1);
    else if (['lstm', 'gru', 'rnn'].includes(w.layer)) {
      // hidden: the columns of this layer's recurrent matrix (weight_hh_l0 …), else its rows / gates
      const hh = weights.find((x) => x.name.startsWith(prefix) && x.name.slice(prefix.length).startsWith('weight_hh'));
      const hidden = hh ? hh.shape[1]! : w.shape[0]!;
      out[w.name] = uniform(n, 1 / Math.sqrt(hidden));
    } else if (w.shape.length >= 2) {
      const [rows, cols] = [w.shape[0]!, w.shape.slice(1).reduce((a, c) => a * c, 1)];
      out[w.name] = w.layer === 'attention' ? uniform(n, Math.sqrt(6 / (rows + cols))) : uniform(n, 1 / Math.sqrt(cols));
    } else if (w.layer === 'attention') out[w.name] = new Float32Array(n);
    else {
      // a bias: its matrix's fan-in (the weight beside it), as nn.Linear
      const m = byName.get(`${prefix}${leaf.replace('bias', 'weight')}`);
      const fanIn = m && m.shape.length >= 2 ? m.shape.slice(1).reduce((a, c) => a * c, 1) : n;
      out[w.name] = uniform(n, 1 / Math.sqrt(fanIn));
    }
  }
  return out;
}
