/**
 * The language server, driven as an editor drives it: `nnc lsp --stdio` (the real binary) in a child
 * process, JSON-RPC over its stdin/stdout (vscode-languageserver-protocol's client side): initialize,
 * didOpen, didChange, hover, completion, definition, documentSymbol, formatting.
 *
 * Expected shapes and parameter counts are worked out here from the spec by hand (PyTorch's
 * parameter formulas), not read from nnc; diagnostics are compared with what `nnc check` prints for
 * the same text.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createProtocolConnection, StreamMessageReader, StreamMessageWriter, InitializeRequest, DidOpenTextDocumentNotification,
  DidChangeTextDocumentNotification, HoverRequest, CompletionRequest, DefinitionRequest, DocumentSymbolRequest, DocumentFormattingRequest,
  PublishDiagnosticsNotification, ShutdownRequest, ExitNotification,
  type ProtocolConnection, type PublishDiagnosticsParams, type Hover, type CompletionItem, type CompletionList, type Location, type DocumentSymbol, type TextEdit,
} from 'vscode-languageserver-protocol/node';
import { ROOT } from './helpers.ts';

const BIN = join(ROOT, 'bin/nnc.js');
const dir = mkdtempSync(join(tmpdir(), 'nnc-lsp-'));

let server: ChildProcess;
let rpc: ProtocolConnection;
const published = new Map<string, PublishDiagnosticsParams[]>();
const waiters: (() => void)[] = [];

/** The next diagnostics published for `uri` after `count` earlier ones. */
async function diagnosticsAfter(uri: string, count: number): Promise<PublishDiagnosticsParams> {
  for (;;) {
    const list = published.get(uri) ?? [];
    if (list.length > count) return list[list.length - 1]!;
    await new Promise<void>((r) => waiters.push(r));
  }
}

let version = 1;
/** Opens a document (a fresh URI) and returns its URI and first diagnostics. */
async function open(name: string, text: string): Promise<{ uri: string; diagnostics: PublishDiagnosticsParams }> {
  const path = join(dir, name);
  writeFileSync(path, text);
  const uri = pathToFileURL(path).href;
  await rpc.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'nn', version: version++, text } });
  return { uri, diagnostics: await diagnosticsAfter(uri, 0) };
}

/** Position of the `nth` occurrence of `needle` in `text` (plus `delta` characters). */
function pos(text: string, needle: string, delta = 0, nth = 0): { line: number; character: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) at = text.indexOf(needle, at + 1);
  if (at < 0) throw new Error(`'${needle}' not in the text`);
  const before = text.slice(0, at + delta);
  const line = before.split('\n').length - 1;
  return { line, character: before.length - before.lastIndexOf('\n') - 1 };
}

const hoverText = async (uri: string, text: string, needle: string, delta = 0): Promise<string> => {
  const h = (await rpc.sendRequest(HoverRequest.type, { textDocument: { uri }, position: pos(text, needle, delta) })) as Hover | null;
  return h ? (h.contents as { value: string }).value : '';
};
const completions = async (uri: string, position: { line: number; character: number }): Promise<CompletionItem[]> => {
  const r = (await rpc.sendRequest(CompletionRequest.type, { textDocument: { uri }, position })) as CompletionItem[] | CompletionList | null;
  return Array.isArray(r) ? r : (r?.items ?? []);
};

beforeAll(async () => {
  server = spawn(process.execPath, [BIN, 'lsp', '--stdio'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  rpc = createProtocolConnection(new StreamMessageReader(server.stdout!), new StreamMessageWriter(server.stdin!));
  rpc.onNotification(PublishDiagnosticsNotification.type, (p) => {
    published.set(p.uri, [...(published.get(p.uri) ?? []), p]);
    waiters.splice(0).forEach((w) => w());
  });
  rpc.listen();
  const init = await rpc.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: pathToFileURL(dir).href, capabilities: {}, workspaceFolders: null });
  expect(init.capabilities).toMatchObject({ hoverProvider: true, definitionProvider: true, documentSymbolProvider: true, documentFormattingProvider: true });
  expect(init.capabilities.completionProvider).toBeDefined();
}, 60_000);

afterAll(async () => {
  await rpc.sendRequest(ShutdownRequest.type);
  await rpc.sendNotification(ExitNotification.type);
  await new Promise<void>((r) => (server.exitCode !== null ? r() : server.on('exit', () => r())));
  rpc.dispose();
});

const TRANSLATOR = `// a seq2seq model with Bahdanau attention
model Translator {
  input source: tokens(vocab = 40, max_len = 20)
  input target: tokens(vocab = 30)
  output next

  encoder {
    embedding dim = 16
    lstm hidden = 32, bidirectional
  }
  decoder init = bridge {
    embedding dim = 12
    attention score = additive
    gru hidden = 64
    linear 30
    log_softmax
  }
  decode beam = 4, max_len = 12
}
`;

/** The errors `nnc check` prints for `text`: [code, line, col, message] (the first line of each). */
function cliErrors(text: string): [string, number, number, string][] {
  const file = join(dir, `cli-${Math.random().toString(36).slice(2)}.nn`);
  writeFileSync(file, text);
  const r = spawnSync(process.execPath, [BIN, 'check', file], { encoding: 'utf8' });
  expect(r.status).toBe(1);
  return [...r.stderr.matchAll(/^.*?:(\d+):(\d+): error: (.*) \[(E\d{4})\]$/gm)].map((m) => [m[4]!, Number(m[1]), Number(m[2]), m[3]!]);
}

describe('nnc lsp over JSON-RPC', () => {
  it('publishes every error of a file full of mistakes, with the codes, places and messages nnc check reports', async () => {
    const text = `model Broken {
  input text: tokens(vocab = 100)
  output y

  embedding dim = 32
  lstn hidden = 64
  gru hidden = 0
  pool maximum
  linear 10, bias = maybe
  attention score = dotty
}
`;
    const { diagnostics } = await open('broken.nn', text);
    const got = diagnostics.diagnostics.map((d) => [d.code, d.range.start.line + 1, d.range.start.character + 1, String(d.message).split('\n')[0]]);
    const expected = cliErrors(text);
    expect(expected.length).toBeGreaterThanOrEqual(5);
    expect(got).toEqual(expected);
    expect(diagnostics.diagnostics.every((d) => d.severity === 1 && d.source === 'nnc')).toBe(true);
    // the suggestion comes along: unknown layer 'lstn' — did you mean 'lstm'?
    expect(diagnostics.diagnostics.find((d) => d.code === 'E0201')!.message).toMatch(/lstm/);
  });

  it('hover on a statement: its output shape with symbolic dims and its parameters (PyTorch counts)', async () => {
    const { uri, diagnostics } = await open('translator.nn', TRANSLATOR);
    expect(diagnostics.diagnostics).toEqual([]);
    // nn.LSTM(16, 32, bidirectional=True): per direction 4·32·(16 + 32) + 2·4·32
    const lstm = await hoverText(uri, TRANSLATOR, 'lstm hidden');
    expect(lstm).toContain('`[B, S, 64]`');
    expect(lstm).toContain(`**${(2 * (4 * 32 * (16 + 32) + 2 * 4 * 32)).toLocaleString('en-US')}**`);
    expect(lstm).toMatch(/encoder\.lstm0\.weight_ih_l0_reverse` \[128, 16\]/);
    // the decoder's GRU reads [embedding; context] = 12 + 64 wide: 3·64·(76 + 64) + 2·3·64
    const gru = await hoverText(uri, TRANSLATOR, 'gru hidden');
    expect(gru).toContain('`[B, T, 64]`');
    expect(gru).toContain(`**${(3 * 64 * (12 + 64 + 64) + 2 * 3 * 64).toLocaleString('en-US')}**`);
    expect(await hoverText(uri, TRANSLATOR, 'linear 30')).toContain('`[B, T, 30]`');
    expect(await hoverText(uri, TRANSLATOR, 'embedding dim = 16')).toContain('`[B, S, 16]`');
    // attention before the GRU runs inside its steps: one context vector per row and step
    expect(await hoverText(uri, TRANSLATOR, 'attention score')).toMatch(/`gru`'s time loop: `\[B, 64\]` per step/);
    expect(await hoverText(uri, TRANSLATOR, 'Translator')).toMatch(/parameters: \*\*[\d,]+\*\*/);
  });

  it('hover on an option: its documentation, allowed values and default, from the layer registry', async () => {
    const { uri } = await open('options.nn', TRANSLATOR);
    const score = await hoverText(uri, TRANSLATOR, 'score = additive', 1);
    for (const v of ['dot', 'scaled', 'general', 'biased_general', 'activated_general', 'concat', 'additive', 'deep', 'location', 'cosine']) expect(score).toContain(`\`${v}\``);
    expect(score).toContain('compatibility function');
    expect(score).toContain('default: `dot`');
    expect(await hoverText(uri, TRANSLATOR, 'init = bridge', 1)).toMatch(/initial recurrent state[\s\S]*`final`, `zeros`, `bridge`/);
    expect(await hoverText(uri, TRANSLATOR, 'bidirectional', 2)).toMatch(/bidirectional\*\* — run a second, reversed pass/);
    expect(await hoverText(uri, TRANSLATOR, 'vocab = 40', 1)).toMatch(/ids are in \[0, vocab\)[\s\S]*required/);
  });

  it('didChange with an error: the error is published and the statements before it keep their shapes', async () => {
    const { uri } = await open('editing.nn', TRANSLATOR);
    const broken = TRANSLATOR.replace('linear 30', 'linear 30, bias = sometimes');
    const before = published.get(uri)!.length;
    await rpc.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: version++ }, contentChanges: [{ text: broken }] });
    const d = await diagnosticsAfter(uri, before);
    expect(d.diagnostics.map((x) => x.code)).toEqual(['E0306']);
    expect(d.diagnostics[0]!.range.start).toEqual(pos(broken, 'sometimes'));
    expect(await hoverText(uri, broken, 'gru hidden')).toContain('`[B, T, 64]`');
    expect(await hoverText(uri, broken, 'lstm hidden')).toContain('`[B, S, 64]`');
    // an incremental edit that fixes it
    const at = pos(broken, ', bias = sometimes');
    await rpc.sendNotification(DidChangeTextDocumentNotification.type, {
      textDocument: { uri, version: version++ },
      contentChanges: [{ range: { start: at, end: { line: at.line, character: at.character + ', bias = sometimes'.length } }, text: '' }],
    });
    expect((await diagnosticsAfter(uri, before + 1)).diagnostics).toEqual([]);
    // typing at the end of the file: nothing closed yet, a statement half written
    const typing = TRANSLATOR.slice(0, TRANSLATOR.indexOf('linear 30')) + 'linear 30, bi';
    await rpc.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: version++ }, contentChanges: [{ text: typing }] });
    expect((await diagnosticsAfter(uri, before + 2)).diagnostics.map((x) => x.code)).toContain('E0102');
    expect(await hoverText(uri, typing, 'gru hidden')).toContain('`[B, T, 64]`');
    expect(await hoverText(uri, typing, 'embedding dim = 12')).toContain('`[B, T, 12]`');
  });

  it('completion: layer kinds, option names and enumerated values, with documentation', async () => {
    const text = 'model M {\n  input x: tokens(vocab = 10)\n  output y\n  embedding dim = 8\n  \n  lstm hidden = 4, \n  attention score = \n  pool \n}\n';
    const { uri } = await open('complete.nn', text);
    const kinds = await completions(uri, pos(text, '  \n', 2));
    expect(kinds.map((c) => c.label)).toEqual(expect.arrayContaining(['lstm', 'gru', 'attention', 'linear', 'repeat', 'residual', 'encoder', 'decode']));
    expect((kinds.find((c) => c.label === 'gru')!.documentation as { value: string }).value).toMatch(/GRU/);
    const options = (await completions(uri, pos(text, 'lstm hidden = 4, ', 'lstm hidden = 4, '.length))).map((c) => c.label);
    expect(options).toEqual(expect.arrayContaining(['layers', 'bidirectional', 'bias', 'merge']));
    expect(options).not.toContain('hidden');
    const scores = await completions(uri, pos(text, 'score = ', 'score = '.length));
    expect(scores.map((c) => c.label).sort()).toEqual(['activated_general', 'additive', 'biased_general', 'concat', 'cosine', 'deep', 'dot', 'general', 'location', 'scaled']);
    expect((scores.find((c) => c.label === 'dot')!.documentation as { value: string }).value).toMatch(/compatibility function/);
    expect((await completions(uri, pos(text, 'pool ', 5))).map((c) => c.label)).toEqual(expect.arrayContaining(['last', 'first', 'mean', 'max']));
  });

  it('definition: a repeated label goes to its first definition; output goes to the layer it returns', async () => {
    const text = 'model M {\n  input x: tokens(vocab = 10)\n  output y\n  embedding dim = 8\n  enc: lstm 8\n  enc: gru 8\n  linear 4\n}\n';
    const { uri } = await open('labels.nn', text);
    const toLabel = (await rpc.sendRequest(DefinitionRequest.type, { textDocument: { uri }, position: pos(text, 'enc: gru', 1) })) as Location;
    expect(toLabel.range.start).toEqual(pos(text, 'enc: lstm'));
    const ok = TRANSLATOR;
    const { uri: u2 } = await open('output-def.nn', ok);
    const toOutput = (await rpc.sendRequest(DefinitionRequest.type, { textDocument: { uri: u2 }, position: pos(ok, 'output next', 8) })) as Location;
    expect(toOutput.range.start).toEqual(pos(ok, 'log_softmax'));
    const toMemory = (await rpc.sendRequest(DefinitionRequest.type, { textDocument: { uri: u2 }, position: pos(ok, 'attention score', 2) })) as Location;
    expect(toMemory.range.start).toEqual(pos(ok, 'lstm hidden'));
  });

  it('document symbols: the model, its inputs and output, blocks and layers with shapes', async () => {
    const { uri } = await open('symbols.nn', TRANSLATOR);
    const symbols = (await rpc.sendRequest(DocumentSymbolRequest.type, { textDocument: { uri } })) as DocumentSymbol[];
    expect(symbols.map((s) => s.name)).toEqual(['Translator']);
    const children = symbols[0]!.children!;
    expect(children.map((c) => c.name)).toEqual(['source', 'target', 'next', 'encoder', 'decoder', 'decode']);
    const encoder = children.find((c) => c.name === 'encoder')!;
    expect(encoder.children!.map((c) => [c.name, (c.detail ?? '').split(' · ')[0]])).toEqual([['embedding', '[B, S, 16]'], ['lstm', '[B, S, 64]']]);
    expect(encoder.range.start).toEqual(pos(TRANSLATOR, 'encoder {'));
  });

  it('formatting: the edits nnc fmt makes', async () => {
    const messy = 'model M{input x:tokens(vocab=10)\noutput y;embedding dim=8 // the table\nlstm   hidden=4,layers=2}\n';
    const { uri } = await open('messy.nn', messy);
    const edits = (await rpc.sendRequest(DocumentFormattingRequest.type, { textDocument: { uri }, options: { tabSize: 2, insertSpaces: true } })) as TextEdit[];
    const file = join(dir, 'messy-cli.nn');
    writeFileSync(file, messy);
    const cli = spawnSync(process.execPath, [BIN, 'fmt', '--stdout', file], { encoding: 'utf8' });
    expect(cli.status, cli.stderr).toBe(0);
    expect(edits).toHaveLength(1);
    expect(edits[0]!.newText).toBe(cli.stdout);
    expect(cli.stdout).toBe('model M {\n  input x: tokens(vocab = 10)\n  output y\n  embedding dim = 8 // the table\n  lstm hidden = 4, layers = 2\n}\n');
  });
});
