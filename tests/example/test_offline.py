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
from tests.example.test_pages import click, log_in, new_session, screenshot_dir, tap, text_is, wait

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


def page_kept(driver, timeout: float = 20) -> bool:
    """Whether the page's service worker controls it and its copy of the page is kept,
    within ``timeout``: offline.js does both as the page starts, without waiting, so a
    test that cuts the network at once may cut those requests too (and a cashier who
    reloads offline before they end gets the browser's error page)."""
    driver.set_script_timeout(timeout + 5)
    return bool(driver.execute_async_script(
        """
        const [timeout, done] = arguments;
        const end = Date.now() + timeout * 1000;
        (async () => {
          while (Date.now() < end) {
            const copy = await (await caches.open("omniman-pos-v1")).match(location.pathname);
            if (copy && navigator.serviceWorker.controller) return done(true);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          done(false);
        })();
        """,
        timeout,
    ))


def copy_sign(driver) -> list[str]:
    """The sign next to the badge that says whether a reload without the network opens
    the page: its state and its words ("" while the page is still keeping its copy)."""
    return driver.execute_script(
        'const n = document.getElementById("offline-ready");'
        'return n ? [n.dataset.state, n.hidden ? "" : n.textContent] : ["", ""];'
    )


def badge(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "net").text


def waiting(driver) -> int:
    from selenium.webdriver.common.by import By

    return int(driver.find_element(By.ID, "net").get_attribute("data-waiting") or 0)


def skus(driver) -> list[str]:
    """The lines' skus, read in one go: the page redraws its lines whole when the sender
    or a reload brings a session, so elements found one call earlier may be gone."""
    return driver.execute_script(
        'return [...document.querySelectorAll("#lines tr[data-line-id]")].map(r => r.dataset.sku);'
    )


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
    # The sign says a reload without the network opens the page once it does: the copy
    # is kept and the service worker controls the page (the reload below relies on it).
    wait(browser, lambda d: copy_sign(d) == ["ready", "✓ Ready offline"], timeout=20)
    assert page_kept(browser, timeout=1)
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
            assert copy_sign(browser) == ["ready", "✓ Ready offline"]
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
    line_id = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-sku="COFFEE"]').get_attribute("data-line-id"))

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
    wait(browser, text_is('tr[data-sku="COFFEE"] .qty-value', "5"))
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


def digits(text: str) -> str:
    return re.sub(r"[^\d.]", "", text)


def pick_channel(driver, code: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'#channel option[value="{code}"]'))
    Select(driver.find_element(By.ID, "channel")).select_by_value(code)


def test_shop_sells_offline_on_an_estimate_then_shows_the_servers_total(
    example: Example, browser, tmp_path: Path
) -> None:
    """On shop (priced by the server, with a tax on top) the page sells on offline and
    shows its total as an estimate without tax and coupons, labelled so; on reconnect
    the sale is replayed and the page shows the server's total, tax included."""
    from selenium.webdriver.common.by import By

    token = example.manage("omniman_token", "demo").stdout.strip()
    log_in(browser, example, "/pos/")
    pick_channel(browser, "shop")
    key = new_session(browser)
    tap(browser, "CAPPUCCINO", 1)
    wait(browser, lambda d: digits(d.find_element(By.ID, "total").text) == "7.15")  # 6.50 + 10 % tax
    assert "tax" in browser.find_element(By.ID, "adjustments").text
    assert not browser.find_element(By.ID, "estimate-note").is_displayed()

    network(browser, online=False)
    try:
        click(browser, product("COFFEE"))
        wait(browser, text_is("#session-rev", "2"))
        click(browser, 'tr[data-sku="COFFEE"] button[data-option="OAT"]')
        wait(browser, text_is("#session-rev", "3"))
        # 6.50 + (5.00 + 1.50 oat), no tax: an estimate, and said to be one.
        wait(browser, text_is("#total", "≈ " + browser.execute_script("return formatMoney(1300, 'BRL');")))
        assert "estimate" in browser.find_element(By.ID, "total").get_attribute("class")
        note = browser.find_element(By.ID, "estimate-note")
        assert note.is_displayed() and "leaves out tax and coupons" in note.text
        assert browser.find_element(By.ID, "adjustments").text == ""
        click(browser, "#commit")
        wait(browser, text_is("#session-state", "committed"))
        assert "before tax and coupons" in browser.find_element(By.ID, "message").text
        assert "≈" in browser.find_element(By.ID, "total").text
        wait(browser, lambda d: badge(d) == "Offline · 3 waiting")
        browser.save_screenshot(str(screenshot_dir(tmp_path) / "pos-offline-estimate.png"))
        assert example.request("GET", f"/api/sessions/{key}/?channel_code=shop", token=token).body["rev"] == 1
    finally:
        network(browser, online=True)

    wait(browser, lambda d: d.find_element(By.ID, "order-ref").text.startswith("SHOP-"))
    ref = browser.find_element(By.ID, "order-ref").text
    order = example.request("GET", f"/api/orders/{ref}/", token=token).body
    assert order["total_q"] == 1430  # 13.00 + 1.30 tax
    wait(browser, lambda d: digits(d.find_element(By.ID, "total").text) == "14.30")
    assert "≈" not in browser.find_element(By.ID, "total").text
    assert not browser.find_element(By.ID, "estimate-note").is_displayed()
    assert "tax" in browser.find_element(By.ID, "adjustments").text
    wait(browser, lambda d: "14.30" in d.find_element(By.ID, "message").text)


def test_web_refuses_to_sell_offline_and_keeps_nothing(example: Example, browser) -> None:
    """web's commit needs the stock check, which only the server runs: offline, a tap or
    a commit is refused with a plain message and nothing is queued; online again, the
    server has the session as it was and selling goes on."""
    from selenium.webdriver.common.by import By

    token = example.manage("omniman_token", "demo").stdout.strip()
    log_in(browser, example, "/pos/")
    pick_channel(browser, "web")
    key = new_session(browser)
    tap(browser, "COFFEE", 1)

    network(browser, online=False)
    try:
        click(browser, product("CAKE"))
        wait(browser, lambda d: "web sells online only" in d.find_element(By.ID, "message").text)
        assert "nothing was kept" in browser.find_element(By.ID, "message").text
        click(browser, "#commit")
        wait(browser, lambda d: "sells online only" in d.find_element(By.ID, "message").text)
        assert browser.find_element(By.ID, "session-rev").text == "1"
        assert browser.find_element(By.ID, "session-state").text == "open"
        assert waiting(browser) == 0
        assert browser.execute_script(
            "return Object.keys(localStorage).filter(k => k.startsWith('omniman.pos.outbox'))"
            ".flatMap(k => JSON.parse(localStorage.getItem(k)).queue);"
        ) == []
    finally:
        network(browser, online=True)

    session = example.request("GET", f"/api/sessions/{key}/?channel_code=web", token=token).body
    assert (session["rev"], [i["sku"] for i in session["items"]]) == (1, ["COFFEE"])
    tap(browser, "CAKE", 2)


def sign_in(driver, example: Example, username: str, password: str) -> None:
    """Sign out whoever is signed in (cookies gone), then sign in at /pos/."""
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(example.url + "/pos/")
    wait(driver, lambda d: "/login/" in d.current_url)
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    wait(driver, lambda d: d.current_url.split("#")[0].endswith("/pos/"))
    wait(driver, lambda d: d.find_element(By.ID, "channel").get_attribute("value") == "pos")


def test_two_cashiers_on_one_browser_keep_their_own_queues(example: Example, browser) -> None:
    """demo sells offline and signs out before the network is back: the page sends
    nothing and says it is signed out; ana signs in on the same browser, sees an empty
    queue and sells her own sale; demo's sale reaches the server only once demo signs in
    again, with demo's credentials."""
    from selenium.webdriver.common.by import By

    example.manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model; from omniman.models import Channel, ChannelGrant; "
        "u, _ = get_user_model().objects.get_or_create(username='ana'); u.set_password('ana'); u.save(); "
        "[ChannelGrant.objects.get_or_create(user=u, channel=c) for c in Channel.objects.all()]",
    )
    token = example.manage("omniman_token", "demo").stdout.strip()
    sign_in(browser, example, "demo", "demo")
    network(browser, online=False)
    try:
        demo_key, _ = sell(browser, [(product("CAKE"), "1")])
        wait(browser, lambda d: badge(d) == "Offline · 3 waiting")
        browser.delete_all_cookies()  # demo signs out (the session cookie and cafe_user go)
    finally:
        network(browser, online=True)
    browser.execute_script("window.dispatchEvent(new Event('online'));")
    wait(browser, lambda d: badge(d) == "Signed out · 3 waiting")
    click(browser, "#new-session")
    wait(browser, lambda d: "Signed out" in d.find_element(By.ID, "message").text)
    assert example.request("GET", f"/api/sessions/{demo_key}/?channel_code=pos", token=token).status == 404

    sign_in(browser, example, "ana", "ana")
    wait(browser, lambda d: browser.execute_script("return offline.user();") == "ana")
    assert waiting(browser) == 0
    assert not browser.find_element(By.ID, "net").is_displayed()
    ana_key = new_session(browser)
    tap(browser, "WATER", 1)
    click(browser, "#commit")
    wait(browser, lambda d: d.find_element(By.ID, "order-ref").text.startswith("POS-"))
    assert example.request("GET", f"/api/sessions/{ana_key}/?channel_code=pos", token=token).body["state"] == "committed"
    assert example.request("GET", f"/api/sessions/{demo_key}/?channel_code=pos", token=token).status == 404

    sign_in(browser, example, "demo", "demo")
    wait(browser, lambda d: waiting(d) == 0 and not d.find_element(By.ID, "net").is_displayed())
    demo_session = example.request("GET", f"/api/sessions/{demo_key}/?channel_code=pos", token=token).body
    assert (demo_session["state"], demo_session["rev"]) == ("committed", 1)
    order = example.request("GET", f"/api/orders/{demo_session['order_ref']}/", token=token).body
    assert order["total_q"] == 1200


def test_an_abandon_made_offline_is_sent_in_turn_on_its_rev(example: Example, browser) -> None:
    """An abandon made offline waits behind the session's taps and is sent once they
    are; one made on a session that another screen changed meanwhile is held and shown,
    and sent on the new rev when the cashier applies it."""
    from selenium.webdriver.common.by import By

    token = example.manage("omniman_token", "demo").stdout.strip()
    log_in(browser, example, "/pos/")
    wait(browser, lambda d: d.find_element(By.ID, "channel").get_attribute("value") == "pos")
    key = new_session(browser)
    tap(browser, "COFFEE", 1)
    network(browser, online=False)
    try:
        click(browser, product("CAKE"))
        wait(browser, text_is("#session-rev", "2"))
        click(browser, "#abandon")
        wait(browser, text_is("#session-state", "abandoned"))
        wait(browser, lambda d: badge(d) == "Offline · 2 waiting")
        assert "once the network allows" in browser.find_element(By.ID, "message").text
        browser.refresh()  # the queue, abandon included, survives a reload
        wait(browser, text_is("#session-state", "abandoned"))
        wait(browser, lambda d: badge(d) == "Offline · 2 waiting")
        session = example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body
        assert (session["state"], session["rev"]) == ("open", 1)
    finally:
        network(browser, online=True)
    wait(browser, lambda d: waiting(d) == 0)
    session = example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body
    assert (session["state"], session["rev"], [i["sku"] for i in session["items"]]) == (
        "abandoned", 2, ["COFFEE", "CAKE"]
    )

    key = new_session(browser)
    tap(browser, "WATER", 1)
    network(browser, online=False)
    try:
        click(browser, "#abandon")
        wait(browser, text_is("#session-state", "abandoned"))
        other = example.request(
            "POST", f"/api/sessions/{key}/modify/",
            {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "ESPRESSO", "qty": 1, "unit_price_q": 450}]},
            token=token,
        )
        assert other.status == 200, other.body
    finally:
        network(browser, online=True)
    wait(browser, lambda d: d.find_element(By.ID, "conflict").is_displayed())
    assert "changed on another screen before its abandon" in browser.find_element(By.ID, "conflict").text
    wait(browser, text_is("#session-state", "open"))
    assert skus(browser) == ["WATER", "ESPRESSO"]
    assert example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body["state"] == "open"

    click(browser, "#conflict-apply")
    wait(browser, lambda d: waiting(d) == 0 and not d.find_element(By.ID, "conflict").is_displayed())
    wait(browser, text_is("#session-state", "abandoned"))
    session = example.request("GET", f"/api/sessions/{key}/?channel_code=pos", token=token).body
    assert (session["state"], session["rev"]) == ("abandoned", 2)


def test_a_browser_that_keeps_no_copy_says_a_reload_needs_the_network(example: Example, browser) -> None:
    """Where the browser runs no service worker for the page (plain HTTP to another
    host: ``navigator.serviceWorker`` is missing, as made here before the page's scripts
    run), the page says that a reload needs the network instead of promising one."""
    added = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                    {"source": "delete Navigator.prototype.serviceWorker;"})
    try:
        log_in(browser, example, "/pos/")
        wait(browser, lambda d: copy_sign(d) == ["unavailable", "Reload needs the network"])
        assert browser.execute_script('return "serviceWorker" in navigator') is False
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})
    log_in(browser, example, "/pos/")
    wait(browser, lambda d: copy_sign(d) == ["ready", "✓ Ready offline"], timeout=20)
