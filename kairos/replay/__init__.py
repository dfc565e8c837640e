"""``kairos replay``: run the core offline over event files, with an event-time clock.

No broker, no Redis: the same ``core.engine`` calls the live worker makes, in
event-time order. Lines are the contract's event objects (any order; they are
sorted by ``ts``, ties keep file order, and each event's topic follows from its
type) and profile records ``{"topic": "profiles", "customer_id": ..., "value":
{...} or null}``, applied at their ``updated_at`` (before every event when it
is missing). Before an event at time t every timer due at or before t fires,
in due order, with the clock at its due time; the replay ends at the last
event's time with every timer due by then fired, or later with ``--until TIME``
or ``--until +DURATION`` (past the last event). Deadlines still pending at the
end are reported per timer.

What replay cannot see: frequency caps (Redis, applied by the dispatcher) and
delivery; statuses are the ones the core decides (consent, cooldown, holdout,
shadow, quiet hours).

One job per module:

- ``lines``: read the files and decode each line once (``stream.events.decode_line``);
- ``loop``: the replay itself, on ``core.driver.Driver``, and what it counts;
- ``shards``: the same on several forked processes, customers split between them;
- ``report``: what it prints (text, ``--json``, ``--compare``);
- ``command``: the command line.
"""

from kairos.replay.command import configure, parse_until, run
from kairos.replay.lines import Loaded, load
from kairos.replay.loop import Result, Until, replay
from kairos.replay.report import compare, human, summary
from kairos.replay.shards import run_replay

__all__ = [
    "Loaded",
    "Result",
    "Until",
    "compare",
    "configure",
    "human",
    "load",
    "parse_until",
    "replay",
    "run",
    "run_replay",
    "summary",
]
