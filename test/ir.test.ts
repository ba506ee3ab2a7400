/**
 * IR golden files: for each test/golden/ir/*.nn, the IR after expansion (`--emit=ir`) and after
 * every pass (`--emit=ir-opt`), reviewed as diffs. Regenerate:
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/ir.test.ts
 *
 * Plus structural checks of what the passes must achieve, independent of the goldens.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { expectGolden } from './golden.ts';
import { ROOT } from './helpers.ts';

const DIR = join(ROOT, 'test/golden/ir');
const specs = readdirSync(DIR).filter((f) => f.endsWith('.nn'));

describe.each(specs)('%s', (file) => {
  const text = readFileSync(join(DIR, file), 'utf8');
  it.each(['ir', 'ir-opt'] as const)('--emit=%s', (stage) => {
    const r = compile(text, `test/golden/ir/${file}`, stage);
    expect(r.diagnostics).toEqual([]);
    expectGolden(join(DIR, file.replace(/\.nn$/, `.${stage}.txt`)), r.output!);
  });
});

describe('what the passes achieve', () => {
  const lstm = readFileSync(join(DIR, 'lstm.nn'), 'utf8');
  const body = (ir: string) => ir.slice(ir.indexOf('body {'), ir.indexOf('yield'));
  it('lowers an LSTM gate by gate: 8 matmuls inside the recurrence', () => {
    const ir = compile(lstm, 'lstm.nn', 'ir').output!;
    expect(body(ir).match(/= matmul /g)).toHaveLength(8);
  });
  it('after the passes: one stacked matmul per step, the input projection hoisted, one kernel per step', () => {
    const ir = compile(lstm, 'lstm.nn', 'ir-opt').output!;
    const b = body(ir);
    expect(b.match(/= matmul /g)).toHaveLength(1);
    expect(b.match(/^\s*kernel /gm)).toHaveLength(1);
    expect(b).toMatch(/kernel k\d+ = fused\(/);
    const outside = ir.replace(b, '');
    expect(outside).toMatch(/= matmul %\d+, %\d+, %\d+ \{bias=true\} : \[B, T, 12\]  # lstm0\.l0\.x·Wᵀ \(all steps\)/);
  });
  it('a bidirectional two-layer GRU has one fused kernel per step and direction', () => {
    const ir = compile(readFileSync(join(DIR, 'bigru_pool.nn'), 'utf8'), 'g.nn', 'ir-opt').output!;
    expect(ir.match(/= scan /g)).toHaveLength(4);
    expect(ir.match(/^\s+kernel k\d+ = fused/gm)!.length).toBeGreaterThanOrEqual(4);
    expect(ir.match(/%\d+ = matmul .*x·Wᵀ \(all steps\)/g)).toHaveLength(4);
  });
  it('-O1 keeps one kernel per op; -O0 does not stack or hoist', () => {
    const o1 = compile(lstm, 'lstm.nn', 'ir-opt', 1).output!;
    expect(body(o1).match(/^\s*kernel /gm)!.length).toBeGreaterThan(10);
    const o0 = compile(lstm, 'lstm.nn', 'ir-opt', 0).output!;
    expect(o0).not.toMatch(/all steps/);
    expect(body(o0).match(/= matmul /g)).toHaveLength(8);
  });
  it('Bahdanau: the key projection once per source, the input projection hoisted, one kernel chain per decoder step', () => {
    const ir = compile(readFileSync(join(DIR, 'bahdanau_additive.nn'), 'utf8'), 'b.nn', 'ir-opt').output!;
    const dec = ir.slice(ir.indexOf('scan', ir.indexOf('decoder.gru0')));
    const decBody = dec.slice(dec.indexOf('body {'), dec.indexOf('yield'));
    const outside = ir.replace(decBody, '');
    // W₁·k is a matmul over [B, S, dim] outside the loop; the step only captures it
    expect(outside).toMatch(/= matmul %\d+, %\d+ \{bias=false\} : \[B, S, 6\]  # decoder\.attention0\.W₁·k/);
    expect(decBody).toMatch(/capture \{input=\d+\} : \[B, S, 6\]/);
    expect(decBody).not.toMatch(/: \[B, S, 6\]  # decoder\.attention0\.W₁·k \(keys, once per source\)  @/);
    // the x columns of W_ih are hoisted out as one matmul over all target steps
    expect(outside).toMatch(/= matmul .* : \[B, T, 21\]  # decoder\.gru0\.l0\.x·Wᵀ \(all steps\)/);
    // per step: scores (fused with W₂q, tanh and v), softmax, context, and the GRU cell
    const kernels = decBody.match(/^\s*kernel .*$/gm)!;
    expect(kernels).toHaveLength(4);
    expect(kernels[0]).toMatch(/fused\(.*\) -> %\d+, once per time step  # decoder\.attention0\.scores/);
    expect(kernels[1]).toMatch(/softmax .*# decoder\.attention0\.α/);
    expect(kernels[2]).toMatch(/einsum .*# decoder\.attention0\.context/);
    expect(kernels[3]).toMatch(/fused\(.*\) -> %\d+, once per time step  # decoder\.gru0\.l0\.h'/);
  });
});
