/**
 * Seeded dropout masks. `dropout p` is the identity in forward, evaluate and generate; in a training
 * step, element i of dropout layer `layer` at optimiser step `step` is kept (and scaled by
 * 1 / (1 − p), as torch.nn.Dropout) when u ≥ p, with u a uniform number in [0, 1) drawn from a
 * counter-based hash of (seed, step, layer, i): any element's decision can be computed alone, in
 * any order, on any backend, and a resumed run draws the same masks. (PyTorch's masks come from its
 * own generator, so they are not PyTorch's.)
 *
 * The hash is Chris Wellons' lowbias32 applied in a chain, u = its top 24 bits / 2^24 (exact in
 * float32).
 */

function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The uniform number in [0, 1) of element `index` of dropout layer `layer` at step `step`. */
export function dropoutUniform(seed: number, step: number, layer: number, index: number): number {
  const key = lowbias32((lowbias32((lowbias32(seed >>> 0) + (step >>> 0)) >>> 0) + (layer >>> 0)) >>> 0);
  return (lowbias32((key + (index >>> 0)) >>> 0) >>> 8) / 16777216;
}

/** The mask of `count` elements: 0 where dropped, 1 / (1 − p) where kept. */
export function dropoutMask(p: number, seed: number, step: number, layer: number, count: number): Float32Array {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout p must be in [0, 1), got ${p}`);
  const scale = Math.fround(1 / (1 - p));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = dropoutUniform(seed, step, layer, i) >= p ? scale : 0;
  return out;
}
