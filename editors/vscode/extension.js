// Starts `incdsl lsp` (configurable: incdsl.command) for incdsl specs over stdio, saved or untitled.
// The extension does not claim every `.inc` file (PHP, assembly and Fortran use the extension too):
// package.json matches a first line that only a spec writes, and an opened `.inc` file becomes
// incdsl only when its content says so (detect.js).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");
const { isIncdsl } = require("./detect");

let client;

function claim(doc) {
  if (doc.languageId !== "incdsl" && doc.uri.path.endsWith(".inc") && isIncdsl(doc.getText())) {
    vscode.languages.setTextDocumentLanguage(doc, "incdsl");
  }
}

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("incdsl").get("command");
  client = new LanguageClient("incdsl", "incdsl", { command, args }, {
    documentSelector: [{ scheme: "file", language: "incdsl" }, { scheme: "untitled", language: "incdsl" }],
  });
  client.start();
  vscode.workspace.textDocuments.forEach(claim);
  context.subscriptions.push(vscode.workspace.onDidOpenTextDocument(claim));
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
