/**
 * `nnc fmt [--check | --stdout] FILE.nn...` (src/fmt.ts does the formatting).
 *
 *   nnc fmt a.nn b.nn        rewrites the files that are not formatted; prints `formatted a.nn`
 *   nnc fmt --check *.nn     writes nothing; prints the files that are not formatted, one a line,
 *                            and exits 1 if there is any (for CI)
 *   nnc fmt --stdout a.nn    prints the formatted text
 *
 * A file with syntax errors is left as it is: its diagnostics go to stderr and the exit code is 1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderDiagnostics } from './diagnostics/render.ts';
import { format } from './fmt.ts';

export async function command(argv: string[], usage: (message: string) => number): Promise<number> {
  const files: string[] = [];
  let mode: 'write' | 'check' | 'stdout' = 'write';
  for (const a of argv) {
    if (a === '--check' || a === '--stdout') {
      if (mode !== 'write') return usage(`fmt takes one of --check and --stdout`);
      mode = a === '--check' ? 'check' : 'stdout';
    } else if (a.startsWith('-')) return usage(`unknown option '${a}' for fmt`);
    else files.push(a);
  }
  if (!files.length) return usage('fmt needs a .nn file');
  if (mode === 'stdout' && files.length > 1) return usage('fmt --stdout takes one file');
  let status = 0;
  const unformatted: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      process.stderr.write(`nnc: cannot read '${file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}\n`);
      status = Math.max(status, 2);
      continue;
    }
    const { output, diagnostics } = format(text, file);
    if (output === undefined) {
      process.stderr.write(`${renderDiagnostics(diagnostics, text)}\nnnc: ${file} has syntax errors; it was not formatted\n`);
      status = Math.max(status, 1);
      continue;
    }
    if (mode === 'stdout') process.stdout.write(output);
    else if (output !== text) {
      if (mode === 'check') unformatted.push(file);
      else {
        try {
          writeFileSync(file, output);
        } catch (e) {
          process.stderr.write(`nnc: cannot write '${file}': ${(e as Error).message}\n`);
          status = Math.max(status, 2);
          continue;
        }
        process.stdout.write(`formatted ${file}\n`);
      }
    }
  }
  if (unformatted.length) {
    process.stdout.write(unformatted.map((f) => `${f}\n`).join(''));
    process.stderr.write(`nnc: ${unformatted.length} file${unformatted.length === 1 ? ' is' : 's are'} not formatted (run 'nnc fmt FILE' to format ${unformatted.length === 1 ? 'it' : 'them'})\n`);
    status = Math.max(status, 1);
  }
  return status;
}
