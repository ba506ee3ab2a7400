/**
 * `nnc vocab corpus.txt --level char|word`: a vocabulary from a corpus, in nnc's vocabulary file
 * format (src/text/load.ts). Special tokens come first (in the order given), then every piece seen
 * at least `minCount` times, most frequent first (ties in code-point order), up to `maxSize` ids.
 */
import type { NncVocabFile } from './load.ts';
import { splitWords, type SpecialRole } from '../runtime/text/vocab.ts';

export interface BuildVocabOptions {
  readonly level: 'char' | 'word';
  readonly minCount?: number;
  readonly maxSize?: number;
  readonly lower?: boolean;
  readonly trim?: boolean;
  /** Special tokens by role, in id order. Default: pad <pad>, unk <unk>, bos <s>, eos </s>. */
  readonly specials?: Partial<Record<SpecialRole, string>>;
}

export const DEFAULT_SPECIALS: Readonly<Record<SpecialRole, string>> = { pad: '<pad>', unk: '<unk>', bos: '<s>', eos: '</s>' };

export interface BuiltVocab {
  readonly file: NncVocabFile;
  /** Distinct pieces seen, and how many were left out by minCount / maxSize. */
  readonly seen: number;
  readonly dropped: number;
  /** Pieces counted. */
  readonly pieces: number;
}

export function buildVocab(corpus: string, o: BuildVocabOptions): BuiltVocab {
  const minCount = o.minCount ?? 1;
  const specials = o.specials ?? DEFAULT_SPECIALS;
  const counts = new Map<string, number>();
  let pieces = 0;
  for (let line of corpus.split(/\r?\n/)) {
    if (o.lower) line = line.toLowerCase();
    if (o.trim) line = line.trim().replace(/\s+/g, ' ');
    const ps = o.level === 'char' ? [...line] : splitWords(line);
    for (const p of ps) counts.set(p, (counts.get(p) ?? 0) + 1);
    pieces += ps.length;
  }
  const reserved = new Set(Object.values(specials));
  const ranked = [...counts].filter(([p, c]) => c >= minCount && !reserved.has(p)).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const room = o.maxSize === undefined ? ranked.length : Math.max(0, o.maxSize - reserved.size);
  const kept = ranked.slice(0, room).map(([p]) => p);
  const file: NncVocabFile = {
    nnc: 'vocab',
    level: o.level,
    ...(o.lower ? { lower: true } : {}),
    ...(o.trim ? { trim: true } : {}),
    specials: { ...specials },
    tokens: [...new Set(Object.values(specials))].concat(kept),
  };
  return { file, seen: counts.size, dropped: counts.size - kept.length - [...counts.keys()].filter((p) => reserved.has(p)).length, pieces };
}

/** The file's text: one token per line inside the list, so that diffs stay readable. */
export function formatVocab(f: NncVocabFile): string {
  const { tokens, ...head } = f;
  const h = JSON.stringify(head, null, 2).replace(/\n}$/, '');
  return `${h},\n  "tokens": [\n${tokens.map((t) => `    ${JSON.stringify(t)}`).join(',\n')}\n  ]\n}\n`;
}
