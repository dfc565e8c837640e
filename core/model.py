"""The records the core works on: events in, customer state, decisions and timers out.

Plain slotted dataclasses: cheap to build on the hot path (tens of thousands a
second) and typed for readers. ``Event`` and ``Decision`` are treated as
immutable once built; ``CustomerState`` is owned by the core, which updates it
in place (a copy per event would double the per-event cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Stage = Literal[
    "new",
    "awareness",
    "interest",
    "consideration",
    "purchase",
    "loyalty",
    "at_risk",
    "churned",
]
STAGES: tuple[Stage, ...] = get_args(Stage)  # in journey order
STAGE_RANK: dict[str, int] = {stage: i for i, stage in enumerate(STAGES)}

Status = Literal[
    "send",
    "shadow",  # the trigger runs in shadow mode: recorded, never sent
    "held_out",  # the customer is in the trigger's control group
    "deferred_quiet_hours",  # sent when the customer's quiet hours end (payload deliver_at)
    "suppressed_consent",
    "suppressed_cooldown",
    "suppressed_quiet_hours",  # an offer that would expire before quiet hours end
]
"""A decision's status: the contact policy the core can decide alone (``core.policy``)."""

Group = Literal["sent", "held_out"]
"""Which side of a trigger's uplift measurement a decision (and its conversion) is on."""

TOPIC_TYPES: dict[str, frozenset[str]] = {
    "clickstream": frozenset(
        {
            "page_view",
            "search",
            "product_view",
            "add_to_cart",
            "remove_from_cart",
            "checkout_started",
        }
    ),
    "orders": frozenset(
        {"order_placed", "order_paid", "order_shipped", "order_cancelled", "order_refunded"}
    ),
    "engagement": frozenset(
        {
            "email_open",
            "email_click",
            "push_open",
            "sms_click",
            "in_app_click",
            "app_open",
            "session_start",
            "unsubscribe",
            "subscribe",
            "review",
            "nps",
            "deal_won",  # a CRM's closed deal: a lead's conversion (core.attribution.on_deal)
        }
    ),
}


@dataclass(slots=True)
class Item:
    product_id: str
    quantity: int = 1
    price: float = 0.0


@dataclass(slots=True)
class Event:
    """One validated input event. Field names are the contract's."""

    event_id: str
    type: str
    customer_id: str
    ts: int  # event time, epoch ms UTC
    topic: str = ""
    anonymous_id: str | None = None
    session_id: str | None = None
    url: str | None = None
    query: str | None = None
    product_id: str | None = None
    category: str | None = None
    price: float | None = None
    currency: str | None = None
    quantity: int | None = None  # add_to_cart defaults it to 1; None on remove = all
    cart_value: float | None = None
    order_id: str | None = None
    total: float | None = None
    items: tuple[Item, ...] = ()
    campaign_id: str | None = None
    action_id: str | None = None
    channel: str | None = None
    score: float | None = None
    properties: dict[str, Any] | None = None


@dataclass(slots=True)
class Profile:
    """The latest ``profiles`` record of a customer (contact, consent, timezone)."""

    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    timezone: str | None = None
    locale: str | None = None
    consent: dict[str, bool] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    updated_at: int = 0


@dataclass(slots=True)
class Decision:
    """One decision of a trigger; becomes a record on the ``actions`` topic."""

    action_id: str
    trigger: str
    customer_id: str
    channel: str
    decided_at: int  # ms; event time in replay, wall clock live
    status: Status
    reason: str
    payload: dict[str, Any]
    source_event_ids: tuple[str, ...]
    cause_ts: int = 0  # event time of the cause (event ts or timer due), for lag metrics
    variant: str | None = None  # the trigger's variant this customer gets (core.variants)
    variant_share: float = 0.0  # that variant's share of the trigger's customers then

    def to_record(self) -> dict[str, Any]:
        record = {
            "action_id": self.action_id,
            "trigger": self.trigger,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "decided_at": self.decided_at,
            "status": self.status,
            "reason": self.reason,
            "payload": self.payload,
            "source_event_ids": list(self.source_event_ids),
        }
        if self.variant is not None:
            record["variant"] = self.variant
            record["variant_share"] = self.variant_share
        return record


@dataclass(slots=True)
class StageChange:
    customer_id: str
    from_stage: str  # the customer's stage before, as kept in their state
    to_stage: Stage
    at: int
    event_id: str | None

    def to_record(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "at": self.at,
            "event_id": self.event_id,
        }


@dataclass(slots=True)
class SegmentChange:
    """A customer entered or left a watched audience, or a lead qualified or cooled down.

    ``kind`` is ``audience`` (``name`` the audience, ``change`` entered / exited) or
    ``lead`` (``name`` ``mql``, ``change`` qualified / cooled, with the ``score``).
    """

    customer_id: str
    kind: str
    name: str
    change: str
    at: int
    event_id: str | None
    score: float | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "kind": self.kind,
            "name": self.name,
            "change": self.change,
            "at": self.at,
            "event_id": self.event_id,
            "score": self.score,
        }


@dataclass(slots=True)
class Conversion:
    """An order attributed (last touch) to a trigger's earlier decision."""

    trigger: str
    group: Group
    action_id: str
    customer_id: str
    order_id: str | None
    revenue: float
    at: int
    variant: str | None = None  # the converted decision's variant (core.variants)
    discount: float = 0.0  # what the redeemed offer code of that decision took off the order
    variant_share: float = 0.0  # the variant's share when that decision was made

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "trigger": self.trigger,
            "group": self.group,
            "action_id": self.action_id,
            "customer_id": self.customer_id,
            "order_id": self.order_id,
            "revenue": self.revenue,
            "at": self.at,
        }
        if self.variant is not None:
            record["variant"] = self.variant
            record["variant_share"] = self.variant_share
        if self.discount:
            record["discount"] = self.discount
        return record


@dataclass(slots=True)
class TimerChange:
    """Set (``due`` is a time) or cancel (``due`` is None) the customer's timer ``kind``."""

    customer_id: str
    kind: str
    due: int | None


@dataclass(slots=True, init=False)
class Step:
    """What one call of the core produced besides the updated state."""

    state: CustomerState
    decisions: list[Decision]
    timers: list[TimerChange]
    stage_changes: list[StageChange]
    conversions: list[Conversion]
    merges: list[str]  # anonymous ids to merge into this customer
    duplicate: bool
    late: bool
    segment_changes: list[SegmentChange]  # watched audiences and lead qualifications

    # Written out rather than generated: one Step per core call, and list literals
    # cost about half of the generated ``default_factory`` calls.
    def __init__(
        self,
        state: CustomerState,
        decisions: list[Decision] | None = None,
        timers: list[TimerChange] | None = None,
        stage_changes: list[StageChange] | None = None,
        conversions: list[Conversion] | None = None,
        merges: list[str] | None = None,
        duplicate: bool = False,
        late: bool = False,
        segment_changes: list[SegmentChange] | None = None,
    ) -> None:
        self.state = state
        self.decisions = [] if decisions is None else decisions
        self.timers = [] if timers is None else timers
        self.stage_changes = [] if stage_changes is None else stage_changes
        self.conversions = [] if conversions is None else conversions
        self.merges = [] if merges is None else merges
        self.duplicate = duplicate
        self.late = late
        self.segment_changes = [] if segment_changes is None else segment_changes


# The small lists inside CustomerState are its wire form: state/codec.py writes them as
# JSON arrays, so a restarted worker reads what an older one wrote, and a list costs less
# than an object per entry. Code names their fields through these indexes.

View = list[Any]
"""A recent product view in ``CustomerState.views``: [ts, product_id, category, event_id]."""
VIEW_TS, VIEW_PRODUCT, VIEW_CATEGORY, VIEW_EVENT = 0, 1, 2, 3

Order = list[Any]
"""An order in ``CustomerState.orders``: [placed_at, total, order_id, paid_at (0 = not
paid), status (ORDER_OPEN or ORDER_CLOSED), order_placed event_id, order_paid event_id
or None]."""
ORDER_PLACED_AT, ORDER_TOTAL, ORDER_ID, ORDER_PAID_AT = 0, 1, 2, 3
ORDER_STATUS, ORDER_PLACED_EVENT, ORDER_PAID_EVENT = 4, 5, 6
ORDER_OPEN, ORDER_CLOSED = 0, 1  # status: closed once cancelled or refunded

CartLine = list[float]
"""A line of ``CustomerState.cart`` (product_id -> line): [quantity, price]."""
LINE_QUANTITY, LINE_PRICE = 0, 1

Touch = list[Any]
"""A decision that may be converted, in ``CustomerState.touches``: [trigger, at, group,
action_id], then [variant, variant_share] when it has one (or [None, 0]), then [code,
discount_percent] when it made an offer (``core.attribution``)."""


@dataclass(slots=True)
class CustomerState:
    """Everything the engine keeps per customer; bounded in size (see ``state.codec``)."""

    customer_id: str
    stage: str = "new"  # a Stage; typed str as read back from the changelog, unchecked
    first_seen: int = 0
    last_active: int = 0  # event time of the last activity
    max_ts: int = 0  # newest event time seen: the reference for late events
    seen: dict[int, int] = field(default_factory=dict)  # event id digest -> ts, oldest first
    cart: dict[str, CartLine] = field(default_factory=dict)  # product_id -> line
    cart_id: int = 0  # increments when an empty cart gets its first item
    cart_at: int = 0
    cart_events: list[str] = field(default_factory=list)  # event ids that built the cart
    currency: str | None = None
    views: list[View] = field(default_factory=list)  # oldest first
    checkouts: int = 0  # checkouts started since the last order
    checkout_value: float = 0.0  # cart_value of the last checkout_started, if given
    orders: list[Order] = field(default_factory=list)  # by placed_at, newest last
    order_count: int = 0
    revenue: float = 0.0
    counts: dict[str, list[list[int]]] = field(default_factory=dict)  # windows.Counts
    timers: dict[str, int] = field(default_factory=dict)  # kind -> due (ms)
    marks: dict[str, int] = field(default_factory=dict)  # trigger bookkeeping (last fired...)
    optouts: list[str] = field(default_factory=list)  # channels unsubscribed by event
    touches: list[Touch] = field(default_factory=list)  # oldest first
    profile: Profile | None = None
    merged: list[str] = field(default_factory=list)  # anonymous ids merged (or asked for)
    # Audiences, tags and scores (core.segments): sticky tags set by ``tags:`` rules; the
    # lead score's behaviour part (core.scores: [score, at, qualified, qualifications]);
    # the watched audiences the customer was in after their last step (and "!name" for
    # those they were outside: core.segments.Compiled.after).
    tags: list[str] = field(default_factory=list)
    lead: list[Any] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    # trigger -> [variant, its share then]: the variant a customer was first decided under
    # keeps applying when the weights change (core.variants)
    variants: dict[str, list[Any]] = field(default_factory=dict)
    member: dict[str, Any] = field(default_factory=dict)  # points ledger (core.points)
    recs: dict[str, Any] = field(default_factory=dict)  # products bought (core.recommend)
