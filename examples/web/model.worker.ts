/**
 * The web example's model worker: the two generated modules and gpu.js, served to the page
 * (main.ts creates its models with `createModel({ backend, worker })`, so decoding never blocks the
 * page). A bundler builds this file with everything it imports: Vite sees
 * `new Worker(new URL('./model.worker.ts', import.meta.url), { type: 'module' })` in main.ts.
 */
import { GPU } from 'gpu.js';
import { serve } from 'nnc/runtime';
import * as brackets from '../../generated/brackets.ts';
import * as dates from '../../generated/dates.ts';

// gpu.js cannot be posted to a worker, so the worker gives it to every model it creates
serve([dates, brackets], { gpu: GPU });
