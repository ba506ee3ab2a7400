/**
 * Golden files: `expectGolden(path, actual)` compares `actual` with the file's content. With
 * UPDATE_GOLDEN=1 in the environment it (re)writes the file instead, so that a change in output is
 * reviewed as a diff in git:
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/frontend.test.ts
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { expect } from 'vitest';

export const UPDATE_COMMAND = 'UPDATE_GOLDEN=1 npx vitest run <test file> (front end: test/frontend.test.ts)';

export function expectGolden(goldenPath: string, actual: string): void {
  if (process.env['UPDATE_GOLDEN'] === '1') {
    mkdirSync(dirname(goldenPath), { recursive: true });
    const old = existsSync(goldenPath) ? readFileSync(goldenPath, 'utf8') : undefined;
    if (old !== actual) writeFileSync(goldenPath, actual);
    return;
  }
  if (!existsSync(goldenPath)) {
    expect.fail(`missing golden file ${goldenPath}; create it with: ${UPDATE_COMMAND}`);
  }
  const expected = readFileSync(goldenPath, 'utf8');
  expect(actual, `output differs from ${goldenPath}; if the change is intended, regenerate with: ${UPDATE_COMMAND}`).toBe(expected);
}
