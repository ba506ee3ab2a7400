/**
 * Generated modules in a strict app: generated/*.ts, modules of models with hostile names, and a
 * file of typed-input checks (`// @ts-expect-error` on the wrong forms) are type-checked by tsc
 * under every strict flag an app may turn on, as an app outside the project that depends on nnc
 * (node_modules/nnc → this repository). The app's tsc reads `nnc/runtime` from its TypeScript source
 * (condition nnc-source), so the runtime itself is checked under these flags too; test/package.test.ts
 * checks the declarations the package ships. The hostile-name modules also load and run.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { ROOT } from './helpers.ts';

const STRICT = {
  target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: [],
  strict: true, noUncheckedIndexedAccess: true, noPropertyAccessFromIndexSignature: true, noUnusedParameters: true,
  noUnusedLocals: true, exactOptionalPropertyTypes: true, erasableSyntaxOnly: true, verbatimModuleSyntax: true,
  noImplicitOverride: true, noImplicitReturns: true, noFallthroughCasesInSwitch: true, noEmit: true, skipLibCheck: true,
  customConditions: ['nnc-source'],
};

const body = (name: string, input = 'text: tokens(vocab = 10)') => `model ${name} {\n  input ${input}\n  output y\n  embedding dim = 4\n  gru hidden = 3\n  linear 5\n}\n`;
/** Model names that collide with what a module declares or imports, alone or in pairs. */
const HOSTILE: [string, string][] = [
  ['model_', body('Model')],
  ['executor', body('Executor')],
  ['runtime_names', [body('Plan'), body('KernelDef'), body('Tensor'), body('createNncModel'), body('NncModel'), body('CreateOptions')].join('\n')],
  ['aliases', [body('Manifest'), body('CreateModel'), body('Inputs'), body('Outputs')].join('\n')],
  ['m_and_mmodel', body('M') + '\n' + body('MModel') + '\n' + body('Model')],
  ['pascal_clash', body('a_b') + '\n' + body('AB') + '\n' + body('aB')],
  ['nnc_prefix', body('__nnc') + '\n' + body('_') + '\n' + body('__proto__')],
  ['model_second', body('First') + '\n' + body('Model')],
];

let app: string;
let tscOut = '';

beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'nnc-strict-'));
  writeFileSync(join(app, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(ROOT, join(app, 'node_modules/nnc'), 'dir');
  mkdirSync(join(app, 'gen'));
  const files: string[] = [];
  for (const f of readdirSync(join(ROOT, 'generated')).filter((x) => x.endsWith('.ts'))) {
    copyFileSync(join(ROOT, 'generated', f), join(app, 'gen', f));
    files.push(`gen/${f}`);
  }
  for (const [file, text] of HOSTILE) {
    const r = compile(text, `${file}.nn`);
    expect(r.diagnostics.filter((d) => d.severity === 'error'), file).toEqual([]);
    writeFileSync(join(app, 'gen', `${file}.ts`), r.output!);
    files.push(`gen/${file}.ts`);
  }
  writeFileSync(join(app, 'types.ts'), `import { createModel as createTagger } from './gen/tagger.ts';
import { createModel as createBrackets, type Outputs as BracketsOutputs } from './gen/brackets.ts';
import { createModel as createDates } from './gen/dates.ts';
import type { Outputs as TaggerOutputs } from './gen/tagger.ts';

const tagger = await createTagger({ backend: 'cpu' });
// tokens: Int32Array-backed [B, T], number[], or rows of ids
await tagger.forward({ words: { data: Int32Array.from([1, 2, 3]), shape: [1, 3] } });
await tagger.forward({ words: { data: [1, 2, 3], shape: [1, 3], lengths: [3] } });
await tagger.forward({ words: [[1, 2, 3]] });
// @ts-expect-error a tokens input holds integers, not floats
await tagger.forward({ words: { data: Float32Array.from([1, 2, 3]), shape: [1, 3] } });
// @ts-expect-error a tokens input is [B, T], not [B, T, D] nested
await tagger.forward({ words: [[[1], [2]]] });
// @ts-expect-error an unknown input
await tagger.forward({ words: [[1]], extra: [[1]] });
// @ts-expect-error a missing input
await tagger.forward({});
const out: TaggerOutputs = await tagger.forward({ words: [[1]] });
const dims: [number, number, 17] = out.tags.shape;
const d: number = dims[2];
// @ts-expect-error the output has no other field
void out.other;

// @ts-expect-error a model that cannot generate has no generate() (issue 19)
await tagger.generate({ words: [[1]] });
// @ts-expect-error nor stream()
tagger.stream({ words: [[1]] });
const brackets = await createBrackets({ backend: 'cpu' });
const b: BracketsOutputs = await brackets.forward({ text: [[1, 2]] });
void b;

const dates = await createDates({ backend: 'cpu' });
const g = await dates.generate({ source: [[1, 2]] }, { strategy: 'greedy' });
void g.ids;
// @ts-expect-error generate() takes the source only
await dates.generate({ source: [[1]], target: [[1]] });
// @ts-expect-error a backend that does not exist
await createTagger({ backend: 'tpu' });
export { d };
`);
  files.push('types.ts');
  // one deliberate error: proof that tsc ran and reported
  writeFileSync(join(app, 'sentinel.ts'), `export const x: number = 'not a number';\n`);
  files.push('sentinel.ts');
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...STRICT, allowImportingTsExtensions: true }, files }, null, 2));
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app, encoding: 'utf8' });
  } catch (e) {
    tscOut = String((e as { stdout?: string }).stdout ?? e);
  }
}, 240_000);

/** tsc's error lines, as paths relative to the app or to the repository. */
const errors = () => tscOut.split('\n').filter((l) => /error TS\d+/.test(l)).map((l) => l.replace(/^(\.\.\/)+.*?\/src\//, 'src/'));

describe('generated modules under a strict app tsconfig', () => {
  it('generated/*.ts, hostile-name modules, typed-input checks and the runtime they import: no errors', () => {
    expect(errors().filter((l) => l.startsWith('sentinel.ts(')), 'tsc ran').toHaveLength(1);
    expect(errors().filter((l) => !l.startsWith('sentinel.ts('))).toEqual([]);
  });
});

describe('models named after generated or imported identifiers', () => {
  it.each(HOSTILE)('%s: the module loads and every model runs on cpu', async (file, text) => {
    const mod = (await import(join(app, 'gen', `${file}.ts`))) as Record<string, unknown>;
    const creates = Object.entries(mod).filter(([k, v]) => /^create/.test(k) && typeof v === 'function');
    expect(creates.length).toBeGreaterThan(0);
    expect(typeof mod.createModel).toBe('function');
    const names = new Set<string>();
    for (const [, create] of creates) {
      const m = await (create as (o: object) => Promise<{ manifest: { model: string; weights: { name: string; shape: number[] }[] }; loadWeights(w: object): void; forward(i: object): Promise<Record<string, { shape: number[] }>>; dispose(): void }>)({ backend: 'cpu' });
      names.add(m.manifest.model);
      m.loadWeights(Object.fromEntries(m.manifest.weights.map((w) => [w.name, new Float32Array(w.shape.reduce((a, c) => a * c, 1)).fill(0.1)])));
      const y = (await m.forward({ text: [[1, 2, 3]] })).y!;
      expect(y.shape).toEqual([1, 3, 5]);
      m.dispose();
    }
    // every model of the file has a create function
    expect([...names].sort()).toEqual([...text.matchAll(/^model (\w+)/gm)].map((x) => x[1]).sort());
  });
});
