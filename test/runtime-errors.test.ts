/**
 * The generated module's user-facing errors (README.md, docs/seq2seq.md): every weight or
 * input a user can get wrong throws an Error naming the tensor or input, the expected and the
 * actual value; nothing is silently broadcast, truncated or read out of bounds. Plus the positive
 * side of the same contract: nested arrays, omitted lengths, weight maps, reloading, padded zeros.
 * Everything runs on 'cpu'; a subset (marked `webasm: true`) also runs on 'webasm'.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileAndImport, loadCase, maxAbsDiff, toInputs, type Case } from './helpers.ts';
import { buildSafetensors, f32bytes, junk, rawSafetensors, readSafetensors, type RawTensor } from './safetensors-file.ts';

/** The webasm runs cover a subset: the other cases are simply not defined there (not skipped). */
const defineNothing = ((..._args: unknown[]) => undefined) as unknown as typeof it;

type Model = {
  backend: string;
  loadWeights(src: unknown): void;
  forward(inputs: unknown): Promise<Record<string, { data: Float32Array; shape: number[] }>>;
  dispose(): void;
};
type Module = { createModel(options?: unknown): Promise<Model>; manifest: { weights: readonly { name: string; shape: readonly number[] }[] } };

// ───────────── helpers ─────────────

/** Runs `fn` (sync or async) and checks it throws an Error whose message contains every `part`. */
async function expectError(fn: () => unknown, ...parts: (string | RegExp)[]): Promise<Error> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected an error mentioning ${parts.join(' / ')}`).toBeInstanceOf(Error);
  const msg = (thrown as Error).message;
  for (const p of parts) {
    if (typeof p === 'string') expect(msg, `message should mention ${JSON.stringify(p)}`).toContain(p);
    else expect(msg).toMatch(p);
  }
  // a user error, not a JavaScript failure deep inside the module
  expect(thrown).not.toBeInstanceOf(TypeError);
  expect(thrown).not.toBeInstanceOf(RangeError);
  return thrown as Error;
}

function weightRecord(bytes: Uint8Array): Record<string, Float32Array> {
  const rec: Record<string, Float32Array> = {};
  for (const t of readSafetensors(bytes).tensors) rec[t.name] = new Float32Array(Uint8Array.from(t.bytes).buffer);
  return rec;
}

/** A case input as nested number arrays ([B][T] or [B][T][D]). */
function nested(data: number[], shape: number[]): unknown[] {
  const [B, T, D] = shape;
  return Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => (D === undefined ? data[b * T + t] : data.slice((b * T + t) * D, (b * T + t + 1) * D))));
}

const TOL: Record<string, number> = { cpu: 1e-5, webasm: 1e-4 };

// ───────────── fixtures ─────────────

const privateCopy = (c: ReturnType<typeof loadCase>) => ({ ...c, weights: Uint8Array.from(c.weights) });
const lstm = privateCopy(loadCase('lstm')); // text: tokens(vocab = 10), [3, 5], lengths [5, 3, 1]; y [3, 5, 5]
const nplm = privateCopy(loadCase('nplm_flatten')); // ctx: tokens(vocab = 20, max_len = 4), flatten
const vec = privateCopy(loadCase('lstm_bidir_layers3_vectors')); // x: vectors(dim = 6), [3, 5, 6]

let lstmMod: Module;
let nplmMod: Module;
let vecMod: Module;
beforeAll(async () => {
  // own module names, so that other test files compiling the same fixtures never race on a file
  lstmMod = (await compileAndImport('rterr_lstm', lstm.spec, 'test/fixtures/lstm/model.nn')) as Module;
  nplmMod = (await compileAndImport('rterr_nplm_flatten', nplm.spec, 'test/fixtures/nplm_flatten/model.nn')) as Module;
  vecMod = (await compileAndImport('rterr_lstm_bidir_layers3_vectors', vec.spec, 'test/fixtures/lstm_bidir_layers3_vectors/model.nn')) as Module;
});

const text = lstm.case.inputs.text; // shape [3, 5]
const goodText = () => ({ data: Int32Array.from(text.data), shape: [...text.shape], lengths: [...text.lengths!] });
const withIds = (ids: number[]) => ({ text: { data: ids, shape: [...text.shape], lengths: [...text.lengths!] } });
const idsWith = (pos: number, v: number) => {
  const ids = [...text.data];
  ids[pos] = v;
  return ids;
};

// ───────────── weight errors ─────────────

const lstmTensors = () => readSafetensors(lstm.weights).tensors;
const edit = (name: string, f: (t: RawTensor) => RawTensor | undefined): RawTensor[] =>
  lstmTensors().flatMap((t) => {
    if (t.name !== name) return [t];
    const r = f(t);
    return r ? [r] : [];
  });

interface WeightCase {
  what: string;
  src: () => unknown;
  parts: (string | RegExp)[];
  webasm?: boolean;
}

const weightCases: WeightCase[] = [
  { what: 'a missing tensor', src: () => buildSafetensors(edit('lstm0.bias_hh_l0', () => undefined)), parts: ["missing weight 'lstm0.bias_hh_l0'", 'expected shape [20]'], webasm: true },
  {
    what: 'an extra tensor',
    src: () => buildSafetensors([...lstmTensors(), { name: 'lstm0.bias_hh_l1', dtype: 'F32', shape: [20], bytes: f32bytes(20) }]),
    parts: ["unexpected weight 'lstm0.bias_hh_l1'"],
    webasm: true,
  },
  {
    what: 'a transposed tensor (same size, wrong shape)',
    src: () => buildSafetensors(edit('lstm0.weight_hh_l0', (t) => ({ ...t, shape: [5, 20] }))),
    parts: ["'lstm0.weight_hh_l0'", 'shape [5, 20]', 'expected [20, 5]'],
    webasm: true,
  },
  {
    what: 'a tensor of the wrong size',
    src: () => buildSafetensors(edit('lstm0.weight_ih_l0', (t) => ({ ...t, shape: [20, 3], bytes: f32bytes(60) }))),
    parts: ["'lstm0.weight_ih_l0'", 'shape [20, 3]', 'expected [20, 4]'],
  },
  {
    what: 'a tensor of the wrong rank',
    src: () => buildSafetensors(edit('lstm0.bias_ih_l0', (t) => ({ ...t, shape: [1, 20] }))),
    parts: ["'lstm0.bias_ih_l0'", 'shape [1, 20]', 'expected [20]'],
  },
  {
    what: 'an I32 tensor',
    src: () => buildSafetensors(edit('lstm0.bias_ih_l0', (t) => ({ ...t, dtype: 'I32' }))),
    parts: ["'lstm0.bias_ih_l0'", 'I32', 'expected F32, F16 or BF16'],
    webasm: true,
  },
  {
    what: 'an F16 tensor with the byte count of F32',
    src: () => buildSafetensors(edit('lstm0.bias_ih_l0', (t) => ({ ...t, dtype: 'F16' }))),
    parts: ["'lstm0.bias_ih_l0'", '80 bytes', 'F16 [20] needs 40'],
  },
  {
    what: 'an F64 tensor',
    src: () => buildSafetensors(edit('embedding0.weight', (t) => ({ ...t, dtype: 'F64', bytes: new Uint8Array(320) }))),
    parts: ["'embedding0.weight'", 'F64', 'expected F32'],
  },
  {
    what: 'an F32 tensor whose bytes do not match its own header shape',
    src: () => buildSafetensors(edit('lstm0.bias_ih_l0', (t) => ({ ...t, bytes: t.bytes.slice(0, 76) }))),
    parts: ["'lstm0.bias_ih_l0'", '76 bytes', '[20]', '80'],
  },
  {
    what: 'fractional data_offsets',
    src: () => buildSafetensors(lstmTensors(), { 'lstm0.bias_hh_l0': [880.5, 960.5] }),
    parts: ["'lstm0.bias_hh_l0'", 'data_offsets', '880.5'],
  },
  { what: 'negative data_offsets', src: () => buildSafetensors(lstmTensors(), { 'lstm0.bias_hh_l0': [-4, 76] }), parts: ["'lstm0.bias_hh_l0'", 'data_offsets', '-4'] },
  { what: 'reversed data_offsets', src: () => buildSafetensors(lstmTensors(), { 'lstm0.bias_hh_l0': [960, 880] }), parts: ["'lstm0.bias_hh_l0'", 'data_offsets'] },
  { what: 'no data_offsets', src: () => buildSafetensors(lstmTensors(), { 'lstm0.bias_hh_l0': undefined }), parts: ["'lstm0.bias_hh_l0'", 'data_offsets'] },
  { what: 'a header that is a JSON array', src: () => rawSafetensors('[1, 2]'), parts: ['not a JSON object'] },
  { what: 'a header that is a JSON string', src: () => rawSafetensors('"weights"'), parts: ['not a JSON object'] },
  { what: 'a header that is JSON null', src: () => rawSafetensors('null'), parts: ['not a JSON object'], webasm: true },
  { what: 'a header that is a JSON number', src: () => rawSafetensors('42'), parts: ['not a JSON object'] },
  { what: 'a header that is not JSON', src: () => rawSafetensors('{"a": '), parts: ['not valid JSON'] },
  { what: 'an empty header', src: () => rawSafetensors(''), parts: ['not valid JSON'] },
  { what: 'a valid length prefix before junk', src: () => rawSafetensors(String.fromCharCode(...junk(64, 5))), parts: ['not valid JSON'] },
  {
    what: 'an empty header object (every tensor missing)',
    src: () => rawSafetensors('{}'),
    parts: ["missing weight 'embedding0.weight'", "missing weight 'lstm0.weight_ih_l0'", "missing weight 'lstm0.bias_hh_l0'"],
  },
  // weight maps
  {
    what: 'a map with a wrong-length Float32Array',
    src: () => ({ ...weightRecord(lstm.weights), 'lstm0.weight_hh_l0': new Float32Array(99) }),
    parts: ["'lstm0.weight_hh_l0'", '[99]', 'expected [20, 5]'],
    webasm: true,
  },
  {
    what: 'a map with a Float64Array value',
    src: () => ({ ...weightRecord(lstm.weights), 'lstm0.bias_ih_l0': new Float64Array(20) }),
    parts: ["'lstm0.bias_ih_l0'", 'Float64Array', 'Float32Array'],
    webasm: true,
  },
  {
    what: 'a map with a number[] value',
    src: () => ({ ...weightRecord(lstm.weights), 'lstm0.bias_ih_l0': new Array(20).fill(0) }),
    parts: ["'lstm0.bias_ih_l0'", 'Array', 'Float32Array'],
  },
  { what: 'a map with a null value', src: () => ({ ...weightRecord(lstm.weights), 'embedding0.weight': null }), parts: ["'embedding0.weight'", 'null', 'Float32Array'] },
  { what: 'a map missing a tensor', src: () => ({ ...weightRecord(lstm.weights), 'lstm0.bias_hh_l0': undefined }), parts: ["'lstm0.bias_hh_l0'"] },
  {
    what: 'a map with an extra tensor',
    src: () => ({ ...weightRecord(lstm.weights), 'linear0.weight': new Float32Array(4) }),
    parts: ["unexpected weight 'linear0.weight'"],
  },
  { what: 'an empty map', src: () => ({}), parts: ["missing weight 'embedding0.weight'", "missing weight 'lstm0.bias_hh_l0'"] },
  // not weights at all
  { what: 'null', src: () => null, parts: ['loadWeights expects', 'null'] },
  { what: 'a path to no file', src: () => 'no/such/weights.safetensors', parts: ["cannot load weights from 'no/such/weights.safetensors'", 'no such file'] },
  { what: 'a number', src: () => 42, parts: ['loadWeights expects', 'number'] },
  { what: 'an Int8Array', src: () => new Int8Array(lstm.weights), parts: ['loadWeights expects', 'Int8Array'] },
  { what: 'a Float32Array', src: () => new Float32Array(8), parts: ['loadWeights expects', 'Float32Array'] },
  { what: 'an array of tensors', src: () => [new Float32Array(40)], parts: ['loadWeights expects', 'Array'] },
  { what: 'a Map', src: () => new Map(Object.entries(weightRecord(lstm.weights))), parts: ['loadWeights expects', 'Map'] },
];

// truncation at several points: inside the 8-byte length, inside the JSON header, inside the data
const { headerLen: HLEN } = readSafetensors(lstm.weights);
const BASE = 8 + HLEN;
for (const cut of [0, 1, 4, 7]) {
  weightCases.push({ what: `bytes cut at ${cut} (inside the length)`, src: () => lstm.weights.slice(0, cut), parts: ['truncated', `${cut} bytes`], webasm: cut === 4 });
}
for (const cut of [8, 9, Math.floor(8 + HLEN / 2), BASE - 1]) {
  weightCases.push({ what: `bytes cut at ${cut} (inside the header)`, src: () => lstm.weights.slice(0, cut), parts: ['truncated', `claims ${HLEN} bytes`, `only ${cut - 8} follow`] });
}
for (const cut of [BASE, BASE + 1, BASE + 200, lstm.weights.length - 1]) {
  weightCases.push({
    what: `bytes cut at ${cut} (inside the data)`,
    src: () => lstm.weights.slice(0, cut),
    parts: ['truncated', /tensor '[a-z0-9_.]+'/, `which has ${cut - BASE}`],
    webasm: cut === BASE + 200,
  });
}
for (const [n, seed] of [[3, 1], [8, 2], [64, 3], [1000, 4], [5000, 5]] as const) {
  weightCases.push({ what: `${n} random junk bytes (seed ${seed})`, src: () => junk(n, seed), parts: [/safetensors/] });
}

describe.each([
  ['cpu', false],
  ['webasm', true],
] as const)('loadWeights errors on %s', (backend, subsetOnly) => {
  let model: Model;
  let reference: Float32Array;
  beforeAll(async () => {
    model = await lstmMod.createModel({ backend });
    expect(model.backend).toBe(backend);
    model.loadWeights(lstm.weights);
    reference = (await model.forward(toInputs(lstm.case))).y.data;
  });
  afterAll(() => model?.dispose());

  const cases = subsetOnly ? weightCases.filter((c) => c.webasm) : weightCases;
  it.each(cases.map((c) => [c.what, c] as const))('rejects %s', async (_, c) => {
    await expectError(() => model.loadWeights(c.src()), ...c.parts);
    // a failed load leaves the previous weights in place
    const out = await model.forward(toInputs(lstm.case));
    expect(Array.from(out.y.data)).toEqual(Array.from(reference));
  });
});

// ───────────── input errors ─────────────

interface InputCase {
  what: string;
  inputs: () => unknown;
  parts: (string | RegExp)[];
  webasm?: boolean;
}

const lstmInputCases: InputCase[] = [
  { what: 'a missing input', inputs: () => ({}), parts: ["missing input 'text'"], webasm: true },
  { what: 'an unknown extra input', inputs: () => ({ text: goodText(), txt: goodText() }), parts: ["unknown input 'txt'", 'text'], webasm: true },
  { what: 'a misspelt input alone', inputs: () => ({ txt: goodText() }), parts: ["'txt'", 'text'] },
  { what: 'rank 1', inputs: () => ({ text: { data: Int32Array.from(text.data), shape: [15] } }), parts: ["'text'", 'shape [15]', 'expected [B, T]'], webasm: true },
  { what: 'rank 3', inputs: () => ({ text: { data: Int32Array.from(text.data), shape: [3, 5, 1] } }), parts: ["'text'", 'shape [3, 5, 1]', 'expected [B, T]'] },
  { what: 'a zero-sized dimension', inputs: () => ({ text: { data: new Int32Array(0), shape: [0, 5] } }), parts: ["'text'", 'shape [0, 5]'] },
  { what: 'a non-integer dimension', inputs: () => ({ text: { data: new Int32Array(15), shape: [3, 5.5] } }), parts: ["'text'", 'shape [3, 5.5]'] },
  { what: 'a string dimension', inputs: () => ({ text: { data: new Int32Array(15), shape: [3, '5'] } }), parts: ["'text'", 'shape [3, "5"]'] },
  { what: 'too few values for the shape', inputs: () => ({ text: { data: Int32Array.from(text.data.slice(0, 14)), shape: [3, 5] } }), parts: ["'text'", '14 values', 'shape [3, 5] needs 15'], webasm: true },
  { what: 'too many values for the shape', inputs: () => ({ text: { data: Int32Array.from([...text.data, 0]), shape: [3, 5] } }), parts: ["'text'", '16 values', 'needs 15'] },
  { what: 'a token id = vocab', inputs: () => withIds(idsWith(7, 10)), parts: ["'text'", 'token id 10', 'row 1, step 2', '[0, 10)'], webasm: true },
  { what: 'a huge token id', inputs: () => withIds(idsWith(14, 1e9)), parts: ["'text'", 'token id 1000000000', 'row 2, step 4', '[0, 10)'] },
  { what: 'a negative token id', inputs: () => withIds(idsWith(0, -1)), parts: ["'text'", 'token id -1', 'row 0, step 0', '[0, 10)'], webasm: true },
  { what: 'a non-integer token id', inputs: () => withIds(idsWith(3, 2.5)), parts: ["'text'", 'token id 2.5', 'row 0, step 3', 'integer'] },
  { what: 'a NaN token id', inputs: () => withIds(idsWith(3, NaN)), parts: ["'text'", 'token id NaN'] },
  { what: 'a string token id', inputs: () => withIds(idsWith(3, '4' as unknown as number)), parts: ["'text'", 'token id "4"'] },
  { what: 'a token id beyond vocab in a padded step', inputs: () => withIds(idsWith(14, 10)), parts: ["'text'", 'token id 10', 'row 2, step 4'] },
  { what: 'token ids as a Float32Array', inputs: () => ({ text: { ...goodText(), data: Float32Array.from(text.data) } }), parts: ["'text'", 'Float32Array', 'integers'], webasm: true },
  { what: 'token ids as a Float64Array', inputs: () => ({ text: { ...goodText(), data: Float64Array.from(text.data) } }), parts: ["'text'", 'Float64Array', 'integers'] },
  { what: 'token ids as a BigInt64Array', inputs: () => ({ text: { ...goodText(), data: BigInt64Array.from(text.data.map(BigInt)) } }), parts: ["'text'", 'BigInt64Array'] },
  { what: 'token ids as a string', inputs: () => ({ text: { data: '012340123401234', shape: [3, 5] } }), parts: ["'text'", 'string'] },
  { what: 'token ids as a plain object', inputs: () => ({ text: { data: { length: 15 }, shape: [3, 5] } }), parts: ["'text'", 'Object'] },
  { what: 'an input without a shape', inputs: () => ({ text: { data: Int32Array.from(text.data) } }), parts: ["'text'", '{ data, shape, lengths? }'] },
  { what: 'an input that is a number', inputs: () => ({ text: 5 }), parts: ["'text'", 'number'] },
  { what: 'a ragged nested array', inputs: () => ({ text: [[1, 2, 3], [4, 5]] }), parts: ["'text'", 'ragged'], webasm: true },
  { what: 'a nested array of strings', inputs: () => ({ text: [['1', '2']] }), parts: ["'text'", 'string'] },
  { what: 'an empty nested array', inputs: () => ({ text: [] }), parts: ["'text'", 'shape [0]'] },
  { what: 'lengths with too few entries', inputs: () => ({ text: { ...goodText(), lengths: [5, 3] } }), parts: ["'text'", 'lengths has 2 entries', 'B = 3'], webasm: true },
  { what: 'lengths with too many entries', inputs: () => ({ text: { ...goodText(), lengths: [5, 3, 1, 1] } }), parts: ["'text'", 'lengths has 4 entries', 'B = 3'] },
  { what: 'a length of 0', inputs: () => ({ text: { ...goodText(), lengths: [5, 3, 0] } }), parts: ["'text'", 'lengths[2] = 0', '[1, 5]'], webasm: true },
  { what: 'a length > T', inputs: () => ({ text: { ...goodText(), lengths: [6, 3, 1] } }), parts: ["'text'", 'lengths[0] = 6', '[1, 5]'], webasm: true },
  { what: 'a negative length', inputs: () => ({ text: { ...goodText(), lengths: [5, -3, 1] } }), parts: ["'text'", 'lengths[1] = -3'] },
  { what: 'a fractional length', inputs: () => ({ text: { ...goodText(), lengths: [5, 2.5, 1] } }), parts: ["'text'", 'lengths[1] = 2.5'] },
  { what: 'a string length', inputs: () => ({ text: { ...goodText(), lengths: [5, '3', 1] } }), parts: ["'text'", 'lengths[1] = "3"'] },
  { what: 'lengths as a number', inputs: () => ({ text: { ...goodText(), lengths: 3 } }), parts: ["'text'", 'lengths must be an array', 'B = 3', 'number'] },
  { what: 'inputs that are null', inputs: () => null, parts: ['forward expects an object', 'text'] },
];

describe.each([
  ['cpu', false],
  ['webasm', true],
] as const)('forward input errors on %s', (backend, subsetOnly) => {
  let model: Model;
  beforeAll(async () => {
    model = await lstmMod.createModel({ backend });
    model.loadWeights(lstm.weights);
  });
  afterAll(() => model?.dispose());

  const cases = subsetOnly ? lstmInputCases.filter((c) => c.webasm) : lstmInputCases;
  it.each(cases.map((c) => [c.what, c] as const))('rejects %s', async (_, c) => {
    await expectError(() => model.forward(c.inputs()), ...c.parts);
  });

  it('still runs correctly after all those errors', async () => {
    const out = await model.forward(toInputs(lstm.case));
    expect(maxAbsDiff(out.y.data, lstm.case.outputs.y.data)).toBeLessThanOrEqual(TOL[backend]);
  });
});

describe('fixed-window (flatten) input: nplm_flatten', () => {
  let model: Model;
  const ctx = nplm.case.inputs.ctx; // [3, 4], max_len = 4
  beforeAll(async () => {
    model = await nplmMod.createModel({ backend: 'cpu' });
    model.loadWeights(nplm.weights);
  });
  afterAll(() => model?.dispose());

  it('matches PyTorch with T = max_len', async () => {
    const out = await model.forward(toInputs(nplm.case));
    expect(out.next.shape).toEqual(nplm.case.outputs.next.shape);
    expect(maxAbsDiff(out.next.data, nplm.case.outputs.next.data)).toBeLessThanOrEqual(1e-5);
  });
  it('rejects T < max_len', async () => {
    await expectError(() => model.forward({ ctx: { data: Int32Array.from(ctx.data.slice(0, 9)), shape: [3, 3] } }), "'ctx'", '3 steps', 'exactly max_len = 4');
  });
  it('rejects T > max_len', async () => {
    await expectError(() => model.forward({ ctx: { data: new Int32Array(15), shape: [3, 5] } }), "'ctx'", '5 steps', 'exactly max_len = 4');
  });
  it('rejects a short row (lengths < max_len)', async () => {
    await expectError(() => model.forward({ ctx: { data: Int32Array.from(ctx.data), shape: [3, 4], lengths: [4, 3, 4] } }), "'ctx'", 'lengths[1] = 3', 'fixed window of 4');
  });
  it('rejects a token id ≥ vocab = 20', async () => {
    const ids = [...ctx.data];
    ids[5] = 20;
    await expectError(() => model.forward({ ctx: { data: ids, shape: [3, 4] } }), "'ctx'", 'token id 20', '[0, 20)');
  });
  it('accepts nested arrays of exactly max_len steps', async () => {
    const a = await model.forward({ ctx: nested(ctx.data, ctx.shape) });
    const b = await model.forward({ ctx: { data: Int32Array.from(ctx.data), shape: ctx.shape } });
    expect(Array.from(a.next.data)).toEqual(Array.from(b.next.data));
  });
});

describe.each([
  ['cpu', false],
  ['webasm', true],
] as const)('vectors input on %s: lstm_bidir_layers3_vectors', (backend, subsetOnly) => {
  let model: Model;
  const x = vec.case.inputs.x; // [3, 5, 6]
  beforeAll(async () => {
    model = await vecMod.createModel({ backend });
    model.loadWeights(vec.weights);
  });
  afterAll(() => model?.dispose());

  it('rejects a wrong feature dim', async () => {
    await expectError(() => model.forward({ x: { data: new Float32Array(60), shape: [3, 5, 4] } }), "'x'", '4 features', 'dim = 6');
  });
  (subsetOnly ? defineNothing : it)('rejects rank 2', async () => {
    await expectError(() => model.forward({ x: { data: Float32Array.from(x.data), shape: [15, 6] } }), "'x'", 'shape [15, 6]', 'expected [B, T, 6]');
  });
  (subsetOnly ? defineNothing : it)('rejects data length ≠ product of the shape', async () => {
    await expectError(() => model.forward({ x: { data: Float32Array.from(x.data.slice(1)), shape: x.shape } }), "'x'", '89 values', 'needs 90');
  });
  (subsetOnly ? defineNothing : it)('rejects integer typed arrays', async () => {
    await expectError(() => model.forward({ x: { data: new Int32Array(90), shape: x.shape } }), "'x'", 'Int32Array', 'floats');
    await expectError(() => model.forward({ x: { data: new Int16Array(90), shape: x.shape } }), "'x'", 'Int16Array', 'floats');
  });
  (subsetOnly ? defineNothing : it)('rejects a non-number in a number[]', async () => {
    const data: unknown[] = [...x.data];
    data[7] = 'oops';
    await expectError(() => model.forward({ x: { data, shape: x.shape } }), "'x'", '"oops"', 'position 7');
  });
  (subsetOnly ? defineNothing : it)('rejects a length > T', async () => {
    await expectError(() => model.forward({ x: { data: Float32Array.from(x.data), shape: x.shape, lengths: [5, 3, 9] } }), "'x'", 'lengths[2] = 9', '[1, 5]');
  });
  it('nested [B][T][D] arrays give the same output as the typed form', async () => {
    const a = await model.forward({ x: nested(x.data, x.shape) });
    const b = await model.forward({ x: { data: Float32Array.from(x.data), shape: x.shape } });
    expect(a.y.shape).toEqual(b.y.shape);
    expect(Array.from(a.y.data)).toEqual(Array.from(b.y.data));
  });
  it('matches PyTorch (Float32Array, Float64Array and number[] data)', async () => {
    for (const data of [Float32Array.from(x.data), Float64Array.from(Float32Array.from(x.data)), Array.from(Float32Array.from(x.data))]) {
      const out = await model.forward({ x: { data, shape: x.shape, lengths: x.lengths } });
      expect(maxAbsDiff(out.y.data, vec.case.outputs.y.data)).toBeLessThanOrEqual(TOL[backend]);
    }
  });
});

// ───────────── lifecycle ─────────────

describe.each([
  ['cpu', false],
  ['webasm', true],
] as const)('model lifecycle on %s', (backend, _subsetOnly) => {
  it('forward before loadWeights throws', async () => {
    const model = await lstmMod.createModel({ backend });
    try {
      await expectError(() => model.forward(toInputs(lstm.case)), 'loadWeights', 'Lstm');
    } finally {
      model.dispose();
    }
  });
  it('forward and loadWeights after dispose throw; dispose twice is harmless', async () => {
    const model = await lstmMod.createModel({ backend });
    model.loadWeights(lstm.weights);
    model.dispose();
    await expectError(() => model.forward(toInputs(lstm.case)), 'disposed');
    await expectError(() => model.loadWeights(lstm.weights), 'disposed');
    expect(() => model.dispose()).not.toThrow();
  });
});

describe('createModel options', () => {
  it('rejects an unknown backend name', async () => {
    await expectError(() => lstmMod.createModel({ backend: 'tpu' }), `createModel option 'backend' must be one of 'auto', 'wasm', 'cpu', 'webasm', 'gpu', 'webgpu', 'onnxruntime', 'onnxruntime-web', got "tpu"`);
    await expectError(() => lstmMod.createModel({ backend: 'CPU' }), `got "CPU" (did you mean 'cpu'?)`);
  });
  it('an unknown option names the nearest known one (issue 19: thread → threads)', async () => {
    await expectError(() => lstmMod.createModel({ backend: 'wasm', thread: 2 }), "createModel option 'thread' is unknown (did you mean 'threads'?); the options are backend, gpu, threads, worker, onnxruntime, exporter, allowNonFinite");
    await expectError(() => lstmMod.createModel({ backnd: 'cpu' }), "createModel option 'backnd' is unknown (did you mean 'backend'?)");
    // backend 'onnxruntime's own option is declared with the others (src/runtime/options.ts)
    await expectError(() => lstmMod.createModel({ backend: 'onnxruntime', onnxruntim: {} }), "createModel option 'onnxruntim' is unknown (did you mean 'onnxruntime'?)");
    await expectError(() => lstmMod.createModel({ backend: 'onnxruntime-web', exportr: {} }), "createModel option 'exportr' is unknown (did you mean 'exporter'?)");
  });
  it('rejects options that are not an object', async () => {
    await expectError(() => lstmMod.createModel('cpu'), 'createModel expects an options object, got "cpu"');
  });
  it('rejects a thread count that is not a positive integer', async () => {
    await expectError(() => lstmMod.createModel({ backend: 'wasm', threads: 0 }), "createModel option 'threads' must be an integer ≥ 1, got 0");
    await expectError(() => lstmMod.createModel({ backend: 'wasm', threads: 1.5 }), 'threads', '1.5');
    await expectError(() => lstmMod.createModel({ backend: 'wasm', threads: '2' }), 'threads', '"2"');
  });
  it("backend 'wasm' without WebAssembly SIMD is an error naming the fallback; auto then picks another", async () => {
    const validate = WebAssembly.validate;
    // an engine without SIMD rejects the probe module
    WebAssembly.validate = () => false;
    try {
      await expectError(() => lstmMod.createModel({ backend: 'wasm' }), "'wasm'", 'WebAssembly SIMD', "backend: 'cpu'");
      const model = await lstmMod.createModel({ backend: 'auto', gpu: null });
      try {
        expect(model.backend).not.toBe('wasm');
      } finally {
        model.dispose();
      }
    } finally {
      WebAssembly.validate = validate;
    }
  });
});

// ───────────── what works ─────────────

describe.each([
  ['cpu', false],
  ['webasm', true],
] as const)('inputs and weights that work, on %s', (backend, subsetOnly) => {
  let model: Model;
  beforeAll(async () => {
    model = await lstmMod.createModel({ backend });
    model.loadWeights(lstm.weights);
  });
  afterAll(() => model?.dispose());
  const run = async (inputs: unknown) => (await model.forward(inputs)).y;
  const c: Case = lstm.case;

  it('matches PyTorch, and padded steps are exactly 0', async () => {
    const y = await run(toInputs(c));
    expect(y.shape).toEqual([3, 5, 5]);
    expect(maxAbsDiff(y.data, c.outputs.y.data)).toBeLessThanOrEqual(TOL[backend]);
    const [B, T, D] = y.shape;
    let padded = 0;
    for (let b = 0; b < B; b++) {
      for (let t = text.lengths![b]; t < T; t++) {
        for (let d = 0; d < D; d++) {
          expect(y.data[(b * T + t) * D + d], `y[${b}, ${t}, ${d}]`).toBe(0);
          padded++;
        }
      }
      // valid steps are not all zero
      expect(Array.from(y.data.subarray(b * T * D, (b * T + 1) * D)).some((v) => v !== 0)).toBe(true);
    }
    expect(padded).toBe((0 + 2 + 4) * D);
  });

  it('padded input steps do not affect anything', async () => {
    const ids = [...text.data];
    for (let b = 0; b < 3; b++) for (let t = text.lengths![b]; t < 5; t++) ids[b * 5 + t] = (ids[b * 5 + t] + 3) % 10;
    const a = await run(toInputs(c));
    const b = await run(withIds(ids));
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });

  it('nested number arrays give the same output as the typed form', async () => {
    const a = await run({ text: nested(text.data, text.shape) });
    const b = await run({ text: { data: Int32Array.from(text.data), shape: text.shape } });
    expect(a.shape).toEqual(b.shape);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
  });

  (subsetOnly ? defineNothing : it)('number[] and other integer typed arrays work as token ids', async () => {
    const a = await run(toInputs(c));
    for (const data of [Array.from(text.data), Uint8Array.from(text.data), Int16Array.from(text.data), Uint32Array.from(text.data)]) {
      const b = await run({ text: { data, shape: text.shape, lengths: Int32Array.from(text.lengths!) } });
      expect(Array.from(b.data)).toEqual(Array.from(a.data));
    }
  });

  it('omitted lengths mean full length', async () => {
    const a = await run({ text: { data: Int32Array.from(text.data), shape: text.shape } });
    const b = await run({ text: { data: Int32Array.from(text.data), shape: text.shape, lengths: [5, 5, 5] } });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    // and full-length rows are not masked anywhere: row 0 (length 5 in the case) agrees with PyTorch
    expect(maxAbsDiff(a.data.subarray(0, 25), c.outputs.y.data.slice(0, 25))).toBeLessThanOrEqual(TOL[backend]);
    expect(Array.from(a.data.subarray(25)).some((v) => v !== 0)).toBe(true);
  });

  (subsetOnly ? defineNothing : it)('a single row runs the same as that row in the batch', async () => {
    const all = await run(toInputs(c));
    const one = await run({ text: { data: Int32Array.from(text.data.slice(5, 10)), shape: [1, 5], lengths: [3] } });
    expect(one.shape).toEqual([1, 5, 5]);
    expect(maxAbsDiff(one.data, all.data.subarray(25, 50))).toBeLessThanOrEqual(TOL[backend]);
  });

  it('forward does not modify its inputs', async () => {
    const input = goodText();
    const before = { data: Array.from(input.data), lengths: [...input.lengths] };
    await run({ text: input });
    expect(Array.from(input.data)).toEqual(before.data);
    expect(input.lengths).toEqual(before.lengths);
  });

  it('a { name: Float32Array } map loads the same as safetensors bytes (and as an ArrayBuffer)', async () => {
    const fromBytes = await run(toInputs(c));
    model.loadWeights(weightRecord(lstm.weights));
    const fromMap = await run(toInputs(c));
    const ab = lstm.weights.buffer.slice(lstm.weights.byteOffset, lstm.weights.byteOffset + lstm.weights.byteLength);
    model.loadWeights(ab);
    const fromArrayBuffer = await run(toInputs(c));
    model.loadWeights(lstm.weights);
    expect(Array.from(fromMap.data)).toEqual(Array.from(fromBytes.data));
    expect(Array.from(fromArrayBuffer.data)).toEqual(Array.from(fromBytes.data));
  });

  it('safetensors bytes at an odd offset of a larger buffer load correctly', async () => {
    const big = new Uint8Array(lstm.weights.length + 3);
    big.set(lstm.weights, 3);
    model.loadWeights(big.subarray(3));
    const y = await run(toInputs(c));
    model.loadWeights(lstm.weights);
    expect(maxAbsDiff(y.data, c.outputs.y.data)).toBeLessThanOrEqual(TOL[backend]);
  });

  it('reloading weights replaces them', async () => {
    const original = await run(toInputs(c));
    const scaled = weightRecord(lstm.weights);
    for (const v of Object.values(scaled)) for (let i = 0; i < v.length; i++) v[i] *= 0.5;
    model.loadWeights(scaled);
    const other = await run(toInputs(c));
    expect(maxAbsDiff(other.data, original.data)).toBeGreaterThan(1e-3);
    model.loadWeights(lstm.weights);
    const again = await run(toInputs(c));
    expect(Array.from(again.data)).toEqual(Array.from(original.data));
  });

  it('the manifest lists the weights in load order', () => {
    expect(lstmMod.manifest.weights.map((w) => w.name)).toEqual(readSafetensors(lstm.weights).tensors.map((t) => t.name));
  });
});

// ───────────── generate ─────────────

describe('generate: errors a user can cause', () => {
  const s2s = privateCopy(loadCase('s2s_additive_bahdanau')); // source [3, 7], target [3, 6]
  const source = () => ({ data: Int32Array.from(s2s.case.inputs.source.data), shape: [...s2s.case.inputs.source.shape], lengths: [...s2s.case.inputs.source.lengths!] });
  let s2sMod: Record<string, any>;
  beforeAll(async () => {
    s2sMod = await compileAndImport('errors_s2s', s2s.spec);
  });
  it('generate before loadWeights names the method and the fix', async () => {
    const model = await s2sMod.createModel({ backend: 'cpu' });
    try {
      await expectError(() => model.generate({ source: source() }), 'generate()', 'loadWeights');
    } finally {
      model.dispose();
    }
  });
  it('a model that cannot generate says why', async () => {
    const model = await nplmMod.createModel({ backend: 'cpu' });
    try {
      model.loadWeights(nplm.weights);
      await expectError(() => (model as unknown as { generate(i: unknown): Promise<unknown> }).generate({ ctx: nplm.case.inputs.ctx }), 'cannot generate', 'no time axis');
    } finally {
      model.dispose();
    }
  });
  it('generate on a seq2seq model takes the source only; a bad source or option is named', async () => {
    const model = await s2sMod.createModel({ backend: 'cpu' });
    model.loadWeights(s2s.weights);
    try {
      await expectError(() => model.generate({ source: source(), target: source() }), "unknown input 'target'", 'source');
      await expectError(() => model.generate({}), "missing input 'source'");
      const bad = source();
      bad.data[0] = 99;
      await expectError(() => model.generate({ source: bad }), "input 'source'", '99', 'vocabulary');
      await expectError(() => model.generate({ source: source() }, { beam: 0, strategy: 'beam' }), "'beam'", '0');
      await expectError(() => model.generate({ source: source() }, { eos: 1000 }), "'eos'", '1000');
      await expectError(() => model.generate({ source: source() }, { stratgy: 'beam' } as never), "'stratgy'");
    } finally {
      model.dispose();
    }
  });
  // issue 19: options that cannot be misread, fed as the issue wrote them, to generate() and stream()
  it.each([
    ["{ strategy: 'greedy', beam: 4 }", { strategy: 'greedy', beam: 4 }, `generate option 'beam' applies to strategy 'beam', but the strategy is "greedy": drop 'beam', or use strategy 'beam'`],
    ["{ temperature: 0.5 } (the spec's decode statement chooses beam = 3)", { temperature: 0.5 }, `generate option 'temperature' applies to strategy 'sample', but the strategy is "beam" (the spec's decode statement): pass strategy: 'sample', or drop 'temperature'`],
    ["{ strategy: 'beam', nBest: 5, beam: 2 }", { strategy: 'beam', nBest: 5, beam: 2 }, `generate option 'nBest' (5) is more than the beam width (2): a beam of 2 keeps 2 hypotheses per row; use nBest ≤ beam, or beam: 5`],
    ["{ nBest: 5 } (the spec's beam = 3)", { nBest: 5 }, `generate option 'nBest' (5) is more than the beam width (3, the spec's decode statement)`],
    ["{ strategy: 'beam', beam: 300 } (the spec's cap is 256)", { strategy: 'beam', beam: 300 }, `generate option 'beam' must be an integer in [1, 256], got 300`],
    ["{ strategy: 'beam', temperature: 0.5 }", { strategy: 'beam', temperature: 0.5 }, `generate option 'temperature' applies to strategy 'sample', but the strategy is "beam": drop 'temperature', or use strategy 'sample'`],
    ['{ maxlen: 9 }', { maxlen: 9 }, `generate option 'maxlen' is unknown (did you mean 'maxLen'?)`],
  ])('generate() and stream() refuse %s', async (_, opts, message) => {
    const model = await s2sMod.createModel({ backend: 'cpu' });
    model.loadWeights(s2s.weights);
    try {
      await expectError(() => model.generate({ source: source() }, opts), message);
      await expectError(async () => {
        for await (const _ev of model.stream({ source: source() }, opts)) expect.unreachable('a step ran');
      }, message);
    } finally {
      model.dispose();
    }
  });
});

describe('generate: past a learned positional table', () => {
  it('is an error naming the position and the table size, not garbage', async () => {
    const spec = 'model Pos {\n  input text: tokens(vocab = 5, max_len = 4)\n  output next\n  embedding dim = 4\n  positional learned\n  residual { attention self, heads = 1, causal }\n  linear 5\n  log_softmax\n}\n';
    const mod = await compileAndImport('errors_positions', spec);
    const model = await mod.createModel({ backend: 'cpu' });
    try {
      const w: Record<string, Float32Array> = {};
      for (const x of model.manifest.weights as { name: string; shape: number[] }[]) w[x.name] = new Float32Array(x.shape.reduce((a, c) => a * c, 1)).fill(0.1);
      model.loadWeights(w);
      // within the table: prompt positions 0..2, fed tokens at 3 → fine
      await expect(model.generate({ text: [[1, 2, 3]] }, { maxLen: 2 })).resolves.toBeDefined();
      await expectError(() => model.generate({ text: [[1, 2, 3]] }, { maxLen: 4 }), 'position 4', 'max_len = 4');
    } finally {
      model.dispose();
    }
  });
});

describe('a tensor past the backend memory', () => {
  // issue 19: self-attention at a long sequence failed with a raw RangeError
  // (WebAssembly.Memory.grow(): Maximum memory size exceeded). Attention in tiles holds no scores
  // (test/long-attention.test.ts), but a long enough sequence still has buffers past the limit: one
  // is refused before anything is allocated, naming the tensor, its shape, its size and the limit
  it("wasm: projected queries, keys and values of 2.15 GiB are an NncError naming them and the 2 GiB limit, and the model still works", async () => {
    const spec = 'model LongSelf {\n  input x: tokens(vocab = 50)\n  output y\n  embedding 32\n  attention self, heads = 4\n  linear 10\n}\n';
    const mod = await compileAndImport('errors_long_self', spec);
    const model = await mod.createModel({ backend: 'wasm', threads: 1 });
    try {
      const w: Record<string, Float32Array> = {};
      for (const x of model.manifest.weights as { name: string; shape: number[] }[]) w[x.name] = new Float32Array(x.shape.reduce((a, c) => a * c, 1)).fill(0.01);
      model.loadWeights(w);
      const S = 6_000_000; // q, k and v projected [1, S, 3 · 32]: 576,000,000 floats
      const e = await expectError(() => model.forward({ x: { data: new Int32Array(S), shape: [1, S] } }),
        /^LongSelf: 'attention0\.q \(projected\)[^']*' \[B = 1, T = 6000000, 96\]: the wasm backend cannot hold a buffer of 576000000 floats \(2\.15 GiB\): its memory is limited to 2\.00 GiB, and [\d.]+ MiB of it hold buffers in use/);
      expect(e.name).toBe('NncError');
      // nothing was left half-made: a short call afterwards runs
      const out = await model.forward({ x: [[1, 2, 3]] });
      expect(out.y.shape).toEqual([1, 3, 10]);
    } finally {
      model.dispose();
    }
  });
});
