/**
 * Issue 8, bugs 1, 4, 5, 6 and 7, end to end through the driver (`compile()` runs what `nnc check`
 * and `nnc compile` run): each feeds the bad input and checks the exact diagnostics (code, line,
 * column, what the message says), and for bug 6 runs the generated module.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { MAX_PARAMETERS, MAX_SIZE, MAX_WEIGHT_ELEMENTS } from '../src/layers/limits.schema.ts';
import { compileAndImport } from './helpers.ts';

type Row = [code: string, line: number, col: number];

/** What `nnc check` sees: the pipeline up to the IR (the same lowering as compile). */
function check(text: string): { rows: Row[]; messages: string[]; ok: boolean } {
  const r = compile(text, 'bug.nn', 'ir');
  return {
    rows: r.diagnostics.map((d): Row => [d.code, d.span.line, d.span.col]),
    messages: r.diagnostics.map((d) => d.message),
    ok: r.output !== undefined,
  };
}

/** A one-model spec: `lines` are the model's body, indented by two. */
const spec = (lines: string[], name = 'A'): string => `model ${name} {\n${lines.map((l) => `  ${l}`).join('\n')}\n}\n`;

describe('bug 1: sizes and parameter counts have limits', () => {
  it.each([
    ['lstm hidden', ['input t: tokens(vocab = 10)', 'embedding 8', 'lstm hidden = 99999999999', 'linear 10'], 4, 17, /lstm hidden must be between 1 and 1048576; got 99999999999/],
    ['tokens vocab', ['input t: tokens(vocab = 99999999999)', 'embedding 8', 'linear 10'], 2, 27, /input 't' vocab must be between 1 and 1048576/],
    ['embedding dim', ['input t: tokens(vocab = 10)', 'embedding dim = 99999999999999999999', 'linear 10'], 3, 19, /embedding dim must be between 1 and 1048576; got 99999999999999999999/],
    ['linear out', ['input t: tokens(vocab = 10)', 'embedding 8', 'linear 1048577'], 4, 10, /linear out must be between 1 and 1048576/],
    ['vectors max_len', ['input x: vectors(dim = 3, max_len = 2000000)', 'linear 10'], 2, 39, /max_len must be between 1 and 1048576/],
    ['attention heads', ['input t: tokens(vocab = 10)', 'embedding 8', 'attention self, heads = 4096'], 4, 27, /heads must be between 1 and 1024/],
    ['decode max_len', ['input t: tokens(vocab = 10)', 'embedding 8', 'lstm 8', 'linear 10', 'decode greedy, max_len = 65537'], 6, 28, /decode max_len must be between 1 and 65536/],
  ])('%s past the limit is E0303 at the value', (_what, lines, line, col, message) => {
    const r = check(spec(lines));
    expect(r.rows).toEqual([['E0303', line, col]]);
    expect(r.messages[0]).toMatch(message);
    expect(r.ok).toBe(false);
  });

  it('every size is exactly at the limit accepted', () => {
    expect(MAX_SIZE).toBe(2 ** 20);
    const r = check(spec([`input t: tokens(vocab = ${MAX_SIZE}, max_len = ${MAX_SIZE})`, 'embedding 16', 'lstm 8', `linear ${MAX_SIZE}`]));
    expect(r.rows).toEqual([]);
  });

  it('a weight over 2^31 - 1 elements is E0515 at its layer, naming the weight, its shape and the limit', () => {
    const r = check(spec([`input t: tokens(vocab = ${MAX_SIZE})`, 'embedding 4096', 'linear 10']));
    expect(r.rows).toEqual([['E0515', 3, 3]]);
    expect(r.messages[0]).toBe(
      `weight 'embedding0.weight' has shape [1048576, 4096], 4294967296 elements: more than the limit of ${MAX_WEIGHT_ELEMENTS} (2^31 − 1) elements per weight`,
    );
  });

  it('a too-large weight inside repeat N is reported once', () => {
    const r = check(spec(['input t: tokens(vocab = 10)', 'embedding 65536', 'repeat 8 {', '  linear 65536', '}']));
    expect(r.rows).toEqual([['E0515', 5, 5]]);
    expect(r.messages[0]).toMatch(/weight 'repeat0\.0\.linear0\.weight' has shape \[65536, 65536\]/);
  });

  it('a model over 2^40 parameters is E0516 at the layer that goes over, once', () => {
    const r = check(spec(['input t: tokens(vocab = 1000)', 'embedding 46000', 'repeat 600 {', '  linear 46000', '}']));
    expect(r.rows).toEqual([['E0516', 5, 5]]);
    expect(r.messages[0]).toMatch(new RegExp(`more than ${MAX_PARAMETERS} \\(2\\^40\\) parameters once weight 'repeat0\\.519\\.linear0\\.weight'`));
  });

  it('parameter counts stay exact: the largest model allowed is far below 2^53', () => {
    expect(MAX_PARAMETERS).toBeLessThan(Number.MAX_SAFE_INTEGER / 1024);
  });
});

describe('bug 4: `;` after a model declaration', () => {
  it('is accepted, like `;` anywhere else', () => {
    const r = compile(';\nmodel A {\n  input t: tokens(vocab = 10)\n  embedding 8\n  linear 10\n};\n;model B { input t: tokens(vocab = 3); embedding 2 };;\n', 'semi.nn', 'ts');
    expect(r.diagnostics).toEqual([]);
    expect(r.output).toBeDefined();
  });
  it('a stray token at the top level is still an error', () => {
    expect(check('model A { input t: tokens(vocab = 3); embedding 2 };\n,\n').rows).toEqual([['E0101', 2, 1]]);
  });
});

describe('bug 5: one mistake, one message', () => {
  it('`linear 0x10` is only a malformed number', () => {
    const r = check(spec(['input t: tokens(vocab = 10)', 'embedding 8', 'linear 0x10']));
    expect(r.rows).toEqual([['E0004', 4, 10]]);
    expect(r.messages).toEqual(["malformed number '0x10'"]);
  });
  it('a malformed number as an enum positional or a named value is only a malformed number', () => {
    const r = check(spec(['input t: tokens(vocab = 10)', 'embedding 8', 'lstm 8, layers = 1.2.3', 'pool 0x1', 'linear 4']));
    expect(r.rows).toEqual([['E0004', 4, 20], ['E0004', 5, 8]]);
  });
  it('`model Modèle {` is one error for the whole name, with the ASCII spelling', () => {
    const text = spec(['input t: tokens(vocab = 10)', 'embedding 8', 'linear 10'], 'Modèle');
    const r = compile(text, 'bug.nn', 'ir');
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.span.col, d.span.end - d.span.start])).toEqual([['E0006', 1, 7, 6]]);
    expect(r.diagnostics[0]!.message).toBe("name 'Modèle' has a character outside A-Z, a-z, 0-9 and _: 'è'");
    expect(r.diagnostics[0]!.suggestion).toMatch(/'Modele'/);
  });
  it('a non-ASCII attribute name does not also make the attribute "missing"', () => {
    expect(check(spec(['input t: tokens(vocab = 10)', 'embedding 8', 'lstm hïdden = 8'])).rows).toEqual([['E0006', 4, 8]]);
  });
  it('`model input {` is one error and the model is still read', () => {
    const r = check(spec(['input t: tokens(vocab = 10)', 'embedding 8', 'linear 10'], 'input'));
    expect(r.rows).toEqual([['E0103', 1, 7]]);
    expect(r.messages[0]).toBe("'input' is a reserved word and cannot name a model");
  });
  it('reserved words as input and output names are one error each', () => {
    const r = check(spec(['input output: tokens(vocab = 10)', 'output model', 'embedding 8', 'linear 10']));
    expect(r.rows).toEqual([['E0103', 2, 9], ['E0103', 3, 10]]);
  });
  it('`output` with its name missing before an input declaration keeps its old message', () => {
    const r = check(spec(['output', 'input t: tokens(vocab = 10)', 'embedding 8', 'linear 10']));
    expect(r.rows).toEqual([['E0103', 3, 3]]);
    expect(r.messages[0]).toBe("expected a name after 'output', found 'input'");
  });
  it.each(['residual {', 'repeat 1 {'])('70 nested `%s` is only E0110', (open) => {
    const n = 70;
    const text = `model A {\n  input x: vectors(dim = 4)\n${`  ${open}\n`.repeat(n)}  linear 4\n${'  }\n'.repeat(n)}}\n`;
    const r = check(text);
    // the 65th `{` (line 2 + 64) is the first too deep
    expect(r.rows).toEqual([['E0110', 2 + 64, open.length + 2]]);
  });
});

describe('bug 6: input and output names are plain object keys', () => {
  it.each([
    ['output', spec(['input t: tokens(vocab = 10)', 'output __proto__', 'embedding 8', 'linear 10']), 3, 10],
    ['input', spec(['input __proto__: tokens(vocab = 10)', 'embedding 8', 'linear 10']), 2, 9],
  ])("'__proto__' as an %s is E0416 with a suggestion", (what, text, line, col) => {
    const r = compile(text, 'bug.nn', 'ir');
    expect(r.diagnostics.map((d) => [d.code, d.span.line, d.span.col])).toEqual([['E0416', line, col]]);
    expect(r.diagnostics[0]!.message).toMatch(new RegExp(`'__proto__' cannot name an ${what}`));
    expect(r.diagnostics[0]!.suggestion).toMatch(/proto/);
  });

  it.each([
    ['constructor', 'toString'],
    ['hasOwnProperty', 'valueOf'],
  ])('output %s and input %s work end to end', async (output, input) => {
    const text = spec([`input ${input}: tokens(vocab = 10)`, `output ${output}`, 'embedding 4', 'linear 10', 'softmax']);
    const mod = await compileAndImport(`bug6_${output}`, text);
    const model = await mod.createModel({ backend: 'cpu' });
    try {
      const weights: Record<string, Float32Array> = {};
      for (const w of model.manifest.weights as { name: string; shape: number[] }[]) {
        weights[w.name] = new Float32Array(w.shape.reduce((a, b) => a * b, 1)).fill(0.1);
      }
      model.loadWeights(weights);
      const result = await model.forward({ [input]: { data: new Int32Array([1, 2, 3]), shape: [1, 3] } });
      expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
      expect(Object.keys(result)).toEqual([output]);
      expect(Object.hasOwn(result, output)).toBe(true);
      const out = result[output] as { data: Float32Array; shape: number[] };
      expect(out.shape).toEqual([1, 3, 10]);
      expect(out.data.length).toBe(30);
      expect(out.data[0]).toBeCloseTo(0.1, 5);
    } finally {
      model.dispose();
    }
  });
});

describe('bug 7: merge without bidirectional', () => {
  it.each([
    ['lstm', 'sum'],
    ['gru', 'mean'],
    ['rnn', 'sum'],
  ])('%s merge = %s is warning W0517 at the item; the spec still compiles', (kind, merge) => {
    const text = spec(['input t: tokens(vocab = 10)', 'embedding 8', `${kind} 8, merge = ${merge}`, 'linear 10']);
    const r = compile(text, 'bug.nn', 'ts');
    expect(r.diagnostics.map((d) => [d.code, d.severity, d.span.line, d.span.col, d.span.end - d.span.start])).toEqual([
      ['W0517', 'warning', 4, kind.length + 7, `merge = ${merge}`.length],
    ]);
    expect(r.diagnostics[0]!.message).toBe(`merge = ${merge} has no effect: this ${kind} is not bidirectional, so there are no two directions to combine`);
    expect(r.diagnostics[0]!.suggestion).toMatch(/bidirectional/);
    expect(r.output).toBeDefined();
  });
  it('is said once for a layer inside repeat N', () => {
    const r = check(spec(['input t: tokens(vocab = 10)', 'embedding 8', 'repeat 3 { lstm 8, merge = sum }', 'linear 10']));
    expect(r.rows).toEqual([['W0517', 4, 22]]);
  });
  it('no warning with bidirectional, or with merge = concat', () => {
    const r = check(spec(['input t: tokens(vocab = 10)', 'embedding 8', 'lstm 8, bidirectional, merge = sum', 'gru 8, merge = concat', 'linear 10']));
    expect(r.rows).toEqual([]);
  });
});
