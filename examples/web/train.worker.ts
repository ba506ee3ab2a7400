/**
 * The Train tab's worker: trains the brackets classifier (generated/brackets.ts, compiled from
 * examples/brackets.nn with its training program) from scratch on the `wasm` backend with
 * createTrainer (nnc/train), so the page never waits for a step. It draws each batch from the seeded
 * generator of brackets-task.ts, posts every step's loss and, every EVAL_EVERY steps, the loss and
 * accuracy on held-out strings (drawn by a generator of their own, apart from the batches). It stops
 * when asked or after the steps it was given, sends the weights (model.saveWeights(): safetensors,
 * PyTorch's names) when asked, and classifies a string with the weights as they are (between steps
 * while it trains).
 *
 * The model starts from nnc/train's initialWeights (PyTorch's default initialisation of each layer,
 * seeded), as `nnc train` does. The spec ends in `softmax`, so the model's output is probabilities
 * and the loss is `nll_prob`: −log p[label], PyTorch's NLLLoss on log p.
 */
// an app that installed nnc imports this from 'nnc/train'; inside this repository the example reads
// the source (tsc type-checks examples/web from the repository root, where the web example's own
// package.json stops nnc's self-reference)
import { createTrainer, initialWeights, Random } from '../../src/train/index.ts';
import { BracketsManifest, createModel } from '../../generated/brackets.ts';
import { encode, sample } from './brackets-task.ts';

/** What the page asks. */
export type TrainRequest =
  | { type: 'start'; seed: number; batch: number; lr: number; steps: number }
  | { type: 'stop' }
  | { type: 'weights' }
  | { type: 'classify'; text: string };

/** What the worker answers. */
export type TrainMessage =
  | { type: 'started'; backend: string; device: string; heldOut: number }
  | { type: 'step'; step: number; loss: number; gradNorm: number; ms: number }
  | { type: 'eval'; step: number; loss: number; accuracy: number }
  | { type: 'stopped'; step: number; reason: 'stopped' | 'done' }
  | { type: 'weights'; bytes: Uint8Array }
  | { type: 'classified'; text: string; balanced: number }
  | { type: 'error'; message: string };

const EVAL_EVERY = 25;
const HELD_OUT = 256;

const post = (m: TrainMessage, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

let model: Awaited<ReturnType<typeof createModel>> | undefined;
let running = false;
let stopAsked = false;

/** Lets the worker read the page's messages (a Stop) between steps: each step runs to its end in one go. */
const yieldToEvents = () => new Promise<void>((ok) => setTimeout(ok, 0));

const sampleMany = (r: Random, n: number) => Array.from({ length: n }, () => sample(r));
/** A pooled output's targets: one class id per row. */
const targetsOf = (labels: Int32Array) => ({ data: labels, shape: [labels.length] });

async function train(seed: number, batch: number, lr: number, steps: number): Promise<void> {
  model?.dispose();
  model = await createModel({ backend: 'wasm', threads: 1 });
  model.loadWeights(initialWeights(BracketsManifest.weights, seed));
  const trainer = createTrainer(model, { loss: 'nll_prob', optimizer: { kind: 'adam', lr }, clip: { maxNorm: 1 }, seed });
  const draw = new Random(seed);
  // the held-out strings come from a generator of their own: the same ones whatever the batch size
  const heldOut = encode(sampleMany(new Random(seed ^ 0x5eed), HELD_OUT));
  const heldTargets = targetsOf(heldOut.labels);
  post({ type: 'started', backend: model.backend, device: model.device, heldOut: HELD_OUT });
  for (let step = 1; step <= steps; step++) {
    await yieldToEvents();
    if (stopAsked) {
      post({ type: 'stopped', step: step - 1, reason: 'stopped' });
      return;
    }
    const { inputs, labels } = encode(sampleMany(draw, batch));
    const t = performance.now();
    const r = await trainer.step({ inputs, targets: targetsOf(labels) });
    post({ type: 'step', step, loss: r.loss, gradNorm: r.gradNorm, ms: performance.now() - t });
    if (step % EVAL_EVERY === 0 || step === steps) {
      const ev = await trainer.evaluate({ inputs: heldOut.inputs, targets: heldTargets });
      post({ type: 'eval', step, loss: ev.loss, accuracy: ev.accuracy });
    }
  }
  post({ type: 'stopped', step: steps, reason: 'done' });
}

self.addEventListener('message', (ev: MessageEvent<TrainRequest>) => {
  const m = ev.data;
  if (m.type === 'stop') stopAsked = true;
  else if (m.type === 'weights' || m.type === 'classify') {
    if (!model) return post({ type: 'error', message: 'no weights yet: start training first' });
    if (m.type === 'weights') {
      const bytes = model.saveWeights();
      post({ type: 'weights', bytes }, [bytes.buffer]);
    } else {
      const text = m.text;
      model.forward(encode([text]).inputs).then(
        (r) => post({ type: 'classified', text, balanced: r.label.data[1]! }),
        (e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }),
      );
    }
  } else if (m.type === 'start') {
    if (running) return post({ type: 'error', message: 'already training: stop first' });
    running = true;
    stopAsked = false;
    train(m.seed, m.batch, m.lr, m.steps)
      .catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }))
      .finally(() => (running = false));
  }
});
