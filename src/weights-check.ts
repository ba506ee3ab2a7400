/**
 * `nnc weights SPEC.nn --check FILE.safetensors`: a checkpoint compared with a model's manifest by the
 * runtime's own loader (runtime/weights.ts) — so what it says is what loadWeights does — printed one line
 * per weight and per extra tensor, with the mappings used and likely renames for what is left.
 */
import { NncError } from './runtime/errors.ts';
import type { WeightInfo } from './runtime/types.ts';
import { compareWeights, nonFinite } from './runtime/weights.ts';

export { stockNames } from './runtime/weight-names.ts';

interface CheckJson {
  model: string;
  file: string;
  /** Whether loadWeights(bytes) loads it as it is. */
  ok: boolean;
  error?: string;
  weights: { name: string; shape: number[]; status: 'ok' | 'missing' | 'mismatch' | 'non-finite'; source?: string; how?: string; dtype?: string; problem?: string }[];
  extra: { name: string; shape: number[] | undefined; dtype: string }[];
  mapping: string[];
  renames: Record<string, string>;
}

/** The report (json.error set, text empty, when the file is not a valid safetensors file). */
export function checkCheckpoint(bytes: Uint8Array, model: { name: string; weights: readonly WeightInfo[] }, file: string): { ok: boolean; text: string; json: CheckJson } {
  const json: CheckJson = { model: model.name, file, ok: false, weights: [], extra: [], mapping: [], renames: {} };
  let report;
  try {
    report = compareWeights(bytes, model.weights);
  } catch (e) {
    if (!(e instanceof NncError)) throw e;
    json.error = e.message;
    return { ok: false, text: '', json };
  }
  for (const r of report.rows) {
    const w = r.weight;
    const base = { name: w.name, shape: [...w.shape] };
    if (!r.tensor) {
      json.weights.push({ ...base, status: 'missing', problem: r.problem! });
      continue;
    }
    const src = { source: r.tensor.name, how: r.how!, dtype: r.tensor.dtype };
    const nf = r.problem ? undefined : nonFinite(r.tensor.values()!, w.shape);
    if (r.problem) json.weights.push({ ...base, ...src, status: 'mismatch', problem: r.problem });
    else if (nf) json.weights.push({ ...base, ...src, status: 'non-finite', problem: `weight '${w.name}' has ${nf} (loadWeights refuses it unless { allowNonFinite: true })` });
    else json.weights.push({ ...base, ...src, status: 'ok' });
  }
  json.extra = report.extra.map((t) => ({ name: t.name, shape: t.shape ? [...t.shape] : undefined, dtype: t.dtype }));
  json.mapping = [...report.mapping];
  json.renames = Object.fromEntries(report.suggestions);
  json.ok = json.weights.every((w) => w.status === 'ok') && !json.extra.length;

  const lines = [`${file} against ${model.name} (${model.weights.length} weights; the checkpoint has ${report.rows.filter((r) => r.tensor).length + report.extra.length} tensors):`];
  const width = Math.max(4, ...json.weights.map((w) => w.name.length), ...json.extra.map((t) => t.name.length));
  const likely = new Map(report.suggestions.map(([f, t]) => [t, f]));
  const shapeWidth = Math.max(...json.weights.map((w) => w.shape.join(', ').length + 2), 2);
  for (const w of json.weights) {
    const shape = `[${w.shape.join(', ')}]`.padEnd(shapeWidth);
    if (w.status === 'missing') lines.push(`  missing     ${w.name.padEnd(width)}  ${shape}${likely.has(w.name) ? `  likely ${JSON.stringify(likely.get(w.name))}` : ''}`.trimEnd());
    else {
      const from = [w.source !== w.name ? `← ${JSON.stringify(w.source)}` : '', w.dtype !== 'F32' ? `(${w.dtype} → float32)` : ''].filter(Boolean).join(' ');
      lines.push(`  ${w.status.padEnd(10)}  ${w.name.padEnd(width)}  ${shape}${from ? `  ${from}` : ''}`.trimEnd() + (w.status === 'ok' ? '' : `\n              ${w.problem}`));
    }
  }
  for (const t of json.extra) lines.push(`  extra       ${t.name.padEnd(width)}  ${t.shape ? `[${t.shape.join(', ')}]` : ''}  ${t.dtype}`);
  for (const m of json.mapping) lines.push(`mapping: ${m}`);
  if (report.suggestions.length) {
    lines.push(`likely renames (same shape, similar name — check them): loadWeights(src, { rename: { ${report.suggestions.map(([f, t]) => `${JSON.stringify(f)}: ${JSON.stringify(t)}`).join(', ')} } })`);
  }
  const count = (s: string) => json.weights.filter((w) => w.status === s).length;
  const mapped = json.weights.filter((w) => w.status === 'ok' && w.how !== 'name').length;
  lines.push(json.ok
    ? `result: loads as it is: all ${json.weights.length} weights matched${mapped ? ` (${mapped} through the mapping above)` : ''}`
    : `result: does not load: ${[[count('ok'), 'matched'], [count('missing'), 'missing'], [count('mismatch'), 'wrong dtype or shape'], [count('non-finite'), 'with NaN or ±Infinity'], [json.extra.length, 'extra']].filter(([n]) => n).map(([n, what]) => `${n} ${what}`).join(', ')}`);
  return { ok: json.ok, text: lines.join('\n') + '\n', json };
}
