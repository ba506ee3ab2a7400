/**
 * `nnc compile --emit=ir-grad`: the backward graph of reverse mode (src/passes/grad) printed for each
 * test/golden/ir/*.nn, reviewed as diffs — fused into kernels, each with codegen's host notes (how the
 * host backends run it), as --emit=ir-opt prints the forward. Regenerate:
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/grad-ir.test.ts
 *
 * And the command run as a user runs it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { expectGolden } from './golden.ts';
import { ROOT } from './helpers.ts';

const DIR = join(ROOT, 'test/golden/ir');
const specs = readdirSync(DIR).filter((f) => f.endsWith('.nn'));

describe.each(specs)('%s', (file) => {
  it('--emit=ir-grad', () => {
    const r = compile(readFileSync(join(DIR, file), 'utf8'), `test/golden/ir/${file}`, 'ir-grad');
    expect(r.diagnostics).toEqual([]);
    expectGolden(join(DIR, file.replace(/\.nn$/, '.ir-grad.txt')), r.output!);
  });
});

describe('nnc compile --emit=ir-grad', () => {
  it('prints what the forward keeps and the backward graph: a scan running the other way, weight gradients outside it', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/nnc.js'), 'compile', join(DIR, 'lstm.nn'), '--emit=ir-grad'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^training forward of \w+ keeps \d+ values:\n/);
    expect(r.stdout).toMatch(/^  %\d+  history  # lstm0\.l0$/m);
    expect(r.stdout).toMatch(/= scan .*\{cell="lstm", init=false, reverse=true, stateSize=\d+\} .*# lstm0\.l0\.backward/);
    // the stacked recurrent weight's gradient: one einsum over [B, T, ·] operands, outside the loop
    expect(r.stdout).toMatch(/^ {2}%\d+ = einsum %\d+, %\d+ \{scale=1, spec="(\w)(\w)\w,\1\2\w->\w\w"\} : \[\d+, \d+\]  # d\(lstm0\.weight_hh_l0\)/m);
    expect(r.stdout).toMatch(/^ {2}output lstm0\.weight_hh_l0 = %\d+$/m);
    // ... as ir-opt prints the forward: each kernel with how the host backends run it
    expect(r.stdout).toMatch(/^ {2}kernel k\d+ = .*# d\(lstm0\.weight_hh_l0\)\n {4}host: %\d+ GEMM/m);
  });

  it('prints the backward\'s kernels with the host notes ir-opt prints for the forward\'s', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/nnc.js'), 'compile', join(DIR, 'luong_heads.nn'), '--emit=ir-grad'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    // the attention weights' cotangent: the batched GEMM of dα = dctx · Vᵀ, one per row and head
    expect(r.stdout).toMatch(/^ {2}kernel k\d+ = einsum -> %\d+ {2}# d\(decoder\.attention0\.α\)\n {4}host: %\d+ batched GEMM, one per b, n: %\d+ packed per call, into the output$/m);
    // V's: its summed axis is strided in dα, whose rows are copied first
    expect(r.stdout).toMatch(/^ {4}host: %\d+ batched GEMM, one per b, n, %\d+ copied as rows first: %\d+ packed per call/m);
    expect(r.stdout).toMatch(/^ +host: epilogue: /m);
    // the forward's ir-opt prints the same kind of notes
    const opt = spawnSync(process.execPath, [join(ROOT, 'bin/nnc.js'), 'compile', join(DIR, 'luong_heads.nn'), '--emit=ir-opt'], { encoding: 'utf8' });
    expect(opt.stdout).toMatch(/^ {4}host: %\d+ batched GEMM, one per b, n: /m);
  });
});
