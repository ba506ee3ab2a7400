/**
 * nnc's web example: two generated modules used the way an app uses them.
 *
 *  - generated/dates.ts (examples/dates.nn): a date translator — biLSTM encoder, Bahdanau attention,
 *    GRU decoder — decoding with generate() (beam search), its attention drawn as a heat map;
 *  - generated/brackets.ts (examples/brackets.nn): a bidirectional-GRU classifier run with forward()
 *    on a padded batch.
 *
 * Both load weights trained in PyTorch (examples/weights/*.safetensors) and show, beside nnc's answers,
 * PyTorch's own outputs for the held-out examples (examples/weights/*.test.json). The backend comes
 * from the picker (`?backend=` in the URL); the page shows the one that actually ran (model.backend,
 * model.device). `npm run web` serves it, `npm run web:build` builds it into examples/web/dist/.
 *
 * The models run in a Web Worker (model.worker.ts, which serves both modules and gives them gpu.js):
 * `createModel({ backend, worker })` returns a model with the same API whose calls are answered there,
 * so the page keeps drawing while they compute. `?worker=0` runs them on the page's own thread.
 *
 * That is the Run tab. The Train tab (#train, train.ts) trains the brackets classifier in the page.
 */
import { createModel as createDates, type Model as DatesModel } from '../../generated/dates.ts';
import { createModel as createBrackets, type Model as BracketsModel } from '../../generated/brackets.ts';
import { setupTrainTab } from './train.ts';

// Vite copies these into the build (new URL(..., import.meta.url) is an asset reference).
const FILES = {
  datesWeights: new URL('../weights/dates.safetensors', import.meta.url).href,
  datesTest: new URL('../weights/dates.test.json', import.meta.url).href,
  bracketsWeights: new URL('../weights/brackets.safetensors', import.meta.url).href,
  bracketsTest: new URL('../weights/brackets.test.json', import.meta.url).href,
};

type Backend = 'auto' | 'wasm' | 'webgpu' | 'gpu' | 'webasm' | 'cpu';
const BACKENDS: readonly Backend[] = ['auto', 'wasm', 'webgpu', 'gpu', 'webasm', 'cpu'];

interface Decoded {
  ids: number[];
  score: number;
  text: string;
}
interface DatesTest {
  decode: { beam: number; max_len: number; bos: number; eos: number };
  heldout_accuracy: number;
  examples: { source: string; expected: string; greedy: Decoded; beam: Decoded }[];
}
interface BracketsTest {
  tokens: Record<string, number>;
  heldout_accuracy: number;
  examples: { text: string; ids: number[]; label: number; probs: [number, number] }[];
}

/** What the page did, for people (the DOM) and for test/browser/web.test.ts (window.nncWeb). */
export interface WebReport {
  state: 'loading' | 'ready' | 'error';
  requested: Backend;
  /** whether the models run in the Web Worker (the default) or on the page's thread (?worker=0) */
  worker: boolean;
  error?: string;
  dates?: {
    backend: string;
    device: string;
    ms: number;
    /** the held-out examples, one batch per strategy */
    beam: { ids: number[]; score: number }[];
    greedy: { ids: number[]; score: number; attention: { shape: [number, number]; data: number[] } | null }[];
    /** the input box's translation */
    current: { source: string; text: string; ids: number[]; score: number } | null;
  };
  brackets?: {
    backend: string;
    device: string;
    ms: number;
    probs: [number, number][];
    current: { text: string; probs: [number, number] } | null;
  };
}
declare global {
  interface Window {
    nncWeb: WebReport & { models: { dates?: DatesModel; brackets?: BracketsModel } };
  }
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el as T;
};
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};

const params = new URLSearchParams(location.search);
const param = params.get('backend') ?? 'auto';
// an unknown ?backend= is reported below, not quietly replaced by another backend
const known = (BACKENDS as readonly string[]).includes(param);
const requested = param as Backend;
const inWorker = params.get('worker') !== '0';
const picker = $<HTMLSelectElement>('backend');
picker.value = known ? requested : 'auto';
picker.addEventListener('change', () => {
  const url = new URL(location.href);
  url.searchParams.set('backend', picker.value);
  location.assign(url); // a fresh page: new models on the new backend
});

const report: Window['nncWeb'] = { state: 'loading', requested, worker: inWorker, models: {} };
window.nncWeb = report;
const status = $('status');

/** One worker serves both models (model.worker.ts); created on first use. */
let worker: Worker | undefined;
async function modelOptions(backend: Backend): Promise<{ backend: Backend; worker?: Worker; gpu?: unknown }> {
  if (inWorker) {
    worker ??= new Worker(new URL('./model.worker.ts', import.meta.url), { type: 'module' });
    return { backend, worker };
  }
  // on the page's thread the page gives the models gpu.js itself (loaded only then: a chunk of its own)
  const { GPU } = await import('gpu.js');
  return { backend, gpu: GPU };
}

async function bytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}
async function json<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${r.statusText}`);
  return (await r.json()) as T;
}
const sameIds = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const agreeCell = (ok: boolean) => el('td', ok ? '✓' : '✗', ok ? 'ok' : 'bad');
function summary(into: HTMLElement, agreeing: number, of: number): void {
  into.textContent = `${agreeing} of ${of} agree`;
  into.className = `agree ${agreeing === of ? 'ok' : 'bad'}`;
}

// ───────────── the date translator ─────────────

async function runDates(backend: Backend): Promise<void> {
  const [held, weights] = await Promise.all([json<DatesTest>(FILES.datesTest), bytes(FILES.datesWeights)]);
  const model = await createDates(await modelOptions(backend));
  report.models.dates = model;
  await model.loadWeights(weights);

  // the spec's vocabularies (examples/vocab/dates.*.json) map text to ids and back; its decode statement gives beam, maxLen, bos, eos
  const { eos } = held.decode;
  const label = (i: number) => (i === eos ? 'eos' : model.decode([i]) || '?');
  const sourceVocab = model.vocabulary('source');

  // The held-out dates as one batch of text (the model pads it and passes the row lengths).
  const t0 = performance.now();
  const source = held.examples.map((e) => e.source);
  const byBeam = await model.generate({ source }, { strategy: 'beam' });
  const byGreedy = await model.generate({ source }, { strategy: 'greedy', attention: true });
  const ms = performance.now() - t0;

  const tbody = $('date-table').querySelector('tbody')!;
  let agreeing = 0;
  held.examples.forEach((e, b) => {
    const ids = byBeam.ids[b] ?? [];
    const score = byBeam.scores[b] ?? NaN;
    const ok = sameIds(ids, e.beam.ids) && Math.abs(score - e.beam.score) <= 1e-3;
    if (ok) agreeing++;
    const tr = el('tr');
    tr.append(el('td', e.source, 'src'), el('td', byBeam.text[b] ?? '', 'iso'), el('td', score.toFixed(4), 'num'));
    tr.append(el('td', e.beam.text, 'iso'), el('td', e.beam.score.toFixed(4), 'num'), agreeCell(ok));
    tr.title = 'click to translate and show its attention';
    tr.addEventListener('click', () => {
      input.value = e.source;
      void translate();
    });
    tbody.append(tr);
  });
  summary($('date-agree'), agreeing, held.examples.length);
  report.dates = {
    backend: model.backend,
    device: model.device,
    ms: Math.round(ms),
    beam: held.examples.map((_, b) => ({ ids: byBeam.ids[b] ?? [], score: byBeam.scores[b] ?? NaN })),
    greedy: held.examples.map((e, b) => {
      const a = byGreedy.attention?.[b];
      // attention columns past a row's length (padding) are 0; keep the row's own S columns
      const [steps = 0, width = 0] = a?.shape ?? [];
      const n = sourceVocab.encode(e.source).length;
      const cut = a ? Array.from({ length: steps * n }, (_, k) => a.data[Math.floor(k / n) * width + (k % n)] ?? NaN) : null;
      return { ids: byGreedy.ids[b] ?? [], score: byGreedy.scores[b] ?? NaN, attention: cut ? { shape: [steps, n], data: cut } : null };
    }),
    current: null,
  };

  // The input box: one date, beam search with the attention of the chosen hypothesis.
  const input = $<HTMLInputElement>('date-input');
  const out = $('date-out');
  const meta = $('date-meta');
  const longest = held.examples.reduce((a, e) => (e.source.length > a.source.length ? e : a));
  input.value = longest.source;
  input.placeholder = 'e.g. march 3, 1987';
  async function translate(): Promise<void> {
    const s = sourceVocab.normalize(input.value); // lower-cased, spaces squeezed, as the vocabulary declares
    let bad: string | undefined;
    try {
      sourceVocab.encode(s, 'the date');
    } catch (e) {
      bad = (e as Error).message.replace(/ \(\d+ tokens.*$/, '');
    }
    if (s.length === 0 || bad !== undefined) {
      out.textContent = '—';
      out.className = 'big muted';
      meta.textContent = s.length === 0 ? 'type a date' : `${bad}: use a-z, 0-9, space and , - . /`;
      return;
    }
    const t = performance.now();
    const r = await model.generate({ source: s }, { strategy: 'beam', attention: true });
    const took = performance.now() - t;
    const got = r.ids[0] ?? [];
    const score = r.scores[0] ?? NaN;
    out.textContent = r.text[0] || '(empty)';
    out.className = 'big';
    const known = held.examples.find((e) => e.source === s);
    const pt = known ? ` · PyTorch: ${known.beam.text} ${sameIds(got, known.beam.ids) ? '✓' : '✗'}` : '';
    meta.textContent = `log-prob ${score.toFixed(3)} · ${took.toFixed(0)} ms${pt}`;
    const a = r.attention?.[0];
    if (a) drawHeatmap($<HTMLCanvasElement>('heatmap'), got.map(label), [...s], a.data, a.shape);
    report.dates!.current = { source: s, text: r.text[0] ?? '', ids: got, score };
  }
  $('date-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void translate().catch(fail);
  });
  await translate();
}

// ───────────── the brackets classifier ─────────────

async function runBrackets(backend: Backend): Promise<void> {
  const [held, weights] = await Promise.all([json<BracketsTest>(FILES.bracketsTest), bytes(FILES.bracketsWeights)]);
  const model = await createBrackets(await modelOptions(backend));
  report.models.brackets = model;
  await model.loadWeights(weights);

  // every held-out string in one forward(): a padded [B, T] batch, lengths per row
  const t0 = performance.now();
  const rows = held.examples.map((e) => e.ids);
  const T = Math.max(...rows.map((r) => r.length));
  const data = new Int32Array(rows.length * T);
  rows.forEach((r, b) => data.set(r, b * T));
  const { label } = await model.forward({ text: { data, shape: [rows.length, T], lengths: rows.map((r) => r.length) } });
  const ms = performance.now() - t0;
  const probs = rows.map((_, b) => [label.data[2 * b] ?? NaN, label.data[2 * b + 1] ?? NaN] as [number, number]);

  const tbody = $('br-table').querySelector('tbody')!;
  let agreeing = 0;
  held.examples.forEach((e, b) => {
    const p = probs[b]![1];
    const ok = Math.abs(p - e.probs[1]) <= 1e-4;
    if (ok) agreeing++;
    const tr = el('tr');
    tr.append(el('td', e.text, 'src'), el('td', p.toFixed(5), 'num'), el('td', e.probs[1].toFixed(5), 'num'));
    tr.append(el('td', e.label ? 'balanced' : 'unbalanced', e.label ? 'yes' : 'no'), agreeCell(ok));
    tbody.append(tr);
  });
  summary($('br-agree'), agreeing, held.examples.length);
  report.brackets = { backend: model.backend, device: model.device, ms: Math.round(ms), probs, current: null };

  const input = $<HTMLInputElement>('br-input');
  const out = $('br-out');
  const meta = $('br-meta');
  const bar = $('br-bar');
  input.value = '([()[]])[]';
  input.placeholder = 'brackets: ( ) [ ]';
  async function classify(): Promise<void> {
    const s = input.value.replace(/\s+/g, '');
    const odd = [...s].find((ch) => !(ch in held.tokens) || ch === '<pad>');
    if (s.length === 0 || odd !== undefined) {
      out.textContent = '—';
      out.className = 'big muted';
      meta.textContent = s.length === 0 ? 'type some brackets' : `'${odd}' is not a bracket the model knows: use ( ) [ ]`;
      bar.style.width = '0';
      return;
    }
    const ids = [...s].map((ch) => held.tokens[ch]!);
    const t = performance.now();
    const r = await model.forward({ text: { data: Int32Array.from(ids), shape: [1, ids.length] } });
    const p: [number, number] = [r.label.data[0] ?? NaN, r.label.data[1] ?? NaN];
    out.textContent = p[1] >= 0.5 ? 'balanced' : 'unbalanced';
    out.className = `big ${p[1] >= 0.5 ? 'yes' : 'no'}`;
    meta.textContent = `p(balanced) = ${p[1].toFixed(4)} · ${(performance.now() - t).toFixed(0)} ms`;
    bar.style.width = `${(100 * p[1]).toFixed(1)}%`;
    report.brackets!.current = { text: s, probs: p };
  }
  $('br-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void classify().catch(fail);
  });
  input.addEventListener('input', () => void classify().catch(fail));
  await classify();
}

// ───────────── the heat map ─────────────

// matplotlib's "inferno" (9 stops, piecewise linear), as examples/heatmap.ts draws the demo's PNG
const RAMP = [
  [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
  [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
] as const;
function ramp(w: number): string {
  const x = Number.isFinite(w) ? Math.min(1, Math.max(0, w)) : 0;
  const f = x * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(f));
  const a = RAMP[i]!;
  const b = RAMP[i + 1]!;
  const c = [0, 1, 2].map((k) => Math.round(a[k]! + (b[k]! - a[k]!) * (f - i)));
  return `rgb(${c.join(',')})`;
}

/** rows × cols cells of weights (row-major [rows, cols]); labels along the left and the top; a legend. */
function drawHeatmap(canvas: HTMLCanvasElement, rows: string[], cols: string[], weights: ArrayLike<number>, shape: [number, number]): void {
  const [R, C] = shape;
  const cell = Math.max(12, Math.min(24, Math.floor(560 / Math.max(1, C))));
  const left = 40;
  const top = 26;
  const legend = 46;
  const w = left + C * cell + legend;
  const h = top + R * cell + 6;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const g = canvas.getContext('2d')!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.font = '13px ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillStyle = '#5b6475';
  cols.forEach((ch, j) => g.fillText(ch === ' ' ? '·' : ch, left + j * cell + cell / 2, top / 2));
  g.textAlign = 'right';
  rows.forEach((ch, i) => g.fillText(ch, left - 8, top + i * cell + cell / 2));
  for (let i = 0; i < R; i++) {
    for (let j = 0; j < C; j++) {
      g.fillStyle = ramp(weights[i * C + j] ?? 0);
      g.fillRect(left + j * cell, top + i * cell, cell, cell);
    }
  }
  // legend: 0 at the bottom, 1 at the top
  const lx = left + C * cell + 14;
  const lh = R * cell;
  for (let y = 0; y < lh; y++) {
    g.fillStyle = ramp(1 - y / Math.max(1, lh - 1));
    g.fillRect(lx, top + y, 10, 1);
  }
  g.textAlign = 'left';
  g.fillStyle = '#5b6475';
  g.font = '11px system-ui, sans-serif';
  g.fillText('1', lx + 14, top + 5);
  g.fillText('0', lx + 14, top + lh - 5);
}

// ───────────── start ─────────────

function fail(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  report.state = 'error';
  report.error = msg;
  document.body.dataset.state = 'error';
  status.textContent = `error: ${msg}`;
  status.className = 'error';
  console.error(e);
}

/** The Run tab: both models, on the backend picked, started the first time the tab shows. */
async function startRun(): Promise<void> {
  try {
    if (!known) throw new Error(`unknown backend '${param}' in the URL: pick one of ${BACKENDS.join(', ')}`);
    const t0 = performance.now();
    await runDates(requested);
    await runBrackets(requested);
    const d = report.dates!;
    const b = report.brackets!;
    const ran = $('ran');
    ran.replaceChildren(
      el('span', 'ran on', 'label'),
      el('strong', d.backend),
      el('span', d.device, 'device'),
      ...(d.backend !== b.backend ? [el('strong', ` / ${b.backend}`)] : []),
    );
    ran.className = `ran ${requested === 'auto' || d.backend === requested ? 'good' : 'warn'}`;
    status.textContent =
      `requested '${requested}'; dates ran on '${d.backend}' (${d.device}), ${d.ms} ms for the held-out batch (beam + greedy); ` +
      `brackets on '${b.backend}' (${b.device}), ${b.ms} ms; ${(performance.now() - t0).toFixed(0)} ms in all, weights included; ` +
      (inWorker ? 'the models run in a Web Worker' : "the models run on the page's thread");
    report.state = 'ready';
    document.body.dataset.state = 'ready';
  } catch (e) {
    fail(e);
    $('ran').textContent = `'${requested}' failed`;
    $('ran').className = 'ran bad';
  }
}

// ───────────── the tabs: Run (#run, the default) and Train (#train, train.ts) ─────────────

setupTrainTab();
let runStarted = false;
function showTab(): void {
  const tab = location.hash === '#train' ? 'train' : 'run';
  for (const t of ['run', 'train'] as const) {
    $(t).hidden = t !== tab;
    $(`tab-${t}`).setAttribute('aria-selected', String(t === tab));
  }
  // the backend picker and the footer are the Run tab's
  $('status').hidden = $('backend').parentElement!.hidden = tab !== 'run';
  if (tab === 'run' && !runStarted) {
    runStarted = true;
    void startRun();
  }
}
window.addEventListener('hashchange', showTab);
showTab();
