"""A create (POST) that got no answer may still be running on Render's side.

A read timeout, a dropped connection or a gateway's 502/504 says nothing about the
request: Render may be processing it right now and finish after the client gave up (a
deploy request answered in 33 s to a client waiting 30 s). Checking once, at once, finds
nothing, and a retry then makes a second resource beside the late first one. So before a
retry the existence check is repeated for a bounded time (by default twice the read
timeout, the time a request that was still being read may go on), and the retry is sent
only when the resource has not appeared by then. An answered failure (500, 503) is
checked once: the server has finished with that request.
"""

from __future__ import annotations

# Gateway answers: the request may still be running behind the gateway.
IN_FLIGHT_STATUSES = frozenset({502, 504})


def in_flight_wait(read_timeout: float, configured: float | None = None) -> float:
    """Seconds to watch for an unanswered create to take effect."""
    return float(configured) if configured is not None else 2.0 * float(read_timeout)


def poll_interval(wait: float) -> float:
    """Between two existence checks: a tenth of the watch, 0.2 s to 5 s."""
    return min(5.0, max(0.2, wait / 10.0))


def watch_for_effect(check, *, wait: float, clock, sleep):
    """``check()`` until it returns a value or ``wait`` seconds have passed; the value, or
    None when the request did not take effect within that time."""
    deadline = clock() + wait
    interval = poll_interval(wait)
    while True:
        found = check()
        if found is not None:
            return found
        left = deadline - clock()
        if left <= 0:
            return None
        sleep(min(interval, left))
