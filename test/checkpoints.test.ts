/**
 * Real PyTorch checkpoints (issue 19, item 3; docs/checkpoints.md): state_dicts saved from stock
 * nn.TransformerEncoder / nn.TransformerDecoder / nn.Transformer / nn.Transformer*Layer modules load
 * unchanged and give the stock module's outputs (1e-5); DistributedDataParallel's `module.` and a
 * wrapper's `model.` prefix are stripped; `rename` (a map or a function) does the rest, and the error
 * without it says which renames are likely; float16 and bfloat16 files load as torch's `.float()`,
 * exactly; URLs, Responses, Blobs, streams and Node paths load asynchronously with progress, while
 * bytes and maps stay synchronous (the TypeScript overloads say which); `nnc weights --check` prints
 * the comparison. Ground truth: test/fixtures/make_checkpoint_fixtures.py (PyTorch).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { decodeTensor, NncError, readSafetensors, resolveNames, stockStacks, type WeightInfo } from '../src/runtime/index.ts';
import { compileAndImport, FIXTURES, loadCase, maxAbsDiff, ROOT, toInputs, type Case } from './helpers.ts';
import { buildSafetensors, readSafetensors as readRaw } from './safetensors-file.ts';

type Model = { backend: string; loadWeights(src: unknown, options?: unknown): unknown; forward(inputs: unknown): Promise<Record<string, { data: Float32Array }>>; dispose(): void };
type Module = { createModel(o: unknown): Promise<Model> };
interface CkptCase extends Case {
  load: { rename?: Record<string, string> };
  state_dict: string[];
}

const ckpt = (name: string) => ({
  spec: readFileSync(join(FIXTURES, name, 'model.nn'), 'utf8'),
  bytes: (file = 'state_dict.safetensors') => new Uint8Array(readFileSync(join(FIXTURES, name, file))),
  case: JSON.parse(readFileSync(join(FIXTURES, name, 'case.json'), 'utf8')) as CkptCase,
});
const names = (JSON.parse(readFileSync(join(FIXTURES, 'checkpoint-index.json'), 'utf8')) as { cases: { name: string }[] }).cases.map((c) => c.name);
const STOCK = names.filter((n) => /^ckpt_(encoder|transformer|enclayer|encoder1)/.test(n));

const modules = new Map<string, Module>();
const moduleOf = async (name: string): Promise<Module> => {
  if (!modules.has(name)) modules.set(name, (await compileAndImport(`ckpt_${name}`, ckpt(name).spec, `test/fixtures/${name}/model.nn`)) as Module);
  return modules.get(name)!;
};

/** Loads `src` into a fresh model of case `name` on `backend` and returns its outputs for the case's inputs. */
async function outputs(name: string, src: unknown, options?: unknown, backend = 'cpu'): Promise<Record<string, { data: Float32Array }>> {
  const model = await (await moduleOf(name)).createModel({ backend });
  try {
    await model.loadWeights(src, options);
    return await model.forward(toInputs(ckpt(name).case));
  } finally {
    model.dispose();
  }
}

/** The error `fn` gives (sync or async): an NncError, never a TypeError or RangeError. */
async function nncError(fn: () => unknown): Promise<NncError> {
  let thrown: unknown;
  try {
    await fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected an NncError').toBeInstanceOf(NncError);
  return thrown as NncError;
}

describe('state_dicts of stock PyTorch Transformer modules load unchanged', () => {
  it.each(STOCK.flatMap((n) => [[n, 'cpu'], [n, 'wasm']]))('%s on %s: the stock module\'s outputs within 1e-5', async (name, backend) => {
    const c = ckpt(name);
    expect(c.case.load).toEqual({});
    const out = await outputs(name, c.bytes(), undefined, backend);
    expect(maxAbsDiff(out.y!.data, c.case.outputs.y!.data)).toBeLessThanOrEqual(1e-5);
  });

  it('a stack with a layer too few in the checkpoint is refused, naming what is missing', async () => {
    // ckpt_encoder_postnorm is 2 layers; its state_dict without layers.1 does not fit and nothing maps
    const c = ckpt('ckpt_encoder_postnorm');
    const file = readSafetensors(c.bytes());
    const rec: Record<string, Float32Array> = {};
    for (const x of file.entries) if (!x.name.startsWith('layers.1.')) rec[x.name] = decodeTensor(file, x)!;
    const e = await nncError(() => outputs('ckpt_encoder_postnorm', rec));
    expect(e.message).toContain("missing weight 'repeat0.1.residual0.attention0.in_proj_weight'");
    expect(e.message).toContain("unexpected weight 'layers.0.self_attn.in_proj_weight'");
  });

  it('the derived names equal the hand-written maps of make_transformer_fixtures.py (every tf_* case with a stock module)', () => {
    let checked = 0;
    for (const name of (JSON.parse(readFileSync(join(FIXTURES, 'transformer-index.json'), 'utf8')) as { cases: { name: string }[] }).cases.map((c) => c.name)) {
      const c = JSON.parse(readFileSync(join(FIXTURES, name, 'case.json'), 'utf8')) as { weights: { name: string; shape: number[]; kind: string }[]; pytorch?: { names: Record<string, string> } };
      if (!c.pytorch) continue;
      const manifest: WeightInfo[] = c.weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'F32', layer: w.kind }));
      const r = resolveNames(manifest, Object.values(c.pytorch.names));
      for (const w of manifest) {
        const stock = c.pytorch.names[w.name]!;
        const inLayer = /(self_attn|multihead_attn|norm\d?|linear[12])\./.test(stock) && /^(enc|dec)\./.test(stock);
        if (inLayer) {
          expect(r.source.get(w.name), `${name}: ${w.name}`).toEqual({ name: stock, how: 'stock' });
          checked++;
        } else expect(r.source.get(w.name), `${name}: ${w.name} (${stock}) is the user's own module`).toBeUndefined();
      }
    }
    expect(checked).toBeGreaterThan(60);
  });
});

describe('prefixes and rename', () => {
  it.each(['ckpt_ddp_tagger', 'ckpt_wrapped_tagger'])('%s: a common prefix (module. / model.) is stripped: PyTorch\'s outputs', async (name) => {
    const c = ckpt(name);
    expect(c.case.state_dict.every((n) => n.startsWith(name === 'ckpt_ddp_tagger' ? 'module.' : 'model.'))).toBe(true);
    expect(maxAbsDiff((await outputs(name, c.bytes())).y!.data, c.case.outputs.y!.data)).toBeLessThanOrEqual(1e-5);
  });

  it('DistributedDataParallel classifier without rename: the error names what is left and the likely renames', async () => {
    const e = await nncError(() => outputs('ckpt_ddp_classifier', ckpt('ckpt_ddp_classifier').bytes()));
    for (const part of [
      "missing weight 'embedding0.weight' (embedding, expected shape [11, 8])",
      "missing weight 'linear0.weight'",
      "unexpected weight 'module.emb.weight'",
      "unexpected weight 'module.head.bias'",
      "read as PyTorch's nn.TransformerEncoder at 'module.enc.'",
      'loadWeights(src, { rename: { "module.emb.weight": "embedding0.weight", "module.head.weight": "linear0.weight", "module.head.bias": "linear0.bias" } })',
    ]) expect(e.message).toContain(part);
    // the stack was matched: its weights are not reported missing
    expect(e.message).not.toContain("missing weight 'repeat0");
  });

  it('... and with the rename it suggests (a map, as the fixture records it), PyTorch\'s outputs', async () => {
    const c = ckpt('ckpt_ddp_classifier');
    expect(c.case.load.rename).toBeDefined();
    expect(maxAbsDiff((await outputs('ckpt_ddp_classifier', c.bytes(), c.case.load)).y!.data, c.case.outputs.y!.data)).toBeLessThanOrEqual(1e-5);
  });

  it('rename as a function, with null to skip a tensor (an optimizer step counter saved beside the weights)', async () => {
    const c = ckpt('ckpt_ddp_classifier');
    const file = readSafetensors(c.bytes());
    const rec: Record<string, Float32Array> = { 'optimizer.step': new Float32Array([100]) };
    for (const x of file.entries) rec[x.name] = decodeTensor(file, x)!;
    const rename = (n: string) => (n === 'optimizer.step' ? null : n.replace(/^module\.emb\./, 'embedding0.').replace(/^module\.head\./, 'linear0.'));
    expect(maxAbsDiff((await outputs('ckpt_ddp_classifier', rec, { rename })).y!.data, c.case.outputs.y!.data)).toBeLessThanOrEqual(1e-5);
    // without skipping it, the counter is an unexpected weight
    const e = await nncError(() => outputs('ckpt_ddp_classifier', rec, { rename: (n: string) => rename(n) ?? n }));
    expect(e.message).toContain("unexpected weight 'optimizer.step'");
  });

  it('rename mistakes are errors that say what is wrong', async () => {
    const bytes = ckpt('ckpt_wrapped_tagger').bytes();
    expect((await nncError(() => outputs('ckpt_wrapped_tagger', bytes, { rename: { 'model.gru0.bias_ih_l0': 'x', 'model.gru0.bias_hh_l0': 'x' } }))).message)
      .toMatch(/rename gives both 'model\.gru0\.bias_(ih|hh)_l0' and 'model\.gru0\.bias_(ih|hh)_l0' the name 'x'; each weight can come from one tensor/);
    expect((await nncError(() => outputs('ckpt_wrapped_tagger', bytes, { rename: () => 5 }))).message).toContain("rename gave number for 'model.embedding0.weight'");
    expect((await nncError(() => outputs('ckpt_wrapped_tagger', bytes, { renames: {} }))).message).toContain("loadWeights option 'renames' is unknown (did you mean 'rename'?); the options are rename, allowNonFinite, onProgress, signal");
    expect((await nncError(() => outputs('ckpt_wrapped_tagger', bytes, { rename: new Map() }))).message).toContain("loadWeights option 'rename' must be a { checkpoint name: model name } object or a function, got a Map");
  });
});

describe('float16 and bfloat16 checkpoints', () => {
  it('every value equals torch\'s .float(), bit for bit: ±0, subnormals, extremes, ±inf, NaN and 1,000 random values', () => {
    const c = ckpt('ckpt_half');
    const half = readSafetensors(c.bytes('specials.safetensors'));
    const float = readSafetensors(c.bytes('specials_float.safetensors'));
    for (const name of ['f16', 'bf16']) {
      const h = half.entries.find((x) => x.name === name)!;
      const f = float.entries.find((x) => x.name === name)!;
      expect(h.dtype).toBe(name === 'f16' ? 'F16' : 'BF16');
      expect(f.dtype).toBe('F32');
      const got = new Uint32Array(decodeTensor(half, h)!.buffer);
      const want = new Uint32Array(decodeTensor(float, f)!.buffer);
      expect(got.length).toBeGreaterThan(1000);
      expect(Array.from(got)).toEqual(Array.from(want));
    }
  });
  it.each([['state_dict_f16.safetensors', 'y'], ['state_dict_bf16.safetensors', 'y_bf16']])('%s loads (converted to float32): PyTorch\'s outputs with the same rounded weights', async (file, out) => {
    const c = ckpt('ckpt_half');
    expect(readSafetensors(c.bytes(file)).entries.every((x) => x.dtype === (file.includes('bf16') ? 'BF16' : 'F16'))).toBe(true);
    expect(maxAbsDiff((await outputs('ckpt_half', c.bytes(file))).y!.data, c.case.outputs[out]!.data)).toBeLessThanOrEqual(1e-5);
  });
});

// ───────────── URLs, Responses, Blobs, streams ─────────────

const lstm = loadCase('lstm');
const FILE = new Uint8Array(lstm.weights);
let server: Server;
let base = '';
let lstmMod: Module;
let model: Model;
let reference: Float32Array;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks = (body: Uint8Array) => {
      let i = 0;
      const next = () => {
        if (i >= body.length) return void res.end();
        res.write(body.subarray(i, i + 256));
        i += 256;
        setTimeout(next, 2);
      };
      next();
    };
    if (req.url === '/w.safetensors') {
      res.writeHead(200, { 'content-length': String(FILE.length), 'content-type': 'application/octet-stream' });
      chunks(FILE);
    } else if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no length: chunked transfer
      chunks(FILE);
    } else if (req.url === '/gzip') {
      const z = gzipSync(FILE);
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': String(z.length) });
      chunks(z);
    } else if (req.url === '/short') {
      res.writeHead(200, { 'content-length': String(FILE.length + 100) });
      res.end(FILE);
      req.socket.destroy();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not here');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  lstmMod = (await compileAndImport('ckpt_stream_lstm', lstm.spec, 'test/fixtures/lstm/model.nn')) as Module;
  model = await lstmMod.createModel({ backend: 'cpu' });
  model.loadWeights(lstm.weights);
  reference = (await model.forward(toInputs(lstm.case))).y!.data;
});
afterAll(() => {
  model?.dispose();
  server?.close();
});

/** Loads `src` with a progress recorder; checks the outputs; returns the progress calls. */
async function streamed(src: unknown, extra: object = {}): Promise<[number, number | undefined][]> {
  const calls: [number, number | undefined][] = [];
  const m = await lstmMod.createModel({ backend: 'cpu' });
  try {
    const p = m.loadWeights(src, { onProgress: (loaded: number, total: number | undefined) => calls.push([loaded, total]), ...extra });
    expect(p).toBeInstanceOf(Promise);
    expect(await p).toBeUndefined();
    expect(Array.from((await m.forward(toInputs(lstm.case))).y!.data)).toEqual(Array.from(reference));
  } finally {
    m.dispose();
  }
  // loaded only grows, and the last call is (file size, file size)
  for (let i = 1; i < calls.length; i++) expect(calls[i]![0]).toBeGreaterThanOrEqual(calls[i - 1]![0]);
  expect(calls[calls.length - 1]).toEqual([FILE.length, FILE.length]);
  return calls;
}

describe('loading from a URL, a Response, a Blob, a stream or a path', () => {
  it('bytes, ArrayBuffers and maps stay synchronous: loadWeights returns undefined, not a Promise', () => {
    expect(model.loadWeights(lstm.weights)).toBeUndefined();
    expect(model.loadWeights(FILE.slice().buffer)).toBeUndefined();
  });
  it('a URL with Content-Length: several progress calls, each with the total', async () => {
    const calls = await streamed(`${base}/w.safetensors`);
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls.every(([, total]) => total === FILE.length)).toBe(true);
  });
  it('a URL object, chunked (no Content-Length): total is undefined until the last call', async () => {
    const calls = await streamed(new URL(`${base}/chunked`));
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls.slice(0, -1).every(([, total]) => total === undefined)).toBe(true);
  });
  it('gzip content-encoding: Content-Length counts compressed bytes, so the total is unknown until the end', async () => {
    const calls = await streamed(`${base}/gzip`);
    expect(calls.slice(0, -1).every(([, total]) => total === undefined)).toBe(true);
  });
  it('a fetch Response passed directly (it used to report 11 missing weights)', async () => {
    await streamed(await fetch(`${base}/w.safetensors`));
    await streamed(new Response(FILE));
  });
  it('a ReadableStream of bytes and a Blob', async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < FILE.length; i += 100) c.enqueue(FILE.slice(i, i + 100));
        c.close();
      },
    });
    const calls = await streamed(stream);
    expect(calls.length).toBe(Math.ceil(FILE.length / 100) + 1);
    expect(calls.slice(0, -1).map(([loaded]) => loaded)).toEqual(Array.from({ length: Math.ceil(FILE.length / 100) }, (_, i) => Math.min(FILE.length, (i + 1) * 100)));
    expect((await streamed(new Blob([FILE])))[0]![1]).toBe(FILE.length);
  });
  it('in Node, a file path and a file: URL', async () => {
    const path = join(FIXTURES, 'lstm/weights.safetensors');
    await streamed(path);
    await streamed(pathToFileURL(path));
  });
  it('HTTP errors, a cut download, a stream of strings, a used body and an abort are errors that say so', async () => {
    expect((await nncError(() => model.loadWeights(`${base}/nope.safetensors`))).message).toBe(`cannot load weights from '${base}/nope.safetensors': HTTP 404 Not Found`);
    expect((await nncError(() => model.loadWeights(`${base}/short`))).message).toMatch(/the download of the weights (failed after|ended after) \d+/);
    const strings = new ReadableStream({ start: (c) => (c.enqueue('abc'), c.close()) });
    expect((await nncError(() => model.loadWeights(strings))).message).toContain('a stream of string: it must give bytes');
    const used = new Response(FILE);
    await used.arrayBuffer();
    expect((await nncError(() => model.loadWeights(used))).message).toContain('its body has already been read');
    const ac = new AbortController();
    ac.abort();
    await expect(model.loadWeights(`${base}/w.safetensors`, { signal: ac.signal }) as Promise<void>).rejects.toThrow(/abort/i);
    // still the weights it had
    expect(Array.from((await model.forward(toInputs(lstm.case))).y!.data)).toEqual(Array.from(reference));
  });
  it('a hostile file from a URL is refused like the same bytes (the checks run on what arrived)', async () => {
    const bytes = FILE.slice();
    bytes[0] = 0xff;
    bytes[7] = 0xff;
    expect((await nncError(() => model.loadWeights(new Response(bytes)))).message).toMatch(/claims \d+ bytes but only \d+ follow/);
  });

  it('a model in a worker thread (createModel({ worker: true })): a rename function and a URL with progress work the same', async () => {
    const c = ckpt('ckpt_ddp_classifier');
    const m = await (await moduleOf('ckpt_ddp_classifier')).createModel({ backend: 'cpu', worker: true });
    try {
      // a function cannot be posted to the worker: it becomes the map it gives
      const rename = (n: string) => n.replace(/^module\.emb\./, 'embedding0.').replace(/^module\.head\./, 'linear0.');
      await m.loadWeights(c.bytes(), { rename });
      expect(maxAbsDiff((await m.forward(toInputs(c.case))).y!.data, c.case.outputs.y!.data)).toBeLessThanOrEqual(1e-5);
      expect((await nncError(() => m.loadWeights(c.bytes()))).message).toContain('likely renames');
    } finally {
      m.dispose();
    }
    const w = await lstmMod.createModel({ backend: 'cpu', worker: true });
    try {
      const calls: number[] = [];
      await w.loadWeights(`${base}/w.safetensors`, { onProgress: (loaded: number) => calls.push(loaded) });
      expect(calls.at(-1)).toBe(FILE.length);
      expect(Array.from((await w.forward(toInputs(lstm.case))).y!.data)).toEqual(Array.from(reference));
    } finally {
      w.dispose();
    }
  });

  it('TypeScript types each form: void for bytes and maps, Promise<void> for the rest (tsc, strict app settings)', () => {
    const app = mkdtempSync(join(tmpdir(), 'nnc-ckpt-types-'));
    writeFileSync(join(app, 'package.json'), '{ "type": "module" }\n');
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(ROOT, join(app, 'node_modules/nnc'), 'dir');
    writeFileSync(join(app, 'm.ts'), compile(lstm.spec, 'lstm.nn').output!);
    writeFileSync(join(app, 'app.ts'), `import { createModel } from './m.ts';
const model = await createModel({ backend: 'cpu' });
const bytes = new Uint8Array(8);
export const a: void = model.loadWeights(bytes);
export const b: void = model.loadWeights(bytes.buffer, { rename: { 'module.x': 'x', skipped: null } });
export const c: void = model.loadWeights({ 'embedding0.weight': new Float32Array(40) }, { allowNonFinite: true, rename: (n: string) => n.replace(/^module\\./, '') });
export const d: Promise<void> = model.loadWeights('https://example.com/w.safetensors', { onProgress: (loaded: number, total: number | undefined) => void [loaded, total] });
export const e: Promise<void> = model.loadWeights(new URL('https://example.com/w.safetensors'), { signal: new AbortController().signal });
export const f: Promise<void> = model.loadWeights(new Response(bytes));
export const g: Promise<void> = model.loadWeights(new Blob([bytes]));
export const h: Promise<void> = model.loadWeights(new ReadableStream<Uint8Array>());
// @ts-expect-error bytes load synchronously: nothing to await
export const i: Promise<void> = model.loadWeights(bytes);
// @ts-expect-error a Response loads asynchronously
export const j: void = model.loadWeights(new Response(bytes));
// @ts-expect-error an unknown option
model.loadWeights(bytes, { allowNaN: true });
// @ts-expect-error a number is not a weight source
model.loadWeights(42);
`);
    const STRICT = {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: [], strict: true, noUncheckedIndexedAccess: true,
      noPropertyAccessFromIndexSignature: true, noUnusedParameters: true, noUnusedLocals: true, exactOptionalPropertyTypes: true, verbatimModuleSyntax: true,
      noImplicitReturns: true, noEmit: true, skipLibCheck: true, allowImportingTsExtensions: true,
    };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: STRICT, files: ['app.ts'] }));
    let out = '';
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app, encoding: 'utf8' });
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(out).toBe('');
  });
});

// ───────────── nnc weights --check ─────────────

/** Runs the real binary, bin/nnc.js. */
function nnc(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin/nnc.js'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('nnc weights --check', () => {
  it('a checkpoint that needs renames: exit 1; matched, missing and extra listed, the mapping and the likely renames printed', async () => {
    const r = await nnc(['weights', 'test/fixtures/ckpt_ddp_classifier/model.nn', '--check', 'test/fixtures/ckpt_ddp_classifier/state_dict.safetensors']);
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('test/fixtures/ckpt_ddp_classifier/state_dict.safetensors against DdpClassifier (27 weights; the checkpoint has 27 tensors):');
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}missing +embedding0\.weight +\[11, 8\] +likely "module\.emb\.weight"$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}ok +repeat0\.1\.layernorm1\.bias +\[8\] +← "module\.enc\.layers\.1\.norm2\.bias"$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}extra +module\.head\.weight +\[3, 8\] +F32$/));
    expect(r.stdout).toContain("mapping: 2 post-norm Transformer encoder layers (repeat0.0.residual0.attention0 … repeat0.1.layernorm1) read as PyTorch's nn.TransformerEncoder at 'module.enc.'");
    expect(r.stdout).toContain('"module.head.bias": "linear0.bias"');
    expect(lines.at(-2)).toBe('result: does not load: 24 matched, 3 missing, 3 extra');
  });

  it('a stock nn.Transformer and its --json: exit 0; a spec lists the stock names; a corrupt file exits 1, an unreadable one 2', async () => {
    const spec = 'test/fixtures/ckpt_transformer_prenorm/model.nn';
    const ok = await nnc(['weights', spec, '--check', 'test/fixtures/ckpt_transformer_prenorm/state_dict.safetensors', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const j = JSON.parse(ok.stdout) as { ok: boolean; weights: { name: string; status: string; source: string; how: string }[]; extra: unknown[]; mapping: string[] };
    expect(j.ok).toBe(true);
    expect(j.extra).toEqual([]);
    expect(j.weights.find((w) => w.name === 'decoder.repeat0.1.residual1.attention0.in_proj_weight')).toMatchObject({ status: 'ok', source: 'decoder.layers.1.multihead_attn.in_proj_weight', how: 'stock' });
    expect(j.weights.find((w) => w.name === 'encoder.layernorm0.weight')).toMatchObject({ source: 'encoder.norm.weight' });
    expect(j.mapping).toHaveLength(2);

    const list = await nnc(['weights', spec, '--json']);
    const rows = JSON.parse(list.stdout) as { name: string; pytorch?: string }[];
    expect(rows.find((w) => w.name === 'decoder.repeat0.0.residual2.layernorm0.weight')!.pytorch).toBe('decoder.layers.0.norm3.weight');

    const bad = join(mkdtempSync(join(tmpdir(), 'nnc-ckpt-')), 'bad.safetensors');
    writeFileSync(bad, buildSafetensors(readRaw(FILE).tensors, { 'lstm0.bias_hh_l0': [880, 960] }));
    const corrupt = await nnc(['weights', 'test/fixtures/lstm/model.nn', '--check', bad]);
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toMatch(/^nnc: .*bad\.safetensors: not a valid safetensors file: tensors 'lstm0\.bias_ih_l0' \(bytes 880\.\.960\) and 'lstm0\.bias_hh_l0' \(bytes 880\.\.960\) overlap/);

    for (const args of [['weights', spec, '--check', 'nope.safetensors'], ['weights', spec, '--check'], ['check', spec, '--check', 'x.safetensors']]) {
      const r = await nnc(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^nnc: (cannot read 'nope\.safetensors': no such file|--check needs a \.safetensors file|--check belongs to 'weights')/);
    }
  });
});
