"""The providers: one module per outbound integration behind one small interface.

``base`` (Message, Channel, DeliveryError) is the interface; ``email``, ``sms``,
``push``, ``webhook``, ``slack``, ``wecom`` and ``console`` implement it (the HTTP ones
on ``_http``); ``settings`` builds one from the environment (``channel_from_env``). A
provider knows its wire format and nothing of retries, policy or Kafka: those are the
dispatcher's (the rest of ``channels/``).
"""
