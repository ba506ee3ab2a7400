/**
 * A page that never blocks (issue 19, item 6), in headless Chromium.
 *
 *  - generated/tiny_lm.ts (examples/tiny_lm.nn, trained in PyTorch) bundled by esbuild into a page,
 *    with the app's own worker script (worker.worker.ts: serve(module)) bundled beside it, as a
 *    bundled app does. During a 120-token stream (32 sampled rows, `auto`) in the worker the page
 *    draws on a canvas every animation frame: frames keep coming, and the tokens arrive one by one;
 *    the same stream on the page's own thread is timed too: frames are drawn there as well, in the
 *    turns generate() gives the event loop between steps (issue 18, item 2; slower frames than in
 *    the worker), and the worker threads of the page's wasm model are started from Blob URLs that
 *    are all revoked (issue 12). Both give the same tokens.
 *  - Greedy continuations of the six prompts whose PyTorch decodes are in
 *    examples/weights/tiny_lm.json, decoded in the worker on every backend (gpu.js included: the
 *    worker script gives it gpu.js), match PyTorch's ids and scores.
 *  - `auto` picks wasm here, in the page and in the worker: Chromium's only WebGPU adapter is
 *    SwiftShader (a software fallback adapter, several times slower than wasm).
 *  - `worker: true` in a bundled page is refused with the way out (the module cannot be loaded again
 *    on its own in a worker); under Vite's dev server, which serves each module by itself, it runs.
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { bundleForBrowser, CHROMIUM_ARGS, CHROMIUM_PATH, ensureVite, runInPage, serveScript, withBrowser, WEB_EXAMPLE } from './harness.ts';
import type { WorkerPageResult } from './worker.page.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const ref = JSON.parse(readFileSync(join(ROOT, 'examples/weights/tiny_lm.json'), 'utf8')) as {
  decode: { maxLen: number };
  prompts: { prompt: string; prompt_ids: number[]; greedy: { ids: number[]; score: number } }[];
};
const weights = readFileSync(join(ROOT, 'examples/weights/tiny_lm.safetensors'));
const BACKENDS = ['auto', 'wasm', 'cpu', 'webasm', 'gpu', 'webgpu'];
const SCORE_TOL = 1e-3;
/** 'The ' — a prompt of 4 leaves room for 120 tokens within the model's 128 learned positions */
const STREAM_PROMPT = [53, 73, 70, 1];
const STREAM_ROWS = 32;
const STREAM_LEN = 120;

let page: WorkerPageResult;
let viteDev: { backend?: string; ids?: number[][]; scores?: number[]; error?: string };

beforeAll(async () => {
  const [workerJs, pageJs] = await Promise.all([bundleForBrowser(new URL('./worker.worker.ts', import.meta.url).pathname), bundleForBrowser(new URL('./worker.page.ts', import.meta.url).pathname)]);
  page = await withBrowser((p) =>
    runInPage<WorkerPageResult>(p, pageJs, 'run', {
      workerUrl: serveScript(p, workerJs),
      weights: weights.toString('base64'),
      streamPrompt: STREAM_PROMPT,
      streamRows: STREAM_ROWS,
      streamLen: STREAM_LEN,
      streamBackend: 'auto',
      prompts: ref.prompts.map((x) => x.prompt_ids),
      greedyLen: ref.decode.maxLen,
      backends: BACKENDS,
    }),
  );
  viteDev = await underViteDev();
}, 600_000);

/** A page served by Vite's dev server (each module a URL of its own) that creates its model with `worker: true`. */
async function underViteDev(): Promise<typeof viteDev> {
  ensureVite();
  const root = join(ROOT, 'test/.out/worker-vite-dev');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><html><body><script type="module" src="./main.ts"></script></body></html>\n');
  writeFileSync(
    join(root, 'main.ts'),
    `import { createModel } from '../../../generated/tiny_lm.ts';
     const out = (window as unknown as { out?: unknown });
     try {
       const m = await createModel({ backend: 'auto', worker: true });
       const bytes = new Uint8Array(await (await fetch('/weights')).arrayBuffer());
       await m.loadWeights(bytes);
       const rows = ${JSON.stringify(ref.prompts.map((x) => x.prompt_ids))};
       const T = Math.max(...rows.map((r) => r.length));
       const data = new Int32Array(rows.length * T);
       rows.forEach((r, b) => data.set(r, b * T));
       const g = await m.generate({ text: { data, shape: [rows.length, T], lengths: rows.map((r) => r.length) } }, { strategy: 'greedy', maxLen: ${ref.decode.maxLen} });
       out.out = { backend: m.backend, ids: g.ids, scores: g.scores };
       m.dispose();
     } catch (e) {
       out.out = { error: String((e as Error).stack ?? e) };
     }
    `,
  );
  const vite = (await import(pathToFileURL(join(WEB_EXAMPLE, 'node_modules/vite/dist/node/index.js')).href)) as {
    createServer(c: Record<string, unknown>): Promise<{ listen(): Promise<unknown>; close(): Promise<void>; resolvedUrls: { local: string[] } | null }>;
  };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> };
  const entry = pkg.exports['./runtime']!;
  const runtime = join(ROOT, typeof entry === 'string' ? entry : entry['nnc-source']!);
  const server = await vite.createServer({
    configFile: false,
    root,
    logLevel: 'silent',
    resolve: { alias: [{ find: /^nnc\/runtime$/, replacement: runtime }] },
    server: { port: 0, host: '127.0.0.1', fs: { allow: [ROOT] } },
    plugins: [{ name: 'weights', configureServer: (s: { middlewares: { use(p: string, f: (q: unknown, r: { end(b: Buffer): void }) => void): void } }) => {
      s.middlewares.use('/weights', (_q, r) => r.end(weights));
    } }],
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
  try {
    await server.listen();
    const p = await browser.newPage();
    await p.goto(server.resolvedUrls!.local[0]!);
    await p.waitForFunction('window.out', undefined, { timeout: 120_000, polling: 100 });
    return (await p.evaluate('window.out')) as typeof viteDev;
  } finally {
    await browser.close().catch(() => {});
    await server.close();
  }
}

describe('a model in a Web Worker (createModel({ worker }), the app\'s own worker script)', () => {
  it(`the page keeps drawing during a ${STREAM_LEN}-token stream, and the tokens arrive as they are made`, () => {
    const w = page.inWorker;
    const expected = w.ms / (1000 / 60);
    console.log(
      `stream of ${STREAM_LEN} tokens × ${STREAM_ROWS} rows on ${w.backend}: in the worker ${w.ms.toFixed(0)} ms, ${w.frames} frames drawn ` +
        `(longest gap ${w.maxFrameGap.toFixed(0)} ms), first token at ${w.eventTimes[0]!.toFixed(0)} ms; on the page's thread ` +
        `${page.onPage.ms.toFixed(0)} ms, ${page.onPage.frames} frames (longest gap ${page.onPage.maxFrameGap.toFixed(0)} ms)`,
    );
    expect(w.eventTimes).toHaveLength(STREAM_LEN);
    expect(w.frames).toBeGreaterThanOrEqual(Math.max(5, expected / 4));
    expect(w.maxFrameGap).toBeLessThan(Math.max(250, w.ms / 3));
    expect(w.eventTimes[0]!).toBeLessThan(w.ms / 4);
    expect(w.eventTimes[STREAM_LEN / 2 - 1]!).toBeLessThan(w.ms * 0.75);
    // the same decoding as on the page's thread
    expect(w.ids).toEqual(page.onPage.ids);
    expect(w.ids).toHaveLength(STREAM_LEN);
  });

  it("on the page's own thread, the page still draws between decoding steps (it froze: generate() never yielded)", () => {
    const p = page.onPage;
    expect(p.eventTimes).toHaveLength(STREAM_LEN);
    // a turn at least every 4 ms of decoding: frames come, if more slowly than with the worker
    expect(p.frames).toBeGreaterThanOrEqual(Math.max(3, p.ms / (1000 / 60) / 10));
    expect(p.maxFrameGap).toBeLessThan(Math.max(500, p.ms / 3));
  });

  it("the page's wasm worker threads start from Blob URLs, and every one is revoked", () => {
    expect(page.onPage.device).toMatch(/\d+ threads/);
    expect(page.blobUrls.created).toBeGreaterThanOrEqual(1);
    expect(page.blobUrls.revoked).toBe(page.blobUrls.created);
  });

  it('auto picks wasm, in the worker and on the page: the only WebGPU adapter here is software (SwiftShader)', () => {
    expect(page.inWorker.backend).toBe('wasm');
    expect(page.onPage.backend).toBe('wasm');
    expect((page.greedy['auto'] as { backend: string }).backend).toBe('wasm');
  });

  it.each(BACKENDS)('greedy continuations decoded in the worker on %s match PyTorch', (backend) => {
    const g = page.greedy[backend]!;
    if ('error' in g) throw new Error(g.error);
    expect(g.backend).toBe(backend === 'auto' ? 'wasm' : backend);
    ref.prompts.forEach((p, b) => {
      expect(g.ids[b], JSON.stringify(p.prompt)).toEqual(p.greedy.ids);
      expect(Math.abs(g.scores[b]! - p.greedy.score)).toBeLessThanOrEqual(SCORE_TOL);
    });
  });

  it('dispose() ends the model: a later call says so', () => {
    expect(page.afterDispose).toBe('this TinyLM model was disposed');
  });
});

describe('createModel({ worker: true }) in a browser', () => {
  it('in a bundle: refused, saying how to pass a worker whose script calls serve()', () => {
    expect(page.workerTrue).toMatch(/^createModel\(\{ worker: true \}\) cannot start a worker here: TinyLM's module and nnc's runtime are bundled into one file \(http:\/\/127\.0\.0\.1:\d+\/bundle-[0-9a-f]+\.js\), which a worker cannot load on its own; pass a Worker whose script calls serve\(\)/);
  });

  it('under Vite\'s dev server (modules served one by one): runs in a Web Worker and matches PyTorch', () => {
    if (viteDev.error) throw new Error(viteDev.error);
    expect(viteDev.backend).toBe('wasm');
    ref.prompts.forEach((p, b) => {
      expect(viteDev.ids![b]).toEqual(p.greedy.ids);
      expect(Math.abs(viteDev.scores![b]! - p.greedy.score)).toBeLessThanOrEqual(SCORE_TOL);
    });
  });
});
