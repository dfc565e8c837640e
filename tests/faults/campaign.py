"""The campaign config of a fault run: every trigger sends by webhook, deadlines in seconds.

Webhook is not a customer channel (no consent needed) and is exempt from frequency caps
and priorities, and quiet hours are off: every ``send`` decision must reach the receiver
exactly once, whatever the clock or the customer. Deadlines are seconds long so a run
ends within a minute; the lifecycle timers (``at_risk_after`` 30 days) never come due,
in the live run or in its replay.
"""

from __future__ import annotations

from dataclasses import dataclass

TRIGGERS = (
    "abandoned_cart",
    "browse_abandonment",
    "limited_time_offer",
    "post_purchase",
    "welcome",
    "churn_alert",
    "win_back",
    "nps_detractor",
)


@dataclass(frozen=True, slots=True)
class Campaign:
    cart_delay_s: int = 4
    reminder_delay_s: int = 3
    browse_delay_s: int = 5
    post_purchase_delay_s: int = 6
    timer_grace_s: int = 1

    @property
    def last_deadline_s(self) -> int:
        """Seconds after a journey's last event by which every deadline it set is due."""
        cart = self.cart_delay_s + self.reminder_delay_s
        return max(cart, self.browse_delay_s, self.post_purchase_delay_s) + self.timer_grace_s

    def yaml(self) -> str:
        extras = {
            "abandoned_cart": [
                f"delay: {self.cart_delay_s}s",
                f"reminder_delay: {self.reminder_delay_s}s",
            ],
            "browse_abandonment": [f"delay: {self.browse_delay_s}s", "window: 5m"],
            "post_purchase": [f"delay: {self.post_purchase_delay_s}s"],
        }
        lines = [
            "# written by tests/faults/campaign.py",
            "engine:",
            f"  timer_grace: {self.timer_grace_s}s",
            "policy:",
            "  quiet_hours:",
            "    enabled: false",
            "triggers:",
        ]
        for name in TRIGGERS:
            lines.append(f"  {name}:")
            lines.extend(
                f"    {setting}" for setting in ["channel: webhook", *extras.get(name, [])]
            )
        return "\n".join(lines) + "\n"
