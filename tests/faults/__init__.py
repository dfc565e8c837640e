"""Kairos's fault suite: real processes, real faults, counted from outside.

``run.run(scenario)`` starts a broker behind a fault proxy, Redis, workers, a dispatcher
and a signed webhook receiver; publishes scripted traffic; fires the scenario's faults
(kill -9, a Redis stop, a broker cut...); and counts what reached the receiver against
what ``kairos replay`` decides on the same input. ``test_faults.py`` runs short versions
in ``make test``; ``python -m tests.faults.soak`` (``make soak``) runs them all at full
scale, repeatedly. The README's "Fault suite" section has the latest counts.
"""
