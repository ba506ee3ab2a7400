/**
 * generated/ is exactly what `nnc compile examples/*.nn` writes today (drift check), and the CLI
 * writes it: compiled through bin/nnc.js like a user would. Regenerate with `npm run generate`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn'));

describe('generated/ matches nnc compile examples/*.nn', () => {
  it('has one module per example and nothing else', () => {
    const gen = readdirSync(join(ROOT, 'generated')).filter((f) => f.endsWith('.ts')).sort();
    expect(gen).toEqual(examples.map((f) => basename(f, '.nn') + '.ts').sort());
  });
  it.each(examples)('%s', (file) => {
    const dir = mkdtempSync(join(tmpdir(), 'nnc-drift-'));
    const out = join(dir, basename(file, '.nn') + '.ts');
    execFileSync('node', [join(ROOT, 'bin/nnc.js'), 'compile', `examples/${file}`, '-o', out], { cwd: ROOT });
    const committed = readFileSync(join(ROOT, 'generated', basename(out)), 'utf8');
    expect(readFileSync(out, 'utf8') === committed, `generated/${basename(out)} is stale: run 'npm run generate' and commit the diff`).toBe(true);
  });
});
