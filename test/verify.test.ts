/**
 * The IR verifier (src/ir/verify.ts) after expansion and after every pass, at every optimisation
 * level, on every spec the repository has: examples, IR goldens and numeric fixtures. And the
 * verifier itself: broken graphs are rejected with the rule they break.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lower, optimize } from '../src/driver.ts';
import { verifyModel, VerifyError } from '../src/ir/verify.ts';
import type { OpAttrs } from '../src/ir/ops.ts';
import { compileProgram } from '../src/codegen/plan.ts';
import { ROOT } from './helpers.ts';

const specs: [string, string][] = [];
for (const dir of ['examples', 'test/golden/ir']) {
  for (const f of readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.nn'))) specs.push([`${dir}/${f}`, readFileSync(join(ROOT, dir, f), 'utf8')]);
}
for (const d of readdirSync(join(ROOT, 'test/fixtures'), { withFileTypes: true })) {
  // a case directory holds its spec as model.nn (ngram/ and text/ hold corpora and vocabularies)
  if (d.isDirectory() && existsSync(join(ROOT, 'test/fixtures', d.name, 'model.nn'))) specs.push([`test/fixtures/${d.name}/model.nn`, readFileSync(join(ROOT, 'test/fixtures', d.name, 'model.nn'), 'utf8')]);
}

describe('every pass keeps the IR valid', () => {
  it.each(specs)('%s', (file, text) => {
    for (const level of [0, 1, 2] as const) {
      const { models, diagnostics } = lower(text, file);
      expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      for (const m of models!) {
        verifyModel(m.graph);
        optimize(m, level, true);
      }
    }
  });
});

describe('the verifier rejects broken IR', () => {
  const text = readFileSync(join(ROOT, 'test/golden/ir/lstm.nn'), 'utf8');
  const fresh = () => lower(text, 'lstm.nn').models![0];
  it('a node id used twice across graphs', () => {
    const m = fresh();
    const scan = m.graph.ordered().find((n) => n.op === 'scan')!;
    const body = (scan.attrs as OpAttrs['scan']).body;
    const first = body.ordered()[0];
    body.nodes.delete(first.id);
    body.nodes.set(0, { ...first, id: 0 });
    expect(() => verifyModel(m.graph)).toThrow(/id is used twice|not in its graph|does not come before/);
  });
  it('a shape that breaks its op rule', () => {
    const m = fresh();
    const mm = m.graph.ordered().find((n) => n.op === 'matmul')!;
    mm.shape = ['B', 'T', 99];
    expect(() => verifyModel(m.graph)).toThrow(VerifyError);
  });
  it('an input that comes after its user', () => {
    const m = fresh();
    const nodes = m.graph.ordered();
    nodes[3].inputs = [nodes[nodes.length - 1].id];
    expect(() => verifyModel(m.graph)).toThrow(/does not come before/);
  });
  it('a scan body that yields the wrong state size', () => {
    const m = fresh();
    const scan = m.graph.ordered().find((n) => n.op === 'scan')!;
    const body = (scan.attrs as OpAttrs['scan']).body;
    body.outputs[0]!.node = body.ordered().find((n) => n.op === 'step')!.id; // [B, 4] (the step input), not the state [B, 6]
    expect(() => verifyModel(m.graph)).toThrow(/yields \[B, 4\], expected \[B, 6\]/);
  });
  it('a scan whose size disagrees with its rule', () => {
    const m = fresh();
    const scan = m.graph.ordered().find((n) => n.op === 'scan')!;
    (scan.attrs as OpAttrs['scan']).stateSize = 7;
    expect(() => verifyModel(m.graph)).toThrow(/scan rule gives shape \[B, T, 7\]/);
  });
  it.each([
    ['a gather from a table of the wrong width', 'gather', (n: { shape: unknown[] }) => (n.shape = ['B', 'T', 5])],
    ['a slice past the end of its input', 'slice', (n: { attrs: unknown }) => ((n.attrs as OpAttrs['slice']).start = 10)],
    ['a mask on an axis its input does not have', 'mask', (n: { attrs: unknown }) => ((n.attrs as OpAttrs['mask']).axis = 5)],
    ['a softmax of the wrong shape', 'softmax', (n: { shape: unknown[] }) => (n.shape = ['B', 'T', 3])],
  ] as const)('%s', (_what, op, breakIt) => {
    const m = fresh();
    const n = m.graph.ordered().find((x) => x.op === op)!;
    (breakIt as (n: unknown) => void)(n);
    expect(() => verifyModel(m.graph)).toThrow(VerifyError);
  });
});

describe('kernel names are unique across the model', () => {
  // 0.1 numbered scan bodies from 1000·n: after `repeat 339 { linear 4 }` an LSTM's step kernel and
  // an outer kernel were both named k1029, and the module silently ran the wrong one
  const text = 'model M {\n  input x: vectors(dim = 4)\n  repeat 339 { linear 4 }\n  lstm 4\n  linear 2\n}\n';
  it('gives every kernel of the module a distinct name, and the 339 linear layers one kernel', async () => {
    const { compile } = await import('../src/driver.ts');
    // the forward's table (test/plan.test.ts checks the table training shares)
    const r = compile(text, 'm.nn', 'ts', 2, { train: false });
    expect(r.diagnostics).toEqual([]);
    const names = [...r.output!.matchAll(/^ {6}name: "(M\.k\d+)",$/gm)].map((m) => m[1]);
    expect(names.length).toBe(r.kernels![0]);
    expect(new Set(names).size).toBe(names.length);
    const { models } = lower(text, 'm.nn');
    const { plan, kernels } = compileProgram(optimize(models![0]!));
    const used = plan.decode.map((i) => (i.op === 'run' ? i.kernel : i.step.kernel));
    expect(plan.decode.length).toBeGreaterThan(339);
    // the second linear on is the same kernel on other buffers (the first reads the input, the last the LSTM)
    expect(new Set(used.slice(1, 339)).size).toBe(1);
    expect(kernels.length).toBeLessThan(10);
  });
});
