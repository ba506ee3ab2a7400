/**
 * nnc/train's errors as an app meets them: a trainer's errors name the call the app made
 * (`trainer.step()`, not the `vjp()` inside it), and the shipped bundles share one NncError — an
 * error thrown by dist/train.js is `instanceof` the NncError that dist/runtime.js (nnc/runtime)
 * exports, in the ES module and the CommonJS builds alike.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { createTrainer } from '../src/train/index.ts';
import { compileAndImport, FIXTURES, OUT, ROOT, toInputs } from './helpers.ts';
import { loadFixture } from './interp-helpers.ts';
import { mkdirSync, writeFileSync } from 'node:fs';

const SPEC = readFileSync(join(FIXTURES, 'char_lm', 'model.nn'), 'utf8');
const OPTIONS = { loss: 'nll', optimizer: { kind: 'sgd', lr: 0.1 } } as const;

async function batch() {
  const f = loadFixture('char_lm');
  const inputs = toInputs(f.case);
  const x = Object.values(inputs)[0] as { shape: number[]; lengths?: number[] };
  return { f, b: { inputs, targets: { data: new Int32Array(x.shape[0]! * x.shape[1]!), shape: x.shape.slice(0, 2), lengths: x.lengths } } };
}

describe('a trainer\'s errors name the trainer call', () => {
  it('trainer.step() before loadWeights()', async () => {
    const model = await (await compileAndImport('train_errors_char_lm', SPEC)).createModel({ backend: 'cpu' });
    try {
      const { b } = await batch();
      await expect(createTrainer(model, OPTIONS).step(b)).rejects.toThrow(/^trainer\.step\(\) before loadWeights\(\): load the \w+ weights first$/);
    } finally {
      model.dispose();
    }
  });

  it('trainer.step() on a module compiled with --no-train', async () => {
    const r = compile(SPEC, 'char_lm.nn', 'ts', 2, { train: false });
    mkdirSync(OUT, { recursive: true });
    const path = join(OUT, 'train_errors_no_train.ts');
    writeFileSync(path, r.output!);
    const model = await (await import(path)).createModel({ backend: 'cpu' });
    try {
      const { f, b } = await batch();
      model.loadWeights(Object.fromEntries(f.weights));
      await expect(createTrainer(model, OPTIONS).step(b)).rejects.toThrow(/^trainer\.step\(\): this \w+ module was compiled without its training program \(nnc compile --no-train\)/);
    } finally {
      model.dispose();
    }
  });
});

describe('the shipped bundles share one NncError', () => {
  // test/global-setup.ts builds dist/ when its sources changed
  it('an error from dist/train.js is instanceof dist/runtime.js\'s NncError (ESM)', async () => {
    const runtime = await import(pathToFileURL(join(ROOT, 'dist/runtime.js')).href);
    const train = await import(pathToFileURL(join(ROOT, 'dist/train.js')).href);
    expect(() => train.createTrainer({}, OPTIONS)).toThrow(runtime.NncError);
    // the numeric core's own errors are NncErrors too; an unknown optimiser is refused, not run as Adam
    expect(() => train.createOptimizer({ kind: 'adagrad', lr: 1 })).toThrow(runtime.NncError);
    expect(() => train.createOptimizer({ kind: 'adagrad', lr: 1 })).toThrow(/^optimizer kind 'adagrad' is not one of sgd, adam, adamw$/);
    expect(() => train.createOptimizer({ kind: 'sgd', lr: -1 })).toThrow(runtime.NncError);
    // the train bundle carries no NncError class of its own
    expect(readFileSync(join(ROOT, 'dist/train.js'), 'utf8')).toMatch(/import \{[^}]*NncError[^}]*\} from "\.\/runtime\.js"/);
  });

  it('and in the CommonJS build', () => {
    const require = createRequire(join(ROOT, 'dist/cjs/index.js'));
    const runtime = require('./runtime.js');
    const train = require('./train.js');
    expect(() => train.createTrainer({}, OPTIONS)).toThrow(runtime.NncError);
  });
});
