/**
 * Child process of test/threads.test.ts (run with `node --expose-gc --import tsx`): creates N models
 * of generated/brackets.ts on the wasm backend (default threads), runs each once, never disposes
 * them, drops them, collects garbage and prints {threads, rssMiB} before and after as JSON. Threads
 * are the process's OS threads (/proc/self/task).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createModel } from '../generated/brackets.ts';

const N = Number(process.argv[2] ?? 200);
const gc = (globalThis as { gc?: () => void }).gc!;
const threads = () => readdirSync('/proc/self/task').length;
const rss = () => Math.round(process.memoryUsage().rss / 2 ** 20);
const settle = async () => {
  for (let i = 0; i < 6; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 300));
  }
};
const weights = readFileSync(new URL('../examples/weights/brackets.safetensors', import.meta.url));
await settle();
const before = { threads: threads(), rssMiB: rss() };
let peak = before;
// in a function, so that no variable of this module's frame still holds the last model
async function createAndDrop(): Promise<void> {
  for (let i = 0; i < N; i++) {
    const m = await createModel({ backend: 'wasm' });
    m.loadWeights(weights);
    await m.forward({ text: { data: Int32Array.from([1, 2, 1, 2, 3, 4]), shape: [2, 3] } });
    if (i % 20 === 19) peak = { threads: Math.max(peak.threads, threads()), rssMiB: Math.max(peak.rssMiB, rss()) };
  }
}
await createAndDrop();
await settle();
const after = { threads: threads(), rssMiB: rss() };
process.stdout.write(JSON.stringify({ models: N, before, peak, after }) + '\n');
process.exit(0);
