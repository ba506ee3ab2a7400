// Fuzzing the front end: random mutations of the valid specs and random bytes must never make
// parse() or check() throw, never produce an internal error (E0900), and every diagnostic must point
// inside the file it is about. Deterministic: a fixed-seed PRNG, so a failure reproduces.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DiagnosticBag, type Diagnostic } from '../src/diagnostics/diagnostic.ts';
import { renderDiagnostics } from '../src/diagnostics/render.ts';
import { SourceLines } from '../src/diagnostics/source.ts';
import type { Span } from '../src/diagnostics/span.ts';
import { check } from '../src/syntax/check.ts';
import { parse } from '../src/syntax/parse.ts';
import { printAst } from '../src/syntax/print.ts';
import { prng } from './helpers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));


const SEEDS_DIRS = ['test/golden/parse', 'examples'];
const seeds: { name: string; text: string }[] = SEEDS_DIRS.flatMap((dir) => {
  try {
    return readdirSync(join(ROOT, dir))
      .filter((f) => f.endsWith('.nn'))
      .sort()
      .map((f) => ({ name: `${dir}/${f}`, text: readFileSync(join(ROOT, dir, f), 'utf8') }));
  } catch {
    return [];
  }
});

const JUNK = ['\u0000', '\ufffd', '{', '}', '(', ')', '=', ',', ':', ';', '"', "'", '/*', '*/', '//', '#', '@', '-', '.', 'e', '1e', 'model', 'input', 'output', ' ', '\n', '\r', '\t', 'é', '😀', '\ud800'];

/** Tokens-ish pieces: words, numbers, punctuation and the whitespace between them. */
function pieces(text: string): string[] {
  return text.match(/[A-Za-z_][A-Za-z0-9_]*|-?\d[\d.eE+-]*|\s+|./gsu) ?? [];
}

function mutate(text: string, rnd: () => number): string {
  const pick = (n: number) => Math.floor(rnd() * n);
  const ops = 1 + pick(4);
  let t = text;
  for (let k = 0; k < ops; k++) {
    const at = pick(t.length + 1);
    switch (pick(8)) {
      case 0: // delete a range of characters
        t = t.slice(0, at) + t.slice(at + 1 + pick(12));
        break;
      case 1: // duplicate a range
        t = t.slice(0, at) + t.slice(at, at + 1 + pick(30)) + t.slice(at);
        break;
      case 2: // insert junk
        t = t.slice(0, at) + JUNK[pick(JUNK.length)]! + t.slice(at);
        break;
      case 3: // truncate
        t = t.slice(0, at);
        break;
      case 4: {
        // swap two tokens
        const p = pieces(t);
        const i = pick(p.length);
        const j = pick(p.length);
        if (p.length > 1) [p[i], p[j]] = [p[j]!, p[i]!];
        t = p.join('');
        break;
      }
      case 5: {
        // delete a token
        const p = pieces(t);
        p.splice(pick(p.length), 1);
        t = p.join('');
        break;
      }
      case 6: {
        // duplicate a token elsewhere
        const p = pieces(t);
        if (p.length > 0) p.splice(pick(p.length), 0, p[pick(p.length)]!);
        t = p.join('');
        break;
      }
      default: {
        // random bytes decoded as UTF-8 (invalid sequences become U+FFFD)
        const bytes = new Uint8Array(1 + pick(16)).map(() => pick(256));
        t = t.slice(0, at) + new TextDecoder().decode(bytes) + t.slice(at);
      }
    }
  }
  return t;
}

function checkSpan(s: Span, file: string, src: SourceLines, what: string): void {
  expect(s.file, what).toBe(file);
  expect(Number.isInteger(s.start) && Number.isInteger(s.end), what).toBe(true);
  expect(s.start >= 0 && s.start <= s.end && s.end <= src.text.length, `${what}: ${s.start}..${s.end} of ${src.text.length}`).toBe(true);
  const expected = src.span(s.start, s.end);
  expect([s.line, s.col], what).toEqual([expected.line, expected.col]);
}

/** parse + check + render must not throw, and every location must be inside the file. */
function exercise(text: string, file: string): Diagnostic[] {
  let diagnostics: Diagnostic[] = [];
  expect(() => {
    const r = parse(text, file);
    const bag = new DiagnosticBag();
    r.diagnostics.forEach((d) => bag.add(d));
    check(r.ast, bag);
    diagnostics = bag.items;
    printAst(r.ast);
    renderDiagnostics(diagnostics, text);
  }, `input: ${JSON.stringify(text)}`).not.toThrow();
  const src = new SourceLines(text, file);
  for (const d of diagnostics) {
    const what = `${d.code} ${d.message} in ${JSON.stringify(text)}`;
    expect(d.code, what).not.toBe('E0900');
    expect(d.code, what).toMatch(/^[EW]\d{4}$/); // a mutation can make a valid spec that earns a warning (W0517)
    checkSpan(d.span, file, src, what);
    for (const n of d.notes ?? []) if (n.span) checkSpan(n.span, file, src, `note of ${what}`);
  }
  return diagnostics;
}

describe('fuzz', () => {
  it('has seed specs', () => expect(seeds.length).toBeGreaterThanOrEqual(12));

  it('survives 300 mutations of the valid specs', () => {
    const rnd = prng(20240611);
    let withErrors = 0;
    for (let n = 0; n < 300; n++) {
      const seed = seeds[n % seeds.length]!;
      const text = mutate(seed.text, rnd);
      if (exercise(text, 'fuzz.nn').length > 0) withErrors++;
    }
    expect(withErrors).toBeGreaterThan(150);
  });

  it('survives random bytes', () => {
    const rnd = prng(7);
    for (let n = 0; n < 60; n++) {
      const bytes = new Uint8Array(Math.floor(rnd() * 400)).map(() => Math.floor(rnd() * 256));
      exercise(new TextDecoder().decode(bytes), 'bytes.nn');
    }
  });

  it('survives random token soup', () => {
    const rnd = prng(99);
    const words = ['model', 'M', '{', '}', 'input', 'x', ':', 'tokens', '(', 'vocab', '=', '3', ')', 'output', 'lstm', 'repeat', '2',
      'residual', 'encoder', 'decoder', 'decode', 'beam', ',', ';', '"s"', '\n', 'linear', 'self', 'attention', 'a', '1e-5', '-1'];
    for (let n = 0; n < 100; n++) {
      const len = Math.floor(rnd() * 60);
      const text = Array.from({ length: len }, () => words[Math.floor(rnd() * words.length)]).join(' ');
      exercise(text, 'soup.nn');
    }
  });

  it('handles large junk quickly', () => {
    const rnd = prng(3);
    const bytes = new Uint8Array(200_000).map(() => Math.floor(rnd() * 256));
    const text = new TextDecoder().decode(bytes);
    const t0 = performance.now();
    const d = exercise(text, 'big.nn');
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(d.some((x) => x.code === 'E0005')).toBe(true);
  });

  it('handles deep nesting and long inputs', () => {
    exercise(`model A { input x: vectors(dim = 2) ${'residual { '.repeat(5000)}linear 2${' }'.repeat(5000)} }`, 'deep.nn');
    exercise(`model A { input x: vectors(dim = 2) ${'{'.repeat(5000)}`, 'open.nn');
    exercise(`model A { input x: vectors(dim = 2) ${'linear 2\n'.repeat(5000)} }`, 'long.nn');
    exercise(`model A { input x: vectors(dim = 2) linear ${'1, '.repeat(5000)} }`, 'items.nn');
  });
});
