/**
 * The README's demo commands, run as written (issue 19, item 7): `npm run demo -- --backend webasm --
 * "5th of may 1999"` printed a usage error (the demo took the second `--` for an unknown option).
 * Each command runs as a whole process — npm, the compile step, tsx — in a scratch copy of the
 * repository (the demo rewrites generated/dates.ts, which other tests read meanwhile), with the
 * repository's node_modules. The held-out run's agreement with PyTorch is the demo's own comparison
 * with examples/weights/dates.test.json (PyTorch's decodes of the same weights).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

const copy = mkdtempSync(join(tmpdir(), 'nnc-demo-'));
// dist/ too (built by test/global-setup.ts): `tsx examples/demo.ts` run as written resolves nnc/runtime to it
for (const p of ['package.json', 'tsconfig.json', 'bin', 'src', 'grammar', 'examples', 'generated', 'dist']) cpSync(join(ROOT, p), join(copy, p), { recursive: true, filter: (f) => !f.includes('/node_modules') });
symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
afterAll(() => rmSync(copy, { recursive: true, force: true }));

/** Runs a README command line in the copy, through the shell, as a user types it. */
function sh(line: string): { status: number | null; out: string } {
  const r = spawnSync('bash', ['-c', line], { cwd: copy, encoding: 'utf8', timeout: 180_000, env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the README\'s demo commands', () => {
  it('npm run demo -- --backend webasm -- "5th of may 1999" translates the date', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const line = 'npm run demo -- --backend webasm -- "5th of may 1999"';
    expect(readme).toContain(line);
    const r = sh(line);
    expect(r.out).not.toMatch(/usage/);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/^5th of may 1999\s+→\s+1999-05-05 /m);
    expect(r.out).toContain("backend 'webasm'");
    expect(existsSync(join(copy, 'demo-attention.png'))).toBe(true);
  });

  it('--worker: every held-out date as PyTorch decodes it, from a worker thread', () => {
    // the demo script itself (npm run demo also compiles, as the test above does)
    const r = sh('node_modules/.bin/tsx examples/demo.ts --backend wasm --worker');
    expect(r.status, r.out).toBe(0);
    const agree = /agreement with PyTorch: beam (\d+) of (\d+), greedy (\d+) of (\d+)/.exec(r.out);
    expect(agree, r.out).not.toBeNull();
    const [, beam, n, greedy, m] = agree!.map(Number);
    expect(n).toBeGreaterThan(0);
    expect([beam, greedy, m]).toEqual([n, n, n]);
  });

  it('a mistyped option is a usage error (exit 2), not a translation', () => {
    const r = sh('node_modules/.bin/tsx examples/demo.ts --backnd webasm');
    expect(r.status).toBe(2);
    expect(r.out).toMatch(/demo: Unknown option '--backnd'/);
    expect(r.out).toMatch(/usage: tsx examples\/demo\.ts/);
  });
});
