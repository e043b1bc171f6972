"""Print the mutation score per module from a mutmut 3 run (tools/mutation.sh calls it).

Reads mutmut's result files (`mutants/<module>.py.meta`: exit code per mutant) under the scratch
directory given as the first argument and classifies each exit code as mutmut does
(`mutmut.stats.status_by_exit_code`). Killed = a test failed, timed out or crashed on the mutant;
survived = all its tests passed; no tests = no selected test reaches the mutated function; not
run = not checked yet, skipped or suspicious. The score is killed / (killed + survived + no tests), in
percent, per module and in total.
Usage: python tools/mutation_score.py SCRATCH_DIR [--survivors | --names]
       python tools/mutation_score.py --config tools/mutation.cfg GROUP   (prints GROUP's setup.cfg)
"""
from __future__ import annotations

import configparser
import io
import json
import sys
from pathlib import Path

from mutmut.stats import status_by_exit_code

CAUGHT = {"killed", "timeout", "segfault", "caught by type check"}


def tally(root: Path) -> dict[str, dict[str, list[str]]]:
    """{module path: {"killed"|"survived"|"no tests"|"not run": [mutant names]}} from `root`/mutants."""
    out: dict[str, dict[str, list[str]]] = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        module = str(meta.relative_to(root / "mutants"))[:-len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        kinds = out.setdefault(module, {"killed": [], "survived": [], "no tests": [], "not run": []})
        for name, code in codes.items():
            status = status_by_exit_code[code]
            kind = ("killed" if status in CAUGHT else status if status in ("survived", "no tests")
                    else "not run")
            kinds[kind].append(name)
    return out


def group_config(path: Path, group: str) -> str:
    """The setup.cfg text mutmut reads for `group` of tools/mutation.cfg: its [common] keys
    overridden by the group's own, as a [mutmut] section. Raises KeyError for an unknown group."""
    cfg = configparser.ConfigParser()
    cfg.read(path)
    if group not in cfg or group == "common":
        raise KeyError(
            f"no group {group!r} in {path}; groups: {', '.join(s for s in cfg.sections() if s != 'common')}")
    out = configparser.ConfigParser()
    section = {**cfg["common"], **cfg[group]}
    # pytest's --deselect for each test the group leaves out, after the common pytest arguments
    deselect = [t for t in section.pop("deselect", "").split("\n") if t]
    if deselect:
        section["pytest_add_cli_args"] += "".join(f"\n--deselect\n{t}" for t in deselect)
    out["mutmut"] = section
    buf = io.StringIO()
    out.write(buf)
    return buf.getvalue()


def main(argv: list[str]) -> int:
    """Print one line per module and a total; with --survivors, the surviving mutants' names.
    With --config CFG GROUP, print GROUP's setup.cfg instead."""
    if argv[:1] == ["--config"]:
        try:
            print(group_config(Path(argv[1]), argv[2]), end="")
        except KeyError as e:
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 2
        return 0
    root = Path(argv[0])
    table = tally(root)
    if "--names" in argv:  # the survivors (and unreached) alone, for `mutmut run NAME...` to retest
        print("\n".join(n for k in table.values() for n in k["survived"] + k["no tests"]))
        return 0
    if not table:
        print(f"no mutmut results under {root}/mutants", file=sys.stderr)
        return 1
    print(f"{'module':44} {'killed':>7} {'survived':>8} {'no tests':>8} {'not run':>7} {'score':>7}")
    totals = [0, 0, 0, 0]
    for module, k in table.items():
        n = [len(k["killed"]), len(k["survived"]), len(k["no tests"]), len(k["not run"])]
        totals = [a + b for a, b in zip(totals, n)]
        judged = n[0] + n[1] + n[2]
        score = f"{100 * n[0] / judged:6.1f}%" if judged else "     -"
        print(f"{module:44} {n[0]:7} {n[1]:8} {n[2]:8} {n[3]:7} {score:>7}")
    judged = sum(totals[:3])
    print(f"{'total':44} {totals[0]:7} {totals[1]:8} {totals[2]:8} {totals[3]:7} "
          f"{100 * totals[0] / judged if judged else 0:6.1f}%")
    if "--survivors" in argv:
        for module, k in table.items():
            for name in k["survived"] + k["no tests"]:
                print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
