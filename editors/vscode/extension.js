// Starts `incdsl lsp` (configurable: incdsl.command) for .inc files over stdio.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("incdsl").get("command");
  client = new LanguageClient("incdsl", "incdsl", { command, args },
    { documentSelector: [{ scheme: "file", language: "incdsl" }] });
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
