"""Human durations in recipes: "7h", "30min", "1h30m", "90s", or a number of seconds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {
    "d": 86400, "day": 86400, "days": 86400,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
}  # fmt: skip
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raise ValueError with the accepted forms on anything else."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '7h', '30min' or '90s'")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    text = str(value).strip().lower().replace(" ", "")
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"cannot read duration {value!r}: use e.g. '7h', '30min', '1h30m', '90s'")
    seconds = 0.0
    for number, unit in parts:
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in duration {value!r}")
        seconds += float(number) * _UNITS[unit]
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Format a timedelta the way recipes write it (e.g. '1h30m', '45s')."""
    total = value.total_seconds()
    whole = int(total)
    hours, rest = divmod(whole, 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    # keep what is below a second (1.5s, 0.001s): a saved recipe must read back the same
    seconds_text = f"{seconds + (total - whole):.6g}" if total != whole else str(seconds)
    return text + (f"{seconds_text}s" if seconds or total != whole or not text else "")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
