"""The host stand-in polls an idle queue as the Functions host does, with host.json's maximum.

The schedule is the WebJobs SDK's (azure-webjobs-sdk ``Timers/RandomizedExponentialBackoffStrategy``
with ``QueuePollingIntervals.Minimum`` = 100 ms as minimum and step): after an empty poll the
k-th wait is ``0.1 + U[0.8, 1.2) * 2**(k-1) * 0.1`` s, capped at ``maxPollingInterval``; a poll
that finds a message resets it to 0.1 s. The expected values below are that formula evaluated
by hand, not outputs of the code. No test sleeps: ``sleep`` is injected and records the waits.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from scripts.local_host import (
    DrainResult,
    PollingBackoff,
    listen,
    max_polling_interval,
    parse_timespan,
)

ROOT = Path(__file__).resolve().parent.parent


def host_queues() -> dict:
    return dict(json.loads((ROOT / "host.json").read_text())["extensions"]["queues"])


# --- TimeSpan -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("00:00:02", 2.0),
        ("00:01:00", 60.0),
        ("00:00:00.5", 0.5),
        ("00:00:01.2500000", 1.25),
        ("1.02:03:04", 86400 + 2 * 3600 + 3 * 60 + 4),
        ("01:30", 5400.0),  # hh:mm
        # .NET TimeSpan.Parse reads a bare integer as days: the host.json trap.
        ("2", 2 * 86400.0),
        (2, 2 * 86400.0),
    ],
)
def test_timespan_is_read_as_dotnet_reads_it(value: str | int, seconds: float) -> None:
    assert parse_timespan(value) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize("value", ["2s", "00:00:60", "00:60:00", "24:00:00", ""])
def test_a_value_that_is_no_timespan_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="TimeSpan"):
        parse_timespan(value)


def test_host_json_sets_the_polling_interval_as_a_timespan_of_seconds_not_days() -> None:
    raw = host_queues()["maxPollingInterval"]
    # A string in hh:mm:ss form: a bare number would be days, and the host would then wait
    # up to its 1-minute default or longer between polls of an idle queue.
    assert isinstance(raw, str) and re.fullmatch(r"\d{2}:\d{2}:\d{2}(\.\d{1,7})?", raw), raw
    seconds = parse_timespan(raw)
    # Above the 100 ms minimum, and well under the host's 1-minute default.
    assert 0.1 < seconds <= 10.0
    assert max_polling_interval() == seconds


# --- the schedule -------------------------------------------------------------------------------


def schedule(backoff: PollingBackoff, found: list[bool]) -> list[float]:
    return [round(backoff.next_delay(f), 9) for f in found]


def test_backoff_grows_from_100_ms_at_the_low_end_of_the_randomization_and_caps() -> None:
    backoff = PollingBackoff(maximum=2.0, uniform=lambda lo, hi: lo)
    # 0.1, then 0.1 + 0.8 * 0.1 * 2**(k-1): 0.18, 0.26, 0.42, 0.74, 1.38, then 5.22 -> 2.0
    assert schedule(backoff, [False] * 8) == [0.1, 0.18, 0.26, 0.42, 0.74, 1.38, 2.0, 2.0]


def test_backoff_grows_from_100_ms_at_the_high_end_of_the_randomization_and_caps() -> None:
    backoff = PollingBackoff(maximum=2.0, uniform=lambda lo, hi: hi)
    # 0.1, then 0.1 + 1.2 * 0.1 * 2**(k-1): 0.22, 0.34, 0.58, 1.06, then 2.02 -> 2.0
    assert schedule(backoff, [False] * 7) == [0.1, 0.22, 0.34, 0.58, 1.06, 2.0, 2.0]


def test_backoff_draws_its_factor_from_the_sdk_bounds() -> None:
    asked: list[tuple[float, float]] = []

    def uniform(lo: float, hi: float) -> float:
        asked.append((lo, hi))
        return 1.0

    backoff = PollingBackoff(maximum=60.0, uniform=uniform)
    assert schedule(backoff, [False] * 4) == [0.1, 0.2, 0.3, 0.5]
    assert asked == [(0.8, 1.2)] * 3  # the first wait is the minimum, no draw


@pytest.mark.parametrize("seed", range(20))
def test_randomized_backoff_stays_within_the_documented_bounds(seed: int) -> None:
    maximum = parse_timespan(host_queues()["maxPollingInterval"])
    backoff = PollingBackoff(maximum=maximum, uniform=random.Random(seed).uniform)
    delays = [backoff.next_delay(False) for _ in range(12)]
    assert delays[0] == 0.1
    for k, delay in enumerate(delays[1:], start=1):
        low, high = 0.1 + 0.8 * 2 ** (k - 1) * 0.1, 0.1 + 1.2 * 2 ** (k - 1) * 0.1
        assert delay == maximum or low <= delay < high, (k, delay)
        assert delay <= maximum
    assert delays == sorted(delays)
    assert delays[-1] == maximum  # 12 empty polls reach any cap up to 0.1 + 0.8 * 204.8 s
    # A message resets the wait to the minimum, and the growth starts again.
    assert backoff.next_delay(True) == 0.1
    assert 0.18 <= backoff.next_delay(False) < 0.22


def test_bounds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="bounds"):
        PollingBackoff(maximum=0.05)


# --- the stand-in's listener against a real queue -------------------------------------------------


def test_listener_polls_an_idle_queue_on_the_host_schedule_and_resets_after_a_message(
    pipeline,
) -> None:
    """Azurite queue, the stand-in's default backoff (host.json's maximum), a recording clock:
    a message arriving after the waits have reached the maximum is picked up by the next poll,
    and the wait after it is back at 100 ms."""
    maximum = max_polling_interval()
    waits: list[float] = []
    garbage = "not base64 !"  # the host cannot decode it: poisoned on its first poll

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 9:
            pipeline.queue.send_message(garbage)

    def stop(result: DrainResult) -> bool:
        return len(waits) >= 12

    result = listen(pipeline.queue, pipeline.poison, stop=stop, sleep=sleep)

    assert result.poisoned == [garbage]
    assert waits[0] == 0.1
    assert waits == sorted(waits[:9]) + waits[9:]
    assert waits[8] == maximum  # capped at host.json's value before the message came
    assert waits[9] == 0.1  # the poll after the message found it; the next empty one resets
    assert 0.18 <= waits[10] < 0.22
