import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // vitest's default for `run` is one worker per core minus one: on a 2-core machine that is a
    // single worker, and every test file then waits for the one before it while the second core
    // only runs subprocesses. At least two files at a time; more cores, as before.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
