"""Thompson sampling over a trigger's variants: the next allocation, from the results so far.

Not run by the engine: a worker sees only its own customers, and an allocation
kept in a worker's memory would make decisions depend on which worker ran when, so
no replay could repeat them. The allocation is instead *published as config*:
``kairos report --allocate`` computes it from the ``actions`` and ``conversions``
topics and prints (or, with ``--apply``, sets) the trigger's ``variants`` as one live
override, versioned in the config history like any change. Every decision records
the share of its variant in force (``variant_share``), so reports weight each
customer by its inverse (``core.effect``) and stay unbiased while shares move, and a
replay under the same config makes the same decisions.

Each variant's share is the probability that it has the best conversion rate under
independent Beta(1 + conversions, 1 + sent - conversions) posteriors, estimated
from ``DRAWS`` draws seeded by the counts (the same results give the same
allocation), then squeezed so that no variant falls below ``floor``.
"""

from __future__ import annotations

import random
from hashlib import blake2b

DRAWS = 10_000


def chance_best(results: dict[str, tuple[int, int]], draws: int = DRAWS) -> dict[str, float]:
    """Per variant (name -> (sent, conversions)): the posterior probability it is the best."""
    names = list(results)
    seed = blake2b(repr(sorted(results.items())).encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(seed, "big"))
    wins = dict.fromkeys(names, 0)
    params = [(1 + max(x, 0), 1 + max(n - x, 0)) for n, x in results.values()]
    for _ in range(draws):
        best, best_value = names[0], -1.0
        for name, (a, b) in zip(names, params, strict=True):
            value = rng.betavariate(a, b)
            if value > best_value:
                best, best_value = name, value
        wins[best] += 1
    return {name: wins[name] / draws for name in names}


def allocation(results: dict[str, tuple[int, int]], floor: float) -> dict[str, float]:
    """Thompson sampling's shares, each at least ``floor`` (which must leave room: k * floor <= 1)."""
    k = len(results)
    if k == 0:
        return {}
    if not 0 <= floor <= 1 / k:
        raise ValueError(f"a floor of {floor:g} for {k} variants: expected 0 to {1 / k:.4g}")
    best = chance_best(results)
    free = 1 - k * floor
    return {name: round(floor + free * p, 4) for name, p in best.items()}
