/**
 * Text in, text out (docs/text.md) and n-gram specs (docs/ngram.md) as a user meets them:
 *  - generated/dates.ts and generated/tiny_lm.ts take strings, return text beside ids, export
 *    encode/decode; the text equals PyTorch's decodes (examples/weights/*.json);
 *  - Hugging Face tokenizer.json files (WordPiece, byte-level BPE, Unigram) through @huggingface/tokenizers;
 *  - spec errors about vocabularies and n-gram models: code, place, fix;
 *  - `nnc vocab` and `nnc train` as whole processes, `nnc torch` / `nnc weights` on n-gram specs;
 *    a compiled n-gram module end to end.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compile } from '../src/driver.ts';
import { NgramLM } from '../src/runtime/ngram/lm.ts';
import { createModel as createDates, decode as datesDecode, encode as datesEncode } from '../generated/dates.ts';
import { createModel as createTiny, encode as tinyEncode } from '../generated/tiny_lm.ts';
import { createModel as createIso } from '../generated/iso_dates.ts';
import { ROOT } from './helpers.ts';

const BIN = join(ROOT, 'bin/nnc.js');
const nnc = (args: string[], cwd = ROOT) => spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8' });

describe('generated modules with vocabularies', () => {
  const held = JSON.parse(readFileSync(join(ROOT, 'examples/weights/dates.test.json'), 'utf8')) as {
    examples: { source: string; source_ids: number[]; beam: { ids: number[]; text: string; score: number } }[];
  };

  it('dates: encode gives the training script ids, generate(text) gives PyTorch\'s beam translations as text', async () => {
    const model = await createDates({ backend: 'cpu' });
    // the text model is the model: loadWeights' options reach it (a rename that drops every name leaves every weight missing)
    expect(() => model.loadWeights(readFileSync(join(ROOT, 'examples/weights/dates.safetensors')), { rename: () => null })).toThrow(/missing weight 'encoder\.embedding0\.weight'/);
    model.loadWeights(readFileSync(join(ROOT, 'examples/weights/dates.safetensors')));
    for (const e of held.examples) expect(datesEncode(e.source)).toEqual(e.source_ids);
    const r = await model.generate({ source: held.examples.map((e) => e.source) }, { strategy: 'beam' });
    held.examples.forEach((e, b) => {
      expect(r.ids[b]).toEqual(e.beam.ids);
      expect(r.text[b]).toBe(e.beam.text);
      expect(Math.abs(r.scores[b]! - e.beam.score)).toBeLessThan(1e-3);
    });
    // the vocabulary lower-cases and squeezes spaces, as the spec's vocabulary file says
    const messy = await model.generate({ source: '  The 3rd of MARCH,   1987 ' }, { strategy: 'beam' });
    expect(messy.text[0]).toBe('1987-03-03');
    expect(datesDecode(messy.ids[0]!)).toBe('1987-03-03');
    // forward with text equals forward with ids (the target text gets <bos> first)
    const e = held.examples[0]!;
    const byText = await model.forward({ source: [e.source], target: [e.beam.text] });
    const ids = [1, ...model.encode(e.beam.text, 'target')];
    const byIds = await model.forward({ source: [e.source_ids], target: [ids] });
    expect(Array.from(byText.next.data)).toEqual(Array.from(byIds.next.data));
    // an unknown character is an error that names it (the source vocabulary declares no unk)
    await expect(model.generate({ source: 'le 3 août 1987' })).rejects.toThrow(/input 'source', row 0: character "û" \(U\+00FB\)/);
    await expect(model.forward({ source: ['3 march 1987'], target: 'x' })).rejects.toThrow(/input 'target', row 0: character "x"/);
    // stream events carry text too
    let last = '';
    for await (const ev of model.stream({ source: '9 sept 1961' }, { strategy: 'greedy' })) last = ev.text[0]!;
    expect(last).toBe('1961-09-09');
    model.dispose();
  });

  it('tiny LM: a text prompt continues as PyTorch\'s greedy decode, unknown characters become ?', async () => {
    const ref = JSON.parse(readFileSync(join(ROOT, 'examples/weights/tiny_lm.json'), 'utf8')) as { decode: { maxLen: number }; prompts: { prompt: string; prompt_ids: number[]; greedy: { text: string } }[] };
    const model = await createTiny({ backend: 'wasm' });
    model.loadWeights(readFileSync(join(ROOT, 'examples/weights/tiny_lm.safetensors')));
    const p = ref.prompts[0]!;
    expect(tinyEncode(p.prompt)).toEqual(p.prompt_ids);
    const r = await model.generate({ text: p.prompt }, { strategy: 'greedy', maxLen: ref.decode.maxLen });
    expect(r.text[0]).toBe(p.greedy.text);
    expect(tinyEncode('a—b½é')).toEqual(tinyEncode('a-b1/2?'));
    model.dispose();
  });
});

describe('Hugging Face tokenizer.json vocabularies', () => {
  // inside the repository, so that the generated modules resolve nnc/runtime
  mkdirSync(join(ROOT, 'test/.out'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, 'test/.out/hf-'));
  cpSync(join(ROOT, 'test/fixtures/text'), dir, { recursive: true });
  const spec = (file: string, extra = '') => `model M {\n  input text: tokens(vocab = "${file}"${extra})\n  output next\n  embedding 8\n  linear 16\n}\n`;

  it('WordPiece: the BERT example splits unaffable into un ##aff ##able', async () => {
    writeFileSync(join(dir, 'wp.nn'), spec('wordpiece/tokenizer.json', ', pad = "[PAD]", unk = "[UNK]"'));
    const r = compile(readFileSync(join(dir, 'wp.nn'), 'utf8'), join(dir, 'wp.nn'));
    expect(r.diagnostics).toEqual([]);
    expect(r.output).toContain('"kind":"hf"');
    expect(r.models![0]!.inputs[0]!.vocab).toBe(14);
    writeFileSync(join(dir, 'wp.ts'), r.output!);
    const m = (await import(join(dir, 'wp.ts'))) as { encode: (t: string) => number[]; decode: (ids: number[]) => string };
    // [CLS] the un ##aff ##able cat . [SEP] (the post-processor adds [CLS] and [SEP])
    expect(m.encode('The unaffable cat.')).toEqual([2, 7, 4, 5, 6, 8, 9, 3]);
    expect(m.decode(m.encode('The unaffable cat.'))).toBe('the unaffable cat.');
    expect(m.encode('cats sat')).toEqual([2, 8, 13, 10, 3]);
  });

  it('byte-level BPE: merges apply as its merges list says', async () => {
    writeFileSync(join(dir, 'bpe.nn'), spec('bpe/tokenizer.json'));
    const r = compile(readFileSync(join(dir, 'bpe.nn'), 'utf8'), join(dir, 'bpe.nn'));
    expect(r.diagnostics).toEqual([]);
    writeFileSync(join(dir, 'bpe.ts'), r.output!);
    const m = (await import(join(dir, 'bpe.ts'))) as { encode: (t: string) => number[]; decode: (ids: number[]) => string };
    expect(m.encode('lower newer low')).toEqual([10, 11, 15, 11, 12]); // low er Ġnew er Ġlow
    expect(m.decode([10, 11, 15, 11, 12])).toBe('lower newer low');
  });

  it('Unigram: the segmentation of highest total score (Viterbi), not the longest match', async () => {
    writeFileSync(join(dir, 'ug.nn'), spec('unigram/tokenizer.json', ', unk = "<unk>"'));
    const r = compile(readFileSync(join(dir, 'ug.nn'), 'utf8'), join(dir, 'ug.nn'));
    expect(r.diagnostics).toEqual([]);
    expect(r.models![0]!.inputs[0]!.vocab).toBe(21);
    writeFileSync(join(dir, 'ug.ts'), r.output!);
    const m = (await import(join(dir, 'ug.ts'))) as { encode: (t: string) => number[]; decode: (ids: number[]) => string };
    // scores from the file: ▁un believ able = −2 −3 −2 beats ▁unbeliev able = −6 −2; ▁cat s = −4 beats ▁cats = −5
    expect(m.encode('the unbelievable cats')).toEqual([6, 2, 3, 4, 7, 8]);
    expect(m.decode([6, 2, 3, 4, 7, 8])).toBe('the unbelievable cats');
    // ▁unbeliev = −6 loses to ▁un believ = −5; "tab" only as ▁ t a b
    expect(m.encode('unbeliev')).toEqual([2, 3]);
    expect(m.encode('tab')).toEqual([1, 18, 10, 11]);
    // characters outside the pieces: one <unk> for the run (sentencepiece's fused unknowns)
    expect(m.encode('the ox')).toEqual([6, 1, 0]);
  });

  it('level on a tokenizer.json is an error', () => {
    const text = spec('bpe/tokenizer.json', ', level = word');
    const r = compile(text, join(dir, 'x.nn'));
    expect(r.diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col}`)).toEqual(['E0604 2:60']);
  });
});

describe('spec errors about vocabularies and n-gram models', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nnc-vocab-'));
  writeFileSync(join(dir, 'chars.json'), JSON.stringify(['<pad>', 'a', 'b', 'c']));
  writeFileSync(join(dir, 'bad.json'), '{"a": 0, "b": 0}');
  writeFileSync(join(dir, 'broken.json'), '["a", "b"');
  writeFileSync(join(dir, 'words.json'), JSON.stringify({ nnc: 'vocab', level: 'word', specials: { unk: '<unk>', bos: '<s>', eos: '</s>' }, tokens: ['<unk>', '<s>', '</s>', 'a', 'b'] }));
  const diags = (text: string) => compile(text, join(dir, 'spec.nn')).diagnostics.map((d) => `${d.code} ${d.span.line}:${d.span.col} ${d.message}`);
  const lm = (input: string, body = 'embedding 8\n  linear 4') => `model M {\n  input text: tokens(${input})\n  output next\n  ${body}\n}\n`;

  it.each([
    ['a missing file', lm('vocab = "nope.json"'), /^E0601 2:30 cannot read vocabulary file "nope.json": no such file/],
    ['malformed JSON', lm('vocab = "broken.json"'), /^E0602 2:30 vocabulary file 'broken.json' is not valid JSON/],
    ['two tokens on one id', lm('vocab = "bad.json", level = char'), /^E0602 2:30 vocabulary file 'bad.json' maps both "a" and "b" to id 0/],
    ['a list without its level', lm('vocab = "chars.json"'), /^E0604 2:30 vocabulary file 'chars.json' does not say how text is split/],
    ['a special token it lacks', lm('vocab = "chars.json", level = char, unk = "?"'), /^E0603 2:64 unk = "\?" is not a token of 'chars.json'/],
    ['level against the file', lm('vocab = "words.json", level = char'), /^E0604 2:52 level = char, but 'words.json' is a word-level vocabulary/],
    ['text settings on vocab = N', lm('vocab = 4, lower'), /^E0604 2:33 lower describes a vocabulary file/],
    ['a decode token the vocabulary lacks', lm('vocab = "chars.json", level = char', 'embedding 8\n  linear 4\n  decode eos = "</s>"'), /^E0605 6:16 decode eos = "<\/s>" is not a token of input 'text''s vocabulary/],
    ['an ngram model with another layer', lm('vocab = "words.json"', 'ngram 3\n  linear 4'), /^E0606 5:3 model 'M' is an n-gram model: 'ngram' counts tokens and takes no other layers, but here is 'linear'/],
    ['an ngram model without boundaries', lm('vocab = "chars.json", level = char', 'ngram 3'), /^E0606 2:15 an ngram model needs sentence boundary tokens; input 'text' declares no bos and eos/],
    ['lambdas of the wrong count', lm('vocab = "words.json"', 'ngram 3, smoothing = interpolated, lambdas = "0.5 0.5"'), /^E0607 4:48 an order-3 interpolated model takes 4 lambdas/],
    ['lambdas that do not sum to 1', lm('vocab = "words.json"', 'ngram 2, smoothing = interpolated, lambdas = "0.5 0.2 0.2"'), /^E0607 4:48 lambdas must be weights in \[0, 1\] that sum to 1/],
    ['an attribute of another smoothing', lm('vocab = "words.json"', 'ngram 3, smoothing = kneser_ney, k = 4'), /^E0607 4:36 k applies to smoothing = katz, not kneser_ney/],
  ])('%s', (_, text, want) => {
    const d = diags(text);
    expect(d.length, d.join('\n')).toBe(1);
    expect(d[0]).toMatch(want);
  });

  it('decode names tokens of the vocabulary, and defaults to its bos and eos', () => {
    const r = compile(lm('vocab = "words.json"', 'ngram 2\n  decode beam = 3'), join(dir, 'spec.nn'));
    expect(r.diagnostics).toEqual([]);
    expect(r.ngrams![0]!.spec).toMatchObject({ bos: 1, eos: 2 });
    expect(r.ngrams![0]!.decode).toMatchObject({ bos: 1, eos: 2, beam: 3 });
  });
});

describe('nnc vocab and nnc train (the binary)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nnc-train-'));
  writeFileSync(join(dir, 'corpus.txt'), 'the cat sat\nthe dog sat on the mat\nThe cat ran\n');

  it('vocab: word level, lower-cased, by count; char level with --min-count', () => {
    let r = nnc(['vocab', 'corpus.txt', '--level', 'word', '--lower', '-o', 'words.json'], dir);
    expect(r.status, r.stderr).toBe(0);
    const words = JSON.parse(readFileSync(join(dir, 'words.json'), 'utf8')) as { level: string; lower: boolean; tokens: string[]; specials: Record<string, string> };
    expect(words.level).toBe('word');
    expect(words.lower).toBe(true);
    // specials first, then by count (the 4, cat 2, sat 2), ties in code-point order
    expect(words.tokens).toEqual(['<pad>', '<unk>', '<s>', '</s>', 'the', 'cat', 'sat', 'dog', 'mat', 'on', 'ran']);
    r = nnc(['vocab', 'corpus.txt', '--level', 'char', '--min-count', '3', '--no-specials'], dir);
    expect(r.status).toBe(0);
    const chars = JSON.parse(r.stdout) as { tokens: string[] };
    expect(chars.tokens).toEqual([' ', 't', 'a', 'e', 'h']);
    expect(nnc(['vocab', 'corpus.txt'], dir).stderr).toMatch(/vocab needs --level char or --level word/);
    expect(nnc(['vocab', 'corpus.txt'], dir).status).toBe(2);
  });

  it('train: counts an n-gram spec, writes its ARPA file, reports held-out perplexity; neural specs are refused', () => {
    const fx = join(ROOT, 'test/fixtures/ngram');
    cpSync(join(fx, 'vocab.json'), join(dir, 'vocab.json'));
    writeFileSync(join(dir, 'lm.nn'), 'model Words {\n  input text: tokens(vocab = "vocab.json")\n  output next\n  ngram order = 3, smoothing = kneser_ney\n}\n');
    const r = nnc(['train', 'lm.nn', '--data', join(fx, 'train.txt'), '--valid', join(fx, 'test.txt'), '--out', 'lm.arpa'], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Words: order 3, kneser_ney; 300 sentences/);
    const words = (JSON.parse(readFileSync(join(fx, 'vocab.json'), 'utf8')) as { tokens: string[] }).tokens;
    const ids = new Map(words.map((w, i) => [w, i]));
    const vocab = { size: words.length, bos: 1, eos: 2, unk: 0, token: (i: number) => words[i]!, id: (t: string) => ids.get(t) };
    const read = (f: string) => readFileSync(join(fx, f), 'utf8').trim().split('\n').map((l) => l.split(' ').map((w) => ids.get(w)!));
    const { lm } = NgramLM.fit(read('train.txt'), { order: 3, smoothing: 'kneser_ney' }, vocab);
    expect(readFileSync(join(dir, 'lm.arpa'), 'utf8')).toBe(lm.toArpa());
    const ppl = lm.perplexity(read('test.txt')).perplexity;
    expect(r.stdout).toContain(`perplexity ${ppl.toFixed(3)} over`);

    writeFileSync(join(dir, 'bad.jsonl'), '{"text": "the cat"}\n{"txt": "oops"}\n');
    const bad = nnc(['train', 'lm.nn', '--data', 'bad.jsonl'], dir);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/bad\.jsonl:2: unknown field 'txt'; an n-gram model's only input is 'text'/);
    writeFileSync(join(dir, 'neural.nn'), 'model N {\n  input text: tokens(vocab = 8)\n  output next\n  embedding 4\n  linear 8\n}\n');
    // the model's kind is decided before the options are read: a neural trainer's options reach the
    // neural trainer (cli-train.ts), which reads --data as JSON Lines
    const neural = nnc(['train', '--data', 'corpus.txt', 'neural.nn', '--epochs', '3'], dir);
    expect([neural.status, neural.stderr]).toEqual([1, expect.stringMatching(/corpus\.txt:1: not JSON/)]);
    const typo = nnc(['train', 'lm.nn', '--data', join(fx, 'train.txt'), '--epochs', '3'], dir);
    expect([typo.status, typo.stderr]).toEqual([2, expect.stringMatching(/unknown option '--epochs' for train; n-gram models take --data, --valid, --model, --out/)]);
    const over = nnc(['train', 'lm.nn', '--data', join(fx, 'train.txt'), '--out', 'neural.nn'], dir);
    expect([over.status, over.stderr]).toEqual([2, expect.stringMatching(/refusing to write to 'neural\.nn'/)]);
    expect(readFileSync(join(dir, 'neural.nn'), 'utf8')).toMatch(/^model N/);
  });
});

describe('nnc torch, nnc onnx, nnc weights and nnc graph on n-gram specs', () => {
  it('name the n-gram models and leave them out; with nothing left, exit 2 and write nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnc-ngram-cli-'));
    cpSync(join(ROOT, 'examples/vocab/dates.target.json'), join(dir, 'v.json'));
    const lm = 'model Lm {\n  input text: tokens(vocab = "v.json")\n  output next\n  ngram order = 3\n}\n';
    writeFileSync(join(dir, 'lm.nn'), lm);
    writeFileSync(join(dir, 'mixed.nn'), `${lm}model N {\n  input text: tokens(vocab = 14)\n  output next\n  embedding 4\n  linear 14\n}\n`);
    for (const command of ['torch', 'onnx', 'weights', 'graph']) {
      const r = nnc([command, 'lm.nn', ...(command === 'onnx' ? ['--weights', 'w.safetensors'] : [])], dir);
      expect([r.status, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toMatch(new RegExp(`^nnc ${command}: model 'Lm' is an n-gram model \\(an 'ngram' statement\\), with no (PyTorch module|ONNX graph|weight tensors|layers to draw): what an n-gram model learns is an ARPA file`));
    }
    expect(existsSync(join(dir, 'lm.py'))).toBe(false);
    expect(existsSync(join(dir, 'lm.onnx'))).toBe(false);
    const t = nnc(['torch', 'mixed.nn'], dir);
    expect([t.status, t.stdout, t.stderr]).toEqual([0, 'wrote mixed.py (N: 3 weights)\n', expect.stringMatching(/model 'Lm' is an n-gram model .*; left out\n$/)]);
    expect(readFileSync(join(dir, 'mixed.py'), 'utf8')).toMatch(/^class N\(nn\.Module\)/m);
    const w = nnc(['weights', 'mixed.nn', '--json'], dir);
    expect(w.status).toBe(0);
    expect((JSON.parse(w.stdout) as { name: string }[]).map((x) => x.name)).toEqual(['embedding0.weight', 'linear0.weight', 'linear0.bias']);
    const g = nnc(['graph', 'mixed.nn'], dir);
    expect([g.status, g.stderr]).toEqual([0, expect.stringMatching(/model 'Lm' is an n-gram model .*; left out\n$/)]);
    expect(g.stdout).toMatch(/^digraph nnc \{[\s\S]*embedding[\s\S]*\}\n?$/);
  });
});

describe('a compiled n-gram module (generated/iso_dates.ts)', () => {
  it('fits, forwards normalised distributions, generates text, round-trips through its ARPA file', async () => {
    const lm = await createIso();
    await expect(lm.forward({ text: '2021' })).rejects.toThrow(/before the model is fitted or loaded/);
    const dates = Array.from({ length: 400 }, (_, i) => new Date(Date.UTC(2000, 0, 1) + i * 86_400_000 * 17).toISOString().slice(0, 10));
    const report = lm.fit(dates);
    expect(report.sentences).toBe(400);
    const out = (await lm.forward({ text: ['2021-0', '19'] })).next;
    expect(out.shape).toEqual([2, 7, 14]); // <bos> + 6 characters; the second row is padded
    for (let p = 0; p < 7; p++) {
      const row = Array.from(out.data.subarray(p * 14, (p + 1) * 14), Math.exp);
      expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    }
    expect(Array.from(out.data.subarray((7 + 3) * 14, (7 + 4) * 14)).every((x) => x === 0)).toBe(true);
    const g = await lm.generate({ text: '20' }, { strategy: 'greedy' });
    expect(g.text[0]).toMatch(/^\d\d-\d\d-\d\d$/);
    const saved = lm.saveWeights();
    const again = await createIso();
    again.loadWeights(saved);
    expect(again.perplexity(dates.slice(0, 50)).perplexity).toBeCloseTo(lm.perplexity(dates.slice(0, 50)).perplexity, 5);
    expect(() => again.loadWeights('\\data\\\nngram 1=1\n\n\\1-grams:\n-1\t<eos>\n\n\\end\\\n')).toThrow(/order-1 model, but IsoDates is ngram order = 6/);
  });

  it('decodes through the same loop as neural models: beam and n-best, sampling, stream', async () => {
    const lm = await createIso();
    // counts: after "2021-03-0", '4' three times and '5' once
    lm.fit(['2021-03-04', '2021-03-04', '2021-03-04', '2021-03-05']);
    const beam = await lm.generate({ text: '' }, { strategy: 'beam', beam: 4, nBest: 2 });
    expect(beam.text[0]).toBe('2021-03-04');
    expect(beam.nBest![0]!.map((h) => lm.decode(h.ids))).toEqual(['2021-03-04', '2021-03-05']);
    // the beam's score is the sentence's log-probability as perplexity() scores it (<s> … </s>)
    for (const h of beam.nBest![0]!) {
      const p = lm.perplexity([lm.decode(h.ids)]);
      expect(h.score).toBeCloseTo(p.logprob * Math.LN10, 4);
    }
    // sampling follows forward's distribution after the prompt
    const N = 2000;
    const s = await lm.generate({ text: Array<string>(N).fill('2021-03-0') }, { strategy: 'sample', maxLen: 1, seed: 7 });
    const next = (await lm.forward({ text: '2021-03-0' })).next;
    const at = (next.shape[1] - 1) * 14;
    for (const ch of ['4', '5']) {
      const p = Math.exp(next.data[at + lm.encode(ch)[0]!]!);
      const seen = s.text.filter((t) => t === ch).length / N;
      expect(Math.abs(seen - p), `'${ch}': sampled ${seen}, p = ${p}`).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / N));
    }
    // stream's last event and its result are generate's
    let last: string | undefined;
    const it = lm.stream({ text: '2021-03-' }, { strategy: 'beam', beam: 3 });
    let r = await it.next();
    for (; !r.done; r = await it.next()) last = r.value.text[0];
    const g = await lm.generate({ text: '2021-03-' }, { strategy: 'beam', beam: 3 });
    expect([last, r.value.text[0], r.value.scores[0]]).toEqual([g.text[0], g.text[0], g.scores[0]]);
    expect(g.text[0]).toBe('04');
  });
});
