"""Standard cron expressions -> APScheduler 3.x CronTrigger fields.

APScheduler 3.x counts day_of_week 0 as *Monday*; cron (and every crontab a user has seen)
counts 0 (and 7) as *Sunday*. Users write cron, so numeric weekdays are translated to names
here, once, and APScheduler never sees a number it would misread.
"""

from __future__ import annotations

import re

FIELD_NAMES = ("minute", "hour", "day", "month", "day_of_week")
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ALIASES = {"@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
            "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
            "@hourly": "0 * * * *"}


class CronError(ValueError):
    pass


def _weekday(token: str) -> str:
    if token.isdigit():
        number = int(token)
        if not 0 <= number <= 7:
            raise CronError(f"weekday {number} is outside 0-7 (0 and 7 are Sunday)")
        return _CRON_DAYS[number]
    return token.lower()


def _translate_dow(expr: str) -> str:
    """'1-5' -> 'mon-fri', '0,6' -> 'sun,sat', '*/2' stays (step over names is rare)."""
    parts = []
    for item in expr.split(","):
        base, _, step = item.partition("/")
        if base in ("*", "?"):
            parts.append("*" + (f"/{step}" if step else ""))
            continue
        lo, dash, hi = base.partition("-")
        if dash and lo.isdigit() and hi.isdigit() and int(hi) == 7 and int(lo) > 0:
            # "5-7" means Fri..Sun in cron: APScheduler ranges cannot wrap, so split it.
            parts.append(f"{_weekday(lo)}-sat" + (f"/{step}" if step else ""))
            parts.append("sun")
            continue
        text = _weekday(lo) + (f"-{_weekday(hi)}" if dash else "")
        parts.append(text + (f"/{step}" if step else ""))
    return ",".join(parts)


def parse_cron(expr: str) -> dict[str, str]:
    """Return CronTrigger keyword arguments; raises CronError with a readable reason."""
    expr = _ALIASES.get(expr.strip(), expr.strip())
    tokens = expr.split()
    if len(tokens) != 5:
        raise CronError(f"{expr!r} needs 5 fields (minute hour day month weekday), "
                        f"got {len(tokens)}")
    if not all(re.match(r"^[\w*/,?-]+$", t) for t in tokens):
        raise CronError(f"{expr!r} has characters cron does not use")
    fields = dict(zip(FIELD_NAMES, tokens, strict=True))
    fields["day_of_week"] = _translate_dow(fields["day_of_week"])
    try:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger(**fields, timezone="UTC")
    except ValueError as exc:
        raise CronError(f"{expr!r}: {exc}") from None
    return fields
