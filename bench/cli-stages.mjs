// Where `nnc compile FILE` spends its time, in this fresh process (bench/cli.ts runs it once per
// example and run): the compiler bundle (dist/index.js, the same code as the CLI's, loaded without
// the CLI's code cache), and the pipeline to kernels (stage ir-opt) cold; then the module emitted
// cold; then warm. Prints JSON, in milliseconds.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const file = process.argv[2];
const text = readFileSync(file, 'utf8');
const time = (f) => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};
const t0 = performance.now();
const { compile } = await import('../dist/index.js');
const loadCompiler = performance.now() - t0;
const frontToKernels = time(() => compile(text, file, 'ir-opt'));
const firstModule = time(() => compile(text, file, 'ts'));
const warmModule = time(() => compile(text, file, 'ts'));
const warmFront = time(() => compile(text, file, 'ir-opt'));
process.stdout.write(JSON.stringify({ loadCompiler, frontToKernels, emitCold: firstModule - warmFront, emitWarm: warmModule - warmFront }));
