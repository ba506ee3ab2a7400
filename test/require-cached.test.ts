/**
 * src/require-cached.ts (dist/require-cached.cjs, what bin/nnc.js loads the CLI through on Node 20):
 * a module's code cache is named by its path, use and the file's identity (size, modification
 * time, inode), so an edit — even one that keeps the file's length, which is all V8 itself checks —
 * is never run from the cache of the text before it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

const run = (dir: string): string => {
  const script = `const { requireCached } = require(${JSON.stringify(join(ROOT, 'dist/require-cached.cjs'))}); console.log(requireCached('./m.cjs', ${JSON.stringify(join(dir, 'from.cjs'))}, 'test').value());`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
};

describe('requireCached', () => {
  it('runs an edited module as edited, also when the edit keeps its length', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnc-require-cached-'));
    writeFileSync(join(dir, 'm.cjs'), 'exports.value = () => "first";\n');
    expect(run(dir)).toBe('first');
    // the second run compiles from the cache the first wrote
    expect(run(dir)).toBe('first');
    writeFileSync(join(dir, 'm.cjs'), 'exports.value = () => "other";\n');
    expect(run(dir)).toBe('other');
    expect(run(dir)).toBe('other');
  });
});
