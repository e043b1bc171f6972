// Whether a text is an incdsl spec, from its content: `.inc` is also PHP's, assembly's (NASM, MASM)
// and Fortran's include extension, so the extension alone must not decide. A spec has, outside
// comments, a `network NAME(`, `module NAME(` or `use "FILE.inc"` line; PHP, assembly and Fortran
// never write those. Pure (no vscode import) so that tests run it under node.
const SPEC_LINE = /^\s*(?:(?:network|module)\s+[A-Za-z_][A-Za-z0-9_]*\s*\(|use\s+"[^"\n]*\.inc")/;
const MAX_LINES = 200;

function isIncdsl(text) {
  const lines = text.replace(/^\ufeff/, "").split("\n", MAX_LINES);
  for (const line of lines) {
    if (/^\s*(#|$)/.test(line)) continue; // comments and blank lines say nothing
    if (SPEC_LINE.test(line)) return true;
  }
  return false;
}

module.exports = { isIncdsl, SPEC_LINE };
