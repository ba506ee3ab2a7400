/**
 * The web example's Train tab (examples/web/train.ts, train.worker.ts) in headless Chromium, as a
 * user gets it: `vite build`, the built files served with COOP/COEP headers, `/#train` opened, the
 * settings typed in and Start clicked. While the brackets classifier trains in the Web Worker on
 * `wasm`, the test measures the page's own thread from outside the page's code: the gaps between
 * animation frames, and how long a real click (Playwright's mouse, through the browser's input
 * pipeline) waits before its handler runs. Then Stop, then Download weights: the file the browser
 * saves is loaded in Node with generated/brackets.ts's loadWeights and classifies the held-out strings
 * of examples/weights/brackets.test.json (written by the PyTorch script, its labels from a bracket
 * matcher) better than chance. The loss curve must fall: the mean of the last 10 steps' losses well
 * below the mean of the first 10.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildWebExample, CHROMIUM_ARGS, CHROMIUM_PATH, serveDirectory } from './harness.ts';
import { createModel } from '../../generated/brackets.ts';
import type { TrainReport } from '../../examples/web/train.ts';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const OUT = join(ROOT, 'test/.out');
const DIST = join(OUT, 'train-dist');
/** Steps asked for: more than the test lets it take, so Stop is what ends the run. */
const PLANNED = 5000;
/** Steps trained before Stop. */
const STEPS = 120;
const SLOW_MS = 200;
/** typed into "Try it" */
const TRY = '([]([]))[';

const heldOut = JSON.parse(readFileSync(join(ROOT, 'examples/weights/brackets.test.json'), 'utf8')) as {
  examples: { text: string; ids: number[]; label: number }[];
};

interface Responsiveness {
  /** the gaps between animation frames, in order */
  frameGapsMs: number[];
  /** per click: from the input event's timestamp to its handler */
  clickLatencyMs: number[];
  /** steps the worker finished meanwhile */
  stepsDuring: number;
}

let log: string[] = [];
let measured: Responsiveness | undefined;
let afterStart: { state: string; stopDisabled: boolean; downloadDisabled: boolean } | undefined;
let stopped: { report: TrainReport; later: number } | undefined;
let download: { name: string; bytes: Uint8Array } | undefined;
/** "Try it" after the download: the page's p(balanced) for TRY */
let tried: { text: string; balanced: number } | undefined;
let plot: { width: number; height: number; blue: number } | undefined;
let failure: Error | undefined;

const report = (page: Page) => page.evaluate(`JSON.parse(JSON.stringify(window.nncTrain))`) as Promise<TrainReport>;
const steps = (page: Page) => page.evaluate(`window.nncTrain.losses.length`) as Promise<number>;

async function waitForSteps(page: Page, n: number, timeoutMs: number): Promise<void> {
  await page
    .waitForFunction(`window.nncTrain.state === 'error' || window.nncTrain.losses.length >= ${n}`, undefined, { timeout: timeoutMs, polling: 200 })
    .catch((e: Error) => {
      throw new Error(`the Train tab did not reach ${n} steps within ${timeoutMs / 1000} s (${e.message})\n${log.join('\n')}`);
    });
  const r = await report(page);
  if (r.state === 'error') throw new Error(`the Train tab reports an error: ${r.error}\n${log.join('\n')}`);
}

/** Counts animation frames and times clicks on the status line while the worker trains. */
async function measure(page: Page): Promise<Responsiveness> {
  const before = await steps(page);
  await page.evaluate(`(() => {
    const m = { frameGapsMs: [], clickLatencyMs: [], last: -1, on: true };
    window.__measure = m;
    const frame = (t) => {
      if (!m.on) return;
      if (m.last >= 0) m.frameGapsMs.push(t - m.last);
      m.last = t;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    document.getElementById('train-status').addEventListener('click', (e) => m.clickLatencyMs.push(performance.now() - e.timeStamp));
  })()`);
  // page.mouse.click: real input events at the status line's centre, without Playwright's own waits for
  // the page (its actionability checks need animation frames, so a blocked page would time them out)
  const box = await page.locator('#train-status').boundingBox();
  if (!box) throw new Error('#train-status is not on screen');
  for (let i = 0; i < 8; i++) {
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await new Promise((ok) => setTimeout(ok, 250));
  }
  const m = (await page.evaluate(`(() => { const m = window.__measure; m.on = false; return { frameGapsMs: m.frameGapsMs, clickLatencyMs: m.clickLatencyMs }; })()`)) as Omit<Responsiveness, 'stepsDuring'>;
  return { ...m, stepsDuring: (await steps(page)) - before };
}

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  buildWebExample(DIST);
  const { origin, close } = await serveDirectory(DIST);
  const profile = await mkdtemp(join(tmpdir(), 'nnc-train-'));
  let context: BrowserContext | undefined;
  // each phase records its own failure, so a check reports what went wrong in its phase
  const phase = async (name: string, fn: () => Promise<void>) => {
    if (failure) return;
    try {
      await fn();
    } catch (e) {
      failure = new Error(`${name}: ${(e as Error).message}\n${log.join('\n')}`);
    }
  };
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 900 },
      acceptDownloads: true,
      timeout: 60_000,
    });
    const page = await context.newPage();
    page.on('console', (m) => log.push(`[console.${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log.push(`[pageerror] ${e.stack ?? e.message}`));
    await phase('start', async () => {
      await page.goto(`${origin}/#train`);
      await page.waitForFunction(`window.nncTrain && window.nncTrain.state === 'idle'`, undefined, { timeout: 60_000 });
      await page.fill('#train-steps', String(PLANNED));
      await page.fill('#train-batch', '32');
      await page.fill('#train-lr', '0.003');
      await page.fill('#train-seed', '1');
      await page.click('#train-start');
      await waitForSteps(page, 10, 120_000);
      afterStart = (await page.evaluate(`({ state: window.nncTrain.state, stopDisabled: document.getElementById('train-stop').disabled, downloadDisabled: document.getElementById('train-download').disabled })`)) as typeof afterStart;
    });
    await phase('measuring the page while it trains', async () => {
      measured = await measure(page);
    });
    await phase('training and Stop', async () => {
      await waitForSteps(page, STEPS, 300_000);
      await page.click('#train-stop');
      await page.waitForFunction(`window.nncTrain.state !== 'training'`, undefined, { timeout: 60_000 });
      const r = await report(page);
      await page.waitForTimeout(1500);
      stopped = { report: r, later: await steps(page) };
    });
    await phase('Download weights', async () => {
      const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click('#train-download')]);
      download = { name: dl.suggestedFilename(), bytes: new Uint8Array(await readFile((await dl.path())!)) };
    });
    await phase('Try it', async () => {
      await page.fill('#train-try', TRY);
      await page.waitForFunction(`window.nncTrain.classified && window.nncTrain.classified.text === ${JSON.stringify(TRY)}`, undefined, { timeout: 60_000 });
      tried = (await report(page)).classified;
    });
    await phase('the plot', async () => {
      // pixels of the running mean's colour (#2f4bb8) on the canvas
      plot = (await page.evaluate(`(() => {
        const c = document.getElementById('train-plot');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let blue = 0;
        for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i] - 0x2f) < 24 && Math.abs(px[i + 1] - 0x4b) < 24 && Math.abs(px[i + 2] - 0xb8) < 24) blue++;
        return { width: c.width, height: c.height, blue };
      })()`)) as typeof plot;
      await page.screenshot({ path: join(OUT, 'web-train.png'), fullPage: true });
    });
  } finally {
    await context?.close().catch(() => {});
    await close();
    await rm(profile, { recursive: true, force: true }).catch(() => {});
  }
}, 600_000);

afterAll(() => {
  if (stopped && measured) {
    const r = stopped.report;
    console.log(
      `train tab: ${r.losses.length} steps on ${r.device}, median ${r.msPerStep?.toFixed(0)} ms a step; ` +
        `while training: ${measured.frameGapsMs.length} frame gaps, median ${quantile(measured.frameGapsMs, 0.5).toFixed(0)} ms, ` +
        `90th percentile ${quantile(measured.frameGapsMs, 0.9).toFixed(0)} ms, longest ${quantile(measured.frameGapsMs, 1).toFixed(0)} ms; ` +
        `clicks answered in ${measured.clickLatencyMs.map((x) => x.toFixed(0)).join(', ')} ms; screenshot test/.out/web-train.png`,
    );
  }
});

/** What a phase recorded; when it has nothing, the failure that stopped the run before or in it. */
function need<T>(v: T | undefined, what: string): T {
  if (v !== undefined) return v;
  throw failure ?? new Error(`${what}: the browser run did not get that far\n${log.join('\n')}`);
}
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** the q-quantile (nearest rank) */
function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

describe('the Train tab in Chromium', () => {
  it('trains in the Web Worker on wasm (Stop and Download enabled while it runs)', () => {
    const a = need(afterStart, 'after Start');
    expect(a.state).toBe('training');
    expect(a.stopDisabled).toBe(false);
    expect(a.downloadDisabled, 'Download weights once a step is done').toBe(false);
    const r = need(stopped, 'after Stop').report;
    expect(r.backend).toBe('wasm');
    expect(r.device).toContain('nnc wasm');
  });

  it('the loss goes down: the mean of the last 10 steps is below 70 % of the first 10', () => {
    const { losses } = need(stopped, 'after Stop').report;
    expect(losses.length).toBeGreaterThanOrEqual(STEPS);
    expect(losses.every(Number.isFinite)).toBe(true);
    const first = mean(losses.slice(0, 10));
    const last = mean(losses.slice(-10));
    expect(last, `first 10: ${first.toFixed(4)}, last 10: ${last.toFixed(4)}`).toBeLessThan(0.7 * first);
  });

  // A page whose thread runs the steps draws no frame and answers no click for a whole step (60 ms
  // and more here). The frames are judged by their median and 90th-percentile gap, not the single
  // longest one: on a machine shared by many processes the browser alone misses frames now and then
  // (runs at load 10–14 on 2 cores saw single gaps up to 417 ms and a 95th percentile of 167 ms).
  it('the page keeps answering while it trains (clicks within 200 ms; frame gaps: median under 50 ms, 90 % under 200 ms)', () => {
    const m = need(measured, 'responsiveness');
    expect(m.stepsDuring, 'steps trained while the page was measured').toBeGreaterThanOrEqual(3);
    expect(m.clickLatencyMs, 'clicks seen by the handler').toHaveLength(8);
    for (const ms of m.clickLatencyMs) expect(ms, 'input event to handler').toBeLessThan(SLOW_MS);
    expect(m.frameGapsMs.length, 'animation frames while training').toBeGreaterThanOrEqual(30);
    expect(quantile(m.frameGapsMs, 0.5), 'median gap between animation frames').toBeLessThan(50);
    expect(quantile(m.frameGapsMs, 0.9), '90th-percentile gap between animation frames').toBeLessThan(SLOW_MS);
  });

  it('draws the loss curve on the canvas', () => {
    const p = need(plot, 'the plot');
    expect(p.width * p.height).toBeGreaterThan(300 * 150);
    expect(p.blue, 'pixels of the running-mean line').toBeGreaterThan(200);
  });

  it('Stop stops: no step after it, well before the steps asked for', () => {
    const s = need(stopped, 'after Stop');
    expect(s.report.state).toBe('stopped');
    expect(s.report.stoppedBy).toBe('stopped');
    expect(s.report.losses.length).toBeLessThan(PLANNED);
    expect(s.later, 'steps 1.5 s after Stop').toBe(s.report.losses.length);
  });

  it('the downloaded weights load into generated/brackets.ts, classify held-out strings better than chance, and are the ones "Try it" runs', async () => {
    const d = need(download, 'the download');
    expect(d.name).toBe('brackets.safetensors');
    const model = await createModel({ backend: 'cpu' });
    try {
      model.loadWeights(d.bytes); // checks every name, shape and dtype against the manifest
      const rows = heldOut.examples;
      const T = Math.max(...rows.map((e) => e.ids.length));
      const data = new Int32Array(rows.length * T);
      rows.forEach((e, b) => data.set(e.ids, b * T));
      const { label } = await model.forward({ text: { data, shape: [rows.length, T], lengths: rows.map((e) => e.ids.length) } });
      const right = rows.filter((e, b) => Number(label.data[2 * b + 1]! >= 0.5) === e.label).length;
      console.log(`train tab: the downloaded weights classify ${right} of PyTorch's ${rows.length} held-out strings right`);
      // 40 strings, half balanced: 30 right by chance has probability < 0.1 %
      expect(right, `${right} of ${rows.length} right`).toBeGreaterThanOrEqual(0.75 * rows.length);
      // the page's "Try it" ran the same weights (wasm there, cpu here)
      const t = need(tried, '"Try it"');
      const one = await model.forward({ text: [[...TRY].map((ch) => ({ '(': 1, ')': 2, '[': 3, ']': 4 })[ch]!)] });
      expect(Math.abs(one.label.data[1]! - t.balanced), `p(balanced) of ${TRY}: page ${t.balanced}, Node ${one.label.data[1]}`).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });
});
