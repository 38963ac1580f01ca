import math

import numpy as np
import pytest

from netsim.units import UnitError, parse_bytes, parse_rate, parse_time


@pytest.mark.parametrize(
    "value, bits_per_s",
    [
        ("300Mbit/s", 300e6),
        ("1Gbit/s", 1e9),
        ("100Mbps", 100e6),
        ("10MB/s", 80e6),
        ("1.5 Gbps", 1.5e9),
        ("1e9", 1e9),
        ("64kbit/s", 64e3),
        ("2KiB/s", 2 * 1024 * 8),
        (" 5 Mb/s ", 5e6),
        (1e9, 1e9),
        (12, 12.0),
        (np.float32(2.5), 2.5),
    ],
)
def test_parse_rate(value, bits_per_s):
    assert parse_rate(value) == pytest.approx(bits_per_s, rel=1e-12)


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("5ms", 5e-3),
        ("0.58s", 0.58),
        ("20us", 20e-6),
        ("20µs", 20e-6),
        ("3ns", 3e-9),
        ("2min", 120.0),
        ("1h", 3600.0),
        ("0", 0.0),
        (0, 0.0),
        (1.25, 1.25),
    ],
)
def test_parse_time(value, seconds):
    assert parse_time(value) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    "value, nbytes",
    [
        ("1MB", 10**6),
        ("1MiB", 2**20),
        ("64KiB", 65536),
        ("1.5GB", 1_500_000_000),
        ("10kB", 10_000),
        ("100B", 100),
        ("4096", 4096),
        (0, 0),
        (1e6, 10**6),
    ],
)
def test_parse_bytes(value, nbytes):
    result = parse_bytes(value)
    assert result == nbytes and isinstance(result, int)


@pytest.mark.parametrize(
    "parse, value",
    [
        (parse_rate, "-1Gbit/s"),
        (parse_rate, 0),
        (parse_rate, "0Mbps"),
        (parse_rate, math.nan),
        (parse_rate, math.inf),
        (parse_rate, "fast"),
        (parse_rate, "100 furlongs/s"),
        (parse_rate, "100Mbit"),
        (parse_rate, None),
        (parse_rate, True),
        (parse_time, "-5ms"),
        (parse_time, -1),
        (parse_time, "5 parsecs"),
        (parse_time, "nan"),
        (parse_time, [5]),
        (parse_bytes, "-1MB"),
        (parse_bytes, "1Mb/s"),
        (parse_bytes, math.nan),
        (parse_bytes, "lots"),
    ],
)
def test_bad_values_raise_one_line_naming_the_value(parse, value):
    with pytest.raises(UnitError) as error:
        parse(value)
    message = str(error.value)
    assert isinstance(error.value, ValueError)
    assert "\n" not in message and repr(value) in message and "e.g." in message
