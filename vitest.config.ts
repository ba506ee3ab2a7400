import { availableParallelism } from 'node:os';
import { defaultClientConditions, defaultExternalConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// `nnc/runtime` (what generated modules import) and `nnc` resolve to the TypeScript sources in
// tests, not to dist/ (package.json "exports", condition nnc-source; docs/ARCHITECTURE.md).
const source = 'nnc-source';

export default defineConfig({
  resolve: { conditions: [source, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [source, ...defaultServerConditions], externalConditions: [source, ...defaultExternalConditions] } },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // vitest's default for `run` is one worker per core minus one: on a 2-core machine that is a
    // single worker, and every test file then waits for the one before it while the second core
    // only runs subprocesses. At least two files at a time; more cores, as before.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
