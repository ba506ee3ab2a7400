/** Loading PyTorch fixtures (test/fixtures) into the float64 IR interpreter (src/ir/interp.ts). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lower } from '../src/driver.ts';
import type { ModelIR } from '../src/ir/model.ts';
import type { InterpEnv, Tensor } from '../src/ir/interp.ts';
import { decodeTensor, readSafetensors } from '../src/runtime/safetensors.ts';
import { FIXTURES, indexNames, loadCase, type Case } from './helpers.ts';

/** Every fixture case: the chain models, language models, seq2seq and Transformer cases. */
export function allFixtures(): string[] {
  return ['index.json', 'lm-index.json', 'seq2seq-index.json', 'transformer-index.json'].flatMap((index) => indexNames(index));
}

export interface Fixture {
  readonly name: string;
  readonly model: ModelIR;
  readonly case: Case;
  readonly env: InterpEnv;
  readonly weights: Map<string, Float32Array>;
}

/** A fixture lowered to IR (no passes), with its weights and inputs as an interpreter environment. */
export function loadFixture(name: string): Fixture {
  const { spec, case: c } = loadCase(name);
  const { models, diagnostics } = lower(spec, `test/fixtures/${name}/model.nn`);
  if (!models) throw new Error(`${name}: ${diagnostics.map((d) => d.message).join('; ')}`);
  const model = models[0];
  const path = join(FIXTURES, name, 'weights.safetensors');
  const weights = new Map<string, Float32Array>();
  if (existsSync(path)) for (const [k, v] of readTensors(readFileSync(path))) weights.set(k, v.data);
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
