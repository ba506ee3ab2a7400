/**
 * `npm run demo:fusion`: shallow fusion of a language model into beam search. The date translator
 * (examples/dates.nn, a neural seq2seq model) decodes with an n-gram model of ISO dates
 * (examples/iso_dates.nn, fitted here by counting every date of 1900–2099) over the same target
 * vocabulary: every candidate scores log p_translator + λ · log p_lm + β (generate's lm, lmWeight,
 * lengthBonus options). For each input it prints the plain beam-4 translation and the fused ones.
 *
 *   tsx examples/fusion.ts ["DATE" ...]
 */
import { readFileSync } from 'node:fs';
import { createModel as createDates } from '../generated/dates.ts';
import { createModel as createIso } from '../generated/iso_dates.ts';

const root = new URL('..', import.meta.url).pathname;
const dates: string[] = [];
for (let t = Date.UTC(1900, 0, 1); t < Date.UTC(2100, 0, 1); t += 86_400_000) dates.push(new Date(t).toISOString().slice(0, 10));
const lm = await createIso();
const fit = lm.fit(dates);
const translator = await createDates({ backend: 'wasm' });
translator.loadWeights(readFileSync(`${root}examples/weights/dates.safetensors`));

const inputs = process.argv.slice(2).length ? process.argv.slice(2) : ['31st of june 1999', 'feb 30, 2001', '2012/13/07', 'the 3rd of march, 1987', 'tue, 17 jan 2073', '9 sept 1961'];
console.log(`language model: ${lm.spec.order}-gram ${lm.spec.smoothing} over ${dates.length} ISO dates (${fit.tokens} tokens counted in ${fit.seconds.toFixed(2)} s)\n`);
const settings = [{ label: 'beam 4' }, { label: 'λ = 0.3', lmWeight: 0.3 }, { label: 'λ = 1', lmWeight: 1 }, { label: 'λ = 1, β = 0.5', lmWeight: 1, lengthBonus: 0.5 }];
console.log(`${'source'.padEnd(26)}${settings.map((s) => s.label.padEnd(18)).join('')}`);
for (const source of inputs) {
  const cells: string[] = [];
  for (const s of settings) {
    const r = await translator.generate({ source }, { strategy: 'beam', ...(s.lmWeight !== undefined ? { lm, lmWeight: s.lmWeight } : {}), ...(s.lengthBonus !== undefined ? { lengthBonus: s.lengthBonus } : {}) });
    cells.push(`${r.text[0]} ${r.scores[0]!.toFixed(2)}`.padEnd(18));
  }
  console.log(`${source.padEnd(26)}${cells.join('')}`);
}
console.log('\n(score: summed log-probability; with λ or β, the summed fused score)');
translator.dispose();
