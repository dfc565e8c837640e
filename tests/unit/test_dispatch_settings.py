"""The dispatcher's lease, drain and Redis pool settings, from the environment."""

from __future__ import annotations

import pytest

from channels.settings import (
    REDIS_POOL_SPARE,
    DispatchSettings,
    DispatchSettingsError,
    redis_pool_size,
)


def test_leases_are_short_by_default_and_set_in_seconds() -> None:
    default = DispatchSettings.from_env({})
    assert (default.lease_s, default.lease_ms, default.drain_s) == (10.0, 10_000, 10.0)
    custom = DispatchSettings.from_env(
        {"KAIROS_DISPATCH_LEASE": "2.5", "KAIROS_DISPATCH_DRAIN": "0"}
    )
    assert (custom.lease_ms, custom.drain_s) == (2500, 0.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KAIROS_DISPATCH_LEASE", "0"),
        ("KAIROS_DISPATCH_LEASE", "soon"),
        ("KAIROS_DISPATCH_DRAIN", "-1"),
    ],
)
def test_an_unusable_lease_or_drain_is_named(name: str, value: str) -> None:
    with pytest.raises(DispatchSettingsError, match=f"{name} must be a number of seconds"):
        DispatchSettings.from_env({name: value})


def test_the_redis_pool_has_a_connection_for_every_delivery_in_flight() -> None:
    settings = DispatchSettings.from_env({"KAIROS_DISPATCH_MAX_INFLIGHT": "1000"})
    assert redis_pool_size(settings) == 1000 + REDIS_POOL_SPARE
