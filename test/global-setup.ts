/**
 * Before any test file: dist/ is rebuilt when a source is newer (scripts/build.ts: the bundles in
 * about a second, the declarations in a few). Tests that spawn `bin/nnc.js` then run the bundled CLI
 * as a user does, plain Node apps in tests load `nnc/runtime` from dist/ (package.json "exports"),
 * and test/package.test.ts packs it as it is — never a stale build, and never one being rewritten
 * while other test files run.
 */
import { buildJs, buildTypes, jsFresh, typesFresh } from '../scripts/build.ts';

export default async function setup(): Promise<void> {
  if (!jsFresh()) await buildJs();
  if (!typesFresh()) buildTypes();
}
