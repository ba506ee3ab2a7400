/**
 * Transformer forms against PyTorch (test/fixtures/make_transformer_fixtures.py; semantics: the design
 * brief's `positional`, `attention self` / `causal` / `heads` / `normalize`, `residual`, `repeat`, and
 * docs/seq2seq.md): post- and pre-norm nn.TransformerEncoder stacks, nn.MultiheadAttention with a causal
 * mask, gated (sigmoid) and head-less self-attention with every score, an encoder–decoder Transformer
 * (nn.TransformerDecoderLayer) and decoder-only LMs. Driven only through the documented surface:
 * `createModel({ backend })`, `loadWeights(bytes)` (safetensors under nnc's weight names; the manifest lists
 * them in load order), `forward` (cpu within 2e-5 of PyTorch, webasm and gpu within 2e-4) and, for the cases
 * that decode, `generate(first input, opts)`: ids exactly the PyTorch loop's (which recomputes every
 * hypothesis' whole sequence at each step, no cache; every decision wins by ≥ 1e-3), scores within 1e-4.
 * nnc's generate() is cached (keys and values kept per step), so it is also checked against nnc's own
 * forward over the generated sequence: the prompt (or bos) followed by the generated ids is fed to
 * forward(); each greedy token is forward's arg-max at its position, and every returned score is the sum of
 * forward's log-probabilities of its ids. The `gpu` backend runs only where headless-gl is available.
 */
import { describe, expect, it } from 'vitest';
import { type Case, decodingRuns, DECODE_TOL, fixtureModels, indexNames, maxAbsDiff, plainResult, SCORE_TOL, toInputs } from './helpers.ts';

interface GenerateOpts {
  strategy: 'greedy' | 'beam';
  beam?: number;
  maxLen: number;
  bos: number;
  eos: number;
  lengthNormalize?: boolean;
}
interface GenerateRef {
  opts: GenerateOpts;
  ids: number[][];
  scores: number[];
}
interface TfCase extends Case {
  weights: { name: string; shape: number[] }[];
  /** How the output reads as a distribution (docs/seq2seq.md, Decoding); present where the case decodes. */
  distribution?: 'log_softmax' | 'softmax' | 'logits';
  generate?: GenerateRef[];
}
interface Tensor {
  data: ArrayLike<number>;
  shape: number[];
}

const TOL = DECODE_TOL;
const runs = await decodingRuns();
const plain = plainResult;

/** One output step read as log-probabilities. */
function logDist(row: number[], how: NonNullable<TfCase['distribution']>): number[] {
  if (how === 'log_softmax') return row;
  if (how === 'softmax') return row.map(Math.log);
  const m = Math.max(...row);
  const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
  return row.map((v) => v - lse);
}

/** Lowest index of the largest value. */
function argmax(row: number[]): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/**
 * The inputs that replay generated ids through forward(): a language model gets its prompt row followed by
 * ids[:-1] (output step L - 1 + i predicts ids[i]); a seq2seq model gets its source and the target
 * [bos, ids[:-1]] (step i predicts ids[i]). -> inputs, and per row the step that predicts ids[0].
 */
function replay(c: TfCase, source: unknown, ids: number[][], bos: number): { inputs: Record<string, unknown>; starts: number[] } {
  const names = Object.keys(c.inputs);
  const rows: number[][] = [];
  const starts: number[] = [];
  const prompt = c.inputs[names[0]];
  ids.forEach((r, b) => {
    if (names.length === 2) {
      rows.push([bos, ...r.slice(0, -1)]);
      starts.push(0);
    } else {
      const P = prompt.shape[1];
      const L = prompt.lengths![b];
      rows.push([...prompt.data.slice(b * P, b * P + L), ...r.slice(0, -1)]);
      starts.push(L - 1);
    }
  });
  const T = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * T);
  rows.forEach((r, b) => data.set(r, b * T));
  const seq = { data, shape: [rows.length, T], lengths: rows.map((r) => r.length) };
  const inputs = names.length === 2 ? { [names[0]]: source, [names[1]]: seq } : { [names[0]]: seq };
  return { inputs, starts };
}

describe.each(indexNames('transformer-index.json'))('%s', (name) => {
  const { case: raw, withModel } = fixtureModels(name);
  const c = raw as TfCase;
  const inputs = toInputs(c);
  const names = Object.keys(c.inputs);
  const first = { [names[0]]: inputs[names[0]] }; // what generate() takes: the prompt, or the source
  const outName = Object.keys(c.outputs)[0];

  it.each(runs)('forward matches PyTorch on %s at -O%d', async (backend, level) => {
    await withModel(backend, level, async (model) => {
      const out = await model.forward(inputs);
      for (const [key, want] of Object.entries(c.outputs)) {
        expect(out[key].shape).toEqual(want.shape);
        const err = maxAbsDiff(out[key].data, want.data);
        expect(err, `max |nnc - torch| for ${key}`).toBeLessThanOrEqual(TOL[backend]);
      }
    });
  });

  it("the manifest lists nnc's weight names and shapes in the fixture's load order", async () => {
    await withModel('cpu', 2, async (model) => {
      const got = (model.manifest.weights as { name: string; shape: readonly number[] }[]).map((w) => ({ name: w.name, shape: [...w.shape] }));
      expect(got).toEqual(c.weights.map((w) => ({ name: w.name, shape: w.shape })));
    });
  });

  if (c.generate) {
    const refs = c.generate;
    const how = c.distribution ?? 'logits';

    it.each(runs)('generate() matches the PyTorch decoding loop (full recomputation) on %s at -O%d', async (backend, level) => {
      await withModel(backend, level, async (model) => {
        for (const ref of refs) {
          const what = JSON.stringify(ref.opts);
          const got = plain(await model.generate(first, ref.opts));
          expect(got.ids, `ids for ${what}`).toEqual(ref.ids);
          expect(got.scores.length, `scores for ${what}`).toBe(ref.scores.length);
          expect(maxAbsDiff(got.scores, ref.scores), `max |score - torch| for ${what}`).toBeLessThanOrEqual(SCORE_TOL);
        }
      });
    });

    it.each(runs)('cached generate() agrees with forward() over the generated sequence on %s at -O%d', async (backend, level) => {
      await withModel(backend, level, async (model) => {
        for (const ref of refs) {
          const what = JSON.stringify(ref.opts);
          const got = plain(await model.generate(first, ref.opts));
          const { inputs: seq, starts } = replay(c, inputs[names[0]], got.ids, ref.opts.bos);
          const out = (await model.forward(seq))[outName] as Tensor;
          const [, T, V] = out.shape;
          const flat = Array.from(out.data);
          got.ids.forEach((ids, b) => {
            let sum = 0;
            ids.forEach((id, i) => {
              const at = (b * T + starts[b] + i) * V;
              const row = flat.slice(at, at + V);
              sum += logDist(row, how)[id];
              if (ref.opts.strategy === 'greedy') expect(argmax(row), `row ${b} step ${i}: forward's arg-max vs generated id for ${what}`).toBe(id);
            });
            // the summed log-probabilities of forward vs generate's score (each within its tolerance of PyTorch)
            const tol = SCORE_TOL + ids.length * TOL[backend];
            expect(Math.abs(sum - got.scores[b]), `row ${b}: forward's summed log-probs vs generate's score for ${what}`).toBeLessThanOrEqual(tol);
          });
        }
      });
    });
  }
});
