"""An action rendered into the message a provider sends.

Templates: the trigger's ``template`` rendered with ``core.templates.render`` over the
payload, ``customer_id``, ``trigger``, ``action_id`` and the contact directory's
``email``, ``phone``, ``locale``, ``timezone``, ``first_name``. A one-line template is
both subject and body; with several lines the first is the subject, the rest the body.
"""

from __future__ import annotations

from channels.actions import Action
from channels.contacts import Contact
from channels.providers.base import Message
from core.templates import render


def render_message(
    action: Action, template: str, contact: Contact, default_timezone: str = "UTC"
) -> tuple[str, str]:
    """(subject, body) of ``action`` from its trigger's template.

    Times read in the customer's time zone, else ``default_timezone`` (the policy's).
    """
    values = {
        **contact.template_values(),
        **action.payload,
        "customer_id": action.customer_id,
        "trigger": action.trigger,
        "action_id": action.action_id,
    }
    text = render(template, values, default_timezone=default_timezone).strip()
    subject, _, rest = text.partition("\n")
    return subject.strip(), (rest.strip() or subject.strip())


def build_message(
    action: Action, template: str, contact: Contact, channel: str, default_timezone: str = "UTC"
) -> Message:
    """The message for ``channel`` (the action's, or ``KAIROS_CHANNEL_OVERRIDE``'s)."""
    subject, body = render_message(action, template, contact, default_timezone)
    return Message(
        action_id=action.action_id,
        channel=channel,
        customer_id=action.customer_id,
        trigger=action.trigger,
        subject=subject,
        body=body,
        to=contact.address(action.channel),
        payload=action.payload,
        created_at=action.decided_at,
    )
