/**
 * What backend 'onnxruntime' imports from the 'nnc' package (src/index.ts re-exports it;
 * src/runtime/ort.ts): the spec a generated module embeds, lowered again by the front end
 * (src/front.ts, no passes or emitter), so that its ONNX graphs come from the same exporter as
 * `nnc onnx`.
 */
import { lower } from '../front.ts';
import type { ModelIR } from '../ir/model.ts';
import { NncError } from '../runtime/errors.ts';
import type { ModelManifest, SpecSource } from '../runtime/types.ts';
import { exportOnnx, type OnnxExport, type WeightValues } from './onnx.ts';

/** The model's IR, checked against the module's manifest (the same compiler made both). */
export function modelFromSpec(spec: SpecSource, manifest: ModelManifest): ModelIR {
  const files = { read: (path: string) => spec.files?.[path] ?? fail(`${path}: the module does not embed this file; recompile it with this version of nnc (nnc compile)`) };
  const { models } = lower(spec.text, `${manifest.model}.nn`, { files });
  const ir = models?.find((m) => m.name === manifest.model);
  const sig = (ws: readonly { name: string; shape: readonly number[] }[]) => JSON.stringify(ws.map((w) => [w.name, w.shape]));
  if (!ir || sig(ir.weights) !== sig(manifest.weights) || ir.output.name !== manifest.output.name) {
    throw new NncError(`the generated module of ${manifest.model} does not match what this nnc makes of the spec it embeds: recompile it with this version of nnc (nnc compile)`);
  }
  return ir;
}

function fail(message: string): never {
  throw new Error(message);
}

export function onnxFromModel(ir: unknown, weights: WeightValues): OnnxExport {
  // ir is what modelFromSpec returned (the runtime holds it opaquely)
  return exportOnnx(ir as ModelIR, weights, { source: (ir as ModelIR).span.file });
}
