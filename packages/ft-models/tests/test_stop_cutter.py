"""Streamed text is cut at the first stop string, also when the stop string arrives split across
pieces; text that only looks like a stop string's start is released once it is not one."""

from hypothesis import given
from hypothesis import strategies as st

from ft_models.chat import StopCutter


def cut_whole(text: str, stops: tuple[str, ...]) -> str:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return text[:min(found)] if found else text


def test_a_stop_split_across_pieces_is_caught():
    cutter = StopCutter(("</answer>",))
    out = [cutter.feed(p) for p in ["Paris is", " the capital</ans", "wer> and more"]]
    assert out == ["Paris is", " the capital", ""] and cutter.stopped and cutter.flush() == ""


def test_a_false_start_is_released():
    cutter = StopCutter(("STOP",))
    assert cutter.feed("go ST") == "go " and cutter.feed("ILL") == "STILL" and cutter.flush() == ""
    cutter = StopCutter(("STOP",))
    assert cutter.feed("end S") == "end " and cutter.flush() == "S"  # the end of the text releases it


def test_a_longer_stop_that_starts_earlier_wins_when_it_completes():
    """Found by the property below: "<>" holds the stop ">" but may also be the start of "<><"."""
    cutter = StopCutter((">", "<><"))
    assert cutter.feed("<>") == "" and not cutter.stopped
    assert cutter.feed("<") == "" and cutter.stopped  # "<><" from 0: nothing before it
    cutter = StopCutter((">", "<><"))
    assert cutter.feed("a<>") == "a" and cutter.feed("b") == "<" and cutter.stopped  # not "<><": cut at ">"


def test_a_held_stop_is_cut_when_the_text_ends():
    """Found by the property below: "<b" holds the stop "b" because it may also start "<b<"; when
    the text ends there, "<b<" can no longer complete and "b" cuts."""
    cutter = StopCutter(("b", "<b<"))
    assert cutter.feed("<b") == "" and cutter.flush() == "<" and cutter.stopped


@given(st.text(alphabet="abc<>/", max_size=40), st.lists(st.integers(1, 40), max_size=8),
       st.lists(st.text(alphabet="abc<>/", min_size=1, max_size=4), max_size=3))
def test_any_split_gives_the_same_text_as_cutting_the_whole(text, cuts, stops):
    stops = tuple(stops)
    bounds = sorted({0, len(text), *[c for c in cuts if c < len(text)]})
    cutter = StopCutter(stops)
    streamed = "".join(cutter.feed(text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)) + cutter.flush()
    assert streamed == cut_whole(text, stops)
