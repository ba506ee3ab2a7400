/**
 * Page side of test/browser/worker.test.ts: generated/tiny_lm.ts run in a Web Worker
 * (createModel({ worker })), bundled by esbuild as an app would bundle it (the worker script is
 * worker.worker.ts). While a 120-token stream runs it draws on a canvas every animation frame and
 * records when each frame and each token arrived; the same stream on the page's own thread is timed
 * the same way for comparison (generate() gives the page turns between steps there), counting the
 * Blob URLs the wasm backend's worker threads are started from and how many of them are revoked.
 */
import { createModel } from '../../generated/tiny_lm.ts';

const b64ToBytes = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export interface StreamRun {
  backend: string;
  device: string;
  ms: number;
  /** animation frames drawn while the stream ran, and the longest gap between two of them (ms) */
  frames: number;
  maxFrameGap: number;
  /** ms from the stream's start to each event */
  eventTimes: number[];
  ids: number[];
}
export interface WorkerPageResult {
  inWorker: StreamRun;
  onPage: StreamRun;
  /** greedy continuations of the prompts, decoded in the worker, per backend */
  greedy: Record<string, { backend: string; ids: number[][]; scores: number[] } | { error: string }>;
  /** what `worker: true` says in a bundled page */
  workerTrue: string;
  /** after dispose() */
  afterDispose: string;
  /** Blob URLs created and revoked while the page's own model (wasm's worker threads) ran */
  blobUrls: { created: number; revoked: number };
}

/** Runs `stream` while counting animation frames (and drawing one rectangle per frame). */
async function timed(model: Awaited<ReturnType<typeof createModel>>, prompt: number[], rows: number, maxLen: number): Promise<StreamRun> {
  const canvas = document.createElement('canvas');
  canvas.width = 200;
  canvas.height = 20;
  document.body.append(canvas);
  const g = canvas.getContext('2d')!;
  let running = true;
  const frameTimes: number[] = [];
  const draw = (t: number) => {
    frameTimes.push(t);
    g.fillStyle = `hsl(${frameTimes.length * 7}, 70%, 50%)`;
    g.fillRect(frameTimes.length % 200, 0, 1, 20);
    if (running) requestAnimationFrame(draw);
  };
  // start drawing before the stream starts, so the first frame is not waiting on it
  await new Promise<void>((r) => requestAnimationFrame((t) => { draw(t); r(); }));
  const t0 = performance.now();
  const eventTimes: number[] = [];
  const data = Int32Array.from({ length: rows * prompt.length }, (_, i) => prompt[i % prompt.length]!);
  const it = model.stream({ text: { data, shape: [rows, prompt.length] } }, { strategy: 'sample', seed: 7, maxLen });
  let r = await it.next();
  while (!r.done) {
    eventTimes.push(performance.now() - t0);
    r = await it.next();
  }
  const t1 = performance.now();
  running = false;
  const during = frameTimes.filter((t) => t >= t0 && t <= t1);
  const edges = [t0, ...during, t1];
  let maxFrameGap = 0;
  for (let i = 1; i < edges.length; i++) maxFrameGap = Math.max(maxFrameGap, edges[i]! - edges[i - 1]!);
  canvas.remove();
  return { backend: model.backend, device: model.device, ms: t1 - t0, frames: during.length, maxFrameGap, eventTimes, ids: r.value.ids[0] ?? [] };
}

export async function run(args: { workerUrl: string; weights: string; streamPrompt: number[]; streamRows: number; streamLen: number; prompts: number[][]; greedyLen: number; backends: string[]; streamBackend: string }): Promise<WorkerPageResult> {
  const weights = b64ToBytes(args.weights);
  const worker = new Worker(args.workerUrl, { type: 'module' });
  try {
    const inW = await createModel({ backend: args.streamBackend as 'auto', worker });
    await inW.loadWeights(weights);
    const inWorker = await timed(inW, args.streamPrompt, args.streamRows, args.streamLen);
    inW.dispose();
    let afterDispose = 'no error';
    try {
      await inW.forward({ text: [[1]] });
    } catch (e) {
      afterDispose = String((e as Error).message);
    }

    const blobUrls = { created: 0, revoked: 0 };
    const { createObjectURL, revokeObjectURL } = URL;
    URL.createObjectURL = (o) => (blobUrls.created++, createObjectURL(o));
    URL.revokeObjectURL = (u) => (blobUrls.revoked++, revokeObjectURL(u));
    let onPage: StreamRun;
    try {
      const here = await createModel({ backend: args.streamBackend as 'auto' });
      here.loadWeights(weights);
      onPage = await timed(here, args.streamPrompt, args.streamRows, args.streamLen);
      here.dispose();
    } finally {
      URL.createObjectURL = createObjectURL;
      URL.revokeObjectURL = revokeObjectURL;
    }

    const greedy: WorkerPageResult['greedy'] = {};
    const rows = args.prompts;
    const T = Math.max(...rows.map((p) => p.length));
    const data = new Int32Array(rows.length * T);
    rows.forEach((p, b) => data.set(p, b * T));
    for (const backend of args.backends) {
      try {
        const m = await createModel({ backend: backend as 'auto', worker });
        m.loadWeights(weights); // not awaited: the worker handles calls in order
        const g = await m.generate({ text: { data, shape: [rows.length, T], lengths: rows.map((p) => p.length) } }, { strategy: 'greedy', maxLen: args.greedyLen });
        greedy[backend] = { backend: m.backend, ids: g.ids, scores: g.scores };
        m.dispose();
      } catch (e) {
        greedy[backend] = { error: String((e as Error).stack ?? e) };
      }
    }

    let workerTrue = 'no error';
    try {
      (await createModel({ worker: true })).dispose();
    } catch (e) {
      workerTrue = String((e as Error).message);
    }
    return { inWorker, onPage, greedy, workerTrue, afterDispose, blobUrls };
  } finally {
    worker.terminate();
  }
}
