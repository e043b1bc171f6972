"""`incdsl compare SPEC [SPEC ...]`: params, MACs and depth of variants side by side, block by block."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ...errors import UsageError
from ...io import check_output
from .flag_values import parse_sweep, parse_variant
from .spec_args import add_spec_args, parse_sets

TEXT_BLOCKS_MAX = 8  # more variants than this make the per-block text table too wide to read


def add_parser(sub) -> None:
    """Add `incdsl compare SPEC [SPEC ...]` and its options to `sub` (the argparse subparsers of
    `cli.build_parser`); its handler is `run`."""
    p = sub.add_parser("compare", help="compare variants: params, MACs, depth, per block",
                       description="Compare specs and variants of them. Variants come from --variant, "
                       "--variants (every `variant` the spec declares) and the cartesian grid of --sweep; "
                       "--set applies to all. Deltas are against the first variant.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="the .inc files")
    add_spec_args(p, spec=False)
    p.add_argument("--sweep", metavar="NAME=V1,V2,...", action="append", default=[],
                   help="sweep a parameter over values, or START:STOP:STEP (repeatable: a grid)")
    p.add_argument("--variant", metavar="LABEL[:NAME=V,...]", action="append", default=[],
                   help="a labelled variant; a bare LABEL picks the spec's `variant LABEL(...)`")
    p.add_argument("--variants", action="store_true",
                   help="the defaults plus every variant the spec declares")
    p.add_argument("--depth", type=int, default=1, metavar="N",
                   help="compare module calls nested up to N deep (default 1: top-level blocks)")
    p.add_argument("--align", choices=("name", "position"), default="name",
                   help="match blocks across variants by name (default) or by position, for specs "
                        "that name the same blocks differently (mixed0 / Mixed_5b)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object: rows and blocks")
    fmt.add_argument("--csv", action="store_true", help="CSV of the variants (with --blocks: of the blocks)")
    fmt.add_argument("--markdown", action="store_true", help="markdown tables")
    p.add_argument("--blocks", action="store_true",
                   help=f"text/markdown: show the per-block tables even past {TEXT_BLOCKS_MAX} variants; "
                        "csv: print the per-block comparison instead of the variants")
    p.add_argument("--plot", metavar="FILE", help="draw params vs MACs (and, for two variants, "
                   "per-block deltas) to FILE.png or FILE.svg")
    p.add_argument("--progress", action="store_true", default=None,
                   help="show a progress bar on stderr (default: on large grids when stderr is a terminal)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `incdsl compare SPEC [SPEC ...]` with the parsed command line `args`; returns the exit code (0 when
    fine).

    Raises `UsageError` (exit 2) for a bad `--depth`, `--plot` name or sweep, `SpecError` (exit 1) for a
    variant that does not build.
    """
    from ...analysis import compare_out as out
    from ...analysis import sweep as cmp
    from ...network import Spec

    if args.depth < 1:
        raise UsageError("--depth must be at least 1")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".svg"):
        raise UsageError(f"--plot {args.plot}: the file must end in .png or .svg")
    sweeps = [parse_sweep(s) for s in args.sweep]
    variants = [parse_variant(v) for v in args.variant]
    sets = parse_sets(args.set)
    specs = [Spec(path, args.network) for path in args.specs]
    plan = cmp.plan(specs, sets, sweeps, variants, args.variants)
    if args.plot:  # before the work: never a spec, a link, a device... (io.check_output)
        check_output(args.plot, inputs=[f for spec in specs for f in spec.program.files])
    rows = cmp.measure_all(plan, args.depth, args.progress)
    blocks = cmp.align_blocks(rows, args.align)

    if args.plot:  # first, so a failure to draw leaves no half-printed report behind it
        from ...analysis.plot import plot_compare
        plot_compare(rows, blocks, args.plot)
    if args.json:
        # indented for reading; large sweeps compact (json's fast C encoder only runs without indent)
        print(json.dumps(out.to_json(rows, blocks), indent=1 if len(rows) <= 100 else None))
    elif args.csv:
        out.write_csv(rows, blocks if args.blocks else None, sys.stdout)
    else:
        show = blocks if (args.blocks or len(rows) <= TEXT_BLOCKS_MAX) else None
        render = out.to_markdown if args.markdown else out.to_text
        print(render(rows, show))
        if show is None:
            print(f"(per-block tables left out for {len(rows)} variants; --blocks shows them)")
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
