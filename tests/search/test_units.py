"""Sizes (kB = 1024 B) and counts (M = 10⁶) as users type them."""

import pytest

from tinyjax.units import UnitError, format_bytes, format_count, parse_bytes, parse_count


@pytest.mark.parametrize("text, n", [
    ("320kB", 320 * 1024), ("320KiB", 320 * 1024), ("320KB", 320 * 1024), ("320k", 320 * 1024),
    ("0.5MB", 512 * 1024), ("1MiB", 1024 ** 2), ("2GB", 2 * 1024 ** 3), ("4096", 4096), ("100B", 100),
    (" 256 kB ", 256 * 1024),
])
def test_sizes_are_binary(text, n):
    assert parse_bytes(text) == n


@pytest.mark.parametrize("text, n", [
    ("100M", 100_000_000), ("1.2G", 1_200_000_000), ("500K", 500_000), ("25e6", 25_000_000),
    ("100m", 100_000_000), ("12345", 12345),
])
def test_counts_are_decimal(text, n):
    assert parse_count(text) == n


@pytest.mark.parametrize("parse, text, match", [
    (parse_bytes, "lots", "cannot read"), (parse_bytes, "-1MB", "positive"), (parse_bytes, "0kB", "positive"),
    (parse_bytes, "3 parsecs", "cannot read"), (parse_bytes, "0.1", "less than one"),
    (parse_count, "ten", "cannot read"), (parse_count, "0", "positive"), (parse_count, "1e999", "positive"),
    (parse_count, "100MB", "cannot read"), (parse_count, "nan", "cannot read"),
])
def test_bad_values_are_refused(parse, text, match):
    with pytest.raises(UnitError, match=match):
        parse(text)


def test_formats_read_back():
    assert format_bytes(320 * 1024) == "320.0 kB" and format_bytes(2 * 1024 ** 2) == "2.00 MB"
    assert format_count(99_536_432) == "99.54M" and format_count(1_200_000_000) == "1.200G"
