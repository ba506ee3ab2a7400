/** Loading PyTorch fixtures (test/fixtures) into the float64 IR interpreter (src/ir/interp.ts). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lower } from '../src/driver.ts';
import type { ModelIR } from '../src/ir/model.ts';
import type { InterpEnv, Tensor } from '../src/ir/interp.ts';
import { decodeTensor, readSafetensors } from '../src/runtime/safetensors.ts';
import { weightMap, type LoadOptions } from '../src/runtime/weights.ts';
import { FIXTURES, indexNames, type Case } from './helpers.ts';

/** Every fixture case with PyTorch gradients: the chain models, language models, seq2seq and Transformer cases. */
export function allFixtures(): string[] {
  return ['index.json', 'lm-index.json', 'seq2seq-index.json', 'transformer-index.json'].flatMap((index) => indexNames(index));
}

/**
 * The stock-checkpoint cases (make_checkpoint_fixtures.py): a state_dict of stock PyTorch modules,
 * loaded through the runtime's renaming. Not ckpt_half: a Tagger whose outputs are those of its
 * half-precision files (a test of number formats, test/checkpoints.test.ts).
 */
export function checkpointFixtures(): string[] {
  return indexNames('checkpoint-index.json').filter((name) => name !== 'ckpt_half');
}

export interface Fixture {
  readonly name: string;
  readonly model: ModelIR;
  readonly case: Case;
  readonly env: InterpEnv;
  readonly weights: Map<string, Float32Array>;
}

/**
 * A fixture lowered to IR (no passes), with its weights and inputs as an interpreter environment. A
 * stock checkpoint's state_dict is read as `loadWeights` reads it (stock names resolved, the case's
 * rename applied).
 */
export function loadFixture(name: string): Fixture {
  const dir = join(FIXTURES, name);
  const spec = readFileSync(join(dir, 'model.nn'), 'utf8');
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Case & { load?: LoadOptions };
  const { models, diagnostics } = lower(spec, `test/fixtures/${name}/model.nn`);
  if (!models) throw new Error(`${name}: ${diagnostics.map((d) => d.message).join('; ')}`);
  const model = models[0];
  let weights = new Map<string, Float32Array>();
  if (existsSync(join(dir, 'state_dict.safetensors'))) {
    weights = weightMap(new Uint8Array(readFileSync(join(dir, 'state_dict.safetensors'))), model.weights, c.load);
  } else if (existsSync(join(dir, 'weights.safetensors'))) for (const [k, v] of readTensors(readFileSync(join(dir, 'weights.safetensors')))) weights.set(k, v.data);
  return { name, model, case: c, env: envOf(model, c, weights), weights };
}

export function envOf(model: ModelIR, c: Case, weights: ReadonlyMap<string, ArrayLike<number>>): InterpEnv {
  const inputs: Record<string, Tensor> = {};
  const lengths: Record<string, Int32Array> = {};
  let B = 0;
  const dims: Record<string, number> = {};
  for (const inp of model.inputs) {
    const t = c.inputs[inp.name];
    inputs[inp.name] = { shape: t.shape, data: t.dtype === 'int32' ? Int32Array.from(t.data) : Float64Array.from(t.data) };
    lengths[inp.name] = Int32Array.from(t.lengths ?? Array(t.shape[0]).fill(t.shape[1]));
    B = t.shape[0];
    dims[inp.time] = t.shape[1];
  }
  return { dims: { B, T: dims.T, S: dims.S }, inputs, lengths, params: Object.fromEntries(weights) };
}

/** The float tensors of safetensors bytes by name (the runtime's reader). */
export function readTensors(bytes: Uint8Array): Map<string, { shape: readonly number[]; data: Float32Array }> {
  const file = readSafetensors(bytes);
  return new Map(file.entries.map((e) => [e.name, { shape: e.shape, data: decodeTensor(file, e)! }]));
}

/**
 * A fixture's gradients from torch.autograd.grad (its grads.safetensors): the cotangents to give
 * `model.vjp`, the names gradients are compared under (the weights, then `input:<name>` of float
 * inputs), each one's expected values, and the scale each is measured against — its largest |grad|,
 * or the model's largest where the gradient is 0 in exact arithmetic (a score's bias under softmax:
 * torch's is float noise below 1e-6 of the model's largest, and so is ours).
 */
export function torchGradients(f: Fixture, name: string): {
  want: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;
  cotangents: Record<string, { data: Float32Array; shape: number[] }>;
  names: string[];
  scale: (k: string) => number;
} {
  const want = readTensors(readFileSync(join(FIXTURES, name, 'grads.safetensors')));
  const out = f.model.output.name;
  const c = want.get(`cotangent:${out}`)!;
  const names = [...f.model.weights.map((w) => w.name), ...f.model.inputs.filter((i) => i.form === 'vectors').map((i) => `input:${i.name}`)];
  const largest = (k: string) => want.get(k)!.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const top = Math.max(...names.map(largest));
  return { want, cotangents: { [out]: { data: c.data, shape: [...c.shape] } }, names, scale: (k) => (largest(k) < 1e-6 * top ? top : largest(k)) };
}

/** The gradient `model.vjp` returned under a name of torchGradients' `names`. */
export function gradientOf(g: { weights: Record<string, Float32Array>; inputs: Record<string, { data: Float32Array }> }, k: string): Float32Array {
  return k.startsWith('input:') ? g.inputs[k.slice(6)]!.data : g.weights[k]!;
}
