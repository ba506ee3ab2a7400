/**
 * The worker script of test/browser/worker.test.ts, as an app writes one for a bundler: it imports the
 * generated module and gpu.js and serves the module's models to the page (createModel({ worker })).
 */
import { GPU } from 'gpu.js';
import { serve } from 'nnc/runtime';
import * as tinyLm from '../../generated/tiny_lm.ts';

serve(tinyLm, { gpu: GPU });
