"""Progress output away from a terminal: a few plain lines, never carriage-return bars."""
import io

from tqdm.auto import tqdm

from common import progress
from common.progress import LineBar


def _bar(total, every_s=30.0, initial=0):
    now, out = [0.0], io.StringIO()
    return LineBar(total, "run", "steps", initial=initial, every_s=every_s, file=out, clock=lambda: now[0]), now, out


def test_line_bar_prints_a_line_per_tenth():
    bar, now, out = _bar(1000, every_s=5)
    for _ in range(1000):
        now[0] += 0.01
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in out.getvalue()
    assert lines[0] == "run: 100/1000 steps (10%), 0:01 elapsed, ~0:09 left"
    assert lines[-1] == "run: 1000/1000 steps (100%), 0:10 elapsed"


def test_line_bar_prints_every_interval_when_slow_and_the_end_once():
    bar, now, out = _bar(1000, every_s=30)
    for _ in range(4):
        now[0] += 31
        bar.update()
    assert len(out.getvalue().splitlines()) == 4
    bar.set_postfix(loss="0.5")
    now[0] += 1
    bar.update(96)  # a new tenth 1 s after the last line (under 30 / 10 s): no line
    assert len(out.getvalue().splitlines()) == 4
    now[0] += 10
    bar.update()  # 11 s after the last line: the new tenth is printed now
    now[0] += 1
    bar.update()  # the same tenth: no line
    bar.close()  # the last state, once
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[4:] == ["run: 101/1000 steps (10%), 2:15 elapsed, ~20:02 left, loss 0.5",
                         "run: 102/1000 steps (10%), 2:16 elapsed, ~19:57 left, loss 0.5"]


def test_line_bar_resumed_counts_its_rate_from_where_it_started():
    bar, now, out = _bar(100, initial=50)
    now[0] += 10
    bar.update(10)
    assert out.getvalue() == "run: 60/100 steps (60%), 0:10 elapsed, ~0:40 left\n"


def test_bar_is_plain_lines_without_a_terminal_and_nothing_when_disabled(capsys):
    assert not progress.interactive()  # pytest captures stderr
    assert isinstance(progress.bar(10, "x"), LineBar)
    assert not progress.live(True) and not progress.live(False)
    off = progress.bar(10, "x", enabled=False)
    assert isinstance(off, tqdm) and off.disable
    off.update(10)
    off.close()
    assert capsys.readouterr().err == ""
