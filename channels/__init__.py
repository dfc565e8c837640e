"""The dispatcher: ``send`` actions become messages, under contact policy, at least once.

The shape of the worker: a pure decision (``decision``) over typed records (``actions``),
with the I/O around it (``dispatch``): the Redis schedule (``schedule``), the delivery
ledger (``idempotency``), frequency caps and priority (``policy``), the contact
directory (``contacts``), retries and circuit breakers (``resilience``), the
``deliveries`` records (``deliveries``), and the environment (``settings``). The
providers it sends through are in ``channels/providers/``.
"""
