"""A TCP proxy on a loopback port that a test can hold, cut and restore.

It sits between the Kairos processes and the broker (or any TCP server). Three faults:

* ``pause()``: connections stay open, bytes are held (read and kept, not forwarded) until
  ``restore()``: a network that stalls.
* ``cut(seconds)``: every connection is aborted (RST) and the listening socket is closed,
  so new connections are refused, for ``seconds`` (or until ``restore()``): a network
  partition.
* ``restore()``: listen again on the same port and let bytes flow.

**All broker traffic goes through it.** A Kafka client only uses its bootstrap address
for the first metadata request; after that it connects to the host:port the broker
*advertises*. The harness therefore starts Tansu listening on one port and advertising
the proxy's port (``--advertised-listener-url``, see ``services.start_broker``): whatever
address a client bootstraps from, every later connection goes to the proxy.
``test_proxy.py`` checks both halves (metadata names the proxy; a cut stops a producer).

**The test's own clients are spared.** The traffic generator and the observers that read
the output topics must keep working while the Kairos processes are cut off: producers
are other services, whose outage is not the fault under test. They connect through the
proxy too (the advertised address leaves no other way), so the proxy reads the
``client_id`` from the first Kafka request of each connection and leaves connections
whose ``client_id`` matches ``spare`` alone. Without ``spare`` (a Redis proxy) every
connection is subject to faults and nothing is parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from kairos.launcher import LOOPBACK, free_port

log = logging.getLogger("faults.proxy")

_CHUNK = 64 * 1024
_MAX_FIRST_REQUEST = 1024 * 1024  # a first Kafka request is an ApiVersions of ~50 bytes


@dataclass(eq=False, slots=True)
class _Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    handler: asyncio.Task[None] | None = None
    upstream: asyncio.StreamWriter | None = None
    spared: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


@dataclass(slots=True)
class ProxyStats:
    accepted: int = 0  # connections accepted
    spared: int = 0  # ...of which were spared (test clients)
    aborted: int = 0  # connections aborted by cut()
    bytes_up: int = 0  # client -> upstream, faultable connections only
    bytes_down: int = 0  # upstream -> client, faultable connections only


def kafka_client_id(request: bytes) -> str | None:
    """The ``client_id`` of a Kafka request (without its 4-byte size), or None.

    Every request header from v1 on is ``api_key int16, api_version int16,
    correlation_id int32, client_id nullable string (int16 length)``; flexible (v2)
    headers add tagged fields after it, so the prefix is the same.
    """
    if len(request) < 10:
        return None
    (length,) = struct.unpack_from(">h", request, 8)
    if length < 0 or len(request) < 10 + length:
        return None
    return request[10 : 10 + length].decode("utf-8", "replace")


class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``upstream``; ``pause``, ``cut`` and ``restore`` on demand.

    proxy = FaultProxy(("127.0.0.1", broker_port), spare=lambda cid: cid.startswith("faults-"))
    await proxy.start()
    await proxy.cut(20)  # refused for 20 s, then listening again
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        port: int | None = None,
        spare: Callable[[str], bool] | None = None,
    ) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self.spare = spare
        self.stats = ProxyStats()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._restore_task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def cut_off(self) -> bool:
        return self._server is None

    async def start(self) -> None:
        """Listen (again) on ``port``."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, LOOPBACK, self.port, reuse_address=True
            )

    async def close(self) -> None:
        """Stop listening and drop every connection, spared ones included."""
        if self._restore_task is not None:
            self._restore_task.cancel()
        self._stop_listening()
        links = list(self._links)
        for link in links:
            link.abort()
        self._flowing.set()  # wake held pipes so they see their sockets closed
        handlers = [link.handler for link in links if link.handler is not None]
        if handlers:
            await asyncio.wait(handlers, timeout=5)

    # --- faults ---------------------------------------------------------------------
    def pause(self) -> None:
        """Hold every byte of faultable connections until ``restore()``."""
        self._flowing.clear()

    async def cut(self, seconds: float | None = None) -> None:
        """Abort faultable connections and refuse new ones for ``seconds`` (None: until restore)."""
        self._stop_listening()
        for link in [link for link in self._links if not link.spared]:
            self.stats.aborted += 1
            link.abort()
        if seconds is not None:
            self._restore_task = asyncio.create_task(self._restore_after(seconds))

    async def restore(self) -> None:
        """Listen again and let held bytes flow."""
        await self.start()
        self._flowing.set()

    async def _restore_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.restore()

    def _stop_listening(self) -> None:
        # Closing the listening socket makes new connections fail with ECONNREFUSED, as a
        # dead or unreachable broker does. (Python 3.11's wait_closed would not wait for
        # the connections, and 3.12's would wait for all of them: neither is wanted.)
        if self._server is not None:
            self._server.close()
            self._server = None

    # --- forwarding -----------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer, asyncio.current_task())
        self._links.add(link)
        self.stats.accepted += 1
        try:
            first = await self._first_request(reader, link) if self.spare else b""
            if link.spared:
                self.stats.spared += 1
            up_reader, link.upstream = await asyncio.open_connection(*self.upstream)
            if first:
                await self._forward(first, link.upstream, link, upstream=True)
            link.tasks = [
                asyncio.create_task(self._pipe(reader, link.upstream, link, upstream=True)),
                asyncio.create_task(self._pipe(up_reader, writer, link, upstream=False)),
            ]
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client left, or upstream is gone: drop the link
        finally:
            for task in link.tasks:
                task.cancel()
            link.abort()
            self._links.discard(link)

    async def _first_request(self, reader: asyncio.StreamReader, link: _Link) -> bytes:
        """Read the first Kafka request whole, to decide whether the connection is spared."""
        size_bytes = await reader.readexactly(4)
        (size,) = struct.unpack(">i", size_bytes)
        if not 0 < size <= _MAX_FIRST_REQUEST:
            return size_bytes  # not Kafka: forward as is, faultable
        request = await reader.readexactly(size)
        client_id = kafka_client_id(request)
        assert self.spare is not None
        link.spared = client_id is not None and self.spare(client_id)
        return size_bytes + request

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        *,
        upstream: bool,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(_CHUNK):
                await self._forward(data, writer, link, upstream=upstream)

    async def _forward(
        self, data: bytes, writer: asyncio.StreamWriter, link: _Link, *, upstream: bool
    ) -> None:
        if not link.spared:
            await self._flowing.wait()  # paused: hold the bytes here
            if upstream:
                self.stats.bytes_up += len(data)
            else:
                self.stats.bytes_down += len(data)
        if writer.transport.is_closing():
            raise ConnectionResetError("link aborted")
        writer.write(data)
        await writer.drain()
