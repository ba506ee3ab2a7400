/**
 * Honest weight loading (issue 18, item 3, and item 8's header length): safetensors files whose
 * ranges overlap, leave holes or claim impossible sizes are refused before anything is copied, with
 * an error naming the tensors and the fix; NaN and ±Infinity weights are refused by name (count and
 * first index) unless `allowNonFinite`; a fuzzer of hostile headers gets an NncError every time,
 * never a RangeError. The safetensors rules are the format's (huggingface/safetensors: sorted by
 * offset, the ranges tile the data section exactly; the Rust reader's validation).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NncError, weightMap, type WeightInfo } from '../src/runtime/index.ts';
import { compileAndImport, loadCase, prng, ROOT, toInputs } from './helpers.ts';
import { buildSafetensors, dataOf, headerOf, rawSafetensors, readSafetensors, type RawTensor } from './safetensors-file.ts';

type Model = { loadWeights(src: unknown, options?: unknown): unknown; forward(inputs: unknown): Promise<Record<string, { data: Float32Array }>>; dispose(): void };

const lstm = loadCase('lstm'); // embedding0.weight [10, 4], lstm0.{weight_ih_l0 [20, 4], weight_hh_l0 [20, 5], bias_ih_l0 [20], bias_hh_l0 [20]}
const manifest: WeightInfo[] = (lstm.case as unknown as { weights: { name: string; shape: number[]; kind: string }[] }).weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'F32', layer: w.kind }));
const tensors = (): RawTensor[] => readSafetensors(lstm.weights).tensors;
// data offsets of the fixture: embedding0.weight 0..160, weight_ih 160..480, weight_hh 480..880, bias_ih 880..960, bias_hh 960..1040
const at = (name: string) => {
  let off = 0;
  for (const t of tensors()) {
    if (t.name === name) return [off, off + t.bytes.length] as const;
    off += t.bytes.length;
  }
  throw new Error(name);
};

/** The error `fn` throws (it must throw an NncError, never a TypeError or RangeError). */
function nncError(fn: () => unknown): NncError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected an NncError').toBeInstanceOf(NncError);
  return thrown as NncError;
}

let model: Model;
let reference: Float32Array;
beforeAll(async () => {
  const mod = (await compileAndImport('whostile_lstm', lstm.spec, 'test/fixtures/lstm/model.nn')) as { createModel(o: unknown): Promise<Model> };
  model = await mod.createModel({ backend: 'cpu' });
  model.loadWeights(lstm.weights);
  reference = (await model.forward(toInputs(lstm.case))).y!.data;
});
afterAll(() => model?.dispose());

/** The model refuses `bytes` with every part in its message, and keeps computing what it did. */
async function refused(bytes: Uint8Array, ...parts: (string | RegExp)[]): Promise<string> {
  const e = nncError(() => model.loadWeights(bytes));
  for (const p of parts) expect(e.message).toMatch(typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
  expect(Array.from((await model.forward(toInputs(lstm.case))).y!.data)).toEqual(Array.from(reference));
  return e.message;
}

describe('overlapping, out-of-order and non-contiguous data_offsets', () => {
  const [ih0, ih1] = at('lstm0.bias_ih_l0'); // 880..960
  it('partial overlap: bias_hh_l0 at 920..1000 over bias_ih_l0 880..960 names both tensors', async () => {
    await refused(buildSafetensors(tensors(), { 'lstm0.bias_hh_l0': [ih0 + 40, ih1 + 40] }), "'lstm0.bias_ih_l0' (bytes 880..960)", "'lstm0.bias_hh_l0' (bytes 920..1000)", 'overlap');
  });
  it('one inside another: bias_ih_l0 at 40..120, inside embedding0.weight 0..160', async () => {
    await refused(buildSafetensors(tensors(), { 'lstm0.bias_ih_l0': [40, 120] }), "'embedding0.weight' (bytes 0..160)", "'lstm0.bias_ih_l0' (bytes 40..120)", 'overlap');
  });
  it('identical ranges: bias_hh_l0 at 880..960, the bytes of bias_ih_l0', async () => {
    await refused(buildSafetensors(tensors(), { 'lstm0.bias_hh_l0': [ih0, ih1] }), "'lstm0.bias_ih_l0'", "'lstm0.bias_hh_l0'", 'overlap');
  });
  it('a hole between two tensors, and bytes after the last one, are refused', async () => {
    const t = tensors();
    const [b0, b1] = at('lstm0.bias_hh_l0');
    // bias_hh_l0 moved 4 bytes on: a hole at 960..964, and its last 4 bytes past the data -> data padded by 4
    const header = JSON.stringify(headerOf(t, { 'lstm0.bias_hh_l0': [b0 + 4, b1 + 4] }));
    await refused(rawSafetensors(header, new Uint8Array([...dataOf(t), 0, 0, 0, 0])), 'bytes 960..964', "between 'lstm0.bias_ih_l0' and 'lstm0.bias_hh_l0'", 're-save');
    await refused(rawSafetensors(JSON.stringify(headerOf(t)), new Uint8Array([...dataOf(t), 1, 2, 3, 4])), 'bytes 1040..1044', "after 'lstm0.bias_hh_l0'");
  });
  it('header order need not be offset order: the tensors listed backwards still load, unchanged', async () => {
    const t = tensors();
    const header = headerOf(t);
    const backwards = Object.fromEntries(Object.entries(header).reverse());
    model.loadWeights(rawSafetensors(JSON.stringify(backwards), dataOf(t)));
    expect(Array.from((await model.forward(toInputs(lstm.case))).y!.data)).toEqual(Array.from(reference));
  });
  it('empty tensors take no bytes and may sit between others; inside another they overlap it', async () => {
    const t = tensors();
    const empty = { name: 'extra.empty', dtype: 'F32', shape: [0, 4], bytes: new Uint8Array(0) };
    // at a boundary: valid safetensors, refused only as an unexpected weight
    expect(nncError(() => weightMap(buildSafetensors([...t.slice(0, 2), empty, ...t.slice(2)]), manifest)).message).toMatch(/^cannot load weights:\n {2}unexpected weight 'extra\.empty'/);
    const inside = rawSafetensors(JSON.stringify({ ...headerOf(t), 'extra.empty': { dtype: 'F32', shape: [0], data_offsets: [100, 100] } }), dataOf(t));
    expect(nncError(() => weightMap(inside, manifest)).message).toMatch(/'embedding0\.weight' \(bytes 0\.\.160\) and 'extra\.empty' \(bytes 100\.\.100\) overlap/);
  });

  it('200 entries pointing at the same 16 MiB are refused before anything is allocated (peak memory of a fresh process)', () => {
    // a child process: its peak resident set (maxRSS) says what the load cost, whatever ran before in this one
    const script = `
      import { weightMap } from ${JSON.stringify(`${ROOT}src/runtime/weights.ts`)};
      const n = 4194304, header = {};
      for (let i = 0; i < 200; i++) header['t' + i] = { dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] };
      const h = new TextEncoder().encode(JSON.stringify(header));
      const bytes = new Uint8Array(8 + h.length + 4 * n);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(h.length), true);
      bytes.set(h, 8);
      const before = process.resourceUsage().maxRSS;
      let message = '';
      try { weightMap(bytes, [{ name: 't0', shape: [n], dtype: 'F32', layer: 'linear' }]); } catch (e) { message = e.name + ': ' + e.message; }
      console.log(JSON.stringify({ message, grewKiB: process.resourceUsage().maxRSS - before }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    const { message, grewKiB } = JSON.parse(out) as { message: string; grewKiB: number };
    expect(message).toMatch(/^NncError: not a valid safetensors file: tensors 't\d+' \(bytes 0\.\.16777216\) and 't\d+' \(bytes 0\.\.16777216\) overlap/);
    // copying even one tensor would add 16 MiB; the 200 copies the old loader made, 3.3 GB
    expect(grewKiB).toBeLessThan(8 * 1024);
  });
});

describe('non-finite weights', () => {
  const withValues = (edits: Record<string, [number, number][]>) =>
    buildSafetensors(tensors().map((t) => {
      const f = new Float32Array(Uint8Array.from(t.bytes).buffer);
      for (const [i, v] of edits[t.name] ?? []) f[i] = v;
      return { ...t, bytes: new Uint8Array(f.buffer) };
    }));
  const bad = () => withValues({ 'lstm0.weight_hh_l0': [[7, NaN]], 'lstm0.bias_ih_l0': [[3, Infinity], [11, -Infinity]] });

  it('NaN and ±Infinity are refused by name, with the count and the first index', async () => {
    const msg = await refused(bad(), "weight 'lstm0.weight_hh_l0' has 1 non-finite value (first: NaN at [1, 2])", "weight 'lstm0.bias_ih_l0' has 2 non-finite values (first: Infinity at [3])", 'allowNonFinite: true');
    expect(msg).not.toMatch(/embedding0/);
  });
  it('-Infinity alone, in a { name: Float32Array } map', () => {
    const rec: Record<string, Float32Array> = {};
    for (const t of tensors()) rec[t.name] = new Float32Array(Uint8Array.from(t.bytes).buffer);
    rec['embedding0.weight']![39] = -Infinity;
    expect(nncError(() => model.loadWeights(rec)).message).toContain("weight 'embedding0.weight' has 1 non-finite value (first: -Infinity at [9, 3])");
  });
  it('{ allowNonFinite: true } loads them as they are (and NaN reaches the outputs)', async () => {
    expect(model.loadWeights(bad(), { allowNonFinite: true })).toBeUndefined();
    const y = (await model.forward(toInputs(lstm.case))).y!.data;
    expect(y.some((v) => Number.isNaN(v))).toBe(true);
    model.loadWeights(lstm.weights);
  });
  it('options are checked: an unknown option names the nearest one; a wrong type is an error', () => {
    expect(nncError(() => model.loadWeights(lstm.weights, { allownonfinite: true })).message).toContain("loadWeights option 'allownonfinite' is unknown (did you mean 'allowNonFinite'?)");
    expect(nncError(() => model.loadWeights(lstm.weights, { allowNonFinite: 'yes' })).message).toContain(`loadWeights option 'allowNonFinite' must be a boolean, got "yes"`);
  });
});

describe('the header length', () => {
  it('2^64 - 1 prints exactly (18446744073709551615, not 18446744073709552000)', async () => {
    const bytes = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7b, 0x7d]);
    const msg = await refused(bytes, 'its header claims 18446744073709551615 bytes but only 2 follow');
    expect(msg).not.toContain('18446744073709552000');
  });
  it('2^53 + 1 prints exactly too', async () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 53n + 1n, true);
    await refused(bytes, 'claims 9007199254740993 bytes');
  });
});

describe('hostile headers', () => {
  const data = () => dataOf(tensors());
  const header = () => headerOf(tensors()) as Record<string, Record<string, unknown>>;
  const withEntry = (name: string, field: string, value: unknown) => {
    const h = header();
    h[name] = { ...h[name], [field]: value };
    return rawSafetensors(JSON.stringify(h), data());
  };

  it.each([
    ['a duplicate tensor name', () => {
      const text = JSON.stringify(header());
      const entry = `"lstm0.bias_hh_l0":${JSON.stringify(header()['lstm0.bias_hh_l0'])}`;
      return rawSafetensors(text.replace(entry, `${entry},${entry}`), data());
    }, ["tensor 'lstm0.bias_hh_l0' appears twice in the header"]],
    ['a duplicate field', () => rawSafetensors(JSON.stringify(header()).replace('"dtype":"F32"', '"dtype":"F32","dtype":"F16"'), data()), ["the header entry 'embedding0.weight' has two 'dtype' fields"]],
    ['a shape of 2^53 - 1 elements', () => withEntry('lstm0.bias_ih_l0', 'shape', [2 ** 53 - 1]), ["tensor 'lstm0.bias_ih_l0' has 80 bytes, but F32 [9007199254740991] needs 36028797018963964"]],
    ['a dimension of 2^53 (past exact integers)', () => withEntry('lstm0.bias_ih_l0', 'shape', [2 ** 53]), ["tensor 'lstm0.bias_ih_l0' has shape [9007199254740992]"]],
    ['a shape whose product overflows doubles', () => withEntry('lstm0.bias_ih_l0', 'shape', [4294967296, 4294967296, 4294967296]), ["'lstm0.bias_ih_l0'", 'needs 316912650057057350374175801344']],
    ['a negative dimension', () => withEntry('lstm0.bias_ih_l0', 'shape', [-20]), ["tensor 'lstm0.bias_ih_l0' has shape [-20]", 'non-negative integers']],
    ['a dimension as a string', () => withEntry('lstm0.bias_ih_l0', 'shape', ['20']), ["tensor 'lstm0.bias_ih_l0' has shape [\"20\"]"]],
    ['a negative offset', () => withEntry('lstm0.bias_ih_l0', 'data_offsets', [-80, 0]), ["tensor 'lstm0.bias_ih_l0' has invalid data_offsets [-80,0]"]],
    ['offsets past 2^53', () => withEntry('lstm0.bias_ih_l0', 'data_offsets', [2 ** 60, 2 ** 60 + 80]), ["'lstm0.bias_ih_l0' has invalid data_offsets"]],
    ['offsets as strings', () => withEntry('lstm0.bias_ih_l0', 'data_offsets', ['880', '960']), ["'lstm0.bias_ih_l0' has invalid data_offsets"]],
    ['an unknown dtype', () => withEntry('lstm0.bias_ih_l0', 'dtype', 'F33'), ["tensor 'lstm0.bias_ih_l0' has dtype \"F33\", which is not a safetensors dtype"]],
    ['a lower-case dtype', () => withEntry('lstm0.bias_ih_l0', 'dtype', 'f32'), ["'lstm0.bias_ih_l0' has dtype \"f32\""]],
    ['dtype "constructor"', () => withEntry('lstm0.bias_ih_l0', 'dtype', 'constructor'), ["'lstm0.bias_ih_l0' has dtype \"constructor\""]],
    ['dtype null', () => withEntry('lstm0.bias_ih_l0', 'dtype', null), ["'lstm0.bias_ih_l0' has dtype null"]],
    ['an entry that is a number', () => rawSafetensors(JSON.stringify({ ...header(), 'lstm0.bias_ih_l0': 5 }), data()), ["the header entry of tensor 'lstm0.bias_ih_l0' is 5"]],
    ['__metadata__ as an array', () => rawSafetensors(JSON.stringify({ ...header(), __metadata__: [] }), data()), ["'__metadata__' must map names to strings, got an array"]],
    ['__metadata__ with a number', () => rawSafetensors(JSON.stringify({ ...header(), __metadata__: { epoch: 3 } }), data()), ["'__metadata__' must map names to strings, but 'epoch' is 3"]],
    ['a header that is not UTF-8', () => rawSafetensors(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), ['its header is not valid UTF-8']],
  ] as const)('%s', (_, src, parts) => {
    const e = nncError(() => weightMap(src(), manifest));
    for (const p of parts) expect(e.message).toContain(p);
    expect(e.message).toMatch(/re-save|download/);
  });

  it('__metadata__: null and header padding are valid safetensors', () => {
    const h = JSON.stringify({ ...header(), __metadata__: null });
    expect(weightMap(rawSafetensors(`  ${h}       `, data()), manifest).size).toBe(5);
  });
  it('names that are JavaScript builtins, empty, or 100,000 characters are tensors like any other', () => {
    for (const name of ['__proto__', 'constructor', 'toString', '', 'x'.repeat(100_000), 'a\nb', "it's"]) {
      const t = tensors();
      t[4] = { ...t[4]!, name };
      const msg = nncError(() => weightMap(buildSafetensors(t), manifest)).message;
      expect(msg).toContain("missing weight 'lstm0.bias_hh_l0'");
      expect(msg).toContain('unexpected weight');
      expect(msg.length).toBeLessThan(2000);
    }
  });
  it('10,000 empty extra tensors: one error, its list cut short', () => {
    const t = tensors();
    const h = headerOf(t);
    for (let i = 0; i < 10_000; i++) h[`extra${i}`] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] };
    const msg = nncError(() => weightMap(rawSafetensors(JSON.stringify(h), dataOf(t)), manifest)).message;
    expect(msg).toContain("unexpected weight 'extra0'");
    expect(msg).toContain('… and 9960 more');
    expect(msg.length).toBeLessThan(5000);
  });

  it('a fuzzer: 400 headers with one hostile field each get an NncError naming the tensor and a fix', () => {
    const rand = prng(20240618);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const values: Record<string, readonly unknown[]> = {
      shape: [[2 ** 53], [1e308], [4294967296, 4294967296], [-1], [1.5], ['8'], null, {}, [[2]], 'x', [], [0], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [null], [true]],
      data_offsets: [[-1, 10], [0.5, 1], ['0', '4'], [0], [0, 1, 2], null, [1e300, 1e300], [2 ** 53, 2 ** 53 + 4], [10, 5], {}, 'x', [0, 1e9], [null, null], [true, false]],
      dtype: ['F33', '', null, 5, 'f32', '__proto__', 'constructor', 'toString', ['F32'], 'BOOL', 'F64', 'I64', 'F8_E4M3', {}, 'F32 '],
      entry: [null, 5, 'x', [], true, {}, { dtype: 'F32' }],
      overlap: [0],
      duplicate: [0],
    };
    let count = 0;
    for (let i = 0; i < 400; i++) {
      const kind = pick(Object.keys(values));
      const t = pick(tensors()).name;
      const v = pick(values[kind]!);
      const h = header() as Record<string, unknown>;
      let text: string;
      if (kind === 'entry') h[t] = v;
      else if (kind === 'overlap') {
        const other = pick(tensors().filter((x) => x.name !== t)).name;
        const [b] = at(other);
        const [tb, te] = at(t);
        (h[t] as Record<string, unknown>)['data_offsets'] = [b, b + (te - tb)];
      } else if (kind !== 'duplicate') (h[t] as Record<string, unknown>)[kind] = v;
      text = JSON.stringify(h);
      if (kind === 'duplicate') {
        const entry = `${JSON.stringify(t)}:${JSON.stringify(h[t])}`;
        text = text.replace(entry, `${entry},${entry}`);
      }
      let thrown: unknown;
      try {
        weightMap(rawSafetensors(text, dataOf(tensors())), manifest);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, `${kind} ${JSON.stringify(v)} on ${t}`).toBeInstanceOf(NncError);
      const msg = (thrown as Error).message;
      expect(msg, `${kind} ${JSON.stringify(v)} on ${t}`).toContain(`'${t}'`);
      expect(msg, `${kind} ${JSON.stringify(v)} on ${t}`).toMatch(/re-save|download|tensor\.float\(\)|expected/);
      count++;
    }
    expect(count).toBe(400);
  });
});
