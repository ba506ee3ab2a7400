/**
 * The web example's Train tab: trains the brackets classifier from scratch in a Web Worker
 * (train.worker.ts, backend `wasm`, createTrainer from nnc/train) and draws the loss curve as the
 * steps arrive. The page only draws: every step runs in the worker, so typing, scrolling and the
 * Stop button answer at once. Stop ends the run after the step in flight; Download weights saves
 * the model as it is then (model.saveWeights(): safetensors with PyTorch's names, which
 * generated/brackets.ts's loadWeights and the PyTorch module of the same spec load). "Try it"
 * classifies what is typed with the weights as they are.
 *
 * window.nncTrain reports what happened, for people and for test/browser/train.test.ts.
 */
import { balanced, TOKENS } from './brackets-task.ts';
import type { TrainMessage, TrainRequest } from './train.worker.ts';

export interface TrainReport {
  state: 'idle' | 'starting' | 'training' | 'stopped' | 'error';
  backend?: string;
  device?: string;
  /** the loss of every step, in order (the loss before that step's update) */
  losses: number[];
  /** held-out loss and accuracy, every few steps */
  evals: { step: number; loss: number; accuracy: number }[];
  /** milliseconds per step in the worker (median of the steps so far) */
  msPerStep?: number;
  stoppedBy?: 'stopped' | 'done';
  /** the last string classified in "Try it", with p(balanced) */
  classified?: { text: string; balanced: number };
  error?: string;
}
declare global {
  interface Window {
    nncTrain: TrainReport;
  }
}

const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html has no #${id}`);
  return e as T;
};

export function setupTrainTab(): void {
  const report: TrainReport = { state: 'idle', losses: [], evals: [] };
  window.nncTrain = report;
  const start = $<HTMLButtonElement>('train-start');
  const stop = $<HTMLButtonElement>('train-stop');
  const download = $<HTMLButtonElement>('train-download');
  const status = $('train-status');
  const canvas = $<HTMLCanvasElement>('train-plot');
  const tryInput = $<HTMLInputElement>('train-try');
  const tryOut = $('train-try-out');
  const field = (id: string) => $<HTMLInputElement>(id);
  let planned = 0;
  let times: number[] = [];
  let worker: Worker | undefined;
  let drawQueued = false;

  const send = (m: TrainRequest) => worker!.postMessage(m);
  const setState = (s: TrainReport['state']) => {
    report.state = s;
    document.body.dataset.train = s;
    start.disabled = s === 'starting' || s === 'training';
    stop.disabled = s !== 'training' && s !== 'starting';
    download.disabled = report.losses.length === 0 || s === 'starting';
  };
  const redraw = () => {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      drawLoss(canvas, report.losses, report.evals, planned);
      const last = report.evals[report.evals.length - 1];
      const n = report.losses.length;
      const recent = report.losses.slice(-10);
      status.textContent =
        `step ${n}${planned ? ` of ${planned}` : ''} · loss ${recent.length ? (recent.reduce((a, b) => a + b, 0) / recent.length).toFixed(4) : '—'} (mean of the last ${recent.length})` +
        (last ? ` · held-out accuracy ${(100 * last.accuracy).toFixed(1)} % at step ${last.step}` : '') +
        (report.msPerStep ? ` · ${report.msPerStep.toFixed(0)} ms a step on ${report.device}` : '') +
        (report.state === 'stopped' ? (report.stoppedBy === 'done' ? ' · done' : ' · stopped') : '');
    });
  };

  function onMessage(ev: MessageEvent<TrainMessage>): void {
    const m = ev.data;
    switch (m.type) {
      case 'started':
        report.backend = m.backend;
        report.device = m.device;
        setState('training');
        break;
      case 'step':
        report.losses.push(m.loss);
        times.push(m.ms);
        report.msPerStep = [...times].sort((a, b) => a - b)[times.length >> 1];
        download.disabled = false;
        break;
      case 'eval':
        report.evals.push({ step: m.step, loss: m.loss, accuracy: m.accuracy });
        break;
      case 'stopped':
        report.stoppedBy = m.reason;
        setState('stopped');
        classify();
        break;
      case 'weights': {
        const url = URL.createObjectURL(new Blob([m.bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
        const a = document.createElement('a');
        a.href = url;
        a.download = 'brackets.safetensors';
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        break;
      }
      case 'classified':
        if (m.text !== tryInput.value.replace(/\s+/g, '')) break; // an answer to an older text
        report.classified = { text: m.text, balanced: m.balanced };
        tryOut.textContent = `p(balanced) = ${m.balanced.toFixed(4)}: ${m.balanced >= 0.5 ? 'balanced' : 'unbalanced'} (truly ${balanced(m.text) ? 'balanced' : 'unbalanced'})`;
        tryOut.className = `meta ${(m.balanced >= 0.5) === balanced(m.text) ? 'yes' : 'no'}`;
        break;
      case 'error':
        report.error = m.message;
        status.className = 'error';
        setState('error');
        break;
    }
    redraw();
  }

  start.addEventListener('click', () => {
    const num = (id: string, lo: number, hi: number) => {
      const v = Number(field(id).value);
      if (!(v >= lo && v <= hi)) throw new Error(`${field(id).labels?.[0]?.textContent ?? id} must be between ${lo} and ${hi}`);
      return v;
    };
    let req: TrainRequest;
    try {
      req = { type: 'start', seed: Math.trunc(num('train-seed', 0, 2 ** 31)), batch: Math.trunc(num('train-batch', 1, 256)), lr: num('train-lr', 1e-6, 1), steps: Math.trunc(num('train-steps', 1, 100_000)) };
    } catch (e) {
      status.textContent = (e as Error).message;
      status.className = 'error';
      return;
    }
    worker ??= new Worker(new URL('./train.worker.ts', import.meta.url), { type: 'module' });
    worker.onmessage = onMessage;
    worker.onerror = (e) => onMessage(new MessageEvent('message', { data: { type: 'error', message: e.message || 'the training worker failed to load' } }));
    report.losses = [];
    report.evals = [];
    report.stoppedBy = undefined;
    report.error = undefined;
    times = [];
    planned = req.steps;
    status.className = '';
    setState('starting');
    send(req);
    redraw();
  });
  stop.addEventListener('click', () => send({ type: 'stop' }));
  // Try it: the model as trained so far classifies what is typed
  function classify(): void {
    const text = tryInput.value.replace(/\s+/g, '');
    const odd = [...text].find((ch) => !(ch in TOKENS));
    if (!worker || report.losses.length === 0 || text.length === 0 || odd !== undefined) {
      tryOut.textContent = !worker || report.losses.length === 0 ? 'train first' : text.length === 0 ? 'type some brackets' : `'${odd}' is not a bracket the model knows: use ( ) [ ]`;
      tryOut.className = 'meta';
      return;
    }
    send({ type: 'classify', text });
  }
  tryInput.addEventListener('input', classify);
  $('train-try-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    classify();
  });
  download.addEventListener('click', () => send({ type: 'weights' }));
  setState('idle');
  drawLoss(canvas, [], [], 0);
}

/** The loss of every step (light), its running mean over 10 steps (dark) and the held-out loss (dots). */
function drawLoss(canvas: HTMLCanvasElement, losses: readonly number[], evals: TrainReport['evals'], planned: number): void {
  const w = 640;
  const h = 260;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
  }
  const g = canvas.getContext('2d')!;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 52;
  const right = 12;
  const top = 12;
  const bottom = 30;
  // the step axis: the steps asked for, or (for long runs) a round number a little past the steps so far
  const nice = (x: number) => [1, 2, 5, 10].map((m) => m * 10 ** Math.floor(Math.log10(x))).find((v) => v >= x)!;
  const steps = Math.max(1, losses.length, Math.min(planned, nice(Math.max(50, 1.2 * losses.length))));
  const top_ = Math.max(1e-3, ...losses.filter(Number.isFinite), ...evals.map((e) => e.loss));
  const X = (i: number) => left + ((w - left - right) * i) / steps;
  const Y = (v: number) => top + (h - top - bottom) * (1 - Math.min(1, Math.max(0, v / top_)));
  // axes and ticks
  g.strokeStyle = '#c9ced8';
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(left, top);
  g.lineTo(left, h - bottom);
  g.lineTo(w - right, h - bottom);
  g.stroke();
  g.fillStyle = '#5b6475';
  g.font = '11px system-ui, sans-serif';
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const f of [0, 0.5, 1]) g.fillText((top_ * f).toFixed(3), left - 6, Y(top_ * f));
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (const f of [0, 0.25, 0.5, 0.75, 1]) g.fillText(String(Math.round(steps * f)), X(steps * f), h - bottom + 6);
  g.fillText('step', (left + w - right) / 2, h - 12);
  if (losses.length === 0) return;
  const line = (ys: readonly number[], colour: string, width: number) => {
    g.strokeStyle = colour;
    g.lineWidth = width;
    g.beginPath();
    ys.forEach((v, i) => (i ? g.lineTo(X(i + 1), Y(v)) : g.moveTo(X(i + 1), Y(v))));
    g.stroke();
  };
  line(losses, '#b9c6f0', 1);
  let sum = 0;
  line(
    losses.map((v, i) => {
      sum += v - (i >= 10 ? losses[i - 10]! : 0);
      return sum / Math.min(i + 1, 10);
    }),
    '#2f4bb8',
    2,
  );
  g.fillStyle = '#d9480f';
  for (const e of evals) {
    g.beginPath();
    g.arc(X(e.step), Y(e.loss), 3.5, 0, 2 * Math.PI);
    g.fill();
  }
}
