"""SMS through a REST provider shaped like Twilio's Messages API.

``POST {url}`` form-encoded ``To``, ``From``, ``Body`` with HTTP basic auth
(account SID, auth token); the provider answers 2xx when it accepted the message.
For Twilio, url is ``https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json``.
"""

from __future__ import annotations

import aiohttp

from channels.providers._http import HttpChannel
from channels.providers.base import DeliveryError, Message


class SmsChannel(HttpChannel):
    def __init__(
        self,
        url: str,
        account_sid: str,
        auth_token: str,
        from_number: str,
        *,
        name: str = "sms",
        timeout_s: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(url, name=name, timeout_s=timeout_s, session=session)
        self.from_number = from_number
        self._authorization = aiohttp.encode_basic_auth(account_sid, auth_token)

    async def send(self, msg: Message) -> None:
        if not msg.to:
            raise DeliveryError("sms: message has no phone number", retryable=False)
        form = {"To": msg.to, "From": self.from_number, "Body": msg.body}
        await self._post(self.url, data=form, headers={"Authorization": self._authorization})
