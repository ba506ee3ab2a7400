/**
 * Padded steps never affect valid ones, whatever the padded positions of a `vectors` input hold
 * (issue 18, item 4): with NaN, +Infinity or -Infinity there, every output — valid positions, and
 * the zeros at padded ones — equals the output with zeros there, on every backend, for
 * self-attention, cross-attention (forward and generate), a Transformer encoder and pooled
 * recurrent models. Before, self-attention's α·V multiplied a masked weight of 0 by NaN.
 */
import { describe, expect, it } from 'vitest';
import { compileAndImport, decodingRuns, prng } from './helpers.ts';

const SPECS: Record<string, string> = {
  self_attention: `model SelfAttn {
  input x: vectors(dim = 6)
  output y
  attention self, heads = 2
  linear 3
}
`,
  cross_attention: `model Cross {
  input  source: vectors(dim = 6)
  input  target: tokens(vocab = 7)
  output next
  encoder {
    linear 8
    residual { attention self, heads = 2 }
  }
  decoder init = zeros {
    embedding dim = 8
    residual { attention self, heads = 2, causal }
    residual { attention heads = 2 }
    linear 7
    log_softmax
  }
}
`,
  cross_attention_gru: `model CrossGru {
  input  source: vectors(dim = 6)
  input  target: tokens(vocab = 7)
  output next
  encoder {
    gru hidden = 8
  }
  decoder {
    embedding dim = 8
    gru hidden = 8
    attention score = general
    linear 7
    log_softmax
  }
}
`,
  transformer: `model Tr {
  input x: vectors(dim = 6)
  output y
  linear 8
  positional sinusoidal
  repeat 2 {
    residual { layernorm; attention self, heads = 2 }
    residual { layernorm; linear 16; gelu; linear 8 }
  }
  layernorm
  pool mean
  linear 3
  softmax
}
`,
  pooled_gru: `model Pooled {
  input x: vectors(dim = 6)
  output y
  gru hidden = 8, bidirectional
  pool max
  linear 3
}
`,
  pooled_mean: `model PooledMean {
  input x: vectors(dim = 6)
  output y
  linear 8
  tanh
  pool mean
}
`,
};

const backends = [...new Set((await decodingRuns()).map(([b]) => b))];
const B = 3, T = 5, D = 6;
const lengths = [2, 5, 3];
/** x[b, t, :]: a smooth function of the position at valid steps, `pad` at padded ones. */
const vectors = (pad: number) => ({
  data: Float32Array.from({ length: B * T * D }, (_, i) => (Math.floor(i / D) % T < lengths[Math.floor(i / (T * D))]! ? Math.sin(i * 0.7) : pad)),
  shape: [B, T, D],
  lengths,
});
const target = { data: Int32Array.from({ length: B * 4 }, (_, i) => (i * 3) % 7), shape: [B, 4] };

describe.each(Object.keys(SPECS))('%s with non-finite padding', (name) => {
  it.each(backends)('on %s: NaN, +Infinity and -Infinity at padded steps give the outputs zeros give', async (backend) => {
    const mod = await compileAndImport(`pad_${name}`, SPECS[name]!);
    const m = await mod.createModel({ backend });
    try {
      const r = prng(11);
      const w: Record<string, Float32Array> = {};
      for (const wi of m.manifest.weights) w[wi.name] = Float32Array.from({ length: wi.shape.reduce((a: number, c: number) => a * c, 1) }, () => (r() - 0.5) * 0.6);
      m.loadWeights(w);
      const seq2seq = name.startsWith('cross_attention');
      const run = (pad: number) => m.forward(seq2seq ? { source: vectors(pad), target } : { x: vectors(pad) });
      const zeros = Object.values(await run(0))[0] as { data: Float32Array };
      expect(zeros.data.every(Number.isFinite)).toBe(true);
      for (const pad of [NaN, Infinity, -Infinity]) {
        const out = Object.values(await run(pad))[0] as { data: Float32Array };
        expect(Array.from(out.data), `padding ${pad}`).toEqual(Array.from(zeros.data));
      }
      if (seq2seq) {
        const gen = (pad: number) => m.generate({ source: vectors(pad) }, { strategy: 'beam', beam: 2, maxLen: 4, bos: 0 });
        const want = await gen(0);
        for (const pad of [NaN, Infinity, -Infinity]) expect(await gen(pad), `generate, padding ${pad}`).toEqual(want);
      }
    } finally {
      m.dispose();
    }
  });
});
