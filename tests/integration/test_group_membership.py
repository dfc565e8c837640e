"""stream/membership.py on the real broker: a member killed with SIGKILL stays in its group
until its session runs out, unless its successor removes it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient

from stream.membership import MemberFile, leave_for_predecessor

pytestmark = pytest.mark.integration

# A member that writes down its id once it has partitions, then polls until killed.
MEMBER = """
import asyncio, sys
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
boot, group, topic, path = sys.argv[1:]
class Listener(ConsumerRebalanceListener):
    async def on_partitions_revoked(self, revoked): pass
    async def on_partitions_assigned(self, assigned):
        open(path, "w").write(consumer._coordinator.member_id)
async def main():
    global consumer
    consumer = AIOKafkaConsumer(bootstrap_servers=boot, group_id=group,
                                session_timeout_ms=30000, request_timeout_ms=40000)
    await consumer.start()
    consumer.subscribe([topic], listener=Listener())
    while True:
        await consumer.getmany(timeout_ms=200)
asyncio.run(main())
"""


async def members(admin: AIOKafkaAdminClient, group: str) -> list[str]:
    (response,) = await admin.describe_consumer_groups([group])
    # groups: (error_code, group, state, protocol_type, protocol, members, ...)
    return [member[0] for member in response.groups[0][5]]  # member: (member_id, ...)


async def test_the_successor_removes_a_killed_member_at_once(
    bootstrap: str, tmp_path: Path
) -> None:
    group, topic = f"g-{uuid.uuid4().hex[:6]}", f"t-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    member = MemberFile(tmp_path / "member.id")
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
        script = [sys.executable, "-c", MEMBER, bootstrap, group, topic, str(member.path)]
        process = subprocess.Popen(script)
        try:
            for _ in range(300):
                if member.read():
                    break
                await asyncio.sleep(0.1)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        dead = member.read()
        assert dead, "the member never got partitions"
        assert await members(admin, group) == [dead]  # killed: still in, for 30 s

        assert await leave_for_predecessor(client, group, member)
        assert await members(admin, group) == []
    finally:
        await client.close()
        await admin.close()


async def test_no_file_no_request(bootstrap: str, tmp_path: Path) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        assert not await leave_for_predecessor(client, "any", MemberFile(tmp_path / "none"))
    finally:
        await client.close()


def test_the_member_file_keeps_the_last_id(tmp_path: Path) -> None:
    member = MemberFile(tmp_path / "m.id")
    assert member.read() is None
    member.remember("a-1")
    member.remember("")  # never overwritten with nothing
    assert member.read() == "a-1"
    member.remember("b-2")
    assert member.read() == "b-2"
