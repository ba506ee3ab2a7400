/**
 * An exception inside the front end (parse or check) is an internal error, not a spec error: the
 * CLI exits 70 with a one-line report and no stack trace, and compile() throws InternalError
 * (the front end's E0900 diagnostic never reaches the user as a spec problem). The failure is
 * injected by mocking a module the front end calls.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

const boom = vi.hoisted(() => ({ where: '' }));

vi.mock('../grammar/tokens.ts', async (orig) => {
  const m = await orig<typeof import('../grammar/tokens.ts')>();
  const lexer = new Proxy(m.lexer, {
    get(t, k, r) {
      if (k === 'tokenize' && boom.where === 'parse') return () => { throw new TypeError('injected parse failure'); };
      const v = Reflect.get(t, k, r) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  return { ...m, lexer };
});

vi.mock('../src/layers/schemas.ts', async (orig) => {
  const m = await orig<typeof import('../src/layers/schemas.ts')>();
  const trap = <T extends object>(o: T): T => new Proxy(o, {
    get(t, k) {
      if (boom.where === 'check') throw new RangeError('injected check failure');
      const v = Reflect.get(t, k, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  return { ...m, STATEMENT_SCHEMAS: trap(m.STATEMENT_SCHEMAS), INPUT_SCHEMAS: trap(m.INPUT_SCHEMAS) };
});

const { main } = await import('../src/cli.ts');
const { compile, InternalError } = await import('../src/index.ts');

const SPEC = 'model M {\n  input text: tokens(vocab = 10)\n  output y\n  embedding dim = 4\n}\n';

async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => {
  boom.where = '';
  delete process.env.NNC_DEBUG;
});

describe('internal errors in the front end', () => {
  it('the mocks are transparent when nothing is injected', async () => {
    expect(compile(SPEC, 'm.nn', 'ir').output).toBeDefined();
  });

  it.each(['parse', 'check'])('a failure in %s: compile() throws InternalError', (where) => {
    boom.where = where;
    let err: unknown;
    try {
      compile(SPEC, 'm.nn');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InternalError);
    expect((err as InstanceType<typeof InternalError>).stage).toBe(where);
    expect((err as Error).message).toMatch(new RegExp(`injected ${where} failure`));
  });

  it.each([['parse', ['check']], ['parse', ['compile', '--emit=ast']], ['check', ['check']], ['check', ['weights']], ['check', ['compile', '--emit=ts']]])('a failure in %s, nnc %j: exit 70, one line, no stack trace', async (where, cmd) => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'nnc-ie-')), 'm.nn');
    writeFileSync(file, SPEC);
    boom.where = where;
    const r = await runCli([...cmd, file]);
    expect(r.code, r.stderr).toBe(70);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`^nnc: internal error: .*injected ${where} failure.*\\(a bug in nnc, not in your spec`));
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(r.stderr).not.toMatch(/E0900|\berror: .*\[E/);
  });
});
