/**
 * Writes a Triton Inference Server model repository from the files `nnc onnx` wrote
 * (docs/serving.md): one model per graph, served by Triton's onnxruntime backend, with a
 * config.pbtxt declaring every input and output as the graph does (symbolic sizes as -1, the batch
 * axis included: max_batch_size 0, since the decoder step's caches and states are batched by the
 * client that feeds them back; scalars as dims [1] reshaped to []).
 *
 *   tsx examples/serving/triton.ts MODEL.onnx REPOSITORY
 *
 * writes REPOSITORY/<model>/ (forward), <model>_encoder/ (seq2seq) and <model>_decoder_step/, each
 * with config.pbtxt and 1/model.onnx. The interface is read from the files' `nnc.io` metadata.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeModel } from '../../src/export/onnx-proto.ts';
import type { OnnxGraphIO, OnnxIO, OnnxTensorSpec } from '../../src/export/onnx.ts';

/** A Triton model name from nnc's model name (lower case, [a-z0-9_]). */
export const tritonName = (model: string) => model.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase().replace(/[^a-z0-9_]/g, '_');

function tensor(t: OnnxTensorSpec): string {
  const type = t.dtype === 'float32' ? 'TYPE_FP32' : 'TYPE_INT32';
  const dims = t.shape.length ? `dims: [ ${t.shape.map((d) => (typeof d === 'number' ? d : -1)).join(', ')} ]` : 'dims: [ 1 ]\n    reshape: { shape: [ ] }';
  return `  {\n    name: ${JSON.stringify(t.name)}\n    data_type: ${type}\n    ${dims}\n  }`;
}

/** config.pbtxt for one graph. */
export function tritonConfig(name: string, io: OnnxGraphIO): string {
  return [
    `name: ${JSON.stringify(name)}`,
    'backend: "onnxruntime"',
    'max_batch_size: 0',
    `input [\n${io.inputs.map(tensor).join(',\n')}\n]`,
    `output [\n${io.outputs.map(tensor).join(',\n')}\n]`,
    'instance_group [ { kind: KIND_CPU, count: 1 } ]',
    '',
  ].join('\n');
}

/** The interface `nnc onnx` recorded in a file's metadata. */
export function readIO(file: string): OnnxIO {
  const m = decodeModel(readFileSync(file));
  const prop = m.metadata_props?.find((p) => p.key === 'nnc.io');
  if (!prop) throw new Error(`${file} has no nnc.io metadata: was it written by nnc onnx?`);
  return JSON.parse(prop.value) as OnnxIO;
}

/** Writes the repository; returns the Triton model names. */
export function writeRepository(file: string, repo: string): string[] {
  const io = readIO(file);
  const stem = file.replace(/\.onnx$/, '');
  const base = tritonName(io.model);
  const graphs: [string, string, OnnxGraphIO | undefined][] = [
    [base, file, io.forward],
    [`${base}_encoder`, `${stem}.encoder.onnx`, io.encoder],
    [`${base}_decoder_step`, `${stem}.decoder.onnx`, io.decoder],
  ];
  const names: string[] = [];
  for (const [name, path, gio] of graphs) {
    if (!gio) continue;
    if (!existsSync(path)) throw new Error(`${path} is missing: write it with nnc onnx beside ${file}`);
    mkdirSync(join(repo, name, '1'), { recursive: true });
    writeFileSync(join(repo, name, 'config.pbtxt'), tritonConfig(name, { inputs: gio.inputs, outputs: gio.outputs }));
    copyFileSync(path, join(repo, name, '1', 'model.onnx'));
    names.push(name);
  }
  return names;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, repo] = process.argv.slice(2);
  if (!file || !repo) {
    console.error('usage: tsx examples/serving/triton.ts MODEL.onnx REPOSITORY');
    process.exit(2);
  }
  try {
    console.log(`wrote ${writeRepository(file, repo).map((n) => join(repo, n)).join(', ')}`);
  } catch (e) {
    console.error(String((e as Error).message ?? e));
    process.exit(1);
  }
}
