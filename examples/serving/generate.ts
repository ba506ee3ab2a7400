/**
 * Greedy generation with ONNX Runtime alone, from the files `nnc onnx` writes (docs/serving.md): the
 * client loop a server runs around the decoder-step graph. It knows nothing of nnc's runtime; it
 * drives the graphs by their input and output names, which follow Hugging Face optimum's:
 *
 *   encoder (seq2seq):  SRC, SRC.lengths                      → encoder_out.*, present.*
 *   decoder step:       TOKENS [B, T], TOKENS.lengths [B],
 *                       TOKENS.offsets [B]       (positional layers: position of the first token fed)
 *                       TOKENS.key_lengths [B], TOKENS.cache_start []  (causal self-attention)
 *                       SRC, SRC.lengths, encoder_out.*       (seq2seq: what the encoder gave)
 *                       past_key_values.*                     → OUTPUT [B, T, V], present.*
 *
 * A language model's first call feeds the whole (padded) prompt, with empty caches and zero
 * states; a seq2seq decoder's first call feeds bos. Every later call feeds one token per row.
 *
 *   tsx examples/serving/generate.ts MODEL.onnx "token ids of a prompt or source" [--bos N] [--eos N] [--max-len N]
 *
 * (MODEL.onnx: what `nnc onnx` wrote; its .decoder.onnx and .encoder.onnx beside it are used.)
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';

type Ort = typeof import('onnxruntime-node');

export interface Graphs {
  /** Seq2seq models only. */
  readonly encoder?: InferenceSession;
  readonly decoder: InferenceSession;
}

/** Token ids per row (rows may differ in length: they are padded with 0 and their lengths passed). */
export interface GreedyOptions {
  readonly maxLen: number;
  /** Seq2seq: the first token fed to the decoder. */
  readonly bos?: number;
  /** A row ends after it produces eos. */
  readonly eos?: number;
}

function padded(ort: Ort, rows: readonly (readonly number[])[]): { ids: Tensor; lengths: Tensor; width: number } {
  const width = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * width);
  rows.forEach((r, b) => data.set(r, b * width));
  return { ids: new ort.Tensor('int32', data, [rows.length, width]), lengths: new ort.Tensor('int32', Int32Array.from(rows, (r) => r.length), [rows.length]), width };
}

/** The row of the largest value (the first on ties), in `x`'s `vocab`-wide block at `offset`. */
function argmax(x: Float32Array, offset: number, vocab: number): number {
  let best = 0;
  for (let v = 1; v < vocab; v++) if (x[offset + v]! > x[offset + best]!) best = v;
  return best;
}

/**
 * Greedy decoding: for a seq2seq model `input` is the source rows; for a language model, the prompt
 * rows. Returns the generated ids per row (up to maxLen, ending at eos).
 */
export async function greedy(ort: Ort, graphs: Graphs, input: readonly (readonly number[])[], opts: GreedyOptions): Promise<number[][]> {
  const { encoder, decoder } = graphs;
  const B = input.length;
  const names = new Set(decoder.inputNames);
  const fixed: Record<string, Tensor> = {};
  let past: Record<string, Tensor> = {};
  let fed: { ids: Tensor; lengths: Tensor; width: number };
  const positions = new Int32Array(B);
  let keyLengths = new Int32Array(B);
  let cacheStart = 0;
  if (encoder) {
    const src = padded(ort, input);
    const srcName = encoder.inputNames.find((n) => !n.endsWith('.lengths'))!;
    const srcFeeds = { [srcName]: src.ids, [`${srcName}.lengths`]: src.lengths };
    const enc = await encoder.run(srcFeeds);
    for (const [k, v] of Object.entries(srcFeeds)) if (names.has(k)) fixed[k] = v;
    for (const [k, v] of Object.entries(enc)) {
      if (k.startsWith('encoder_out.')) fixed[k] = v;
      else if (k.startsWith('present.')) past[`past_key_values.${k.slice('present.'.length)}`] = v;
    }
    if (opts.bos === undefined) throw new Error('a seq2seq model needs bos: the first token fed to its decoder');
    fed = padded(ort, input.map(() => [opts.bos!]));
  } else {
    // a language model: empty caches, zero states (their widths are in the decoder's input metadata)
    for (const name of decoder.inputNames) {
      if (!name.startsWith('past_key_values.')) continue;
      const meta = decoder.inputMetadata.find((m) => m.name === name);
      const shape = meta?.isTensor ? meta.shape : undefined;
      const width = shape?.[shape.length - 1];
      if (typeof width !== 'number') throw new Error(`cannot tell the width of '${name}' from the decoder's metadata`);
      past[name] = shape!.length === 3 ? new ort.Tensor('float32', new Float32Array(0), [B, 0, width]) : new ort.Tensor('float32', new Float32Array(B * width), [B, width]);
    }
    fed = padded(ort, input);
    keyLengths = Int32Array.from(input, (r) => r.length);
    cacheStart = fed.width;
  }
  const tokensName = decoder.inputNames.find((n) => names.has(`${n}.lengths`) && !(n in fixed))!;
  const outputName = decoder.outputNames.find((n) => !n.startsWith('present.') && n !== 'attention')!;
  const ids: number[][] = input.map(() => []);
  const done = new Array<boolean>(B).fill(false);
  for (let t = 0; t < opts.maxLen; t++) {
    const feeds: Record<string, Tensor> = { ...fixed, ...past, [tokensName]: fed.ids, [`${tokensName}.lengths`]: fed.lengths };
    if (names.has(`${tokensName}.offsets`)) feeds[`${tokensName}.offsets`] = new ort.Tensor('int32', positions.slice(), [B]);
    if (names.has(`${tokensName}.key_lengths`)) {
      feeds[`${tokensName}.key_lengths`] = new ort.Tensor('int32', keyLengths, [B]);
      feeds[`${tokensName}.cache_start`] = new ort.Tensor('int32', Int32Array.of(cacheStart), []);
    }
    const out = await decoder.run(feeds);
    const dist = out[outputName]!;
    const V = dist.dims[2]!;
    const T = dist.dims[1]!;
    const lengths = fed.lengths.data as Int32Array;
    const data = dist.data as Float32Array;
    const next: number[] = [];
    for (let b = 0; b < B; b++) {
      // the distribution after each row's last fed token
      const tok = argmax(data, (b * T + lengths[b]! - 1) * V, V);
      if (!done[b]) {
        ids[b]!.push(tok);
        if (tok === opts.eos) done[b] = true;
      }
      next.push(done[b] ? (opts.eos ?? tok) : tok);
      positions[b]! += lengths[b]!;
    }
    if (done.every(Boolean)) break;
    past = {};
    for (const [k, v] of Object.entries(out)) if (k.startsWith('present.')) past[`past_key_values.${k.slice('present.'.length)}`] = v;
    fed = padded(ort, next.map((x) => [x]));
  }
  return ids;
}

async function main(argv: string[]): Promise<void> {
  const usage = 'usage: tsx examples/serving/generate.ts MODEL.onnx "IDS" ["IDS" ...] [--bos N] [--eos N] [--max-len N]';
  const rows: number[][] = [];
  let file: string | undefined;
  const opts: { maxLen: number; bos?: number; eos?: number } = { maxLen: 20 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--bos' || a === '--eos' || a === '--max-len') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer\n${usage}`);
      if (a === '--bos') opts.bos = v;
      else if (a === '--eos') opts.eos = v;
      else opts.maxLen = v;
    } else if (file === undefined) file = a;
    else rows.push(a.trim().split(/[\s,]+/).map(Number));
  }
  if (!file || !rows.length) throw new Error(usage);
  const ort = await import('onnxruntime-node');
  const { existsSync } = await import('node:fs');
  const stem = file.replace(/\.onnx$/, '');
  const graphs = {
    ...(existsSync(`${stem}.encoder.onnx`) ? { encoder: await ort.InferenceSession.create(`${stem}.encoder.onnx`) } : {}),
    decoder: await ort.InferenceSession.create(`${stem}.decoder.onnx`),
  };
  for (const ids of await greedy(ort, graphs, rows, opts)) console.log(ids.join(' '));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(String(e instanceof Error ? e.message : e));
    process.exit(2);
  });
}
