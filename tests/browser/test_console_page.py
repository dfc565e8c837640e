"""The campaign console in a real browser against a running engine.

Chromium (Debian's, headless) drives ``kairos console`` as a campaign owner would; the
console runs over a real broker, Redis and a ``kairos worker`` (``conftest.py``). Each
test checks the effect where it lands: the ``actions`` topic, the overrides and history
in Redis, ``kairos triggers`` and ``kairos replay`` run beside it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

import orjson
from console_stack import (
    ADMIN,
    VIEWER,
    Publisher,
    Stack,
    event,
    nps_file,
    open_console,
    shop_traffic,
)
from kafka_helpers import consume_all
from workers import ROOT

from state.override_store import read_history, read_overrides
from stream import topics

SCREENSHOTS = ROOT / "var" / "screenshots"
README_SCREENSHOT = ROOT / "docs" / "console.png"


def kairos(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kairos.cli", *args],
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def actions(stack: Stack) -> list[dict[str, Any]]:
    records = await consume_all(stack.bootstrap, topics.ACTIONS, min_count=10**9, timeout=1.5)
    return [orjson.loads(r.value) for r in records]


def row(page: Any, trigger: str) -> Any:
    return page.locator(f"tr.trigger-row[data-trigger='{trigger}']")


async def figure(page: Any, trigger: str, name: str) -> int:
    text = await row(page, trigger).locator(f"td[data-figure='{name}']").inner_text()
    digits = "".join(ch for ch in text if ch.isdigit())
    return int(digits or 0)


async def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.2)


# --- switching off stops the trigger's actions within 2 s -------------------------------------


async def test_switching_a_trigger_off_stops_its_actions_within_2s(
    stack: Stack, browser: Any
) -> None:
    stack.clear_overrides()
    page = await open_console(browser, stack, ADMIN)
    stop = asyncio.Event()
    sent: list[tuple[str, int]] = []  # (customer, ts) of each NPS detractor answer

    async def detractors() -> None:
        async with Publisher(stack) as pub:
            n = 0
            while not stop.is_set():
                cid = f"live-{n}-{int(time.time())}"
                ev = event(cid, "nps", score=2)
                await pub.send(ev)
                sent.append((cid, ev["ts"]))
                n += 1
                await asyncio.sleep(0.1)

    traffic = asyncio.create_task(detractors())
    try:
        # the page's live figure rises: the worker decides and the console counts it
        await wait_for(
            lambda: figure(page, "nps_detractor", "decisions"), 30, "nps_detractor decisions"
        )
        async with page.expect_response("**/api/triggers/nps_detractor/state") as answer:
            await row(page, "nps_detractor").locator("button[data-state='off']").click()
        assert (await answer.value).status == 200
        switched = int(time.time() * 1000)
        await asyncio.sleep(4)  # 2 s to take effect, then 2 s of answers that must not fire
    finally:
        stop.set()
        await traffic
    await asyncio.sleep(1.5)  # the worker decides on the last answers

    found = await actions(stack)
    ts_of = {cid: ts for cid, ts in sent}
    nps = {a["customer_id"]: a for a in found if a["trigger"] == "nps_detractor"}
    welcomed = {a["customer_id"] for a in found if a["trigger"] == "welcome"}
    before = [c for c, ts in sent if ts < switched]
    late = [c for c, ts in sent if ts > switched + 2000]
    assert before and late
    assert all(c in nps for c in before[:-5]), "detractors answered before the switch fire"
    assert [c for c in late if c in nps] == [], "switched off: nothing fires 2 s later"
    assert set(late) <= welcomed, "the worker kept deciding (welcome) after the switch"
    last = max((ts_of[c] for c in nps if c in ts_of), default=0)
    print(f"last nps_detractor decision: event {last - switched} ms after the switch")

    # the page says it: the switch shows Off, the history says who and what
    await page.wait_for_selector(
        "tr.trigger-row[data-trigger='nps_detractor'] button[data-state='off'].chosen"
    )
    history = read_history(stack.redis(), 10)
    assert [(h["by"], h["source"], h["key"], h["old"], h["new"]) for h in history] == [
        ("alice", "console", "triggers.nps_detractor.enabled", "true", "false")
    ]
    first = page.locator("#history tbody tr").first
    await first.locator("td[data-col='key']").filter(has_text="nps_detractor").wait_for()
    assert await first.locator("td[data-col='by']").inner_text() == "alice"
    await page.context.close()


# --- an invalid edit shows the CLI's message and changes nothing ----------------------------


async def test_an_invalid_edit_shows_the_error_and_changes_nothing(
    stack: Stack, browser: Any
) -> None:
    stack.clear_overrides()
    page = await open_console(browser, stack, ADMIN)
    await row(page, "abandoned_cart").locator("button[data-settings]").click()
    delay = page.locator("#set-abandoned_cart-delay")
    assert await delay.input_value() == "3s"  # the file's value
    await delay.fill("-5m")
    await page.locator("tr[data-key='delay'] button[data-save]").click()
    error = page.locator("#set-abandoned_cart-delay-error")
    await error.filter(has_text="nothing changed").wait_for()

    cli = kairos(
        "triggers", "set", "--redis", stack.redis_url, "--config", str(stack.config),
        "abandoned_cart", "delay", "--", "-5m",
    )  # fmt: skip
    assert cli.returncode == 1
    assert f"kairos triggers: {await error.inner_text()}" == cli.stderr.strip()
    assert await error.inner_text() == (
        "live override: triggers.abandoned_cart.delay: a duration cannot be negative, "
        "got '-5m'; nothing changed"
    )
    assert "invalid" in (await delay.get_attribute("class") or "")
    client = stack.redis()
    assert read_overrides(client) == {}
    assert read_history(client, 10) == []

    # a typo in the value of another field: the reader's message, next to that field
    channel = page.locator("#set-abandoned_cart-channel")
    await channel.fill("pigeon")
    await channel.press("Enter")
    await (
        page.locator("#set-abandoned_cart-channel-error")
        .filter(
            has_text="expected a channel (console, push, email, sms, webhook, slack, wecom), "
            "got 'pigeon'; nothing changed"
        )
        .wait_for()
    )
    assert read_overrides(client) == {}

    # then a good value is saved as a live override, recorded with the user's name
    await delay.fill("45m")
    await page.locator("tr[data-key='delay'] button[data-save]").click()
    await (
        page.locator("#notice")
        .filter(has_text="triggers.abandoned_cart.delay: 3s → 45m")
        .wait_for()
    )
    assert await page.locator("#set-abandoned_cart-delay-error").inner_text() == ""
    assert read_overrides(client) == {"triggers.abandoned_cart.delay": "45m"}
    listed = kairos(
        "triggers", "list", "abandoned_cart", "--json",
        "--redis", stack.redis_url, "--config", str(stack.config),
    )  # fmt: skip
    assert json.loads(listed.stdout)["settings"]["triggers.abandoned_cart.delay"] == "45m"
    history = read_history(client, 10)
    assert [(h["by"], h["source"], h["key"], h["old"], h["new"]) for h in history] == [
        ("alice", "console", "triggers.abandoned_cart.delay", "3s", "45m")
    ]
    await page.locator("tr[data-key='delay'] .badge").filter(has_text="live override").wait_for()
    assert page.problems == []
    await page.context.close()


# --- a preview shows the difference replay --compare computes --------------------------------


async def test_a_preview_shows_the_expected_difference(stack: Stack, browser: Any) -> None:
    stack.clear_overrides()
    recorded = stack.events / "nps-answers.jsonl"
    nps_file(recorded, range(11))  # one customer for each score from 0 to 10
    page = await open_console(browser, stack, ADMIN)
    await page.locator("#pv-file").select_option("nps-answers.jsonl")

    # the pending change, typed where the setting is and sent to the preview
    await row(page, "nps_detractor").locator("button[data-settings]").click()
    await page.locator("#set-nps_detractor-max_score").fill("3")
    await page.locator("tr[data-key='max_score'] button[data-preview]").click()
    await page.locator("#pending li[data-pending='nps_detractor.max_score']").wait_for()
    await page.locator("#pv-run").click()
    table = page.locator("#preview-table")
    await table.wait_for()

    async def cells(trigger: str) -> dict[str, str]:
        line = table.locator(f"tr[data-preview-trigger='{trigger}']")
        return {
            col: await line.locator(f"td[data-col='{col}']").inner_text()
            for col in ("running", "pending", "difference", "customers")
        }

    # scores 0-6 are detractors now, 0-3 with the change: 3 fewer, 3 customers affected
    assert await cells("nps_detractor") == {
        "running": "7", "pending": "4", "difference": "-3", "customers": "3",
    }  # fmt: skip
    assert await cells("welcome") == {
        "running": "11", "pending": "11", "difference": "0", "customers": "0",
    }  # fmt: skip
    summary = await page.locator("#preview-summary").inner_text()
    assert "11 events (0 invalid)" in summary
    assert "triggers.nps_detractor.max_score: 6 → 3" in summary

    # the same numbers as `kairos replay --compare` on the same file and configs
    pending_cfg = stack.events.parent / "pending.yaml"
    pending_cfg.write_text(
        stack.config.read_text().replace(
            "  nps_detractor:\n", "  nps_detractor:\n    max_score: 3\n"
        )
    )
    cli = kairos(
        "replay", str(recorded), "--json", "--config", str(pending_cfg),
        "--compare", str(stack.config),
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    for trigger, c in json.loads(cli.stdout)["compare"].items():
        assert await cells(trigger) == {
            "running": str(c["before"]),
            "pending": str(c["after"]),
            "difference": f"{c['after'] - c['before']:+d}".replace("+0", "0"),
            "customers": str(c["customers_changed"]),
        }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.locator("#preview-section").screenshot(path=str(SCREENSHOTS / "preview.png"))
    # counts only: no customer id of the recorded file is on the page
    assert "rec-" not in await page.content()

    # nothing changed by previewing; applying makes it live, recorded as alice's
    client = stack.redis()
    assert read_overrides(client) == {}
    await page.locator("#pv-apply").click()
    await page.locator("#notice").filter(has_text="max_score: 6 → 3").wait_for()
    assert read_overrides(client) == {"triggers.nps_detractor.max_score": "3"}
    assert read_history(client, 1)[0]["by"] == "alice"

    # a file that does not exist: one line, no traceback
    answer = await page.request.post(
        f"{stack.console_url}/api/preview",
        data={"file": "../triggers.yaml", "changes": []},
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 400
    body = await answer.json()
    assert body["error"].startswith("no recorded event file named '../triggers.yaml'")
    assert page.problems == []
    await page.context.close()


# --- a viewer sees everything and can change nothing -----------------------------------------


async def test_a_viewer_cannot_change_anything(stack: Stack, browser: Any) -> None:
    stack.clear_overrides()
    page = await open_console(browser, stack, VIEWER)
    assert await page.locator("#user-role").inner_text() == "viewer"

    # the page offers no change: switches and fields disabled, save and apply hidden
    switch = row(page, "welcome").locator("button[data-state='off']")
    assert await switch.is_disabled()
    await row(page, "welcome").locator("button[data-settings]").click()
    assert await page.locator("#set-welcome-channel").is_disabled()
    assert not await page.locator("tr[data-key='channel'] button[data-save]").is_visible()
    assert not await page.locator("#pv-apply").is_visible()
    await switch.click(force=True)  # a disabled button does nothing even when forced

    # the API refuses whatever the page would have sent, saying why
    for path, body in [
        ("/api/triggers/welcome/state", {"state": "off"}),
        ("/api/triggers/welcome/set", {"key": "channel", "value": "sms"}),
        ("/api/triggers/welcome/reset", {}),
        ("/api/apply", {"changes": [{"trigger": "welcome", "key": "enabled", "value": "false"}]}),
    ]:
        status, answer = await page.evaluate(
            """async ([path, body]) => {
                const r = await fetch(path, {method: "POST",
                  headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
                return [r.status, await r.json()];
            }""",
            [path, body],
        )
        assert status == 403, (path, answer)
        assert answer["error"] == (
            "bob is a viewer: viewers see everything and change nothing; ask an admin"
        )
    client = stack.redis()
    assert read_overrides(client) == {}
    assert read_history(client, 10) == []

    # reading works: the figures and the history are there for a viewer too
    state = await page.evaluate("fetch('/api/state').then(r => r.json())")
    assert [t["state"] for t in state["triggers"] if t["name"] == "welcome"] == ["on"]
    assert page.problems == []
    await page.context.close()

    # no credentials, or wrong ones: nothing at all
    anonymous = await browser.new_context()
    answer = await anonymous.request.get(f"{stack.console_url}/api/state")
    assert answer.status == 401
    assert "Basic" in answer.headers["www-authenticate"]
    await anonymous.close()
    wrong = await browser.new_context(http_credentials={"username": "bob", "password": "guess"})
    assert (await wrong.request.get(f"{stack.console_url}/api/state")).status == 401
    await wrong.close()


# --- the README's screenshot ------------------------------------------------------------------


async def test_figures_agree_with_kairos_report_and_the_page_is_photographed(
    stack: Stack, browser: Any
) -> None:
    """Traffic through the worker; the page's figures equal `kairos report`'s; a screenshot."""
    stack.clear_overrides()
    await shop_traffic(stack, customers=120, seed=7)
    page = await open_console(browser, stack, ADMIN)
    await page.locator("#period button[data-period='week']").click()
    await page.locator("#range button[data-range='1h']").click()

    report_env = {"BROKER_URL": f"kafka://{stack.bootstrap}"}

    async def agrees() -> bool:
        done = kairos("report", "--json", env=report_env)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        if report.get("abandoned_cart", {}).get("conversions_sent", 0) == 0:
            return False  # the orders are not all attributed yet
        await asyncio.sleep(2.5)  # one refresh of the page's figures
        for trigger, r in report.items():
            for name in ("decisions", "sent", "held_out"):
                if await figure(page, trigger, name) != r[name]:
                    return False
        return True

    await wait_for(agrees, 40, "the page's figures to equal kairos report's")
    uplift = page.locator("#uplift svg circle")
    assert await uplift.count() >= 1
    await page.locator("#charts figure[data-chart='abandoned_cart'] rect.bar-sent").first.wait_for()
    assert page.problems == []

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "console.png"
    await page.set_viewport_size({"width": 1360, "height": 1180})
    await page.screenshot(path=str(shot))
    await page.screenshot(path=str(SCREENSHOTS / "console-full.png"), full_page=True)
    if os.environ.get("KAIROS_README_SCREENSHOT"):  # `make screenshot` style refresh of docs/
        shutil.copyfile(shot, README_SCREENSHOT)
    await page.context.close()
