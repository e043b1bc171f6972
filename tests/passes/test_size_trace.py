"""Issue 28 item 3: a window that does not fit ends in notes that show where the size went (the
layers that shrank the map, with their arithmetic) and compare with the sizes of the same network
with pad=same pools, so the first place the two part is on screen; the "larger input" hint is not
the only guidance."""
import pytest

from incdsl.cli.main import main

from conftest import SPECS


def _googlenet_with_default_pools(tmp_path):
    """GoogLeNet as the issue's user wrote it from the paper's Table 1: specs/googlenet.inc with the
    pools' padding and rounding removed (`defaults maxpool(ceil=true)` gone: every maxpool at its
    default, pad=valid, floor) and Table 1's 7x7 average pool as the head."""
    text = (SPECS / "googlenet.inc").read_text()
    assert "  defaults maxpool(ceil=true)\n" in text and "output predictions = gap -> " in text
    text = text.replace("  defaults maxpool(ceil=true)\n", "")
    text = text.replace("output predictions = gap -> ", "output predictions = avgpool(7) -> flatten -> ")
    (tmp_path / "lib").mkdir()
    for f in (SPECS / "lib").glob("*.inc"):
        (tmp_path / "lib" / f.name).write_text(f.read_text())
    path = tmp_path / "googlenet.inc"
    path.write_text(text)
    return path


def test_googlenet_with_default_pools_shows_where_the_size_went(tmp_path, capsys):
    path = _googlenet_with_default_pools(tmp_path)
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[
        0] == (f"{path}:53:26: error: avgpool output would be 0x0: the 7x7 window does not fit the 6x6 input")
    assert ("note: where the size went: 224x224 -> 112x112 -> 55x55 -> 27x27 -> 13x13 -> 6x6 "
            "(the last 4 steps below)") in lines
    # each shrinking layer with its arithmetic and its place
    assert (
        f"note: pool1 (maxpool) 112x112 -> 55x55: floor((112 - 3) / 2) + 1 = 55 with pad=valid ({path}:33:11)"
        in lines
    )
    assert f"note: pool4 (maxpool) 13x13 -> 6x6: (13 - 3) / 2 + 1 = 6 with pad=valid ({path}:48:11)" in lines
    assert (
        f"note: pool2 (maxpool) 55x55 -> 27x27: (55 - 3) / 2 + 1 = 27 with pad=valid ({path}:38:11)" in lines
    )
    assert len(lines) <= 12  # one screen
    # the comparison with pad=same pools: the first place they part, and that the head then fits
    assert (f"note: with pad=same pools this network would differ first at pool1: 56x56 instead of 55x55, "
            f"and this avgpool would get 7x7 and fit ({path}:33:11)") in lines
    hint = [line for line in lines if line.startswith("hint: ")]
    assert len(hint) == 1 and "pad=same" in hint[0] and "pool1, pool2, pool3, pool4" in hint[0]
    assert "hint: use pad=same, a smaller kernel, or a larger input" not in lines  # the misleading one alone
    assert "Traceback" not in err


def test_following_the_new_hint_builds_the_papers_network(tmp_path, capsys):
    path = _googlenet_with_default_pools(tmp_path)
    text = path.read_text()
    assert "  input(size, channels)\n" in text
    path.write_text(text.replace("  input(size, channels)\n",
                                 "  defaults maxpool(pad=same)\n  input(size, channels)\n"))
    assert main(["check", str(path)]) == 0
    import incdsl
    net = incdsl.load(str(path))
    assert net.shapes["pool4"] == (7, 7, 832) and net.outputs["predictions"] == (1000,)
    # the paper's figures (Table 1): the same params as the shipped spec, which rounds up instead
    assert net.count_params() == incdsl.load(str(SPECS / "googlenet.inc")).count_params()


def test_inception_v3_too_small_keeps_the_size_hint_and_lists_the_route(capsys):
    """Where pad=same pools would not rescue the network (Inception v3 at 64x64 pads valid on
    purpose), the notes still show the route and the hint stays the general one."""
    assert main(["check", str(SPECS / "inception_v3.inc"), "--set", "size=64"]) == 1
    err = capsys.readouterr().err
    assert ("note: where the size went: 64x64 -> 31x31 -> 29x29 -> 14x14 -> 12x12 -> 5x5 -> 2x2 "
            "(the last 4 steps below)") in err
    assert "note: the smallest input this network accepts is 75x75 (this one is 64x64)" in err
    assert "hint: use pad=same, a smaller kernel, or a larger input" in err
    assert len(err.splitlines()) <= 12


@pytest.mark.parametrize("size", ["100", "224x100"])
def test_a_network_too_small_even_with_same_pools_gets_no_false_fit(tmp_path, capsys, size):
    """The same GoogLeNet at 100x100 (or 224x100) is too small whatever its pools do: the note must
    not say that pad=same pools make the failing avgpool fit (the failing layer itself made `same`
    once counted as one of those pools), and the hint stays the general one."""
    path = _googlenet_with_default_pools(tmp_path)
    assert main(["check", str(path), "--set", "aux=false", "--set", f"size={size}"]) == 1
    err = capsys.readouterr().err
    assert " and fit" not in err and "would only hide the cause" not in err, err
    assert "hint: use pad=same, a smaller kernel, or a larger input" in err
    # and that advice is right: with pad=same pools it still does not fit
    text = path.read_text()
    path.write_text(text.replace("  input(size, channels)\n",
                                 "  defaults maxpool(pad=same)\n  input(size, channels)\n"))
    assert main(["check", str(path), "--set", "aux=false", "--set", f"size={size}"]) == 1
    assert "does not fit" in capsys.readouterr().err


def _check_err(cli, spec_file, lines: str) -> list[str]:
    code, out, err = cli("check", spec_file("network t() {\n" + lines + "}\n"))
    assert code == 1 and out == ""
    return [line.split(" (/")[0] for line in err.splitlines()]  # the notes without their places


def test_only_strided_floor_pools_are_the_suspects_on_a_non_square_map(cli, spec_file):
    """A stride-1 pool and a ceil-mode pool shrink the map too, but they are not the strided floor
    rounding the hint is about (the ceil-mode pool already rounds up): only the strided floor pool
    is named. Hand-worked: 40x24 -> conv 3x3/2 valid 19x11
    -> pool 3/1 17x9 -> pool 2/2 ceil 9x5 -> pool 3/2 4x2, where a 3x3 valid conv does not fit;
    with that last pool `same`: ceil(9/2) x ceil(5/2) = 5x3, where it does."""
    err = _check_err(cli, spec_file,
                     "  input 40x24x3\n  conv(4, 3, stride=2, pad=valid)\n  maxpool(3, stride=1)\n"
                     "  maxpool(2, stride=2, ceil=true)\n  maxpool(3, stride=2)\n  conv(4, 3, pad=valid)\n")
    assert "note: where the size went: 40x24 -> 19x11 -> 17x9 -> 9x5 -> 4x2" in err  # four steps: all shown
    assert [line.split(": ")[1] for line in err if " (conv) " in line or " (maxpool) " in line] == [
        "conv_1 (conv) 40x24 -> 19x11", "maxpool_1 (maxpool) 19x11 -> 17x9",
        "maxpool_2 (maxpool) 17x9 -> 9x5", "maxpool_3 (maxpool) 9x5 -> 4x2"]
    assert ("note: with pad=same pools this network would differ first at maxpool_3: 5x3 instead of 4x2, "
            "and this conv would get 5x3 and fit") in err
    assert any(line.startswith("hint: the pools shrink the map (maxpool_3 pad valid, rounding down)")
               for line in err)


@pytest.mark.parametrize("kernel, fits", [(7, True), (8, False)])
def test_many_pools_are_listed_four_and_the_route_ends_with_the_last_four_steps(cli, spec_file, kernel, fits):
    """Five 2/2 floor pools on 200x200: 100, 50, 25, 12, 6; with pad=same: 100, 50, 25, 13, 7."""
    err = _check_err(cli, spec_file, "  input 200x200x3\n" + "  maxpool(2, stride=2)\n" * 5
                     + f"  conv(4, {kernel}, pad=valid)\n")
    assert ("note: where the size went: 200x200 -> 100x100 -> 50x50 -> 25x25 -> 12x12 -> 6x6 "
            "(the last 4 steps below)") in err
    assert [line.split(":")[1] for line in err if line.startswith("note: maxpool_")] == [
        " maxpool_2 (maxpool) 100x100 -> 50x50", " maxpool_3 (maxpool) 50x50 -> 25x25",
        " maxpool_4 (maxpool) 25x25 -> 12x12", " maxpool_5 (maxpool) 12x12 -> 6x6"]
    note = ("note: with pad=same pools this network would differ first at maxpool_4: 13x13 instead of 12x12, "
            "and this conv would get 7x7")
    assert (note + " and fit" if fits else note) in err
    hint = [line for line in err if line.startswith("hint: ")]
    if fits:
        assert hint == ["hint: the pools shrink the map (maxpool_1, maxpool_2, maxpool_3, maxpool_4, ... pad "
                        "valid, rounding down): give them pad=same (or ceil=true, as Caffe's GoogLeNet); a "
                        "larger input or a smaller window here would only hide the cause"]
    else:
        assert hint == ["hint: use pad=same, a smaller kernel, or a larger input"]


def test_four_pools_are_all_named_and_a_step_without_arithmetic_says_none(cli, spec_file):
    # four 2/2 floor pools on 100x100: 50, 25, 12, 6 (same: 13, 7, where a 7x7 window fits)
    err = _check_err(cli, spec_file, "  input 100x100x3\n" + "  maxpool(2, stride=2)\n" * 4
                     + "  conv(4, 7, pad=valid)\n")
    assert "note: where the size went: 100x100 -> 50x50 -> 25x25 -> 12x12 -> 6x6" in err  # no "last 4"
    assert any(
        line.startswith("hint: the pools shrink the map (maxpool_1, maxpool_2, maxpool_3, maxpool_4 pad "
                               "valid, rounding down)") for line in err)
    # adaptive pooling's size is its argument: its step has no arithmetic after it
    err = _check_err(cli, spec_file, "  input 16x16x3\n  adaptive_avgpool(4)\n  conv(4, 7, pad=valid)\n")
    assert "note: adaptive_avgpool_1 (adaptive_avgpool) 16x16 -> 4x4" in err


def test_a_pool_off_the_trunk_is_not_compared(cli, spec_file):
    """A valid strided pool that pad=same would change (6x6 -> 2x2; same: 3x3) sits on a side output,
    not on the failing conv's trunk: the sizes on the trunk are the same either way, so no pad=same
    comparison is shown and the default hint stands."""
    err = _check_err(cli, spec_file,
                     "  input 13x13x3\n  stem = conv(4, 3, stride=2, pad=valid)\n"
                     "  output side = stem -> maxpool(3, stride=2) -> gap -> dense(2)\n"
                     "  output main = stem -> conv(4, 7, pad=valid) -> gap -> dense(2)\n")
    assert "note: where the size went: 13x13 -> 6x6" in err
    assert not [line for line in err if "pad=same pools" in line]
    assert [line for line in err if line.startswith("hint: ")] == [
        "hint: use pad=same, a smaller kernel, or a larger input"]
