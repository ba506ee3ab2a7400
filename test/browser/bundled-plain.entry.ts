// A bundled page without gpu.js (test/browser/bundled.test.ts): globalThis.GPU is the browser's WebGPU interface.
import { runBundled, type BundledArgs } from './bundled.page.ts';

export const run = (args: BundledArgs) => runBundled(args);
