/** The ```nn code blocks of README.md and docs/*.md (the formatter and the editor grammar are run over them). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.ts';

export interface Snippet {
  /** `docs/language.md:7` (the line of the opening fence). */
  readonly where: string;
  readonly text: string;
  /** Offsets of the snippet's text in its file. */
  readonly start: number;
  readonly end: number;
  readonly file: string;
}

export const DOC_FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

export function docSnippets(): Snippet[] {
  return DOC_FILES.flatMap((file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    return [...text.matchAll(/^```nn\n([\s\S]*?)^```/gm)].map((m) => {
      const start = m.index + '```nn\n'.length;
      return { where: `${file}:${text.slice(0, m.index).split('\n').length}`, text: m[1]!, start, end: start + m[1]!.length, file };
    });
  });
}
