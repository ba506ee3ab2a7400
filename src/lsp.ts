/**
 * `nnc lsp`: the language server (Language Server Protocol over stdin/stdout, vscode-languageserver).
 * Editors start it (editors/vscode does). What it answers is computed by src/editor.ts:
 *
 *   diagnostics   on open and on every change: every error with its code, as `nnc check` reports
 *                 it (the help line and notes as related information)
 *   hover         a statement: its output shape ([B, T, 256]) and parameters; an option: its
 *                 documentation, allowed values and default (the layer registry's schemas)
 *   completion    layer kinds, option names and enumerated values, with their documentation
 *   definition    labels, `output NAME`, a decoder attention's encoder memory
 *   symbols       models, inputs, output, blocks and layers
 *   formatting    `nnc fmt` (src/fmt.ts)
 */
import { fileURLToPath } from 'node:url';
import {
  CompletionItemKind, createConnection, DiagnosticSeverity, MarkupKind, ProposedFeatures, SymbolKind, TextDocuments, TextDocumentSyncKind,
  type CompletionItem, type Diagnostic as LspDiagnostic, type DocumentSymbol, type Range,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import type { Span } from './diagnostics/span.ts';
import { analyze, complete, definition, hover, outline, type Analysis, type Completion, type OutlineSymbol } from './editor.ts';
import { format } from './fmt.ts';

const COMPLETION_KIND: Readonly<Record<Completion['kind'], CompletionItemKind>> = {
  layer: CompletionItemKind.Class, block: CompletionItemKind.Module, keyword: CompletionItemKind.Keyword,
  option: CompletionItemKind.Property, value: CompletionItemKind.EnumMember,
};
const SYMBOL_KIND: Readonly<Record<OutlineSymbol['kind'], SymbolKind>> = {
  model: SymbolKind.Class, input: SymbolKind.Field, output: SymbolKind.Field, block: SymbolKind.Namespace, layer: SymbolKind.Function, directive: SymbolKind.Property,
};

/** The file name diagnostics carry: the path of a file: URI, else the URI. */
function fileOf(uri: string): string {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : uri;
  } catch {
    return uri;
  }
}

export async function command(argv: string[], usage: (message: string) => number): Promise<number> {
  const unknown = argv.find((a) => a !== '--stdio');
  if (unknown !== undefined) return usage(`unknown option '${unknown}' for lsp (it talks over stdin/stdout)`);
  const connection = createConnection(ProposedFeatures.all, process.stdin, process.stdout);
  const documents = new TextDocuments(TextDocument);
  const analyses = new Map<string, { version: number; analysis: Analysis }>();

  const analysisOf = (doc: TextDocument): Analysis => {
    const known = analyses.get(doc.uri);
    if (known && known.version === doc.version) return known.analysis;
    const analysis = analyze(doc.getText(), fileOf(doc.uri));
    analyses.set(doc.uri, { version: doc.version, analysis });
    return analysis;
  };
  const range = (doc: TextDocument, s: Span): Range => ({ start: doc.positionAt(s.start), end: doc.positionAt(s.end) });

  const publish = (doc: TextDocument): void => {
    const a = analysisOf(doc);
    const diagnostics: LspDiagnostic[] = a.diagnostics.map((d) => ({
      range: range(doc, d.span),
      severity: d.severity === 'error' ? DiagnosticSeverity.Error : d.severity === 'warning' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
      code: d.code,
      source: 'nnc',
      message: d.suggestion ? `${d.message}\nhelp: ${d.suggestion}` : d.message,
      ...(d.notes?.some((n) => n.span) ? {
        relatedInformation: d.notes.filter((n) => n.span).map((n) => ({ location: { uri: doc.uri, range: range(doc, n.span!) }, message: n.message })),
      } : {}),
    }));
    if (a.internal) diagnostics.push({ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, severity: DiagnosticSeverity.Error, source: 'nnc', message: `nnc: internal error: ${a.internal} (a bug in nnc, not in your spec: please report it with the .nn file)` });
    void connection.sendDiagnostics({ uri: doc.uri, version: doc.version, diagnostics });
  };

  // diagnostics as you type: a burst of changes is analysed once, 80 ms after the last
  const pending = new Map<string, ReturnType<typeof setTimeout>>();
  documents.onDidChangeContent(({ document }) => {
    clearTimeout(pending.get(document.uri));
    pending.set(document.uri, setTimeout(() => {
      pending.delete(document.uri);
      const current = documents.get(document.uri);
      if (current) publish(current);
    }, 80));
  });
  documents.onDidClose(({ document }) => {
    clearTimeout(pending.get(document.uri));
    analyses.delete(document.uri);
    void connection.sendDiagnostics({ uri: document.uri, diagnostics: [] });
  });

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      completionProvider: { triggerCharacters: [' ', '=', ',', '(', ':'] },
      definitionProvider: true,
      documentSymbolProvider: true,
      documentFormattingProvider: true,
    },
    serverInfo: { name: 'nnc' },
  }));

  connection.onHover(({ textDocument, position }) => {
    const doc = documents.get(textDocument.uri);
    if (!doc) return null;
    const h = hover(analysisOf(doc), doc.offsetAt(position));
    return h ? { contents: { kind: MarkupKind.Markdown, value: h.markdown }, range: range(doc, h.span) } : null;
  });

  connection.onCompletion(({ textDocument, position }): CompletionItem[] => {
    const doc = documents.get(textDocument.uri);
    if (!doc) return [];
    return complete(analysisOf(doc), doc.offsetAt(position)).map((c, i) => ({
      label: c.label,
      kind: COMPLETION_KIND[c.kind],
      ...(c.detail ? { detail: c.detail } : {}),
      documentation: { kind: MarkupKind.Markdown, value: c.documentation },
      ...(c.insert ? { insertText: c.insert } : {}),
      sortText: String(i).padStart(4, '0'),
    }));
  });

  connection.onDefinition(({ textDocument, position }) => {
    const doc = documents.get(textDocument.uri);
    if (!doc) return null;
    const span = definition(analysisOf(doc), doc.offsetAt(position));
    return span ? { uri: doc.uri, range: range(doc, span) } : null;
  });

  connection.onDocumentSymbol(({ textDocument }): DocumentSymbol[] => {
    const doc = documents.get(textDocument.uri);
    if (!doc) return [];
    const symbol = (s: OutlineSymbol): DocumentSymbol => ({
      name: s.name || '?', detail: s.detail, kind: SYMBOL_KIND[s.kind], range: range(doc, s.span), selectionRange: range(doc, s.selection), children: s.children.map(symbol),
    });
    return outline(analysisOf(doc)).map(symbol);
  });

  connection.onDocumentFormatting(({ textDocument }) => {
    const doc = documents.get(textDocument.uri);
    if (!doc) return [];
    const text = doc.getText();
    const { output } = format(text, fileOf(doc.uri));
    if (output === undefined || output === text) return [];
    return [{ range: { start: doc.positionAt(0), end: doc.positionAt(text.length) }, newText: output }];
  });

  documents.listen(connection);
  connection.listen();
  return new Promise<number>((done) => connection.onExit(() => done(0)));
}
