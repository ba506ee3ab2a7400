/** `nnc onnx FILE.nn --weights W.safetensors [-o OUT.onnx] [--model NAME]` (src/cli.ts parses the arguments). */
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import type { ModelIR } from '../ir/model.ts';
import { weightMap } from '../runtime/weights.ts';
import { didYouMean } from '../runtime/suggest.ts';
import { exportOnnx } from './onnx.ts';

export interface OnnxArgs {
  readonly file: string;
  readonly out?: string;
  readonly weights: string;
  readonly model?: string;
}

/** The files a model's export is written to: OUT.onnx, and for a model that generates OUT.encoder.onnx (seq2seq) and OUT.decoder.onnx. */
export function onnxPaths(out: string): { forward: string; encoder: string; decoder: string } {
  const stem = out.replace(/\.onnx$/, '');
  return { forward: out, encoder: `${stem}.encoder.onnx`, decoder: `${stem}.decoder.onnx` };
}

/**
 * Exit codes as `compile`'s: 0 written, 1 the weights do not fit the spec, 2 bad usage or unreadable
 * files. `write` is the CLI's (it refuses to overwrite the spec and reports failures).
 */
export function runOnnx(args: OnnxArgs, models: readonly ModelIR[], version: string, write: (files: readonly (readonly [string, Uint8Array])[]) => boolean): number {
  const fail = (code: number, msg: string) => {
    process.stderr.write(`nnc: ${msg}\n`);
    return code;
  };
  const ir = args.model === undefined ? models[0]! : models.find((m) => m.name === args.model);
  if (!ir) {
    const near = didYouMean(args.model!, models.map((m) => m.name));
    return fail(2, `${args.file} has no model '${args.model}'${near ? ` — did you mean '${near}'?` : ''} (its models: ${models.map((m) => m.name).join(', ')})`);
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(args.weights);
  } catch (e) {
    return fail(2, `cannot read '${args.weights}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let weights: Map<string, Float32Array>;
  try {
    weights = weightMap(bytes, ir.weights);
  } catch (e) {
    return fail(1, `${args.weights} does not hold ${ir.name}'s weights: ${(e as Error).message}`);
  }
  const e = exportOnnx(ir, weights, { producerVersion: version, source: basename(args.file) });
  const paths = onnxPaths(args.out ?? basename(args.file, extname(args.file)) + '.onnx');
  const files: [string, Uint8Array][] = [[paths.forward, e.forward]];
  if (e.encoder) files.push([paths.encoder, e.encoder]);
  if (e.decoder) files.push([paths.decoder, e.decoder]);
  if (!write(files)) return 2;
  const names = files.map(([p]) => p);
  const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0];
  const loops = e.io.loops.length ? `; ONNX Scan for ${e.io.loops.map((l) => l.label).join(', ')}` : '';
  process.stdout.write(`wrote ${list} (${ir.name}: ${ir.weights.length} weights, opset ${e.io.opset}${loops})\n`);
  if (models.length > 1 && args.model === undefined) process.stderr.write(`nnc: ${args.file} has ${models.length} models; exported '${ir.name}', the first (--model NAME for another)\n`);
  return 0;
}
