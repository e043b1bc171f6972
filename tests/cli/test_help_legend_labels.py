"""Issue 28 item 6: small things, each seen. `train --help` states the defaults; the compare plot
names the labels it leaves out, with the right plural, after placing the Pareto labels first; the
html page explains dashed boxes only for a network that has training-only heads."""
import incdsl
from incdsl.backends.html import to_html
from incdsl.cli.main import main

from conftest import SPECS

LEGEND = "training only (not in the inference model)"


def test_train_help_shows_the_defaults(capsys):
    try:
        main(["train", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for flag, default in [("--epochs N", 10), ("--batch-size N", 32), ("--optimizer", "sgd"), ("--seed N", 0),
                          ("--precision", "float32"), ("--label-smoothing X", 0.0), ("--weight-decay X", 0.0),
                          ("--preprocess", "inception"), ("--strategy", "default")]:
        start = out.index(flag + " ", out.index("options:"))
        assert "(default" in out[start:start + 400] and str(default) in out[start:start + 400], flag
    assert "(default: 10)" in out
    assert "(default: None)" not in out and "(default: [])" not in out and "(default: False)" not in out


def test_html_legend_only_for_networks_with_training_only_heads():
    without = incdsl.load(str(SPECS / "googlenet.inc"), aux=False)
    assert not any(without.is_train_only(n) for n in without.layers)
    assert LEGEND not in to_html(without)
    with_aux = incdsl.load(str(SPECS / "googlenet.inc"), aux=True)
    assert any(with_aux.is_train_only(n) for n in with_aux.layers)
    assert LEGEND in to_html(with_aux)


class _Placed:
    def __init__(self, text):
        self.text = text

    def get_text(self):
        return self.text


def test_left_out_note_plural_and_names():
    from incdsl.analysis.plot import left_out_note
    assert left_out_note(["a", "b", "c"],
                         [_Placed("a"), _Placed("c")]) == "1 label left out where it would overlap: b"
    assert left_out_note(["a", "b", "c"],
                         [_Placed("a")]) == "2 labels left out where they would overlap: b, c"


def test_compare_plot_names_what_it_leaves_out_and_labels_the_front_first():
    """The crowded 26-variant width sweep of inception_v3: the title names each label left out,
    never the Pareto front's."""
    from incdsl.analysis.plot import compare_figure
    from incdsl.analysis.sweep import align_blocks, measure_all, pareto, plan

    spec = incdsl.network.Spec(SPECS / "inception_v3.inc")
    widths = [f"{w / 100:g}" for w in range(25, 151, 5)]
    rows = measure_all(plan([spec], sweeps=[("width", widths)]), 1, False)
    fig, placed = compare_figure(rows, align_blocks(rows))
    shown = {a.get_text() for a in placed}
    left = [r.label for r in rows if r.label not in shown]
    assert left, "the case must leave some label out to test the note"
    title = " ".join(fig.axes[0].get_title().split())
    n = len(left)
    assert (
        f"{n} label{'s' if n != 1 else ''} left out where {'they' if n != 1 else 'it'} would overlap" in title
    )
    assert all(name in title for name in left)
    assert "1 labels" not in title
    assert all(rows[i].label in shown for i in pareto(rows))


def test_left_out_note_names_every_label_however_many():
    """Eight labels left out: each is named (the note once said "and 2 more")."""
    from incdsl.analysis.plot import left_out_note
    labels = [f"width={w / 10}" for w in range(1, 11)]

    class Placed:
        def __init__(self, text):
            self.text = text

        def get_text(self):
            return self.text
    note = left_out_note(labels, [Placed(labels[0]), Placed(labels[1])])
    assert note.startswith("8 labels left out where they would overlap: ")
    assert all(t in note for t in labels[2:]) and "more" not in note
