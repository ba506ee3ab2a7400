/**
 * nnc vocab | train (docs/text.md, docs/ngram.md). Exit codes as for compile: 0 ok, 1 errors in
 * the spec or the data, 2 bad usage, 70 internal error (cli.ts reports those).
 *
 *   nnc vocab CORPUS --level char|word [--min-count N] [--max-size N] [--lower] [--trim] [-o vocab.json]
 *   nnc train SPEC.nn --data FILE [--valid FILE] [--model NAME] [--out FILE] [neural training flags]
 *
 * `train` fits n-gram models by counting here; a neural model is trained by src/cli-train.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { buildVocab, formatVocab } from './text/build.ts';
import type { NgramDecl } from './ngram/compile.ts';
import type { SpecialRole } from './runtime/text/vocab.ts';

class TextUsageError extends Error {}

function value(rest: readonly string[], i: number, flag: string): string {
  const v = rest[i + 1];
  if (v === undefined || (v.startsWith('-') && v !== '-')) throw new TextUsageError(`${flag} needs a value`);
  return v;
}

function count(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new TextUsageError(`${flag} must be a whole number ≥ 1, got '${v}'`);
  return n;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new TextUsageError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

function vocabCommand(rest: string[]): number {
  let corpus: string | undefined;
  let level: 'char' | 'word' | undefined;
  let minCount = 1;
  let maxSize: number | undefined;
  let out: string | undefined;
  let lower = false;
  let trim = false;
  const specials: Partial<Record<SpecialRole, string>> = { pad: '<pad>', unk: '<unk>', bos: '<s>', eos: '</s>' };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--level') {
      const v = value(rest, i++, a);
      if (v !== 'char' && v !== 'word') throw new TextUsageError(`--level must be char or word, got '${v}'`);
      level = v;
    } else if (a === '--min-count') minCount = count(value(rest, i++, a), a);
    else if (a === '--max-size') maxSize = count(value(rest, i++, a), a);
    else if (a === '-o' || a === '--out') out = value(rest, i++, a);
    else if (a === '--lower') lower = true;
    else if (a === '--trim') trim = true;
    else if (a === '--no-specials') for (const k of Object.keys(specials)) delete specials[k as SpecialRole];
    else if (/^--(pad|unk|bos|eos)$/.test(a)) specials[a.slice(2) as SpecialRole] = value(rest, i++, a);
    else if (a.startsWith('-')) throw new TextUsageError(`unknown option '${a}' for vocab`);
    else if (corpus) throw new TextUsageError(`one corpus at a time (got '${corpus}' and '${a}')`);
    else corpus = a;
  }
  if (!corpus) throw new TextUsageError('vocab needs a corpus file');
  if (!level) throw new TextUsageError('vocab needs --level char or --level word');
  if (out && /\.nn$/i.test(out)) throw new TextUsageError(`refusing to write to '${out}': -o names a .nn file`);
  const built = buildVocab(readText(corpus, 'corpus'), { level, minCount, lower, trim, specials, ...(maxSize !== undefined ? { maxSize } : {}) });
  const text = formatVocab(built.file);
  if (out) writeFileSync(out, text);
  else process.stdout.write(text);
  process.stderr.write(`${out ? `wrote ${out}: ` : ''}${built.file.tokens.length} tokens (${level} level) from ${built.pieces} ${level === 'char' ? 'characters' : 'words'}; ${built.dropped} of ${built.seen} distinct left out by --min-count ${minCount}${maxSize !== undefined ? ` / --max-size ${maxSize}` : ''}\n`);
  return 0;
}

/** Training data: a .jsonl file as docs/DATA-FORMAT (one object per line, keyed by the input name), or text, one sentence per line. */
function readCorpus(path: string, input: string): string[] | number[][] {
  const text = readText(path, 'data file');
  if (extname(path) !== '.jsonl') {
    const lines = text.split(/\r?\n/);
    if (lines[lines.length - 1] === '') lines.pop();
    if (lines.every((l) => l.trim() === '')) throw new DataError(`${path}: the file holds no sentence`);
    return lines;
  }
  const out: (string | number[])[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const at = `${path}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      throw new DataError(`${at}: not JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DataError(`${at}: expected an object like {"${input}": "text"}`);
    for (const k of Object.keys(v)) if (k !== input) throw new DataError(`${at}: unknown field '${k}'; an n-gram model's only input is '${input}'`);
    const s = (v as Record<string, unknown>)[input];
    if (typeof s === 'string' || (Array.isArray(s) && s.every((x) => Number.isInteger(x)))) out.push(s as string | number[]);
    else throw new DataError(`${at}: field '${input}' must be text or an array of token ids, got ${JSON.stringify(s)?.slice(0, 40)}`);
  });
  if (out.length === 0) throw new DataError(`${path}: the file holds no example`);
  const kinds = new Set(out.map((s) => typeof s));
  if (kinds.size > 1) throw new DataError(`${path}: mixes text and token ids; use one or the other`);
  return out as string[] | number[][];
}

export class DataError extends Error {}

/**
 * nnc train: the spec and the model are found first (the one `.nn` argument, `--model NAME`, else
 * the spec's first model), then the model's kind picks the trainer, which parses the rest of the
 * arguments itself: an `ngram` model is fitted here by counting; a neural model is trained by
 * cli-train.ts (createTrainer).
 */
async function trainCommand(rest: string[], report: (diags: readonly import('./diagnostics/diagnostic.ts').Diagnostic[], text: string) => void): Promise<number> {
  const specs = rest.flatMap((a, i) => (/\.nn$/i.test(a) && !a.startsWith('-') && !['-o', '--out', '--model'].includes(rest[i - 1] ?? '') ? [i] : []));
  if (specs.length === 0) throw new TextUsageError('train needs a .nn file');
  if (specs.length > 1) throw new TextUsageError(`one .nn file at a time (got '${rest[specs[0]!]}' and '${rest[specs[1]!]}')`);
  const spec = rest[specs[0]!]!;
  const at = rest.indexOf('--model');
  const name = at < 0 ? undefined : value(rest, at, '--model');
  const source = readText(spec, 'spec');
  const { lower } = await import('./driver.ts');
  const r = lower(source, spec);
  report(r.diagnostics, source);
  if (!r.models) return 1;
  const names = [...(r.ngrams ?? []).map((n) => n.decl.name), ...r.models.map((m) => m.name)];
  const chosen = name ?? (r.ngrams?.find((n) => n.index === 0)?.decl.name ?? r.models[0]?.name);
  if (chosen === undefined || !names.includes(chosen)) throw new TextUsageError(`${spec} has no model '${name}'; its models: ${names.join(', ')}`);
  const decl = r.ngrams?.find((n) => n.decl.name === chosen)?.decl;
  const args = rest.filter((_, i) => i !== specs[0]);
  if (decl) return fitNgram(spec, decl, args);
  const ir = r.models.find((m) => m.name === chosen)!;
  const [{ trainNeural }, { readout }] = await Promise.all([import('./cli-train.ts'), import('./export/torch.ts')]);
  return trainNeural(spec, source, ir, readout(ir), args);
}

/** An n-gram model: counts --data, reports the fit (and --valid's perplexity), writes the ARPA file. */
async function fitNgram(spec: string, decl: NgramDecl, rest: readonly string[]): Promise<number> {
  let data: string | undefined;
  let valid: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--data') data = value(rest, i++, a);
    else if (a === '--valid') valid = value(rest, i++, a);
    else if (a === '--out' || a === '-o') out = value(rest, i++, a);
    else if (a === '--model') i++;
    else if (a.startsWith('-')) throw new TextUsageError(`unknown option '${a}' for train; n-gram models take --data, --valid, --model, --out`);
    else throw new TextUsageError(`unexpected argument '${a}' for train`);
  }
  if (!data) throw new TextUsageError('train needs --data FILE');
  const target = out ?? join(dirname(spec), `${basename(spec, extname(spec))}.arpa`);
  if (/\.nn$/i.test(target)) throw new TextUsageError(`refusing to write to '${target}': --out names a .nn file`);
  const { ngramManifest } = await import('./ngram/compile.ts');
  const { createNgramModel } = await import('./runtime/ngram/model.ts');
  const model = await createNgramModel(ngramManifest(decl), decl.spec, decl.text);
  try {
    const corpus = readCorpus(data, decl.input.name);
    const held = valid ? readCorpus(valid, decl.input.name) : undefined;
    const rss0 = process.memoryUsage().rss;
    const fit = model.fit(corpus, held && decl.spec.smoothing === 'interpolated' && !decl.spec.lambdas ? { heldout: held } : {});
    const rss = process.memoryUsage().rss;
    const { smoothing, order } = decl.spec;
    const lines = [
      `${decl.name}: order ${order}, ${smoothing}; ${fit.sentences} sentences, ${fit.tokens} tokens counted in ${fit.seconds.toFixed(2)} s`,
      `n-grams per order: ${fit.ngrams.join(', ')}; model ${(fit.bytes / 2 ** 20).toFixed(1)} MiB (process memory +${((rss - rss0) / 2 ** 20).toFixed(0)} MiB)`,
      ...(fit.lambdas ? [`interpolation weights (highest order first${decl.spec.unigram === 'ml' ? '' : ', uniform last'}): ${fit.lambdas.map((x) => x.toFixed(4)).join(' ')}`] : []),
      ...fit.discounts.flatMap((d, i) => (d && smoothing !== 'interpolated' ? [`order ${i + 1} discounts: ${d.map((x) => x.toFixed(4)).join(' ')}`] : [])),
      ...fit.warnings.map((w) => `warning: ${w}`),
    ];
    if (held) {
      const p = model.perplexity(held);
      lines.push(`${valid}: perplexity ${p.perplexity.toFixed(3)} over ${p.tokens} tokens (${p.sentences} sentences, ${p.oov} unknown${p.zeros ? `, ${p.zeros} with probability 0` : ''})`);
    }
    if (smoothing === 'stupid_backoff') lines.push('stupid back-off gives scores, not probabilities: no ARPA file is written');
    else {
      writeFileSync(target, model.toArpa());
      lines.push(`wrote ${target}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  } catch (e) {
    if (e instanceof DataError || (e instanceof Error && e.name === 'NncError')) {
      process.stderr.write(`nnc train: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

/** A usage error becomes cli.ts's usage message (exit 2); anything else is cli.ts's to report. */
async function asUsage(run: () => number | Promise<number>, usage: (message: string) => number): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof TextUsageError || e instanceof (await import('./cli-train.ts')).TrainUsageError) return usage(e.message);
    throw e;
  }
}

/** `nnc vocab`, as cli.ts's TOOLS run it. */
export const vocab = { command: (argv: string[], usage: (message: string) => number) => asUsage(() => vocabCommand(argv), usage) };

/** `nnc train`, as cli.ts's TOOLS run it: the spec's diagnostics printed as compile prints them. */
export const train = {
  command: (argv: string[], usage: (message: string) => number) =>
    asUsage(async () => {
      const { renderDiagnostics } = await import('./diagnostics/render.ts');
      return trainCommand(argv, (diags, text) => {
        if (diags.length) process.stderr.write(renderDiagnostics(diags, text) + '\n');
      });
    }, usage),
};
