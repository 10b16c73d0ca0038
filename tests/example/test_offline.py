"""The POS page with the network cut (Chromium's network emulation): sales are kept in
the browser, survive a reload, and reach the server once each on reconnect."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.example.conftest import make_example
from tests.example.harness import Example
from tests.example.test_pages import log_in, new_session, screenshot_dir, tap, text_is, wait

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[Example]:
    """An example of this module's own: its server is stopped and started again."""
    ex = make_example(tmp_path_factory, seeded_db, "offline")
    ex.start()
    try:
        yield ex
    finally:
        ex.stop()


def restart(ex: Example) -> None:
    """Start the stopped server again on its port (the page's origin, hence its storage)."""
    ex.spawn("server", sys.executable, str(ex.manage_py), "runserver", f"127.0.0.1:{ex.port}", "--noreload")
    ex.wait_http(f"{ex.url}/api/health/")


def network(driver, *, online: bool) -> None:
    """Cut or restore the page's network, as DevTools' "Offline" does."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": not online, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def badge(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "net").text


def waiting(driver) -> int:
    from selenium.webdriver.common.by import By

    return int(driver.find_element(By.ID, "net").get_attribute("data-waiting") or 0)


def skus(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [r.get_attribute("data-sku") for r in driver.find_elements(By.CSS_SELECTOR, "#lines tr[data-line-id]")]


def click(driver, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


def sell(driver, taps: list[tuple[str, str]]) -> tuple[str, str]:
    """A new session, the taps (css, rev it leads to), a commit; returns (key, total shown)."""
    from selenium.webdriver.common.by import By

    before = driver.find_element(By.ID, "session-key").text
    click(driver, "#new-session")
    wait(driver, lambda d: d.find_element(By.ID, "session-key").text not in ("—", before))
    wait(driver, text_is("#session-rev", "0"))
    key = driver.find_element(By.ID, "session-key").text
    for css, rev in taps:
        click(driver, css)
        wait(driver, text_is("#session-rev", rev))
    total = driver.find_element(By.ID, "total").text
    click(driver, "#commit")
    wait(driver, text_is("#session-state", "committed"))
    return key, total


def product(sku: str) -> str:
    return f'.product[data-sku="{sku}"]'


def test_three_sales_made_offline_survive_a_reload_and_reach_the_server_once(
    example: Example, browser, tmp_path: Path
) -> None:
    """Offline: two sales, each in a new session, and the badge counts the waiting
    requests; a reload with the server down too keeps them and sells a third; on
    reconnect they are replayed in order, and the server holds exactly three orders
    with the totals the cashier saw."""
    from selenium.webdriver.common.by import By

    token = example.manage("omniman_token", "demo").stdout.strip()
    start = datetime.now(UTC).isoformat()
    log_in(browser, example, "/pos/")
    wait(browser, lambda d: d.find_element(By.ID, "channel").get_attribute("value") == "pos")
    network(browser, online=False)
    try:
        sales = [
            # COFFEE 5.00 + CAKE 12.00
            sell(browser, [(product("COFFEE"), "1"), (product("CAKE"), "2")]),
            # 2 × ESPRESSO 4.50 + CROISSANT 7.50
            sell(browser, [(product("ESPRESSO"), "1"), (product("ESPRESSO"), "2"), (product("CROISSANT"), "3")]),
        ]
        # 2 creates + 5 modifies + 2 commits, none sent.
        wait(browser, lambda d: badge(d) == "Offline · 9 waiting")
        assert "saved" in browser.find_element(By.ID, "message").text
        for key, _ in sales:
            assert example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).status == 404

        # Chromium's emulation cuts the page, not its service worker: stop the server
        # too, so that the reloaded page can only come from the copy the page kept.
        example.stop()
        try:
            browser.refresh()
            wait(browser, text_is("#session-key", sales[-1][0]))
            wait(browser, lambda d: badge(d) == "Offline · 9 waiting")
            assert browser.find_element(By.ID, "session-state").text == "committed"
            assert skus(browser) == ["ESPRESSO", "CROISSANT"]
            # The reloaded page sells on: WATER, COFFEE, then WATER taken off again.
            sales.append(sell(browser, [(product("WATER"), "1"), (product("COFFEE"), "2"),
                                        ('tr[data-sku="WATER"] button[title="one less"]', "3")]))
            wait(browser, lambda d: badge(d) == "Offline · 14 waiting")
            browser.save_screenshot(str(screenshot_dir(tmp_path) / "pos-offline.png"))
        finally:
            restart(example)
        assert [re.sub(r"[^\d.]", "", total) for _, total in sales] == ["17.00", "16.50", "5.00"]
    finally:
        network(browser, online=True)

    wait(browser, lambda d: waiting(d) == 0 and not d.find_element(By.ID, "net").is_displayed())
    wait(browser, lambda d: d.find_element(By.ID, "order-ref").text.startswith("POS-"))

    orders = example.request(
        "GET", f"/api/orders/?channel_code=pos&created_after={quote(start)}", token=token
    ).body["results"]
    assert sorted((o["session_key"], o["total_q"]) for o in orders) == sorted(
        zip([key for key, _ in sales], [1700, 1650, 500], strict=True)
    )
    # Each modify reached the server once: the revs count the cashier's taps.
    revs = [example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body["rev"]
            for key, _ in sales]
    assert revs == [2, 3, 3]


def test_a_change_made_elsewhere_while_offline_is_shown_not_overwritten(example: Example, browser) -> None:
    """Offline, the cashier raises a line that another screen changes meanwhile: on
    reconnect the page shows the other screen's line and holds its own change until the
    cashier drops it; the server keeps the other screen's change."""
    from selenium.webdriver.common.by import By

    token = example.manage("omniman_token", "demo").stdout.strip()
    log_in(browser, example, "/pos/")
    key = new_session(browser)
    tap(browser, "COFFEE", 1)
    wait(browser, lambda d: waiting(d) == 0)
    line_id = browser.find_element(By.CSS_SELECTOR, 'tr[data-sku="COFFEE"]').get_attribute("data-line-id")

    network(browser, online=False)
    try:
        click(browser, 'tr[data-sku="COFFEE"] button[title="one more"]')
        wait(browser, text_is("#session-rev", "2"))
        click(browser, product("CAKE"))
        wait(browser, text_is("#session-rev", "3"))
        wait(browser, lambda d: badge(d) == "Offline · 2 waiting")
        other = example.request(
            "POST", f"/api/sessions/{key}/modify/",
            {"channel_code": "pos", "rev": 1, "ops": [{"op": "set_qty", "line_id": line_id, "qty": 5}]},
            token=token,
        )
        assert other.status == 200, other.body
    finally:
        network(browser, online=True)

    wait(browser, lambda d: d.find_element(By.ID, "conflict").is_displayed())
    assert "COFFEE was changed on another screen" in browser.find_element(By.ID, "conflict").text
    wait(browser, text_is("#session-rev", "2"))
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-sku="COFFEE"] .qty-value').text == "5"
    assert skus(browser) == ["COFFEE"]
    assert badge(browser) == "Online · 2 waiting · 1 conflict"
    server = example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body
    assert (server["rev"], [(i["sku"], i["qty"]) for i in server["items"]]) == (2, [("COFFEE", "5")])

    click(browser, "#conflict-drop")
    wait(browser, lambda d: not d.find_element(By.ID, "conflict").is_displayed())
    wait(browser, lambda d: not d.find_element(By.ID, "net").is_displayed())
    assert browser.find_element(By.ID, "session-rev").text == "2"
    assert example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body["rev"] == 2

    # A change elsewhere that touches no line of the cashier's is not a conflict: the
    # cashier's waiting tap is applied on top of it.
    network(browser, online=False)
    try:
        click(browser, product("WATER"))
        wait(browser, text_is("#session-rev", "3"))
        other = example.request(
            "POST", f"/api/sessions/{key}/modify/",
            {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "ESPRESSO", "qty": 1, "unit_price_q": 450}]},
            token=token,
        )
        assert other.status == 200, other.body
    finally:
        network(browser, online=True)
    wait(browser, text_is("#session-rev", "4"))
    wait(browser, lambda d: waiting(d) == 0)
    assert skus(browser) == ["COFFEE", "ESPRESSO", "WATER"]
    assert "applied on top" in browser.find_element(By.ID, "message").text
    server = example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body
    assert [(i["sku"], i["qty"]) for i in server["items"]] == [("COFFEE", "5"), ("ESPRESSO", "1"), ("WATER", "1")]


def test_a_sale_changed_elsewhere_before_its_commit_waits_for_the_cashier(example: Example, browser) -> None:
    """A commit made offline is not sent on a session that changed meanwhile: the page
    shows the change and commits only when the cashier applies it on top; a commit of
    a session abandoned elsewhere is refused, shown, and dropped by the cashier."""
    from selenium.webdriver.common.by import By

    token = example.manage("omniman_token", "demo").stdout.strip()
    log_in(browser, example, "/pos/")
    key = new_session(browser)
    tap(browser, "COFFEE", 1)

    network(browser, online=False)
    try:
        click(browser, "#commit")
        wait(browser, text_is("#session-state", "committed"))
        other = example.request(
            "POST", f"/api/sessions/{key}/modify/",
            {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "WATER", "qty": 1, "unit_price_q": 300}]},
            token=token,
        )
        assert other.status == 200, other.body
    finally:
        network(browser, online=True)

    wait(browser, lambda d: d.find_element(By.ID, "conflict").is_displayed())
    assert "changed on another screen before its commit" in browser.find_element(By.ID, "conflict").text
    wait(browser, text_is("#session-state", "open"))
    assert skus(browser) == ["COFFEE", "WATER"]
    session = example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body
    assert (session["state"], session["rev"]) == ("open", 2)

    click(browser, "#conflict-apply")
    wait(browser, lambda d: d.find_element(By.ID, "order-ref").text.startswith("POS-"))
    ref = browser.find_element(By.ID, "order-ref").text
    assert example.request("GET", f"/api/orders/{ref}/", token=token).body["total_q"] == 800
    assert not browser.find_element(By.ID, "conflict").is_displayed()

    key = new_session(browser)
    tap(browser, "CAKE", 1)
    network(browser, online=False)
    try:
        click(browser, "#commit")
        wait(browser, text_is("#session-state", "committed"))
        gone = example.request("POST", f"/api/sessions/{key}/abandon/", {"channel_code": "pos"}, token=token)
        assert gone.status == 200, gone.body
    finally:
        network(browser, online=True)
    wait(browser, lambda d: d.find_element(By.ID, "conflict").is_displayed())
    assert "session_not_open" in browser.find_element(By.ID, "conflict").text
    wait(browser, text_is("#session-state", "abandoned"))
    assert not browser.find_elements(By.ID, "conflict-apply")
    click(browser, "#conflict-drop")
    wait(browser, lambda d: not d.find_element(By.ID, "net").is_displayed())
    assert browser.find_element(By.ID, "session-state").text == "abandoned"

    # The page's own abandon stays abandoned when the page next redraws from its outbox.
    new_session(browser)
    tap(browser, "WATER", 1)
    click(browser, "#abandon")
    wait(browser, text_is("#session-state", "abandoned"))
    browser.execute_script("window.dispatchEvent(new Event('online'));")
    wait(browser, lambda d: waiting(d) == 0)
    assert browser.find_element(By.ID, "session-state").text == "abandoned"
