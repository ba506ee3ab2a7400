/**
 * `nnc graph FILE.nn [-o OUT.svg|OUT.dot|OUT.html] [--kernels]` (src/graph.ts draws). Without -o
 * the DOT text goes to stdout. Exit codes as `nnc check`: 1 when the spec has errors (they are
 * printed; nothing is drawn), 2 for bad usage or an unwritable output.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, extname } from 'node:path';
import { describeModels } from './architecture.ts';
import { renderDiagnostics } from './diagnostics/render.ts';
import { lower, optimize } from './driver.ts';
import { neuralOnly } from './ngram/notes.ts';
import { dotToSvg, toDot, toHtml, type GraphFormat } from './graph.ts';

const FORMATS: Readonly<Record<string, GraphFormat>> = { '.svg': 'svg', '.dot': 'dot', '.gv': 'dot', '.html': 'html', '.htm': 'html' };

export async function command(argv: string[], usage: (message: string) => number): Promise<number> {
  let file: string | undefined;
  let out: string | undefined;
  let kernels = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-o' || a === '--out') {
      out = argv[++i];
      if (!out || out.startsWith('-')) return usage(`${a} needs a file name`);
    } else if (a === '--kernels') kernels = true;
    else if (a.startsWith('-')) return usage(`unknown option '${a}' for graph`);
    else if (file) return usage(`one .nn file at a time (got '${file}' and '${a}')`);
    else file = a;
  }
  if (!file) return usage('graph needs a .nn file');
  const format = out === undefined ? 'dot' : FORMATS[extname(out).toLowerCase()];
  if (!format) return usage(`graph writes .svg, .dot or .html; -o '${out}' has none of these extensions`);
  if (out !== undefined && /\.nn$/i.test(out)) return usage(`refusing to write to '${out}': -o names a .nn file`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`nnc: cannot read '${file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}\n`);
    return 2;
  }
  const { diagnostics, models, ast, ngrams } = lower(text, file);
  if (diagnostics.length) process.stderr.write(renderDiagnostics(diagnostics, text) + '\n');
  if (!models || !ast) return 1;
  if (!neuralOnly('graph', ngrams, models.length)) return 2;
  const facts = describeModels(models, ast);
  if (kernels) facts.forEach((m) => optimize(m.ir));
  const dot = toDot(facts, { file, kernels });
  if (out === undefined) {
    process.stdout.write(dot);
    return 0;
  }
  const svg = format === 'dot' ? '' : await dotToSvg(dot);
  const body = format === 'dot' ? dot : format === 'svg' ? svg : toHtml(svg, facts, file);
  try {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, body);
  } catch (e) {
    process.stderr.write(`nnc: cannot write '${out}': ${(e as Error).message}\n`);
    return 2;
  }
  process.stdout.write(`wrote ${out} (${facts.map((m) => m.ir.name).join(', ')})\n`);
  return 0;
}
