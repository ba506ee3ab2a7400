/**
 * The web example (examples/web/, a Vite app) in headless Chromium, as a user gets it: `vite build`,
 * the built files served with COOP/COEP headers, the page opened once per backend (`?backend=` is
 * the picker's value) — wasm, webgpu, gpu (WebGL2), webasm, cpu, and auto. The models run in the
 * example's Web Worker (model.worker.ts); the gpu.js backends are opened a second time with
 * `?worker=0`, on the page's thread, where the test can see which gpu.js kernels ran. For each it
 * checks what the page computed against PyTorch (examples/weights/dates.test.json: the translator's
 * beam and greedy decodes and greedy attention; brackets.test.json: the classifier's probabilities),
 * the backend that actually ran (model.backend, model.device; auto must pick wasm here, where the only
 * WebGPU adapter is SwiftShader's, in software), and keeps a full-page screenshot per page in
 * test/.out/web-<page>.png, checked not to be blank (distinct colours and luminance spread of the
 * decoded PNG, and of the heat-map canvas itself). An unknown `?backend=` is reported on the page.
 *
 * Vite is a dependency of the example only: when examples/web/node_modules has no vite, the setup
 * installs it (`npm ci --prefix examples/web`; .ci/run does the same up front). Never skips.
 */
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { buildWebExample, CHROMIUM_ARGS, CHROMIUM_PATH, serveDirectory } from './harness.ts';
import type { WebReport } from '../../examples/web/main.ts';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const OUT = join(ROOT, 'test/.out');
const DIST = join(OUT, 'web-dist');

type Backend = 'wasm' | 'webgpu' | 'gpu' | 'webasm' | 'cpu' | 'auto';
const BACKENDS: Backend[] = ['wasm', 'webgpu', 'gpu', 'webasm', 'cpu', 'auto'];
/** what each request must run on (kernel: the gpu.js kernels' mode); auto picks wasm: WebGPU here is SwiftShader, in software */
const EXPECT: Record<Backend, { backend: string; device: string; kernel: string | null }> = {
  wasm: { backend: 'wasm', device: 'nnc wasm', kernel: null },
  webgpu: { backend: 'webgpu', device: 'gpu.js webgpu', kernel: 'webgpu' },
  gpu: { backend: 'gpu', device: 'gpu.js webgl2', kernel: 'webgl2' },
  webasm: { backend: 'webasm', device: 'gpu.js webasm', kernel: 'webasm' },
  cpu: { backend: 'cpu', device: 'cpu', kernel: null },
  auto: { backend: 'wasm', device: 'nnc wasm', kernel: null },
};
/** The pages opened: every backend in the Web Worker, and the gpu.js ones again on the page's thread (?worker=0). */
interface PageSpec {
  key: string;
  backend: Backend;
  worker: boolean;
}
const PAGES: PageSpec[] = [
  ...BACKENDS.map((backend) => ({ key: backend, backend, worker: true })),
  ...BACKENDS.filter((b) => EXPECT[b].kernel).map((backend) => ({ key: `${backend}-page-thread`, backend, worker: false })),
];
/** summed log-probabilities of ≤ 12 tokens and attention weights; float32 kernels on both sides */
const SCORE_TOL = 1e-3;
const ATTN_TOL = 1e-3;
/** the classifier's probabilities, as test/browser/models.test.ts allows the gpu.js backends */
const PROB_TOL = 1e-4;
const PAGE_TIMEOUT_MS = 120_000;

interface Decoded {
  ids: number[];
  score: number;
  text: string;
}
const dates = JSON.parse(readFileSync(join(ROOT, 'examples/weights/dates.test.json'), 'utf8')) as {
  examples: { source: string; expected: string; beam: Decoded; greedy: Decoded & { attention: { shape: [number, number]; data: number[] } } }[];
};
const brackets = JSON.parse(readFileSync(join(ROOT, 'examples/weights/brackets.test.json'), 'utf8')) as {
  examples: { text: string; probs: [number, number] }[];
};

interface PageResult {
  report: WebReport;
  kernels: { dates: string[]; brackets: string[] };
  /** the heat-map canvas, read back in the page */
  canvas: { width: number; height: number; colours: number };
  /** the models' pictures (nnc graph), as loaded by the page */
  graphs: { src: string; width: number }[];
  /** the full-page screenshot, decoded in the page */
  shot: { width: number; height: number; colours: number; lumaStd: number; file: string };
  log: string[];
}
const results = new Map<string, PageResult | Error>();
/** the page opened with ?backend=bogus */
let bogus: { state: string; error?: string; status: string } | Error | undefined;
let buildLog = '';

// ───────────── in the page ─────────────

/** Page side, as source text (see harness.ts: a serialised function would need vitest's __name helper). */
const READ_PAGE = `(() => {
  const w = window.nncWeb;
  // gpu.js kernel classes that ran, by their static \`mode\` (class names do not survive minification),
  // with 'webgl2' for a gpu-mode kernel on a WebGL2 context
  const impl = (m) => {
    const ks = m && m.ex && m.ex.kernels instanceof Map ? [...m.ex.kernels.values()] : [];
    return [...new Set(ks.map((k) => {
      const kernel = k && k.kernel;
      const mode = kernel && kernel.constructor && kernel.constructor.mode;
      if (mode === 'gpu') return typeof WebGL2RenderingContext !== 'undefined' && kernel.context instanceof WebGL2RenderingContext ? 'webgl2' : 'webgl1';
      return String(mode);
    }))].sort();
  };
  const c = document.getElementById('heatmap');
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < px.length; i += 4) seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2] | (px[i + 3] === 0 ? 1 << 24 : 0));
  const { models, ...report } = w;
  return {
    report: JSON.parse(JSON.stringify(report)),
    kernels: { dates: impl(models.dates), brackets: impl(models.brackets) },
    canvas: { width: c.width, height: c.height, colours: seen.size },
    graphs: [...document.querySelectorAll('.graph img')].map((i) => ({ src: i.getAttribute('src'), width: i.naturalWidth })),
  };
})()`;

/** Decodes a PNG (base64) in the page and measures it: distinct colours and the spread of luminance. */
const MEASURE_PNG = `async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const g = c.getContext('2d');
  g.drawImage(bmp, 0, 0);
  const px = g.getImageData(0, 0, bmp.width, bmp.height).data;
  const seen = new Set();
  let s = 0, s2 = 0, n = 0;
  for (let i = 0; i < px.length; i += 4) {
    seen.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    const y = 0.2126 * px[i] + 0.7152 * px[i + 1] + 0.0722 * px[i + 2];
    s += y; s2 += y * y; n++;
  }
  const mean = s / n;
  return { width: bmp.width, height: bmp.height, colours: seen.size, lumaStd: Math.sqrt(Math.max(0, s2 / n - mean * mean)) };
}`;

async function openPage(context: BrowserContext, origin: string, spec: PageSpec): Promise<PageResult> {
  const { key, backend } = spec;
  const page = await context.newPage();
  const log: string[] = [];
  page.on('console', (m) => log.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.stack ?? e.message}`));
  try {
    await page.goto(`${origin}/?backend=${backend}${spec.worker ? '' : '&worker=0'}`);
    await page
      .waitForFunction(`document.body.dataset.state !== 'loading'`, undefined, { timeout: PAGE_TIMEOUT_MS, polling: 250 })
      .catch((e: Error) => {
        throw new Error(`${key}: the page did not finish within ${PAGE_TIMEOUT_MS / 1000} s (${e.message})\n${log.join('\n')}`);
      });
    await page.waitForFunction(`[...document.querySelectorAll('.graph img')].every((i) => i.complete)`, undefined, { timeout: PAGE_TIMEOUT_MS });
    const read = (await page.evaluate(READ_PAGE)) as Omit<PageResult, 'shot' | 'log'>;
    const file = join(OUT, `web-${key}.png`);
    const png = await page.screenshot({ path: file, fullPage: true });
    const m = (await page.evaluate(`(${MEASURE_PNG})(${JSON.stringify(png.toString('base64'))})`)) as Omit<PageResult['shot'], 'file'>;
    return { ...read, shot: { ...m, file }, log };
  } finally {
    await page.close().catch(() => {});
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`Chromium not found at ${CHROMIUM_PATH}: apt-get install chromium (as .ci/run does)`);
  mkdirSync(OUT, { recursive: true });
  buildLog = buildWebExample(DIST);
  const { origin, close } = await serveDirectory(DIST);
  const profile = await mkdtemp(join(tmpdir(), 'nnc-web-'));
  let context: BrowserContext | undefined;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1360, height: 900 },
      timeout: 60_000,
    });
    for (const spec of PAGES) results.set(spec.key, await openPage(context, origin, spec).catch((e: Error) => e));
    const page = await context.newPage();
    try {
      await page.goto(`${origin}/?backend=bogus`);
      await page.waitForFunction(`document.body.dataset.state !== 'loading'`, undefined, { timeout: PAGE_TIMEOUT_MS, polling: 100 });
      bogus = (await page.evaluate(`({ state: window.nncWeb.state, error: window.nncWeb.error, status: document.getElementById('status').textContent })`)) as typeof bogus;
    } catch (e) {
      bogus = e as Error;
    } finally {
      await page.close().catch(() => {});
    }
  } finally {
    await context?.close().catch(() => {});
    await close();
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
}, 600_000);

afterAll(() => {
  // for humans reading the log: what ran where, and how long the page's own work took
  for (const { key: b } of PAGES) {
    const r = results.get(b);
    if (!r || r instanceof Error) console.log(`web example, ${b}: ${r ? r.message.split('\n')[0] : 'no result'}`);
    else {
      const { dates: d, brackets: k } = r.report;
      console.log(
        `web example, ${b.padEnd(18)}: ran ${d?.backend} (${d?.device}); dates ${d?.ms} ms, brackets ${k?.ms} ms; ` +
          `screenshot ${r.shot.width}×${r.shot.height}, ${r.shot.colours} colours → ${r.shot.file}`,
      );
    }
  }
});

function result(key: string): PageResult {
  const r = results.get(key);
  if (!r) throw new Error(`no result for ${key}: the browser run did not get that far`);
  if (r instanceof Error) throw r;
  if (r.report.state !== 'ready') throw new Error(`${key}: the page reports ${r.report.state}: ${r.report.error}\n${r.log.join('\n')}`);
  return r;
}

describe('the web example builds', () => {
  it('vite build of examples/web succeeds, with gpu.js bundled from its browser build', () => {
    expect(existsSync(join(DIST, 'index.html'))).toBe(true);
    expect(buildLog).not.toMatch(/error/i);
  });
});

describe('the web example refuses an unknown backend', () => {
  it('?backend=bogus: the page says so instead of running another backend', () => {
    if (!bogus) throw new Error('the bogus page was not opened');
    if (bogus instanceof Error) throw bogus;
    expect(bogus.state).toBe('error');
    expect(bogus.error).toBe("unknown backend 'bogus' in the URL: pick one of auto, wasm, webgpu, gpu, webasm, cpu");
    expect(bogus.status).toContain("unknown backend 'bogus'");
  });
});

describe.each(PAGES)('the web example in Chromium: $key', ({ key, backend, worker }) => {
  it('runs on the backend requested (model.backend, model.device; on the page\'s thread, the gpu.js kernels)', () => {
    const r = result(key);
    const want = EXPECT[backend];
    expect(r.report.requested).toBe(backend);
    expect(r.report.worker).toBe(worker);
    for (const m of ['dates', 'brackets'] as const) {
      expect(r.report[m]?.backend, `${m}: model.backend`).toBe(want.backend);
      expect(r.report[m]?.device, `${m}: model.device`).toContain(want.device);
      // in the worker the kernels are out of this page's sight (and the proxy has no executor)
      expect(r.kernels[m], `${m}: the mode of the gpu.js kernels that ran`).toEqual(want.kernel && !worker ? [want.kernel] : []);
    }
  });

  it('translates the held-out dates as PyTorch does (beam and greedy ids and scores, greedy attention)', () => {
    const d = result(key).report.dates!;
    dates.examples.forEach((e, b) => {
      expect(d.beam[b]?.ids, `beam ids for "${e.source}"`).toEqual(e.beam.ids);
      expect(Math.abs(d.beam[b]!.score - e.beam.score), `beam score for "${e.source}"`).toBeLessThanOrEqual(SCORE_TOL);
      const g = d.greedy[b]!;
      expect(g.ids, `greedy ids for "${e.source}"`).toEqual(e.greedy.ids);
      expect(Math.abs(g.score - e.greedy.score), `greedy score for "${e.source}"`).toBeLessThanOrEqual(SCORE_TOL);
      expect(g.attention?.shape, `attention shape for "${e.source}"`).toEqual(e.greedy.attention.shape);
      const worst = Math.max(...e.greedy.attention.data.map((v, k) => Math.abs(v - (g.attention!.data[k] ?? NaN))));
      expect(worst, `max |attention - PyTorch's| for "${e.source}"`).toBeLessThanOrEqual(ATTN_TOL);
    });
    // the input box: the longest held-out date, decoded on its own
    const longest = dates.examples.reduce((a, e) => (e.source.length > a.source.length ? e : a));
    expect(d.current).toMatchObject({ source: longest.source, text: longest.beam.text, ids: longest.beam.ids });
  });

  it('classifies the held-out bracket strings with PyTorch\'s probabilities', () => {
    const k = result(key).report.brackets!;
    expect(k.probs).toHaveLength(brackets.examples.length);
    brackets.examples.forEach((e, b) => {
      const worst = Math.max(...e.probs.map((p, j) => Math.abs(p - (k.probs[b]?.[j] ?? NaN))));
      expect(worst, `max |p - PyTorch's| for "${e.text}"`).toBeLessThanOrEqual(PROB_TOL);
    });
    expect(k.current?.text).toBe('([()[]])[]');
    expect(k.current!.probs[1]).toBeGreaterThan(0.5);
  });

  it('draws the page and the heat map (screenshot in test/.out/, not blank)', () => {
    const r = result(key);
    expect(r.canvas.width * r.canvas.height, 'heat-map canvas size').toBeGreaterThan(100 * 100);
    expect(r.canvas.colours, 'distinct colours on the heat-map canvas').toBeGreaterThanOrEqual(20);
    expect(existsSync(r.shot.file)).toBe(true);
    expect(r.shot.width).toBeGreaterThanOrEqual(1000);
    expect(r.shot.colours, `distinct colours in ${r.shot.file}`).toBeGreaterThanOrEqual(200);
    expect(r.shot.lumaStd, `luminance spread in ${r.shot.file}`).toBeGreaterThan(10);
    // each model's architecture, as nnc graph draws it
    expect(r.graphs.map((g) => g.src)).toEqual(['./graphs/dates.svg', './graphs/brackets.svg']);
    for (const g of r.graphs) expect(g.width, `${g.src} shown`).toBeGreaterThan(100);
  });
});
