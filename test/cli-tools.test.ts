/**
 * The commands around the compiler, run as a user runs them (bin/nnc.js in a child process):
 * `nnc compile --watch` recompiling on a real file change, and `nnc graph` (DOT, SVG, HTML).
 * Shapes and parameter counts expected in the graphs are worked out here from the specs by hand
 * (PyTorch's parameter formulas), not read from nnc.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers.ts';

const BIN = join(ROOT, 'bin/nnc.js');
const nnc = (args: string[], cwd = ROOT) => spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });
const temp = () => mkdtempSync(join(tmpdir(), 'nnc-tools-'));
const spec = (out: number) => `model W {\n  input x: tokens(vocab = 10)\n  output y\n  embedding dim = 4\n  gru hidden = 3\n  linear ${out}\n}\n`;

describe('nnc compile --watch', () => {
  it('compiles, then again on each save: a new size, an error (reported), the fix; Ctrl-C exits 0', async () => {
    const dir = temp();
    const file = join(dir, 'w.nn');
    const out = join(dir, 'w.ts');
    writeFileSync(file, spec(5));
    const p = spawn(process.execPath, [BIN, 'compile', file, '-o', out, '--watch'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const until = async (what: () => boolean, label: string) => {
      for (let t = 0; !what(); t += 50) {
        if (t > 30_000) throw new Error(`timed out waiting for ${label}\nstdout: ${stdout}\nstderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const wrote = () => stdout.split('\n').filter((l) => l.startsWith('wrote ')).length;
    try {
      await until(() => wrote() === 1 && stderr.includes('watching'), 'the first compile');
      const linearShape = () => JSON.stringify(readFileSync(out, 'utf8').match(/"name":\s*"linear0\.weight",\s*"shape":\s*\[([\s\d,]*)\]/)?.[1]?.split(',').map(Number));
      expect(linearShape()).toBe('[5,3]');
      writeFileSync(file, spec(7));
      await until(() => wrote() === 2, 'the recompile after a change');
      expect(linearShape()).toBe('[7,3]');
      writeFileSync(file, spec(7).replace('gru', 'gruu'));
      await until(() => stderr.includes('[E0201]'), 'the error');
      expect(stderr).toMatch(/w\.nn:5:3: error: unknown layer 'gruu'/);
      expect(wrote()).toBe(2);
      writeFileSync(file, spec(9));
      await until(() => wrote() === 3, 'the recompile after the fix');
      expect(linearShape()).toBe('[9,3]');
    } finally {
      p.kill('SIGINT');
    }
    const code = await new Promise<number | null>((r) => p.on('close', r));
    expect(code).toBe(0);
  }, 60_000);

  it('belongs to compile', () => {
    const r = nnc(['check', 'examples/tagger.nn', '--watch']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--watch belongs to 'compile'/);
  });
});

/** nn.LSTM / nn.GRU parameters per direction: gates·hidden·(input + hidden) + 2·gates·hidden. */
const recurrent = (gates: number, input: number, hidden: number) => gates * hidden * (input + hidden) + 2 * gates * hidden;
const count = (n: number) => n.toLocaleString('en-US');
/** DOT node id of the first statement `needle` in `text`, a whole line (nodes are named by span start). */
const nodeOf = (text: string, needle: string) => {
  const line = text.split('\n').find((l) => l.trim().startsWith(needle))!;
  return `s${text.indexOf(line) + line.length - line.trimStart().length}`;
};

describe('nnc graph', () => {
  const dates = readFileSync(join(ROOT, 'examples/dates.nn'), 'utf8');

  it('DOT: encoder and decoder clusters, shapes on every edge, parameters, attention to the encoder memory', () => {
    const r = nnc(['graph', 'examples/dates.nn']);
    expect(r.status, r.stderr).toBe(0);
    const dot = r.stdout;
    expect(dot).toMatch(/^digraph nnc \{/);
    expect(dot).toMatch(/subgraph cluster_s\d+ \{\n\s+label=<encoder /);
    expect(dot).toMatch(/subgraph cluster_s\d+ \{\n\s+label=<decoder init = bridge /);
    // every edge carries a shape with symbolic dims
    const edges = dot.split('\n').filter((l) => l.includes('->'));
    expect(edges.length).toBeGreaterThanOrEqual(10);
    for (const e of edges) expect(e).toMatch(/label=" (memory |initial state )?\[B(, [ST])?(, \d+)?\] "/);
    // the encoder: embedding 42 × 16, then a bidirectional LSTM of 32 per direction → memory [B, S, 64]
    const lstm = nodeOf(dates, 'lstm hidden = 32');
    const attention = nodeOf(dates, 'attention score');
    expect(dot).toContain(`${lstm} -> ${attention} [label=" memory [B, S, 64] "`);
    expect(dot).toMatch(new RegExp(`${lstm} \\[label=<[^\\n]*${count(2 * recurrent(4, 16, 32))} params`));
    expect(dot).toMatch(new RegExp(`${nodeOf(dates, 'embedding dim = 16')} \\[label=<[^\\n]*${count(42 * 16)} params`));
    // the decoder's GRU reads [embedding; context] (16 + 64) and starts from the bridge
    const gru = nodeOf(dates, 'gru hidden = 64');
    expect(dot).toMatch(new RegExp(`${gru} \\[label=<[^\\n]*${count(recurrent(3, 16 + 64, 64))} params`));
    expect(dot).toContain(`${lstm} -> ${gru} [label=" initial state [B, 64] "`);
    expect(dot).toContain(`${nodeOf(dates, 'linear 14')} -> ${nodeOf(dates, 'log_softmax')} [label=" [B, T, 14] "`);
  });

  it('repeat and residual clusters, skip connections, and fused kernels with --kernels', () => {
    const text = readFileSync(join(ROOT, 'examples/transformer_classifier.nn'), 'utf8');
    const dot = nnc(['graph', 'examples/transformer_classifier.nn']).stdout;
    expect(dot).toMatch(/label=<repeat × 4 /);
    expect(dot.match(/label=<residual /g)).toHaveLength(2);
    // the first residual's input reaches the layernorm after it around the attention
    expect(dot).toContain(`${nodeOf(text, 'positional')} -> ${nodeOf(text, 'layernorm')} [label=" [B, T, 256] "`);
    // nn.MultiheadAttention(256, 8): in_proj 3·256·256 + 3·256, out_proj 256·256 + 256; per copy, × 4
    expect(dot).toContain(`${count(4 * 256 * 256 + 4 * 256)} params × 4`);
    const nplm = readFileSync(join(ROOT, 'examples/nplm.nn'), 'utf8');
    const kernels = nnc(['graph', 'examples/nplm.nn', '--kernels']).stdout;
    const cluster = kernels.match(/subgraph cluster_k\d+ \{\n[^\n]*kernel k\d+ \(fused\)[^\n]*\n((?:\s+s\d+ \[[^\n]*\n)+)/);
    expect(cluster, kernels).not.toBeNull();
    expect([...cluster![1]!.matchAll(/(s\d+) \[/g)].map((m) => m[1])).toEqual([nodeOf(nplm, 'embedding'), nodeOf(nplm, 'flatten'), nodeOf(nplm, 'linear 100'), nodeOf(nplm, 'tanh')]);
  });

  it('SVG and HTML through Graphviz, with what the user named escaped', () => {
    const dir = temp();
    const file = join(dir, 'a&<b>.nn');
    writeFileSync(file, readFileSync(join(ROOT, 'examples/tagger.nn'), 'utf8'));
    const svg = nnc(['graph', file, '-o', join(dir, 'tagger.svg')]);
    expect(svg.status, svg.stderr).toBe(0);
    expect(svg.stdout).toBe(`wrote ${join(dir, 'tagger.svg')} (Tagger)\n`);
    const text = readFileSync(join(dir, 'tagger.svg'), 'utf8');
    expect(text).toMatch(/<svg [^>]*width="\d+pt" height="\d+pt"/);
    expect(text).toContain('a&amp;&lt;b&gt;.nn');
    expect(text).not.toContain('a&<b>');
    expect(text).toContain('[B, T, 256]');
    expect(text).toContain(count(2 * recurrent(4, 100, 128)));
    expect(nnc(['graph', file, '-o', join(dir, 'tagger.html')]).status).toBe(0);
    const html = readFileSync(join(dir, 'tagger.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>[\s\S]*<svg[\s\S]*<td>lstm0\.weight_ih_l0_reverse<\/td><td>\[512, 100\]<\/td>/);
    expect(nnc(['graph', file, '-o', join(dir, 'tagger.dot')]).status).toBe(0);
    expect(readFileSync(join(dir, 'tagger.dot'), 'utf8')).toMatch(/^digraph nnc/);
  });

  it.each([['dates'], ['brackets']])('examples/web/public/graphs/%s.svg is what npm run graphs draws today', (m) => {
    const out = join(temp(), `${m}.svg`);
    expect(nnc(['graph', `examples/${m}.nn`, '-o', out]).status).toBe(0);
    expect(readFileSync(out, 'utf8') === readFileSync(join(ROOT, `examples/web/public/graphs/${m}.svg`), 'utf8'), 'stale: run npm run graphs').toBe(true);
  });

  it('a spec with errors: its diagnostics, exit 1; bad usage: exit 2', () => {
    const dir = temp();
    writeFileSync(join(dir, 'bad.nn'), spec(3).replace('gru', 'gruu'));
    const bad = nnc(['graph', 'bad.nn', '-o', 'bad.svg'], dir);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/bad\.nn:5:3: error: unknown layer 'gruu'.*\[E0201\]/);
    expect(nnc(['graph', 'examples/tagger.nn', '-o', 'x.png']).status).toBe(2);
    expect(nnc(['graph']).status).toBe(2);
    expect(nnc(['graph', 'examples/tagger.nn', '--frobnicate']).status).toBe(2);
    expect(nnc(['lsp', '--tcp']).status).toBe(2);
  });
});
