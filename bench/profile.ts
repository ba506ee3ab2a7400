/**
 * `npx tsx bench/profile.ts` — where a W1 forward (LSTM 256 → 512, B = 1, T = 100) spends its time
 * on the host backends: V8's sampling profiler (node:inspector, as `node --cpu-prof`) over 30 warm
 * calls per backend, self time summed per function, top frames printed. Shows whether the plan
 * interpreter's per-step work (buffer lookups by name in a Map, argument arrays) is visible next to
 * the kernels. Results: bench/results/profile.md (or --out DIR).
 */
import { Session } from 'node:inspector/promises';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { compile } from '../src/driver.ts';
import { OUT, prng, ROOT } from '../test/helpers.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
}

const r = compile(readFileSync(join(ROOT, 'bench/peers/specs/w1.nn'), 'utf8'), 'w1.nn');
if (!r.output) throw new Error('compile failed');
mkdirSync(OUT, { recursive: true });
const file = join(OUT, 'bench_profile_w1.ts');
writeFileSync(file, r.output);
const mod = (await import(file)) as { createModel(o: object): Promise<any> };
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 100 });
const report: string[] = [];
for (const backend of ['wasm', 'cpu']) {
  const m = await mod.createModel({ backend, threads: 1 });
  const rnd = prng(3);
  const w: Record<string, Float32Array> = {};
  for (const wi of m.manifest.weights as { name: string; shape: number[] }[]) w[wi.name] = Float32Array.from({ length: wi.shape.reduce((a, d) => a * d, 1) }, () => (rnd() - 0.5) * 0.1);
  m.loadWeights(w);
  const x = { data: Float32Array.from({ length: 100 * 256 }, () => rnd() - 0.5), shape: [1, 100, 256] };
  for (let i = 0; i < 5; i++) await m.forward({ x });
  // Map lookups in one forward call, counted exactly (V8 inlines Map.prototype.get into its caller,
  // so a sampling profile cannot show them as frames of their own)
  const counts = { get: 0, set: 0, has: 0 };
  const proto = Map.prototype as unknown as Record<'get' | 'set' | 'has', (...a: unknown[]) => unknown>;
  const orig = { get: proto.get, set: proto.set, has: proto.has };
  for (const k of ['get', 'set', 'has'] as const) proto[k] = function (this: unknown, ...a: unknown[]) { counts[k]++; return orig[k].apply(this, a); };
  try {
    await m.forward({ x });
  } finally {
    Object.assign(proto, orig);
  }
  await session.post('Profiler.start');
  for (let i = 0; i < 30; i++) await m.forward({ x });
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
  m.dispose();
  const self = new Map<string, number>();
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  let total = 0;
  let interpreter = 0;
  let maps = 0;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    const file = f.url ? f.url.replace(/^.*\/(src|test|bench|node_modules)\//, '$1/') : '';
    const key = `${f.functionName || '(anonymous)'}${file ? ` ${file}` : ''}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
    // the plan interpreter's own time, and V8's Map builtins (Map.prototype.get / set / has)
    if (file === 'src/runtime/model.ts') interpreter += dt;
    if (!file && ['get', 'set', 'has', 'MapPrototypeGet', 'MapPrototypeSet', 'MapPrototypeHas'].includes(f.functionName)) maps += dt;
  });
  const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
  const pct = (v: number) => ((100 * v) / total).toFixed(2);
  report.push(`### ${backend} (30 forward calls, ${(total / 1000).toFixed(0)} ms sampled)`, '', '| self % | frame |', '|---|---|');
  for (const [k, v] of top) report.push(`| ${pct(v)} | \`${k}\` |`);
  report.push('', `The plan interpreter (src/runtime/model.ts): ${pct(interpreter)} % of the samples; V8's Map builtins: ${pct(maps)} %. Map calls in one forward (100 steps): get ${counts.get}, set ${counts.set}, has ${counts.has}.`, '');
}
const load = loadavg().map((x) => x.toFixed(2)).join(' ');
const outDir = arg('out', join(ROOT, 'bench/results'));
mkdirSync(outDir, { recursive: true });
const text = `W1 forward (B = 1, T = 100) profile, load ${load}\n\n${report.join('\n')}\n`;
writeFileSync(join(outDir, 'profile.md'), text);
console.log(text);
