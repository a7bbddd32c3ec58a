"""Progress output away from a terminal: a few plain lines, never carriage-return bars."""
import io

from tqdm.auto import tqdm

from engine import progress
from engine.progress import LineBar


def _bar(total, every_s=30.0, initial=0):
    now, out = [0.0], io.StringIO()
    return LineBar(total, "run", "steps", initial=initial, every_s=every_s, file=out, clock=lambda: now[0]), now, out


def test_line_bar_prints_a_line_per_tenth():
    bar, now, out = _bar(1000)
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
    bar.set_postfix(loss="0.5")
    now[0] += 10
    bar.update()  # 10 s after the last line, same tenth: no line
    assert len(out.getvalue().splitlines()) == 4
    bar.close()  # the unprinted last state, once
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1] == "run: 5/1000 steps (0%), 2:14 elapsed, ~7:24:26 left, loss 0.5"


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
