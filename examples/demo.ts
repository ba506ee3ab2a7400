/**
 * `npm run demo`: a date translator with attention, compiled by nnc. examples/dates.nn (a
 * bidirectional-LSTM encoder, Bahdanau attention, a GRU decoder) is compiled to generated/dates.ts
 * and runs on weights trained in PyTorch by examples/train/train_translator.py. For held-out dates
 * written the way people write them, it prints nnc's beam-search translation next to PyTorch's own
 * decode of the same weights, draws nnc's attention as a heat map in the terminal, and writes it
 * as a PNG.
 *
 *   tsx examples/demo.ts [--backend wasm|cpu|webasm|gpu|webgpu|auto] [--worker] [--png FILE] [--no-color] [--] ["DATE" ...]
 *
 * `--worker` runs the model in a worker thread (createModel({ worker: true })). With DATE arguments
 * (e.g. "march 3, 1987"; `--` ends the options) it translates those instead; PyTorch's decode is
 * only known for the held-out examples in examples/weights/dates.test.json.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createModel, decode, DatesText, manifest } from '../generated/dates.ts';
import { renderHeatmap, writeHeatmapPng } from './heatmap.ts';

const USAGE = 'usage: tsx examples/demo.ts [--backend wasm|cpu|webasm|gpu|webgpu|auto] [--worker] [--png FILE] [--no-color] [--] ["DATE" ...]';
function usage(msg: string): never {
  console.error(`demo: ${msg}\n${USAGE}`);
  process.exit(2);
}
/** The command line; `--` ends the options (`npm run demo -- --backend webasm -- "5th of may 1999"`): dates follow. */
function parse() {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      options: { backend: { type: 'string' }, worker: { type: 'boolean' }, png: { type: 'string' }, 'no-color': { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    return usage((e as Error).message.split('\n')[0]!);
  }
}
const parsed = parse();
const args = parsed.positionals;
const BACKENDS = ['wasm', 'cpu', 'webasm', 'gpu', 'webgpu', 'auto'] as const;
const backend = (parsed.values.backend ?? 'wasm') as (typeof BACKENDS)[number];
if (!BACKENDS.includes(backend)) usage(`unknown backend '${backend}'`);
const root = new URL('..', import.meta.url).pathname;
const pngPath = resolve(parsed.values.png ?? `${root}demo-attention.png`);
const color = !parsed.values['no-color'] && !!process.stdout.isTTY && !process.env.NO_COLOR;

interface Decoded {
  ids: number[];
  score: number;
  text: string;
}
interface Held {
  decode: { beam: number; max_len: number; bos: number; eos: number };
  heldout_accuracy: number;
  heldout_size: number;
  examples: {
    source: string;
    source_ids: number[];
    expected: string;
    greedy: Decoded & { attention: { shape: [number, number]; data: number[] } };
    beam: Decoded;
  }[];
}
const held = JSON.parse(readFileSync(`${root}examples/weights/dates.test.json`, 'utf8')) as Held;
// The spec's vocabularies (examples/vocab/dates.*.json) map text to ids and back; its decode statement
// gives beam 4, max_len 12, bos <bos>, eos <eos>.
const { eos, beam: K } = manifest.decode;
const MAX_SOURCE = manifest.inputs[0].maxLen;
const sourceVocab = DatesText.vocabulary('source');

// What to translate: the held-out examples, or the dates on the command line.
const cases = args.length
  ? args.map((a) => {
      const s = sourceVocab.normalize(a); // lower-cased, spaces squeezed, as the vocabulary declares
      try {
        sourceVocab.encode(s, `'${a}'`);
      } catch (e) {
        usage(`${(e as Error).message.replace(/ and the vocabulary.*$/, '')}; dates may use a-z, 0-9, space and , - . /`);
      }
      if (s.length === 0 || s.length > MAX_SOURCE) usage(`'${a}' must have 1 to ${MAX_SOURCE} characters`);
      const known = held.examples.find((e) => e.source === s);
      return { source: s, expected: known?.expected ?? isoOf(s), ref: known };
    })
  : held.examples.map((e) => ({ source: e.source, expected: e.expected as string | undefined, ref: e }));

const model = await createModel({ backend, worker: parsed.values.worker === true });
await model.loadWeights(readFileSync(`${root}examples/weights/dates.safetensors`));

/** Heat-map row labels: one per generated token, eos included. */
const labels = (ids: number[]) => ids.map((i) => (i === eos ? 'eos' : decode([i]) || '?'));

interface Run {
  ids: number[];
  score: number;
  text: string;
  attention?: { data: Float32Array; shape: [number, number] };
}
async function translate(source: string, strategy: 'beam' | 'greedy'): Promise<Run> {
  const r = await model.generate({ source }, { strategy, attention: true }); // the rest from the spec's decode statement
  return { ids: r.ids[0], score: r.scores[0], text: r.text[0], attention: r.attention?.[0] };
}

const SCORE_TOL = 1e-3; // summed log-probabilities of ≤ 12 tokens, float32 kernels on either side
const sameIds = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const agrees = (run: Run, ref: Decoded) => sameIds(run.ids, ref.ids) && Math.abs(run.score - ref.score) <= SCORE_TOL;
const mark = (ok: boolean | undefined) => (ok === undefined ? '-' : ok ? '✓' : '✗');
const fmt = (x: number) => x.toFixed(4).padStart(8);

console.log(`Dates: human-written dates → ISO 8601, by a biLSTM encoder + Bahdanau attention + GRU decoder`);
console.log(`compiled by nnc (generated/dates.ts), backend '${model.backend}' (${model.device}),`);
console.log(`weights from examples/train/train_translator.py (PyTorch; ${(held.heldout_accuracy * 100).toFixed(1)} % exact match on ${held.heldout_size} held-out dates)\n`);
console.log(`${'source'.padEnd(MAX_SOURCE)}    ${'nnc, beam 4'.padEnd(19)}  ${'PyTorch, beam 4'.padEnd(19)}  agree`);
console.log(`${''.padEnd(MAX_SOURCE)}    ${'date        score'.padEnd(19)}  ${'date        score'.padEnd(19)}  beam greedy`);

const results: { c: (typeof cases)[number]; beam: Run; greedy: Run; beamOk?: boolean; greedyOk?: boolean; attnDiff?: number }[] = [];
const t0 = performance.now();
for (const c of cases) {
  const beam = await translate(c.source, 'beam');
  const greedy = await translate(c.source, 'greedy');
  const r: (typeof results)[number] = { c, beam, greedy };
  if (c.ref) {
    r.beamOk = agrees(beam, c.ref.beam);
    r.greedyOk = agrees(greedy, c.ref.greedy);
    const ra = c.ref.greedy.attention;
    if (greedy.attention && r.greedyOk && greedy.attention.shape[0] === ra.shape[0] && greedy.attention.shape[1] === ra.shape[1]) {
      r.attnDiff = Math.max(...Array.from(greedy.attention.data, (v, k) => Math.abs(v - ra.data[k])));
    }
  }
  results.push(r);
  const pt = c.ref ? `${c.ref.beam.text.padEnd(10)} ${fmt(c.ref.beam.score)}` : '(no PyTorch decode)'.padEnd(19);
  const wrong = c.expected !== undefined && beam.text !== c.expected ? `  ≠ ${c.expected}` : '';
  console.log(
    `${c.source.padEnd(MAX_SOURCE)} →  ${beam.text.padEnd(10)} ${fmt(beam.score)}  ${pt}  ${mark(r.beamOk).padStart(3)}  ${mark(r.greedyOk).padStart(3)}${wrong}`,
  );
}
const ms = performance.now() - t0;

// Heat maps of nnc's own attention (beam decode): the longest source or two.
const shown = results
  .map((r, k) => ({ r, k }))
  .filter(({ r }) => r.beam.attention)
  .sort((a, b) => b.r.c.source.length - a.r.c.source.length || a.k - b.k)
  .slice(0, args.length ? 1 : 2)
  .sort((a, b) => a.k - b.k)
  .map(({ r }) => r);
if (shown.length === 0) console.log(`\n(nnc returned no attention weights, so there is no heat map to draw)`);
for (const r of shown) {
  const a = r.beam.attention!;
  console.log(`\nnnc's attention while writing ${r.beam.text} for "${r.c.source}" (row: output character, column: source character)\n`);
  console.log(renderHeatmap(labels(r.beam.ids), [...r.c.source], a.data, a.shape, { color }));
}
if (shown.length > 0) {
  const r = shown[0];
  const a = r.beam.attention!;
  writeHeatmapPng(pngPath, labels(r.beam.ids), [...r.c.source], a.data, a.shape, {
    title: `nnc attention: "${r.c.source}" → ${r.beam.text}`,
  });
  console.log(`\nwrote the heat map of "${r.c.source}" to ${pngPath}`);
}

// Summary: agreement with PyTorch, and accuracy against the true ISO dates.
const withRef = results.filter((r) => r.c.ref);
const agreeN = withRef.filter((r) => r.beamOk).length;
const greedyN = withRef.filter((r) => r.greedyOk).length;
const diffs = withRef.map((r) => r.attnDiff).filter((d): d is number => d !== undefined);
const graded = results.filter((r) => r.c.expected !== undefined);
const correct = graded.filter((r) => r.beam.text === r.c.expected).length;
console.log('');
if (withRef.length) {
  const attn = diffs.length ? `; greedy attention within ${Math.max(...diffs).toExponential(1)} of PyTorch's` : '';
  console.log(`agreement with PyTorch: beam ${agreeN} of ${withRef.length}, greedy ${greedyN} of ${withRef.length} (same ids, scores within ${SCORE_TOL})${attn}`);
}
console.log(
  (withRef.length ? `nnc agrees with PyTorch on ${agreeN} of ${withRef.length}` : 'no PyTorch decode known for these dates') +
    `; exact-match accuracy vs the ISO date: ${correct} of ${graded.length}` +
    (graded.length ? ` (${((100 * correct) / graded.length).toFixed(0)} %)` : '') +
    `; ${results.length * 2} decodes in ${ms.toFixed(0)} ms on '${model.backend}'`,
);
model.dispose();

/** The ISO date a command-line date means (for grading it), if it can be read: a 4-digit year, a month name or
 * a year-first numeric form, a day number. */
function isoOf(s: string): string | undefined {
  const months = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
  const words = s.split(/[\s,./-]+/).filter(Boolean);
  const numeric = /^(\d{4})[./-](\d{1,2})[./-](\d{1,2})$/.exec(s);
  let y: number | undefined, m: number | undefined, d: number | undefined;
  if (numeric) [y, m, d] = [+numeric[1], +numeric[2], +numeric[3]];
  else {
    for (const w of words) {
      if (/^\d{4}$/.test(w) && y === undefined) y = +w;
      else if (/^\d{1,2}(st|nd|rd|th)?$/.test(w) && d === undefined) d = parseInt(w, 10);
      else if (/^[a-z]{3,}$/.test(w) && months.includes(w.slice(0, 3)) && m === undefined) m = months.indexOf(w.slice(0, 3)) + 1;
    }
  }
  if (y === undefined || m === undefined || d === undefined) return undefined;
  const t = new Date(Date.UTC(y, m - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== m - 1 || t.getUTCDate() !== d) return undefined;
  return `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}
