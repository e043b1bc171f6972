"""`incdsl explore SPEC --data DIR --sweep NAME=V1,V2 ...`: train a sweep of variants on Ray Tune and
compare what they learn (incdsl/explore/); `--resume DIR` continues one, `--show DIR` prints it again."""
from __future__ import annotations

from ...errors import UsageError
from ...train import OPTIMIZERS, PRECISIONS, PREPROCESS
from .flag_values import parse_budget, parse_sweep
from .help_format import DefaultsHelpFormatter
from .spec_args import add_spec_args, parse_sets
from .train import bn_batches


def add_parser(sub) -> None:
    """Add `incdsl explore` and its options to `sub` (the argparse subparsers of `cli.build_parser`); its
    handler is `run`."""
    p = sub.add_parser(
        "explore",
        formatter_class=DefaultsHelpFormatter,
        help="train a sweep of variants on Ray Tune and compare their accuracy, params and MACs",
        description="Each variant (the grid of --sweep, or its Pareto set under --params/--macs as "
        "`incdsl fit` finds it) is one Ray Tune trial trained as `incdsl train` trains it. Writes the "
        "experiment folder (-o): each trial's models and log, results.csv, results.json, results.png. "
        "Needs the [explore] extra (Ray Tune).",
    )
    p.add_argument("spec", nargs="?", help="the .inc file")
    add_spec_args(p, spec=False)
    p.add_argument("--data", metavar="DIR|synthetic",
                   help="an image folder with one sub-folder per class, or 'synthetic'")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="the experiment folder (default: explore-SPEC-TIME, new)")
    p.add_argument("--sweep", metavar="NAME=V1,V2,...", action="append", default=[],
                   help="sweep a parameter over values, or START:STOP:STEP (repeatable: a grid)")
    p.add_argument("--params", metavar="N",
                   help="with --sweep: only the grid's Pareto set with at most N params (10M)")
    p.add_argument("--macs", metavar="N",
                   help="with --sweep: only the grid's Pareto set with at most N MACs per image (2G)")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the interrupted experiment in DIR (finished trials are kept)")
    p.add_argument("--show", metavar="DIR", help="print the results of the experiment in DIR again")
    where = p.add_argument_group("where it runs (default: a local Ray with this machine's CPUs and GPUs)")
    where.add_argument = _recording(where.add_argument)
    where.add_argument("--address", metavar="auto|HOST:PORT", help="a running Ray cluster (ray start --head)")
    where.add_argument("--cpus-per-trial", type=float, metavar="N", help="CPUs per trial (default 1)")
    where.add_argument("--gpus-per-trial", type=float, metavar="N",
                       help="GPUs per trial (default 1 where Ray sees one, else 0)")
    where.add_argument("--max-concurrent", type=int, metavar="N",
                       help="trials side by side at most (default: as resources allow)")
    where.add_argument("--max-failures", type=int, default=3, metavar="N",
                       help="retries of a trial whose process or node died, from its last epoch")
    where.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo",
                       help="asha: Tune's ASHAScheduler stops weak variants early")
    where.add_argument("--grace-period", type=int, default=1, metavar="EPOCHS",
                       help="asha: epochs before a variant may be stopped")
    train = p.add_argument_group("training (as incdsl train)")
    train.add_argument = _recording(train.add_argument)
    train.add_argument("--epochs", type=int, default=10, metavar="N")
    train.add_argument("--batch-size", type=int, default=32, metavar="N")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    train.add_argument("--lr", type=float,
                       help="initial learning rate (default: sgd 0.01, rmsprop 0.045, adam 0.001)")
    train.add_argument("--label-smoothing", type=float, default=0.0, metavar="X")
    train.add_argument("--weight-decay", type=float, default=0.0, metavar="X")
    train.add_argument("--precision", choices=PRECISIONS, default="float32")
    train.add_argument("--val-split", type=float, metavar="X", help="held-out fraction (default 0.1)")
    train.add_argument("--preprocess", choices=PREPROCESS, default="inception")
    train.add_argument("--no-augment", dest="augment", action="store_false", help="no random flips")
    train.add_argument("--seed", type=int, default=0, metavar="N")
    train.add_argument("--bn-recalibrate", type=bn_batches, default="auto", metavar="N|off",
                       help="precise batch norm before each validation and at the end (as incdsl train)")
    p.set_defaults(run=run, given_flags=())


def _recording(add_argument):
    """`add_argument` of a group whose flags note themselves in `given_flags` (`_record_given`)."""
    def add(*names, **options):
        action = add_argument(*names, **options)
        _record_given(action)
        return action
    return add


def _record_given(action) -> None:
    """Make `action` note its flag in the namespace's `given_flags` when the command line gives it
    (even at its default value): `--resume` and `--show` take the experiment's own settings and refuse
    a training or resource flag rather than ignore it."""
    base = type(action)

    class Given(base):
        def __call__(self, parser, namespace, values, option_string=None):
            namespace.given_flags = tuple(getattr(namespace, "given_flags", ())) + (option_string,)
            super().__call__(parser, namespace, values, option_string)
    Given.__name__ = base.__name__
    action.__class__ = Given


def run(args) -> int:
    """Run `incdsl explore` with the parsed command line `args`; returns the exit code (0 when fine,
    130 when interrupted: `--resume` continues). Raises `UsageError` (exit 2) for flags that do not
    go together or bad values, `SpecError` (exit 1) for a variant that does not build."""
    modes = [m for m in ("resume", "show") if getattr(args, m)]
    if len(modes) > 1:
        raise UsageError("--resume and --show do not go together")
    if modes:
        if args.spec or args.data or args.sweep or args.set or args.output:
            raise UsageError(
                f"--{modes[0]} DIR takes the experiment's own settings; leave out the spec, --data, "
                             "--sweep, --set and -o")
        allowed = ("--address",) if args.resume else ()
        ignored = list(dict.fromkeys(f for f in args.given_flags if f not in allowed))
        if ignored:
            raise UsageError(
                f"--{modes[0]} DIR takes the experiment's own settings (its explore.json): leave out "
                f"{', '.join(ignored)}" + (
                    " (only --address may change where it runs)" if args.resume else ""))
        from ...explore.experiment import resume_experiment, show_experiment
        if args.show:
            show_experiment(args.show)
            return 0
        _, interrupted = resume_experiment(args.resume, args.address)
        return 130 if interrupted else 0
    if not args.spec or not args.data:
        raise UsageError("give a spec and --data DIR (or --resume DIR, --show DIR)")
    sweeps = [parse_sweep(s) for s in args.sweep]
    names = [n for n, _ in sweeps]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UsageError(f"--sweep {dup} is given twice; list all its values in one --sweep")
    from ...explore import ExploreConfig
    from ...explore.experiment import run_experiment
    from ...explore.folder import default_output
    config = ExploreConfig(  # refuses values out of range (OptionError; incdsl.cli.main words it with flags)
        spec=args.spec, data=args.data, output=args.output or str(default_output(args.spec)),
        sweep=dict(sweeps),
        sets=parse_sets(args.set), network=args.network,
        params=parse_budget(args.params, "--params") if args.params else None,
        macs=parse_budget(args.macs, "--macs") if args.macs else None,
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        label_smoothing=args.label_smoothing, weight_decay=args.weight_decay, precision=args.precision,
        val_split=args.val_split, preprocess=args.preprocess, augment=args.augment, seed=args.seed,
        bn_recalibrate=args.bn_recalibrate,
        address=args.address, cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
        max_concurrent=args.max_concurrent, scheduler=args.scheduler, grace_period=args.grace_period,
        max_failures=args.max_failures)
    _, interrupted = run_experiment(config)
    return 130 if interrupted else 0
