/**
 * Compares two runs of `npm run bench` (bench/results/peers.json), e.g. of two commits:
 *
 *   git show OLD:bench/results/peers.json > /tmp/old.json
 *   npx tsx bench/compare.ts /tmp/old.json bench/results/peers.json            # every implementation
 *   npx tsx bench/compare.ts /tmp/old.json bench/results/peers.json --nnc      # nnc's only
 *
 * For each (workload, B, implementation) measured in both: old and new median ms and new ÷ old.
 * The peers' own ratios show how much the machine itself changed between the two runs; nnc's
 * ratios are only meaningful beside them (medians from different runs, on a noisy machine).
 * Exits 1 when a file is missing or not a peers.json.
 */
import { readFileSync } from 'node:fs';

interface Impl { impl: string; status: string; median_ms?: number }
interface Case { workload: string; B: number; impls: Impl[] }
interface Run { date: string; cases: Case[] }

function load(path: string): Run {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as Run;
    if (!Array.isArray(r.cases)) throw new Error('no "cases" array');
    return r;
  } catch (e) {
    process.stderr.write(`bench/compare.ts: cannot read ${path} as a peers.json (${(e as Error).message})\n`);
    process.exit(1);
  }
}

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('--'));
if (files.length !== 2) {
  process.stderr.write('usage: npx tsx bench/compare.ts OLD.json NEW.json [--nnc]\n');
  process.exit(1);
}
const onlyNnc = args.includes('--nnc');
const [a, b] = files.map(load) as [Run, Run];
const rows: string[] = [`| workload | B | implementation | old ms | new ms | new ÷ old |`, `|---|---:|---|---:|---:|---:|`];
for (const nc of b.cases) {
  const oc = a.cases.find((c) => c.workload === nc.workload && c.B === nc.B);
  if (!oc) continue;
  for (const ni of nc.impls) {
    if (onlyNnc && !ni.impl.startsWith('nnc ')) continue;
    const oi = oc.impls.find((i) => i.impl === ni.impl);
    if (!oi || oi.median_ms === undefined || ni.median_ms === undefined) continue;
    rows.push(`| ${nc.workload} | ${nc.B} | ${ni.impl} | ${oi.median_ms} | ${ni.median_ms} | ${(ni.median_ms / oi.median_ms).toFixed(2)}× |`);
  }
}
process.stdout.write(`old: ${a.date}\nnew: ${b.date}\n\n${rows.join('\n')}\n`);
