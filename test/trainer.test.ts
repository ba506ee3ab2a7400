/**
 * createTrainer (nnc/train, docs/training.md) on compiled models against torch.optim: every case of
 * test/fixtures/train-index.json (make_train_fixtures.py: 20 steps of Adam with clipping, SGD with
 * Nesterov momentum and weight decay, AdamW with label smoothing, value clipping, schedules, …) run
 * through the generated module on `cpu` (1e-5) and `wasm` (1e-4) gives PyTorch's losses, gradient
 * norms, learning rates and final weights. Also: dropout drops in training steps only (the step's
 * loss equals the float64 interpreter's with the same seeded masks; evaluate is forward's), optimiser
 * state resumes exactly, saveWeights round-trips, and a tiny task converges.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lower } from '../src/driver.ts';
import { evaluate } from '../src/ir/interp.ts';
import { gradModel } from '../src/passes/grad/index.ts';
import { computeLoss, createTrainer, dropoutMask, type LossOptions, type OptimizerOptions, type ScheduleOptions } from '../src/train/index.ts';
import { compileAndImport, FIXTURES, indexNames, toInputs, type Case } from './helpers.ts';
import { envOf, readTensors } from './interp-helpers.ts';

interface TrainCase extends Case {
  targets: { dtype: string; shape: number[]; data: number[]; lengths?: number[] };
  loss: LossOptions;
  optimizer: OptimizerOptions;
  clip: { maxNorm?: number; value?: number } | null;
  schedule: ScheduleOptions | null;
  steps: { loss: number; gradNorm: number; lr: number }[];
  weights: { name: string; shape: number[] }[];
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
const TOL = { cpu: 1e-5, wasm: 1e-4 } as const;

function load(name: string) {
  const dir = join(FIXTURES, name);
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as TrainCase;
  const tensors = (file: string) => new Map([...readTensors(readFileSync(join(dir, file)))].map(([k, v]) => [k, v.data]));
  return { c, spec: readFileSync(join(dir, 'model.nn'), 'utf8'), initial: tensors('weights.safetensors'), grads: tensors('grads.safetensors'), final: tensors('final.safetensors') };
}

function targetsOf(c: TrainCase) {
  return { data: c.targets.dtype === 'int32' ? Int32Array.from(c.targets.data) : Float32Array.from(c.targets.data), shape: c.targets.shape, lengths: c.targets.lengths };
}

describe.each(indexNames('train-index.json'))('%s', (name) => {
  it.each(['cpu', 'wasm'] as const)('20 steps equal torch.optim on %s (losses, gradient norms, learning rates, final weights)', async (backend) => {
    const { c, spec, initial, grads, final } = load(name);
    const mod = await compileAndImport(`trainer_${name}`, spec);
    const model = await mod.createModel({ backend, threads: 1 });
    try {
      model.loadWeights(Object.fromEntries(initial));
      const trainer = createTrainer(model, { loss: c.loss.kind, labelSmoothing: c.loss.labelSmoothing, optimizer: c.optimizer, clip: c.clip ?? undefined, schedule: c.schedule ?? undefined });
      const inputs = toInputs(c);
      const targets = targetsOf(c);
      for (const [k, s] of c.steps.entries()) {
        const r = await trainer.step({ inputs, targets });
        expect(rel(r.loss, s.loss), `step ${k} loss ${r.loss} vs ${s.loss}`).toBeLessThan(TOL[backend]);
        expect(rel(r.gradNorm, s.gradNorm), `step ${k} gradient norm`).toBeLessThan(TOL[backend]);
        expect(rel(r.lr, s.lr), `step ${k} lr`).toBeLessThan(1e-12);
      }
      expect(trainer.steps).toBe(c.steps.length);
      // saved weights (safetensors, PyTorch names) against torch's final weights; elements whose
      // gradient is 0 in exact arithmetic (torch's float noise, normalised by Adam into steps) are
      // left out, as in train.test.ts
      const saved = readTensors(model.saveWeights());
      expect([...saved.keys()]).toEqual(c.weights.map((w) => w.name));
      let err = 0;
      let where = '';
      for (const w of c.weights) {
        const per = c.steps.map((_, k) => grads.get(`step${k}.${w.name}`)!);
        const top = Math.max(...per.map((g) => g.reduce((a, v) => Math.max(a, Math.abs(v)), 0)));
        const t = final.get(w.name)!;
        const o = saved.get(w.name)!.data;
        let scale = 0;
        let e = 0;
        for (let i = 0; i < t.length; i++) {
          scale = Math.max(scale, Math.abs(t[i]));
          const noise = per.every((g) => Math.abs(g[i]) <= 1e-6 * top) && per.some((g) => g[i] !== 0);
          if (!noise) e = Math.max(e, Math.abs(o[i] - t[i]));
        }
        if (e / scale > err) [err, where] = [e / scale, w.name];
      }
      expect(err, where).toBeLessThan(TOL[backend]);
    } finally {
      model.dispose();
    }
  });
});

describe('createTrainer', () => {
  it('resumes exactly from trainer.state() saved at step 3', async () => {
    const { c, spec, initial } = load('train_adam_clip_nll');
    const mod = await compileAndImport('trainer_resume', spec);
    const run = async (resumeAt?: number) => {
      const model = await mod.createModel({ backend: 'cpu' });
      model.loadWeights(Object.fromEntries(initial));
      let trainer = createTrainer(model, { loss: 'nll', optimizer: c.optimizer, clip: c.clip ?? undefined });
      const losses: number[] = [];
      for (let k = 0; k < 6; k++) {
        if (k === resumeAt) {
          const state = trainer.state();
          trainer = createTrainer(model, { loss: 'nll', optimizer: c.optimizer, clip: c.clip ?? undefined });
          trainer.restore(state);
        }
        losses.push((await trainer.step({ inputs: toInputs(c), targets: targetsOf(c) })).loss);
      }
      const w = model.saveWeights();
      model.dispose();
      return { losses, w };
    };
    const a = await run();
    const b = await run(3);
    expect(b.losses).toEqual(a.losses);
    expect(Array.from(b.w)).toEqual(Array.from(a.w));
  });

  it("drops out in training steps only: a step's loss is the float64 interpreter's with the same seeded masks; evaluate's is forward's", async () => {
    const dir = join(FIXTURES, 'lm_dropout');
    const spec = readFileSync(join(dir, 'model.nn'), 'utf8');
    const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8')) as Case;
    const mod = await compileAndImport('trainer_dropout', spec);
    const model = await mod.createModel({ backend: 'cpu' });
    const weights = new Map([...readTensors(readFileSync(join(dir, 'weights.safetensors')))].map(([k, v]) => [k, v.data]));
    model.loadWeights(Object.fromEntries(weights));
    const x = c.inputs.text;
    const targets = { data: Int32Array.from(x.data, (v) => (v + 1) % 8), shape: x.shape, lengths: x.lengths };
    const seed = 7;
    const trainer = createTrainer(model, { loss: 'cross_entropy', optimizer: { kind: 'sgd', lr: 0 }, seed });
    const ev = await trainer.evaluate({ inputs: toInputs(c), targets });
    const y = (await model.forward(toInputs(c))).next;
    expect(ev.loss).toBe(computeLoss({ kind: 'cross_entropy' }, y, targets).loss);
    const r = await trainer.step({ inputs: toInputs(c), targets });
    // the interpreter with the masks the trainer drew for step 0
    const { models } = lower(spec, 'lm_dropout.nn');
    const m = models![0]!;
    const gr = gradModel(m);
    const masks = gr.forward.graph.ordered().filter((n) => n.op === 'dropout_mask');
    expect(masks.length).toBe(2);
    const env = envOf(m, c, weights);
    const dropout = Object.fromEntries(masks.map((n) => {
      const { p, layer } = n.attrs as { p: number; layer: number };
      const shape = n.shape.map((d) => (typeof d === 'number' ? d : (env.dims as unknown as Record<string, number>)[d]!));
      return [layer, { shape, data: Float64Array.from(dropoutMask(p, seed, 0, layer, shape.reduce((a, b) => a * b, 1))) }];
    }));
    const yTrain = evaluate(gr.forward.graph, { ...env, dropout }).outputs[m.output.name]!;
    const want = computeLoss({ kind: 'cross_entropy' }, yTrain, targets).loss;
    expect(rel(r.loss, want)).toBeLessThan(1e-5);
    expect(rel(r.loss, ev.loss)).toBeGreaterThan(1e-3);
    model.dispose();
  });

  it('learns a tiny task: a char LM predicting the next letter of a cycle (loss from ln 6 to below 0.05)', async () => {
    const spec = 'model Cycle {\n  input text: tokens(vocab = 6)\n  output y\n  embedding dim = 8\n  lstm hidden = 16\n  linear 6\n}\n';
    const mod = await compileAndImport('trainer_cycle', spec);
    const model = await mod.createModel({ backend: 'wasm', threads: 1 });
    const init = new Map<string, Float32Array>();
    let s = 1;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.6;
    for (const w of model.manifest.weights) init.set(w.name, Float32Array.from({ length: w.shape.reduce((a: number, b: number) => a * b, 1) }, rnd));
    model.loadWeights(Object.fromEntries(init));
    const B = 4;
    const T = 12;
    const ids = Int32Array.from({ length: B * T }, (_, i) => (Math.floor(i / T) + (i % T)) % 6);
    const targets = { data: Int32Array.from(ids, (v) => (v + 1) % 6), shape: [B, T] };
    const trainer = createTrainer(model, { loss: 'cross_entropy', optimizer: { kind: 'adam', lr: 0.03 }, clip: { maxNorm: 1 } });
    const first = (await trainer.evaluate({ inputs: { text: { data: ids, shape: [B, T] } }, targets })).loss;
    for (let k = 0; k < 150; k++) await trainer.step({ inputs: { text: { data: ids, shape: [B, T] } }, targets });
    const ev = await trainer.evaluate({ inputs: { text: { data: ids, shape: [B, T] } }, targets });
    expect(first).toBeGreaterThan(1.5);
    expect(ev.loss).toBeLessThan(0.05);
    expect(ev.accuracy).toBe(1);
    model.dispose();
  });
});
