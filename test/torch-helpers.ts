/** Shared by the `nnc torch` tests: finding a Python with torch, emitting modules, weights, running Python. */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lower } from '../src/driver.ts';
import { emitTorch } from '../src/export/torch.ts';
import type { ModelIR } from '../src/ir/model.ts';
import { OUT, prng, ROOT } from './helpers.ts';

/**
 * A Python interpreter that imports torch: $NNC_PYTHON, Debian's /usr/bin/python3, or python3 on the
 * PATH. Undefined when there is none; with NNC_REQUIRE_PYTHON set (CI) that is an error, so these
 * tests are never skipped there.
 */
export function torchPython(): string | undefined {
  for (const py of [process.env.NNC_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!py) continue;
    try {
      execFileSync(py, ['-c', 'import torch, numpy'], { stdio: 'ignore' });
      return py;
    } catch {
      /* next */
    }
  }
  if (process.env.NNC_REQUIRE_PYTHON) throw new Error('NNC_REQUIRE_PYTHON is set but no Python with torch and numpy was found ($NNC_PYTHON, /usr/bin/python3, python3): install python3-torch');
  return undefined;
}

export const TORCH_OUT = join(OUT, 'torch');

/** `nnc torch` on a spec, in this process (the CLI's code path: lower, then emitTorch). */
export function emitPython(spec: string, file: string): string {
  const r = lower(spec, file);
  if (!r.models || !r.resolved) throw new Error(`${file}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return emitTorch(r.models.map((ir, i) => ({ ir, resolved: r.resolved![i]! })), file, '0.1.0');
}

/** float32 safetensors bytes, tensors in the given order. */
export function safetensors(tensors: Record<string, { shape: readonly number[]; data: Float32Array }>): Uint8Array {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let h = JSON.stringify(header);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const hb = new TextEncoder().encode(h);
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const t of Object.values(tensors)) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

/** Random weights for a manifest: uniform in ±1/sqrt(last dim) (1-d: ±0.3), layernorm gains near 1. */
export function randomWeights(weights: readonly { name: string; shape: readonly number[]; layer?: string }[], seed: number): Record<string, { shape: readonly number[]; data: Float32Array }> {
  const r = prng(seed);
  const out: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  for (const w of weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const scale = w.shape.length > 1 ? 1 / Math.sqrt(w.shape[w.shape.length - 1]!) : 0.3;
    const gain = w.layer === 'layernorm' && w.name.endsWith('.weight') ? 1 : 0;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = gain + (2 * r() - 1) * scale;
    out[w.name] = { shape: w.shape, data };
  }
  return out;
}

export interface PyTensor {
  dtype: 'int32' | 'float32';
  shape: number[];
  data: number[];
  lengths: number[];
}
function tokens(r: () => number, B: number, T: number, vocab: number, lengths: number[], first?: number): PyTensor {
  const data = Array.from({ length: B * T }, (_, i) => (first !== undefined && i % T === 0 ? first : Math.floor(r() * vocab)));
  return { dtype: 'int32', shape: [B, T], data, lengths };
}

/** Random padded inputs for a spec without a fixture: B = 2, T = 5 (a flatten window: max_len, full rows). */
export function inputsFor(ir: ModelIR, seed: number): Record<string, PyTensor> {
  const r = prng(seed);
  const fixed = ir.graph.ordered().some((n) => n.op === 'flatten');
  const out: Record<string, PyTensor> = {};
  ir.inputs.forEach((inp, k) => {
    const T = fixed ? inp.maxLen! : Math.min(5, inp.maxLen ?? 5);
    const lengths = fixed ? [T, T] : [T, T - 2];
    const bos = ir.inputs.length === 2 && k === 1 ? ((ir.decode?.bos as number | undefined) ?? 0) : undefined;
    out[inp.name] = inp.form === 'tokens'
      ? tokens(r, 2, T, inp.vocab!, lengths, bos)
      : { dtype: 'float32', shape: [2, T, inp.dim!], data: Array.from({ length: 2 * T * inp.dim! }, () => Math.fround(2 * r() - 1)), lengths };
  });
  return out;
}

export interface PyJob {
  id: string;
  module: string;
  weights: string;
  inputs: Record<string, PyTensor>;
  generate?: { input: string; options: Record<string, unknown> }[];
}
export interface PyResult {
  id: string;
  error?: string;
  state_dict: [string, number[]][];
  output: { shape: number[]; data: number[] };
  generate: { ids: number[][]; scores: number[]; n_best?: [number[], number][][] }[];
}

/** Runs test/fixtures/torch_check.py over the jobs in one Python process. */
export function runPythonJobs(python: string, jobs: readonly PyJob[], tag: string): Promise<Map<string, PyResult>> {
  mkdirSync(TORCH_OUT, { recursive: true });
  const jobFile = join(TORCH_OUT, `${tag}.jobs.json`);
  const outFile = join(TORCH_OUT, `${tag}.results.json`);
  writeFileSync(jobFile, JSON.stringify(jobs));
  return new Promise((resolve, reject) => {
    const p = spawn(python, [join(ROOT, 'test/fixtures/torch_check.py'), jobFile, outFile], { stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`torch_check.py exited with ${code}: ${err}`));
      const res = JSON.parse(readFileSync(outFile, 'utf8')) as PyResult[];
      resolve(new Map(res.map((r) => [r.id, r])));
    });
  });
}
