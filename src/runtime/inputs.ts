/** Input checks: names, shapes, dtypes, token ranges and lengths of what an app passes to a model. */
import type { InputInfo } from './types.ts';
import { NncError, showValue, typeName } from './errors.ts';

export interface PreparedInput {
  B: number;
  T: number;
  data: Float32Array;
  lengths: Float32Array;
}

function nestedToTensor(name: string, v: unknown[]): { data: number[]; shape: number[] } {
  const shape: number[] = [];
  let probe: unknown = v;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const data: number[] = [];
  const walk = (x: unknown, depth: number) => {
    if (depth === shape.length) {
      if (typeof x !== 'number') throw new NncError(`input '${name}': expected numbers in the nested array, found ${typeof x}`);
      data.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth]) throw new NncError(`input '${name}': nested array is ragged at depth ${depth} (expected length ${shape[depth]}); pad the rows and pass lengths`);
    for (const e of x) walk(e, depth + 1);
  };
  walk(v, 0);
  return { data, shape };
}

/**
 * Validates one input against its declaration and converts it to kernel buffers. A `vectors` input
 * must hold finite numbers at its valid positions (steps below its row's length; padding is not
 * read): NaN and ±Infinity would give NaN on some backends and finite garbage on others (gpu.js's
 * GL kernels), so they are an error unless `allowNonFinite` (createModel's option).
 * `share`: the caller only reads `data` (the onnxruntime backends: ONNX Runtime reads its inputs),
 * so a Float32Array with no padded steps to zero is returned as it is, not copied.
 */
export function prepareInput(info: InputInfo, given: unknown, allowNonFinite = false, share = false): PreparedInput {
  const name = info.name;
  if (given === undefined || given === null) throw new NncError(`missing input '${name}'`);
  let data: ArrayLike<number>;
  let shape: number[];
  let lengths: ArrayLike<number> | undefined;
  if (Array.isArray(given)) ({ data, shape } = nestedToTensor(name, given));
  else {
    const g = given as { data?: ArrayLike<number>; shape?: number[]; lengths?: ArrayLike<number> };
    if (typeof g !== 'object' || !('data' in g) || !Array.isArray(g.shape)) throw new NncError(`input '${name}' must be { data, shape, lengths? } or a nested number array, got ${typeName(g)}${typeof g === 'object' ? ` with keys ${Object.keys(g).join(', ') || '(none)'}` : ''}`);
    if (!Array.isArray(g.data) && !(ArrayBuffer.isView(g.data) && typeName(g.data) !== 'DataView')) throw new NncError(`input '${name}': data must be a typed array or a number[], got ${typeName(g.data)}`);
    data = g.data;
    shape = g.shape;
    lengths = g.lengths;
  }
  const rank = info.form === 'tokens' ? 2 : 3;
  const want = info.form === 'tokens' ? '[B, T]' : `[B, T, ${info.dim}]`;
  if (shape.length !== rank || shape.some((d) => !Number.isInteger(d) || d < 1)) throw new NncError(`input '${name}' has shape [${shape.map(showValue).join(', ')}], expected ${want} with positive integer sizes`);
  if (info.form === 'vectors' && shape[2] !== info.dim) throw new NncError(`input '${name}' has ${shape[2]} features per step, expected dim = ${info.dim}`);
  const B = shape[0]!;
  const T = shape[1]!;
  const count = shape.reduce((a, c) => a * c, 1);
  if (data.length !== count) throw new NncError(`input '${name}' has ${data.length} values, but shape [${shape.join(', ')}] needs ${count}`);
  if (info.maxLen !== undefined && (info.fixedSteps ? T !== info.maxLen : T > info.maxLen)) {
    throw new NncError(`input '${name}' has ${T} steps, expected ${info.fixedSteps ? 'exactly' : 'at most'} max_len = ${info.maxLen}`);
  }
  const dtype = typeName(data);
  if (info.form === 'tokens') {
    if (/^(Float|Big)/.test(dtype)) throw new NncError(`input '${name}' holds token ids and must be integers (Int32Array or number[]), got ${dtype}`);
    for (let i = 0; i < count; i++) {
      const v = data[i]!;
      const where = `at position ${i} (row ${Math.floor(i / T)}, step ${i % T})`;
      if (!Number.isInteger(v)) throw new NncError(`input '${name}' has token id ${showValue(v)} ${where}, expected an integer in [0, ${info.vocab})`);
      if (v < 0 || v >= info.vocab!) throw new NncError(`input '${name}' has token id ${v} ${where}, outside the vocabulary [0, ${info.vocab})`);
    }
  } else {
    if (dtype !== 'Array' && !/^Float/.test(dtype)) throw new NncError(`input '${name}' holds feature vectors and must be floats (Float32Array or number[]), got ${dtype}`);
    if (dtype === 'Array') {
      for (let i = 0; i < count; i++) {
        if (typeof data[i] !== 'number') throw new NncError(`input '${name}' has ${showValue(data[i])} (${typeName(data[i])}) at position ${i}, expected a number`);
      }
    }
  }
  const lens = new Float32Array(B);
  if (lengths === undefined) lens.fill(T);
  else {
    if (!Array.isArray(lengths) && !(ArrayBuffer.isView(lengths) && typeName(lengths) !== 'DataView')) throw new NncError(`input '${name}': lengths must be an array with one entry per row (B = ${B}), got ${typeName(lengths)}`);
    if (lengths.length !== B) throw new NncError(`input '${name}': lengths has ${lengths.length} entries, expected one per row (B = ${B})`);
    for (let b = 0; b < B; b++) {
      const l = lengths[b]!;
      if (!Number.isInteger(l) || l < 1 || l > T) throw new NncError(`input '${name}': lengths[${b}] = ${showValue(l)}, expected an integer in [1, ${T}]`);
      if (info.fixedSteps && l !== T) throw new NncError(`input '${name}': lengths[${b}] = ${l}, but this model reads a fixed window of ${T} steps`);
      lens[b] = l;
    }
  }
  const padded = lens.some((l) => l < T);
  // a Float32Array's copy is a memcpy (slice); Float32Array.from converts element by element
  const f32 = data instanceof Float32Array ? (share && !(info.form === 'vectors' && padded) ? data : data.slice()) : Float32Array.from(data);
  if (info.form === 'vectors' && !allowNonFinite) {
    const D = info.dim!;
    for (let b = 0; b < B; b++) {
      for (let i = b * T * D, end = i + lens[b]! * D; i < end; i++) {
        const v = f32[i]!;
        if (v - v === 0) continue;
        const step = Math.floor(i / D) - b * T;
        const was = data[i]!;
        const shown = Number.isFinite(was) ? `${was} (beyond float32's range)` : String(was);
        throw new NncError(`input '${name}' has ${shown} at row ${b}, step ${step}, feature ${i % D}: inputs must be finite at valid steps (padded steps past lengths[${b}] are not read); replace it, or pass createModel({ allowNonFinite: true }) to accept it (results then differ between backends)`);
      }
    }
  }
  // Padded steps never affect valid ones: a vectors input's padded steps are zeros to every kernel,
  // whatever the app put there (NaN or ±Infinity would otherwise reach valid positions through a
  // weight of exactly 0 in a product over time, e.g. attention's α·V, where 0 × NaN is NaN).
  if (info.form === 'vectors' && padded) {
    const D = info.dim!;
    for (let b = 0; b < B; b++) f32.fill(0, (b * T + lens[b]!) * D, (b + 1) * T * D);
  }
  return { B, T, data: f32, lengths: lens };
}

/** Checks the inputs object: every declared input present, nothing else. */
export function checkInputNames(inputs: unknown, declared: readonly InputInfo[]): Record<string, unknown> {
  if (typeof inputs !== 'object' || inputs === null) throw new NncError(`forward expects an object of inputs: { ${declared.map((i) => i.name).join(', ')} }`);
  const names = new Set(declared.map((i) => i.name));
  for (const k of Object.keys(inputs)) if (!names.has(k)) throw new NncError(`unknown input '${k}': this model's inputs are ${[...names].join(', ')}`);
  return inputs as Record<string, unknown>;
}

/** The declared inputs, checked and converted: names, each input, and one batch size for all. */
export function prepareInputs(inputs: unknown, declared: readonly InputInfo[], allowNonFinite = false, share = false): PreparedInput[] {
  const named = checkInputNames(inputs, declared);
  const prepared = declared.map((info) => prepareInput(info, Object.hasOwn(named, info.name) ? named[info.name] : undefined, allowNonFinite, share));
  const B = prepared[0]!.B;
  prepared.forEach((p, k) => {
    if (p.B !== B) throw new NncError(`input '${declared[k]!.name}' has ${p.B} rows but '${declared[0]!.name}' has ${B}: every input needs the same batch size`);
  });
  return prepared;
}
