// nnc's VS Code extension: the .nn language (grammar and configuration are declared in package.json)
// and a client for nnc's language server, started as `nnc lsp --stdio`.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { workspace, window } = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

/** The nnc command: the `nnc.path` setting, else the workspace's node_modules/.bin/nnc, else `nnc` on the PATH. */
function nncCommand() {
  const configured = workspace.getConfiguration('nnc').get('path');
  if (configured) return configured;
  for (const folder of workspace.workspaceFolders ?? []) {
    const local = join(folder.uri.fsPath, 'node_modules', '.bin', process.platform === 'win32' ? 'nnc.cmd' : 'nnc');
    if (existsSync(local)) return local;
  }
  return 'nnc';
}

async function activate(context) {
  const command = nncCommand();
  // TransportKind.stdio appends --stdio to the arguments
  const server = { command, args: ['lsp'], transport: TransportKind.stdio };
  client = new LanguageClient('nnc', 'nnc language server', { run: server, debug: server }, {
    documentSelector: [{ scheme: 'file', language: 'nn' }, { scheme: 'untitled', language: 'nn' }],
  });
  context.subscriptions.push(client);
  try {
    await client.start();
  } catch (e) {
    window.showErrorMessage(`nnc: could not start the language server with '${command} lsp' (${e && e.message ? e.message : e}). Install nnc in the workspace (npm install nnc) or set nnc.path.`);
  }
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
