// A bundled page that imports gpu.js (test/browser/bundled.test.ts): runs pass it in, or rely on the global it sets.
import { GPU } from 'gpu.js';
import { runBundled, type BundledArgs } from './bundled.page.ts';

export const run = (args: BundledArgs) => runBundled(args, GPU);
