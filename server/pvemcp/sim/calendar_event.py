"""Calendar events (the ``schedule`` of backup jobs) and their next occurrence.

pve-manager ``PVE/API2/Backup.pm`` (``index``) computes a job's ``next-run`` as
``Proxmox::RS::CalendarEvent->new($schedule)->compute_next_event(time())``; the format is the subset of
systemd calendar events that the ``proxmox-time`` crate parses:

* ``[WEEKDAYS] [[YYYY-]MM-DD] [[HH:]MM[:SS]]`` — weekdays as names (``mon``, ``mon..fri``, ``sat,sun``);
  date and time components as ``*``, numbers, lists (``1,15``), ranges (``8..17``) and repetitions
  (``0/15``, ``*/5``, ``8..17/2``); a missing time means ``00:00``, missing seconds mean ``:00``, a
  time without ``:`` names minutes of every hour (``*/15``);
* the keywords ``minutely``, ``hourly``, ``daily``, ``weekly``, ``monthly``, ``yearly``/``annually``,
  ``quarterly`` and ``semiannually``.

The next event is the first matching second strictly after the given time, in the node's local time (the
simulated nodes run on UTC). A text this parser does not understand has no next event (``None``); the
API's own validation of the ``pve-calendar-event`` format is not repeated here.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_KEYWORDS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "weekly": "mon *-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
}
_SEARCH_YEARS = 10


@dataclass(frozen=True)
class CalendarEvent:
    """A parsed calendar event: the allowed values of each component (``None`` = any)."""

    weekdays: frozenset[int] | None
    years: frozenset[int] | None
    months: frozenset[int] | None
    days: frozenset[int] | None
    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]

    def matches_day(self, day: dt.date) -> bool:
        return (
            (self.weekdays is None or day.weekday() in self.weekdays)
            and (self.years is None or day.year in self.years)
            and (self.months is None or day.month in self.months)
            and (self.days is None or day.day in self.days)
        )


def _values(text: str, lo: int, hi: int) -> frozenset[int] | None:
    """One component: ``*`` (None), or the union of its comma-separated numbers, ranges and repetitions."""
    if text == "*":
        return None
    out: set[int] = set()
    for item in text.split(","):
        m = re.fullmatch(r"(\*|\d+)(?:\.\.(\d+))?(?:/(\d+))?", item)
        if m is None:
            raise ValueError(f"invalid calendar component '{item}'")
        start = lo if m.group(1) == "*" else int(m.group(1))
        end = int(m.group(2)) if m.group(2) else (hi if m.group(3) or m.group(1) == "*" else start)
        step = int(m.group(3)) if m.group(3) else 1
        if step == 0 or start > end or start < lo or end > hi:
            raise ValueError(f"invalid calendar component '{item}'")
        out.update(range(start, end + 1, step))
    return frozenset(out)


def _weekdays(text: str) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split(","):
        first, _, last = item.partition("..")
        a = _WEEKDAYS.index(first[:3])
        b = _WEEKDAYS.index(last[:3]) if last else a
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return frozenset(out)


def _all(values: frozenset[int] | None, lo: int, hi: int) -> tuple[int, ...]:
    return tuple(sorted(values)) if values is not None else tuple(range(lo, hi + 1))


def parse(text: str) -> CalendarEvent:
    """Parse a calendar event; ``ValueError`` when the text is not one this simulator understands."""
    spec = _KEYWORDS.get(text.strip().lower(), text.strip().lower())
    tokens = spec.split()
    weekdays = None
    if tokens and re.match(r"^(mon|tue|wed|thu|fri|sat|sun)", tokens[0]):
        try:
            weekdays = _weekdays(tokens.pop(0))
        except ValueError as exc:
            raise ValueError(f"invalid weekday in '{text}'") from exc
    years = months = days = None
    if tokens and "-" in tokens[0] and ":" not in tokens[0]:
        parts = tokens.pop(0).split("-")
        if len(parts) == 3:
            years = _values(parts[0], 1970, 9999)
            parts = parts[1:]
        if len(parts) != 2:
            raise ValueError(f"invalid date in '{text}'")
        months, days = _values(parts[0], 1, 12), _values(parts[1], 1, 31)
    hours: frozenset[int] | None = frozenset({0})
    minutes: frozenset[int] | None = frozenset({0})
    seconds: frozenset[int] | None = frozenset({0})
    if tokens:
        parts = tokens.pop(0).split(":")
        if len(parts) == 1:  # minutes only: every hour (pve-common's former Perl parser, proxmox-time)
            hours, minutes = None, _values(parts[0], 0, 59)
        elif len(parts) in (2, 3):
            hours, minutes = _values(parts[0], 0, 23), _values(parts[1], 0, 59)
            seconds = _values(parts[2], 0, 59) if len(parts) == 3 else frozenset({0})
        else:
            raise ValueError(f"invalid time in '{text}'")
    if tokens:
        raise ValueError(f"unexpected '{tokens[0]}' in '{text}'")
    return CalendarEvent(weekdays, years, months, days, _all(hours, 0, 23), _all(minutes, 0, 59), _all(seconds, 0, 59))


def next_event(schedule: str, after: float) -> int | None:
    """``compute_next_event``: the first epoch second strictly after ``after`` that the schedule matches."""
    try:
        event = parse(schedule)
    except ValueError:
        return None
    start = dt.datetime.fromtimestamp(int(after), tz=dt.UTC)
    day = start.date()
    for _ in range(366 * _SEARCH_YEARS):
        if event.matches_day(day):
            base = calendar.timegm(day.timetuple())
            for h in event.hours:
                for m in event.minutes:
                    if base + h * 3600 + m * 60 + 59 <= after:
                        continue
                    for s in event.seconds:
                        t = base + h * 3600 + m * 60 + s
                        if t > after:
                            return t
        day += dt.timedelta(days=1)
    return None
