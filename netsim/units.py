"""Human unit strings ("300Mbit/s", "5ms", "64KiB") parsed once, at the edge, into SI.

Inside netsim every rate is bits/s, every duration seconds and every size bytes; numbers
given by the user are taken to be in those units already.
"""

import math
import numbers
import re

_NUMBER_UNIT = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*")

# Decimal SI prefixes (k and K both mean 1e3) and binary IEC prefixes.
_PREFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_PREFIXES |= {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}

# Lower-case b is bits and upper-case B is bytes, as in "Mbps" vs "MB/s". A bare number
# is in the SI unit already.
_RATE_UNITS = {"": 1.0} | {
    prefix + base: scale * bits
    for prefix, scale in _PREFIXES.items()
    for base, bits in [("bit/s", 1), ("b/s", 1), ("bps", 1), ("B/s", 8), ("Bps", 8)]
}
_TIME_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_TIME_UNITS |= {"min": 60.0, "h": 3600.0}
_BYTE_UNITS = {"": 1.0} | {prefix + "B": scale for prefix, scale in _PREFIXES.items()}


class UnitError(ValueError):
    """A value that is not a valid rate, duration or byte count."""


def _parse(value, units, what: str, example: str, positive=False, name=None) -> float:
    """Value in SI units: finite, and positive or non-negative. ``name``: the setting it is,
    for the error."""
    number = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        match = _NUMBER_UNIT.fullmatch(value)
        if match and match.group(2) in units:
            number = float(match.group(1)) * units[match.group(2)]
    if number is None or not (0 < number if positive else 0 <= number) or number == math.inf:
        rule = "positive" if positive else "non-negative"
        where = f"{name}: " if name else ""
        raise UnitError(f"{where}invalid {what} {value!r}: use a {rule} {what}, e.g. {example!r}")
    return number


def parse_rate(value, name: str | None = None) -> float:
    """Bits/s from a positive number or a string like "100Mbit/s", "1.5 Gbps", "10MB/s"."""
    return _parse(value, _RATE_UNITS, "rate", "100Mbit/s", positive=True, name=name)


def parse_time(value, name: str | None = None) -> float:
    """Seconds from a non-negative number or a string like "5ms", "20us", "2min"."""
    return _parse(value, _TIME_UNITS, "duration", "5ms", name=name)


def parse_bytes(value, name: str | None = None) -> int:
    """Bytes from a non-negative number or a string like "1MB" (1e6), "64KiB" (65536)."""
    return round(_parse(value, _BYTE_UNITS, "size", "64KiB", name=name))
