/**
 * The date translator's held-out exact match (greedy decoding), for weights trained by `nnc train`
 * (npm run train:dates) or by examples/train/train_translator.py:
 *
 *   tsx --conditions=nnc-source examples/train/eval_dates.ts [weights.safetensors]
 *
 * The held-out set is examples/data/dates.valid.jsonl (examples/train/make_data.ts dates): dates
 * that never occur in the training file, in any format.
 */
import { readFileSync } from 'node:fs';
import { createModel } from '../../generated/dates.ts';

const weights = process.argv[2] ?? 'examples/weights/nnc/dates.safetensors';
const rows = readFileSync('examples/data/dates.valid.jsonl', 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { source: string; target: string });
const model = await createModel({ backend: 'wasm' });
model.loadWeights(readFileSync(weights));
let right = 0;
const wrong: string[] = [];
for (let i = 0; i < rows.length; i += 100) {
  const batch = rows.slice(i, i + 100);
  const r = await model.generate({ source: batch.map((x) => x.source) }, { strategy: 'greedy' });
  batch.forEach((x, b) => (r.text[b] === x.target ? right++ : wrong.push(`${x.source} → ${r.text[b]} (want ${x.target})`)));
}
model.dispose();
console.log(`${weights}: held-out exact match (greedy) ${((100 * right) / rows.length).toFixed(2)} % of ${rows.length} dates`);
for (const w of wrong.slice(0, 5)) console.log(`  ${w}`);
