/**
 * generated/ is exactly what `nnc compile examples/*.nn` writes today (drift check). Each example is
 * compiled with the CLI's own code path in this process (src/cli.ts `main`, as `nnc compile` runs
 * it); one goes through the real binary, bin/nnc.js, in a child process. Regenerate with
 * `npm run generate`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli.ts';
import { ROOT } from './helpers.ts';

const examples = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.nn'));
const stale = (name: string) => `generated/${name} is stale: run 'npm run generate' and commit the diff`;

describe('generated/ matches nnc compile examples/*.nn', () => {
  it('has one module per example and nothing else', () => {
    const gen = readdirSync(join(ROOT, 'generated')).filter((f) => f.endsWith('.ts')).sort();
    expect(gen).toEqual(examples.map((f) => basename(f, '.nn') + '.ts').sort());
  });
  it.each(examples)('%s', async (file) => {
    const out = join(mkdtempSync(join(tmpdir(), 'nnc-drift-')), basename(file, '.nn') + '.ts');
    const quiet = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      // from the repository root, as `npm run generate` runs it (the header names the spec's path)
      expect(process.cwd()).toBe(ROOT.replace(/\/$/, ''));
      expect(await main(['compile', `examples/${file}`, '-o', out])).toBe(0);
    } finally {
      quiet.mockRestore();
    }
    expect(readFileSync(out, 'utf8') === readFileSync(join(ROOT, 'generated', basename(out)), 'utf8'), stale(basename(out))).toBe(true);
  });
  it('bin/nnc.js writes the same bytes (brackets.nn, run from the repository root as npm run generate does)', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nnc-drift-')), 'brackets.ts');
    execFileSync(process.execPath, [join(ROOT, 'bin/nnc.js'), 'compile', 'examples/brackets.nn', '-o', out], { cwd: ROOT });
    expect(readFileSync(out, 'utf8') === readFileSync(join(ROOT, 'generated/brackets.ts'), 'utf8'), stale('brackets.ts')).toBe(true);
  });
});
