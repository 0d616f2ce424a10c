import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifyd.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("2m", 120), ("1h30m", 5400), ("30d", 30 * 86400), ("850ms", 0.85), ("1w", 604800),
    ("1.5h", 5400), (" 5 s ", 5), (0, 0), (12, 12), (2.5, 2.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "5", "5x", "s", "1h 2", "-5s", True, None, [1], -1])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("text, size", [
    ("1MiB", 1048576), ("512KB", 512000), ("2048", 2048), ("1 GiB", 1024**3), (4096, 4096), ("10b", 10),
])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "1XB", "0", 0, -1, True, "MiB"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize("seconds, text", [(0.85, "850ms"), (30, "30s"), (120, "2m"), (5400, "1h30m"),
                                           (30 * 86400, "30d"), (90061, "1d1h")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@given(st.integers(min_value=1, max_value=10**7))
def test_format_then_parse_is_close(seconds):
    # format keeps the two largest units, so the round trip loses less than the second unit
    dropped = seconds - parse_duration(format_duration(seconds))
    bound = 3600 if seconds >= 86400 else 60 if seconds >= 3600 else 1
    assert 0 <= dropped < bound
