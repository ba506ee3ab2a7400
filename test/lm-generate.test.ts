/**
 * generate() and stream() on language models (one token input), against PyTorch decoding loops
 * (test/fixtures/make_lm_fixtures.py; semantics: docs/seq2seq.md "Decoding" — the prompt [B, P] with
 * per-row lengths is consumed first, the first generated token comes from the output at the prompt's
 * last valid position, bos is not fed, ids are the continuation only). Driven only through the
 * documented surface: `createModel({ backend })`, `loadWeights(bytes)`, `forward({ text })` over the
 * prompt (cpu within 2e-5 of PyTorch, webasm and gpu within 2e-4), `generate({ text }, opts)` (ids
 * exactly equal on every backend, scores within 1e-4; the references' decisions all win by ≥ 1e-3)
 * and `stream({ text }, opts)` (one event per step, returning what generate() returns). Seeded
 * sampling is checked without reproducing nnc's PRNG: topK = 1 is greedy (the `sample` reference),
 * the same seed gives the same ids on every backend and on every call, and some other seed differs.
 * The `gpu` backend runs only where headless-gl is available.
 */
import { describe, expect, it } from 'vitest';
import { type Case, decodingRuns, DECODE_TOL, fixtureModels, indexNames, maxAbsDiff, plainResult, SCORE_TOL, toInputs } from './helpers.ts';

interface GenerateOpts {
  strategy: 'greedy' | 'beam' | 'sample';
  beam?: number;
  maxLen: number;
  bos: number;
  eos: number;
  lengthNormalize?: boolean;
  topK?: number;
  seed?: number;
}
interface GenerateRef {
  opts: GenerateOpts;
  ids: number[][];
  scores: number[];
}
interface LmCase extends Case {
  generate: GenerateRef[];
  /** topK = 1 sampling: greedy's ids and scores, whatever the PRNG draws. */
  sample?: GenerateRef[];
}
interface Plain {
  ids: number[][];
  scores: number[];
}
interface Event {
  step: number;
  tokens: number[];
  ids: number[][];
  done: boolean[];
}

const TOL = DECODE_TOL;
const runs = await decodingRuns();
const gl = runs.some(([b]) => b === 'gpu');
const sampleBackends = ['cpu', 'webasm', ...(gl ? ['gpu'] : [])];

const plain = plainResult;

describe.each(indexNames('lm-index.json'))('%s', (name) => {
  const { case: raw, withModel } = fixtureModels(name);
  const c = raw as LmCase;
  const inputs = toInputs(c);
  const text = inputs.text;
  const { maxLen, bos, eos } = c.generate[0].opts;

  it.each(runs)('forward({ text }) over the prompt matches PyTorch on %s at -O%d', async (backend, level) => {
    await withModel(backend, level, async (model) => {
      const out = await model.forward(inputs);
      for (const [key, want] of Object.entries(c.outputs)) {
        expect(out[key].shape).toEqual(want.shape);
        const err = maxAbsDiff(out[key].data, want.data);
        expect(err, `max |nnc - torch| for ${key}`).toBeLessThanOrEqual(TOL[backend]);
      }
    });
  });

  const refs = [...c.generate, ...(c.sample ?? [])];
  it.each(runs)('generate({ text }) matches the PyTorch decoding loop on %s at -O%d', async (backend, level) => {
    await withModel(backend, level, async (model) => {
      for (const ref of refs) {
        const what = JSON.stringify(ref.opts);
        const got = plain(await model.generate({ text }, ref.opts));
        expect(got.ids, `ids for ${what}`).toEqual(ref.ids);
        expect(got.scores.length, `scores for ${what}`).toBe(ref.scores.length);
        expect(maxAbsDiff(got.scores, ref.scores), `max |score - torch| for ${what}`).toBeLessThanOrEqual(SCORE_TOL);
      }
    });
  });

  it('stream() yields one event per generated step and returns what generate() returns (cpu)', async () => {
    await withModel('cpu', 2, async (model) => {
      for (const ref of c.generate) {
        const what = JSON.stringify(ref.opts);
        const events: Event[] = [];
        const it = model.stream({ text }, ref.opts) as AsyncGenerator<Event, Plain>;
        let result: Plain;
        for (;;) {
          const r = await it.next();
          if (r.done) {
            result = plain(r.value);
            break;
          }
          events.push(r.value);
          expect(events.length, `too many events for ${what}`).toBeLessThanOrEqual(maxLen);
        }
        const gen = plain(await model.generate({ text }, ref.opts));
        expect(result, `stream's result vs generate() for ${what}`).toEqual(gen);
        expect(result.ids, `stream's ids for ${what}`).toEqual(ref.ids);
        events.forEach((ev, i) => {
          expect(ev.step, `event ${i} for ${what}`).toBe(i);
          expect(ev.tokens.length).toBe(ref.ids.length);
          expect(ev.done.length).toBe(ref.ids.length);
        });
        const longest = Math.max(...ref.ids.map((r) => r.length));
        const last = events[events.length - 1];
        expect(last.done.every(Boolean), `every row done at the last event for ${what}`).toBe(true);
        expect(last.ids, `the last event's ids for ${what}`).toEqual(ref.ids);
        if (ref.opts.strategy === 'greedy') {
          // one event per generated position: row b's token at step t is ids[b][t], -1 once it has finished
          expect(events.length, `events for ${what}`).toBe(longest);
          for (const ev of events) {
            expect(ev.tokens, `tokens at step ${ev.step} for ${what}`).toEqual(ref.ids.map((r) => (ev.step < r.length ? r[ev.step] : -1)));
            expect(ev.ids, `ids at step ${ev.step} for ${what}`).toEqual(ref.ids.map((r) => r.slice(0, ev.step + 1)));
            expect(ev.done).toEqual(ref.ids.map((r) => ev.step >= r.length - 1));
          }
        } else {
          // beam: a step per search round; the search may run past the returned hypothesis' length
          expect(events.length, `events for ${what}`).toBeGreaterThanOrEqual(longest);
        }
      }
    });
  });

  it('seeded sampling: the same seed gives the same ids on every backend and call; another seed differs', async () => {
    const opts = { strategy: 'sample' as const, seed: 11, maxLen, bos, eos };
    let first: Plain | undefined;
    for (const backend of sampleBackends) {
      await withModel(backend, 2, async (model) => {
        const a = plain(await model.generate({ text }, opts));
        const b = plain(await model.generate({ text }, opts));
        expect(b.ids, `a second call with seed 11 on ${backend}`).toEqual(a.ids);
        for (const [r, row] of a.ids.entries()) {
          expect(row.length).toBeGreaterThanOrEqual(1);
          expect(row.length).toBeLessThanOrEqual(maxLen);
          expect(row.slice(0, -1), `only the last token of row ${r} may be eos`).not.toContain(eos);
        }
        if (!first) {
          first = a;
          // robust: several other seeds, flatter distributions (temperature 2); one must sample something else
          const others: number[][][] = [];
          for (const seed of [12, 13, 14, 15, 16, 17]) others.push(plain(await model.generate({ text }, { ...opts, seed, temperature: 2 })).ids);
          const same = plain(await model.generate({ text }, { ...opts, temperature: 2 })).ids;
          expect(others.some((ids) => JSON.stringify(ids) !== JSON.stringify(same)), 'some other seed samples different ids').toBe(true);
        } else {
          expect(a.ids, `seed 11 on ${backend} vs cpu`).toEqual(first.ids);
          expect(maxAbsDiff(a.scores, first.scores), `scores on ${backend} vs cpu`).toBeLessThanOrEqual(SCORE_TOL);
        }
      });
    }
  });
});
