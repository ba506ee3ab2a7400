/**
 * src/codegen/print.ts prints a generated module's statements without ts-morph (and so without the
 * TypeScript compiler it loads), in ts-morph's layout. The reference is ts-morph itself: every
 * statement list is also turned into ts-morph's structures and printed by its printStructure, and
 * the two texts must be equal — for the module of every example and fixture spec, and for the
 * corner cases of the layout (multi-line docs, text ending in `}` or in a line comment, no type, no
 * parameters, models one after another).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { printStructure, StructureKind, VariableDeclarationKind, type StatementStructures, type WriterFunction } from 'ts-morph';
import { describe, expect, it } from 'vitest';
import { compileProgram } from '../src/codegen/plan.ts';
import { moduleStatements } from '../src/codegen/module.ts';
import { printModule, type Statement } from '../src/codegen/print.ts';
import { lower, optimize } from '../src/driver.ts';
import { ROOT } from './helpers.ts';

/** The same statement as ts-morph's structure. */
function structure(s: Statement): string | WriterFunction | StatementStructures {
  if (typeof s === 'string') return s;
  const common = { name: s.name, ...(s.docs ? { docs: [...s.docs] } : {}), ...(s.isExported ? { isExported: true } : {}) };
  switch (s.kind) {
    case 'const': {
      const { name, ...rest } = common;
      return { kind: StructureKind.VariableStatement, ...rest, declarationKind: VariableDeclarationKind.Const, declarations: [{ name, ...(s.type ? { type: s.type } : {}), initializer: s.initializer }] };
    }
    case 'interface':
      return { kind: StructureKind.Interface, ...common, properties: s.properties.map((p) => ({ name: p.name, type: p.type, ...(p.docs ? { docs: [...p.docs] } : {}) })) };
    case 'type':
      return { kind: StructureKind.TypeAlias, ...common, type: s.type };
    case 'function':
      return { kind: StructureKind.Function, ...common, parameters: s.parameters.map((p) => ({ ...p })), returnType: s.returnType, statements: [...s.statements] };
  }
}
const byTsMorph = (list: readonly Statement[]) => printStructure({ kind: StructureKind.SourceFile, statements: list.map(structure) });

const specs = [
  ...readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn')).map((f) => `examples/${f}`),
  ...readdirSync(join(ROOT, 'test/fixtures'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `test/fixtures/${d.name}/model.nn`),
].filter((f) => {
  try {
    return readFileSync(join(ROOT, f)).length > 0;
  } catch {
    return false;
  }
});

describe("print.ts prints what ts-morph's printStructure prints", () => {
  it('covers every example and the fixture specs', () => {
    expect(specs.filter((f) => f.startsWith('examples/')).length).toBeGreaterThanOrEqual(10);
    expect(specs.length).toBeGreaterThan(50);
  });

  it.each(specs)('the module of %s', (f) => {
    const { models, diagnostics } = lower(readFileSync(join(ROOT, f), 'utf8'), f);
    expect(models, diagnostics.map((d) => d.message).join('\n')).toBeDefined();
    const list = moduleStatements(models!.map((ir) => ({ ir: optimize(ir), program: compileProgram(ir) })), f, { text: readFileSync(join(ROOT, f), 'utf8') });
    expect(printModule(list)).toBe(byTsMorph(list));
  });

  it('the layout around docs, braces, comments, types and parameters', () => {
    const lists: Statement[][] = [
      [],
      ['const a = 1;'],
      ['function f() {}', 'const a = 1;', '// a comment', { kind: 'const', name: 'b', initializer: '2' }],
      ['let x = 1; // no new line after this comment', { kind: 'type', name: 'T', type: 'number', docs: ['one line'] }, 'x = 2;'],
      [
        { kind: 'const', name: 'a', isExported: true, docs: ['first\nsecond', '\nstarts on a new line\n\nwith a blank line', 'crlf\r\nline'], initializer: '{\n  "k": [\n    1\n  ]\n} as const' },
        { kind: 'const', name: 'b', type: 'Record<string,\nnumber>', initializer: (w) => w.write('{').newLine().writeLine('k: 1,').writeLine('m: `a\n  b`,').write('}') },
        { kind: 'interface', name: 'I', isExported: true, docs: ['an interface'], properties: [{ name: 'p', type: 'string', docs: ['p\nover two lines'] }, { name: 'q', type: '{\n  r: number;\n}' }] },
        { kind: 'interface', name: 'Empty', properties: [] },
        { kind: 'type', name: 'U', isExported: true, type: 'A |\nB' },
        { kind: 'function', name: 'g', isExported: true, docs: ['g'], parameters: [], returnType: 'void', statements: [] },
        { kind: 'function', name: 'h', parameters: [{ name: 'o', type: 'O', initializer: '{}' }], returnType: 'Promise<void>', statements: ['if (o) {\n  return;\n}', 'return Promise.resolve();'] },
        '/** trailing text */\nexport type V = U;',
        { kind: 'const', name: 'c', initializer: '   ' },
      ],
    ];
    for (const list of lists) expect(printModule(list)).toBe(byTsMorph(list));
  });
});
