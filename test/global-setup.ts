/**
 * Before any test file: dist/'s bundles are rebuilt when a source is newer (scripts/build.ts --js,
 * about a second). Tests that spawn `bin/nnc.js` then run the bundled CLI as a user does, and plain
 * Node apps in tests load `nnc/runtime` from dist/ (package.json "exports"), never a stale build.
 */
import { buildJs, jsFresh } from '../scripts/build.ts';

export default async function setup(): Promise<void> {
  if (!jsFresh()) await buildJs();
}
