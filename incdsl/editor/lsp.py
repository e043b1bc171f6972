"""`incdsl lsp`: a language server for .inc files (pygls, over stdio).

- diagnostics as the buffer changes: the errors `incdsl check` gives, with the same spans; notes
  become related information;
- hover on a layer or a module call: output shape (NHWC), params, MACs; a layer inside a module
  body shows each call's instance;
- go to definition of a module call and of a `use` path;
- completion of ops, activations, module names, keywords, and argument names inside a call's
  parentheses, with the op table's docs.

`analyze` does the work on a buffer's text and never raises: anything unexpected becomes a
diagnostic, so a broken file can never stop the server.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import Source, Span, SpecError, UsageError
from .lsp_complete import completions, definition  # KEYWORDS: re-exported for the editors' tests


@dataclass(frozen=True)
class Problem:
    """One diagnostic: a message at a span (None: the top of the file), with related notes."""
    message: str
    span: Span | None
    notes: tuple[tuple[str, Span | None], ...] = ()
    warning: bool = False


@dataclass(frozen=True)
class Site:
    """Something to show on hover at a span: a layer instance or a module call."""
    span: Span
    text: str


@dataclass
class Analysis:
    """What `analyze` found in one buffer: the file's `path`, its `problems` (errors and warnings as
    diagnostics), the parsed `program` (a `load.Program`, None when it did not parse) and the hover
    `sites` (layer instances and module calls with their params and MACs).
    """
    path: str
    problems: list[Problem] = field(default_factory=list)
    program: object | None = None  # load.Program when the file parsed
    sites: list[Site] = field(default_factory=list)


def analyze(text: str, path: str, roots: tuple[Path, ...] = ()) -> Analysis:
    """Parse, elaborate and check the buffer `text` of the file at `path` (its `use`s are read from
    disk); every network in it is built with its default parameters. A file with modules and no
    network (a library) is checked on its own and through the networks under `roots` that use it
    (see lsp_library). A leading byte-order mark is dropped, as the file reader drops it. A buffer
    over program.MAX_FILE_BYTES (4 MB, UTF-8) gets one problem saying so and is not parsed."""
    from ..elaborate.statements import elaborate
    from ..frontend.program import MAX_FILE_BYTES, load_program_text
    from ..network import Network

    text = text.removeprefix("\ufeff")
    out = Analysis(path)
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) * 4 > MAX_FILE_BYTES else len(text)
    if size > MAX_FILE_BYTES:  # as `incdsl check` refuses the file: a 50 MB buffer took 400 s at 1.1 GB
        out.problems.append(Problem(f"this buffer is {size:,} bytes; specs are limited to {MAX_FILE_BYTES:,}",
                                    None))
        return out
    try:
        out.program = prog = load_program_text(text, path)
        if not prog.networks and any(same_file(d.span.file, path) for d, _ in prog.modules.values()):
            _check_library(out, prog, text, roots)
        for definition in prog.networks:
            net = Network(elaborate(prog, definition.name, {}), path)
            out.sites += _sites(net)
            out.problems += [Problem(f"'{n}' reaches no output and is left out",
                                     net.graph.unused_spans.get(n) or definition.span, warning=True)
                             for n in net.graph.unused]
    except SpecError as e:
        out.problems.append(_problem(e))
    except UsageError as e:
        out.problems.append(Problem(str(e), None))
    except RecursionError:
        out.problems.append(Problem("nested too deeply to check", None))
    except Exception as e:  # a bug in incdsl: say so in the editor rather than stop the server
        out.problems.append(Problem(f"internal error in incdsl: {type(e).__name__}: {e}", None))
    return out


def _problem(e: SpecError, extra: tuple = ()) -> Problem:
    return Problem(e.message + (f" ({e.label})" if e.label else "") + (f"\nhint: {e.hint}" if e.hint else ""),
                   e.span, tuple((n.message, n.span) for n in e.notes) + extra)


def _check_library(out: Analysis, prog, text: str, roots: tuple[Path, ...]) -> None:
    """A library's own errors, then those the workspace's networks that use it meet inside it."""
    from ..elaborate.statements import elaborate
    from ..frontend.program import load_program
    from ..network import Network
    from .lsp_library import static_problems, workspace_users

    out.problems += [_problem(e) for e in static_problems(prog, out.path)]
    seen = {(p.message.split("\n")[0], p.span): i for i, p in enumerate(out.problems)}
    for user in workspace_users(out.path, list(roots) or [Path(out.path).parent])[:8]:
        try:
            uprog = load_program(user, overlays={Path(out.path).resolve(): text})
            for d in uprog.networks:
                net = Network(elaborate(uprog, d.name, {}), str(user))
                out.sites += [s for s in _sites(net) if same_file(s.span.file, out.path)]
        except SpecError as e:
            if e.span is not None and same_file(e.span.file, out.path):
                p = _problem(e, ((f"met while building {user.name}", None),))
                key = (p.message.split("\n")[0], p.span)
                if key not in seen:
                    seen[key] = len(out.problems)
                    out.problems.append(p)
                elif not out.problems[seen[key]].notes:  # the elaborated one says more (hint, call site)
                    out.problems[seen[key]] = p
        except Exception:  # a user's own trouble is shown in its own buffer, not here
            continue


def _sites(net) -> list[Site]:
    from ..analysis.report import describe
    from ..text import shape_text as fmt

    sites = []
    for name, layer in net.layers.items():
        if layer.span is not None:
            c = net.counts[name]
            sites.append(Site(layer.span, f"`{name}` {describe(layer)}: output {fmt(net.shapes[name])}, "
                                          f"{c.params:,} params, {c.macs:,} MACs"))
    groups = net.group_counts()
    for b in net.graph.blocks:
        c = groups.get(b.name)
        sites.append(Site(b.span, f"`{b.name}` = {b.module}(...): output {fmt(net.shapes[b.output])}, "
                                  f"{c.params:,} params, {c.macs:,} MACs"))
    return sites


def same_file(span_file: str, path: str) -> bool:
    """True when the span's file and `path` name the same file on disk (both resolved: links and `..`
    followed)."""
    return Path(span_file).resolve() == Path(path).resolve()


def hover_text(a: Analysis, line: int, col: int) -> str | None:
    """Markdown for the 1-based (line, col), from the innermost span holding it."""
    mine = [s for s in a.sites if same_file(s.span.file, a.path)]
    here = [s for s in mine if _contains(s.span, line, col)]
    if not here:  # the name in `mixed9 = v3_e(...)`: what the line's first call gives
        later = [s for s in mine if s.span.line == line and s.span.col > col]
        first = min((s.span.col for s in later), default=None)
        here = [s for s in later if s.span.col == first]
    if not here:
        return None
    best = min(here, key=lambda s: (s.span.end_line - s.span.line, s.span.end_col - s.span.col if
                                    s.span.end_line == s.span.line else 0))
    texts = list(dict.fromkeys(s.text for s in here if s.span == best.span))
    shown = texts[:8] + ([f"... and {len(texts) - 8} more"] if len(texts) > 8 else [])
    head = f"{len(texts)} instances:\n\n" if len(texts) > 1 else ""
    return head + "\n\n".join(shown)


def _contains(span: Span, line: int, col: int) -> bool:
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def _anchor(p: Problem, text: str, path: str) -> Span | None:
    """Where, in the buffer at `path`, to show a problem that lies in another file: the innermost
    note in this file (the module call that led there), else the `use` line of that file (or the
    first `use`), else the top of the file."""
    mine = [s for _, s in p.notes if s is not None and same_file(s.file, path)]
    if mine:
        return mine[0]
    uses = [(m.start(), m.group(1)) for m in re.finditer(r'^[ \t]*use\s+"([^"\n]*)"', text, re.M)]
    if not uses:
        return None
    target = Path(p.span.file).resolve() if p.span is not None else None
    pos = next((at for at, rel in uses if (Path(path).parent / rel).resolve() == target), uses[0][0])
    line = text.count("\n", 0, pos) + 1
    width = len(text[pos:].split("\n", 1)[0])
    return Span(Source(path, text), line, 1, line, width + 1)


# --- the server -------------------------------------------------------------------------------

def path_of(uri: str) -> str:
    """The file-system path of an LSP document `uri` (`file:///a/b.inc` -> `/a/b.inc`, percent-escapes
    decoded); any other scheme's URI is returned unchanged."""
    u = urlparse(uri)
    return unquote(u.path) if u.scheme == "file" else uri


def build_server():
    """The pygls LanguageServer with incdsl's features (imported here: pygls is the lsp extra)."""
    from lsprotocol import types as t
    from pygls.lsp.server import LanguageServer

    from ..version import __version__

    server = LanguageServer("incdsl", __version__)
    state: dict[str, Analysis] = {}

    def lines_of(file: str) -> list[str]:
        """The text of `file` as the client sees it: its open buffer, else the file on disk."""
        doc = server.workspace.text_documents.get(Path(file).resolve().as_uri())
        if doc is None:
            from ..frontend.program import MAX_FILE_BYTES, read_regular
            try:  # regular files only, never blocking
                return read_regular(Path(file), MAX_FILE_BYTES).decode("utf-8", errors="replace").split("\n")
            except OSError:
                return []
        return doc.source.split("\n")

    def client_pos(lines: list[str], line: int, col: int):
        """0-based line and code-point column (a BOM dropped) -> the client's position units."""
        if line == 0 and lines and lines[0].startswith("\ufeff"):
            col += 1
        return server.workspace.position_codec.position_to_client_units(lines, t.Position(line, col))

    def rng(span: Span | None):
        if span is None:
            return t.Range(t.Position(0, 0), t.Position(0, 0))
        end = (span.end_line - 1, span.end_col - 1) if (span.end_line, span.end_col) > (span.line, span.col) \
            else (span.line - 1, span.col)
        lines = lines_of(span.file)
        return t.Range(client_pos(lines, span.line - 1, max(span.col - 1, 0)),
                       client_pos(lines, end[0], max(end[1], 0)))

    def server_pos(uri: str, pos) -> tuple[int, int]:
        """The client's position -> 1-based (line, code-point column) of the analysed text."""
        lines = server.workspace.get_text_document(uri).source.split("\n")
        p = server.workspace.position_codec.position_from_client_units(lines,
                                                                       t.Position(pos.line, pos.character))
        bom = p.line == 0 and lines and lines[0].startswith("\ufeff")
        return p.line + 1, max(p.character - bom, 0) + 1

    def location(span: Span):
        return t.Location(Path(span.file).resolve().as_uri(), rng(span))

    def roots() -> tuple[Path, ...]:
        folders = [path_of(f.uri) for f in server.workspace.folders.values()]
        if not folders and server.workspace.root_uri:
            folders = [path_of(server.workspace.root_uri)]
        return tuple(Path(f) for f in folders if Path(f).is_dir())

    def publish(uri: str) -> None:
        doc = server.workspace.get_text_document(uri)
        a = state[uri] = analyze(doc.source, path_of(uri), roots())
        diags = []
        for p in a.problems:
            inside = p.span is not None and same_file(p.span.file, a.path)
            # an error in another file: on the call site that led there, else the `use` line
            where = rng(p.span if inside else _anchor(p, doc.source.removeprefix("\ufeff"), a.path))
            related = [t.DiagnosticRelatedInformation(location(s), m) for m, s in p.notes if s is not None]
            msg = p.message
            if p.span is not None and not inside:
                msg = f"{p.span}: {msg}"
                related.insert(0, t.DiagnosticRelatedInformation(location(p.span), p.message.split("\n")[0]))
            msg += "".join(f"\nnote: {m}" for m, s in p.notes if s is None)
            diags.append(t.Diagnostic(where, msg, severity=t.DiagnosticSeverity.Warning if p.warning
                                      else t.DiagnosticSeverity.Error, source="incdsl",
                                      related_information=related or None))
        server.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=uri, diagnostics=diags))

    def guarded(fn):
        def run(ls, params):
            try:
                return fn(params)
            except Exception as e:  # never let one request stop the server
                ls.window_log_message(t.LogMessageParams(t.MessageType.Error,
                                                         f"incdsl: {type(e).__name__}: {e}"))
                return None
        run.__name__ = fn.__name__
        return run

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    @guarded
    def did_open(params):
        publish(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(params):
        publish(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_SAVE)
    @guarded
    def did_save(params):
        publish(params.text_document.uri)

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    @guarded
    def did_close(params):
        state.pop(params.text_document.uri, None)
        server.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                            diagnostics=[]))

    def current(uri: str) -> tuple[Analysis, str]:
        text = server.workspace.get_text_document(uri).source
        if uri not in state:
            state[uri] = analyze(text, path_of(uri), roots())
        return state[uri], text.removeprefix("\ufeff")

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    @guarded
    def hover(params):
        a, _ = current(params.text_document.uri)
        md = hover_text(a, *server_pos(params.text_document.uri, params.position))
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, md)) if md else None

    @server.feature(t.TEXT_DOCUMENT_DEFINITION)
    @guarded
    def goto(params):
        a, text = current(params.text_document.uri)
        hit = definition(a, text, *server_pos(params.text_document.uri, params.position))
        if hit is None:
            return None
        file, span = hit
        return t.Location(Path(file).resolve().as_uri(), rng(span) if span else rng(None))

    kinds = {"op": t.CompletionItemKind.Function, "module": t.CompletionItemKind.Module,
             "keyword": t.CompletionItemKind.Keyword, "argument": t.CompletionItemKind.Property}

    @server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=["(", ",", " "]))
    @guarded
    def complete(params):
        a, text = current(params.text_document.uri)
        items = completions(a, text, *server_pos(params.text_document.uri, params.position))
        return t.CompletionList(is_incomplete=False, items=[
            t.CompletionItem(label, kind=kinds[kind], detail=detail, documentation=doc or None)
            for label, kind, detail, doc in items])

    return server


def serve() -> None:
    """Run the server on stdin/stdout until the client exits. Input is framed by
    lsp_io.FrameReader (malformed messages are dropped, later ones answered); pygls writes to and
    at `exit` closes a duplicate of stdout, so the process's own stdout stays open for a clean exit."""
    import os
    import sys

    from .lsp_io import FrameReader

    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    build_server().start_io(stdin=FrameReader(sys.stdin.fileno()), stdout=out)
