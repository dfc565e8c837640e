"""Every Kafka topic of Kairos, named once."""

from __future__ import annotations

CLICKSTREAM = "clickstream"
ORDERS = "orders"
ENGAGEMENT = "engagement"
PROFILES = "profiles"  # compacted
INPUTS = (CLICKSTREAM, ORDERS, ENGAGEMENT)

ACTIONS = "actions"
DELIVERIES = "deliveries"
STAGE_CHANGES = "stage-changes"
DEAD_LETTERS = "dead-letters"
CONVERSIONS = "conversions"  # an extension of the contract: orders attributed to triggers
SEGMENT_CHANGES = "segment-changes"  # an extension: watched audiences, lead qualifications
OUTPUTS = (ACTIONS, DELIVERIES, STAGE_CHANGES, DEAD_LETTERS, CONVERSIONS, SEGMENT_CHANGES)

IDENTITY = "identity"  # internal: anonymous-history requests and answers between workers

# internal: recommendations (agents/products.py)
PRODUCT_PAIRS = "product-pairs"  # customers' observations, keyed by product
RECOMMENDATIONS = "recommendations"  # compacted: each product's related products
COMPACTED = (PROFILES, RECOMMENDATIONS)

ALL = (*INPUTS, PROFILES, *OUTPUTS, IDENTITY, PRODUCT_PAIRS, RECOMMENDATIONS)
STATE_TABLE = "customers"  # Faust table; its changelog is "<app_id>-customers-changelog"


def changelog_topic(app_id: str) -> str:
    return f"{app_id}-{STATE_TABLE}-changelog"
