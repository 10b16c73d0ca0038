"""The POS page and the kitchen display, driven in a real browser (headless chromium)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.example.harness import ROOT, Example

pytestmark = pytest.mark.browser

WAIT = 20


def screenshot_dir(tmp_path: Path) -> Path:
    """docs/_static when OMNIMAN_SCREENSHOTS=1 (to refresh the docs' pictures), else a temp dir."""
    return ROOT / "docs" / "_static" if os.environ.get("OMNIMAN_SCREENSHOTS") == "1" else tmp_path


def wait(driver, condition, timeout: float = WAIT):
    """Wait until ``condition(driver)`` is truthy. The page redraws whole regions (the
    lines, the checks, the issues) when it reloads a session, and the shop's page reloads
    it several times after a modify: a condition that finds an element and reads or
    clicks it is tried again when the element was redrawn in between."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, ignored_exceptions=ignored).until(condition)


def click(driver, locator: str, by: str = "css selector") -> None:
    """Click the element ``locator`` finds, found again if it was redrawn before the click."""

    def found_and_clicked(d) -> bool:
        d.find_element(by, locator).click()
        return True

    wait(driver, found_and_clicked)


def text_is(css: str, expected: str):
    from selenium.webdriver.common.by import By

    def check(driver):
        return driver.find_element(By.CSS_SELECTOR, css).text == expected

    return check


def log_in(driver, example: Example, path: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(example.url + path)
    if "/login/" in driver.current_url:
        driver.find_element(By.ID, "id_username").send_keys("demo")
        driver.find_element(By.ID, "id_password").send_keys("demo")
        driver.find_element(By.ID, "login").click()
        wait(driver, lambda d: d.current_url.split("#")[0].endswith(path))


def new_session(driver) -> str:
    from selenium.webdriver.common.by import By

    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#channel option"))
    driver.find_element(By.ID, "new-session").click()
    wait(driver, text_is("#session-rev", "0"))
    return driver.find_element(By.ID, "session-key").text


def tap(driver, sku: str, rev: int) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'.product[data-sku="{sku}"]').click()
    wait(driver, text_is("#session-rev", str(rev)))
    sent(driver)


def sent(driver) -> None:
    """Until the page's outbox is empty (the pos channel shows a change before the
    server has it, then redraws the lines with the server's answer)."""
    from selenium.webdriver.common.by import By

    wait(driver, lambda d: d.find_element(By.ID, "net").get_attribute("data-waiting") == "0")


def test_pos_page_needs_a_login(example: Example, browser) -> None:
    """An anonymous visitor of /pos/ lands on the login page."""
    browser.delete_all_cookies()
    browser.get(example.url + "/pos/")
    assert "/login/" in browser.current_url
    assert "next=/pos/" in browser.current_url


def test_order_from_pos_reaches_the_kitchen(example: Example, browser, tmp_path: Path) -> None:
    """Three products tapped on the POS, one quantity raised, commit: the order is on the KDS."""
    from selenium.webdriver.common.by import By

    log_in(browser, example, "/pos/")
    # The page opens on the pos channel, the first one of the café.
    wait(browser, lambda d: d.find_element(By.ID, "channel").get_attribute("value") == "pos")
    new_session(browser)
    tap(browser, "COFFEE", 1)
    tap(browser, "CROISSANT", 2)
    tap(browser, "CAKE", 3)
    click(browser, 'tr[data-sku="COFFEE"] button[title="one more"]')
    wait(browser, text_is("#session-rev", "4"))
    sent(browser)

    rows = browser.find_elements(By.CSS_SELECTOR, "#lines tr[data-line-id]")
    assert [r.get_attribute("data-sku") for r in rows] == ["COFFEE", "CROISSANT", "CAKE"]
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-sku="COFFEE"] .qty-value').text == "2"
    # 2 × 5.00 + 7.50 + 12.00
    assert "29.50" in browser.find_element(By.ID, "total").text

    browser.find_element(By.ID, "commit").click()
    wait(browser, lambda d: d.find_element(By.ID, "order-ref").text)
    ref = browser.find_element(By.ID, "order-ref").text
    assert browser.find_element(By.ID, "session-state").text == "committed"
    assert f"Order {ref} committed" in browser.find_element(By.ID, "message").text
    # A committed session takes no more taps.
    assert not browser.find_element(By.CSS_SELECTOR, '.product[data-sku="COFFEE"]').is_enabled()
    # The ticket number the counter calls out, big: the order's number of the day.
    demo = example.manage("omniman_token", "demo").stdout.strip()
    number = example.request("GET", f"/api/orders/{ref}/", token=demo).body["number"]
    assert isinstance(number, int) and number >= 1
    wait(browser, text_is("#ticket-number", str(number)))
    assert browser.find_element(By.ID, "ticket").text == f"Ticket {number}"
    browser.save_screenshot(str(screenshot_dir(tmp_path) / "pos.png"))

    browser.get(example.url + "/kds/")
    ticket_css = f'#col-new article[data-ref="{ref}"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ticket_css))
    items = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ticket_css + " .items").text)
    assert items.splitlines() == ["2 × COFFEE", "1 × CROISSANT", "1 × CAKE"]
    assert browser.find_element(By.CSS_SELECTOR, ticket_css + " .number").text == f"#{number}"
    # A second order arrives while the display is open: the stream brings it in.
    token = example.manage("omniman_token", "kds-feeder", "--channels", "pos").stdout.strip()
    example.request("POST", "/api/sessions/", {"channel_code": "pos", "session_key": "TABLE-7"}, token=token)
    example.request(
        "POST", "/api/sessions/TABLE-7/modify/",
        {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "ESPRESSO", "qty": 2, "unit_price_q": 450}]},
        token=token,
    )
    second = example.request(
        "POST", "/api/sessions/TABLE-7/commit/", {"channel_code": "pos", "idempotency_key": "T7"}, token=token
    ).body["order_ref"]
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'#col-new article[data-ref="{second}"]'))
    # The next ticket of the day.
    assert browser.find_element(By.CSS_SELECTOR, f'article[data-ref="{second}"] .number').text == f"#{number + 1}"

    # Move the first order along the flow.
    click(browser, ticket_css + ' button[data-to="preparing"]')
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'#col-preparing article[data-ref="{ref}"]'))
    browser.save_screenshot(str(screenshot_dir(tmp_path) / "kds.png"))
    order = example.request("GET", f"/api/orders/{ref}/", token=demo)
    assert order.body["status"] == "preparing"

    # Another screen moves the second order: the stream brings only new orders, so this
    # display learns of the move when it re-reads the newest ones (every 15 s; here at once).
    moved = example.request("POST", f"/api/orders/{second}/transition/", {"to": "preparing"}, token=demo)
    assert moved.status == 200, moved.body
    assert browser.find_elements(By.CSS_SELECTOR, f'#col-new article[data-ref="{second}"]')
    browser.execute_async_script("refreshShown().then(arguments[arguments.length - 1]);")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'#col-preparing article[data-ref="{second}"]'))
    assert not browser.find_elements(By.CSS_SELECTOR, f'#col-new article[data-ref="{second}"]')


def test_stale_rev_in_two_tabs_is_shown_and_reconciled(example: Example, browser) -> None:
    """Two tabs on one session share the browser's outbox, so each shows the other's
    change at once; a change from another terminal is found by the 412, and the tap
    is applied on top of it (it touches no line the other terminal changed)."""
    from selenium.webdriver.common.by import By

    def skus() -> list[str]:
        # Read in one go: the lines are redrawn whole when the other tab's change arrives.
        return browser.execute_script(
            'return [...document.querySelectorAll("#lines tr[data-line-id]")].map(r => r.dataset.sku);'
        )

    log_in(browser, example, "/pos/")
    key = new_session(browser)
    tap(browser, "COFFEE", 1)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(f"{example.url}/pos/#pos/{key}")
    wait(browser, text_is("#session-rev", "1"))
    tap(browser, "WATER", 2)
    wait(browser, lambda d: not d.find_element(By.ID, "net").is_displayed())  # sent

    browser.switch_to.window(first)
    wait(browser, text_is("#session-rev", "2"))
    assert skus() == ["COFFEE", "WATER"]
    token = example.manage("omniman_token", "demo").stdout.strip()
    other = example.request(
        "POST", f"/api/sessions/{key}/modify/",
        {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "ESPRESSO", "qty": 1, "unit_price_q": 450}]},
        token=token,
    )
    assert other.status == 200, other.body
    assert browser.find_element(By.ID, "session-rev").text == "2"  # this tab has not seen rev 3
    browser.find_element(By.CSS_SELECTOR, '.product[data-sku="CAKE"]').click()
    wait(browser, lambda d: "changed elsewhere" in d.find_element(By.ID, "message").text)
    wait(browser, text_is("#session-rev", "4"))
    assert skus() == ["COFFEE", "WATER", "ESPRESSO", "CAKE"]  # the other change kept, the tap on top
    assert "warning" in browser.find_element(By.ID, "message").get_attribute("class")
    tap(browser, "CAKE", 5)


def test_web_channel_shows_the_stock_check_and_resolves_its_issue(example: Example, browser, tmp_path: Path) -> None:
    """On web, a sold-out product fails the stock check: the commit is refused with the
    reason, the issue's action removes the line, and the order then goes through."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, example, "/pos/")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#channel option[value="web"]'))
    Select(browser.find_element(By.ID, "channel")).select_by_value("web")
    new_session(browser)
    tap(browser, "COFFEE", 1)
    tap(browser, "SOLDOUT", 2)
    # Prices come from the catalog, not from the page.
    assert "9.00" in wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-sku="SOLDOUT"]').text)
    wait(browser, lambda d: "stock: failed" in d.find_element(By.ID, "checks").text)
    assert "SOLDOUT is out of stock" in wait(browser, lambda d: d.find_element(By.ID, "issues").text)

    browser.find_element(By.ID, "commit").click()
    wait(browser, lambda d: "commit_blocked" in d.find_element(By.ID, "message").text)
    assert browser.find_element(By.ID, "session-state").text == "open"
    browser.save_screenshot(str(screenshot_dir(tmp_path) / "pos-web.png"))

    click(browser, '//div[@id="issues"]//button[text()="Remove SOLDOUT"]', By.XPATH)
    wait(browser, text_is("#session-rev", "3"))
    wait(browser, lambda d: "stock: ok" in d.find_element(By.ID, "checks").text)
    skus = wait(browser, lambda d: [
        r.get_attribute("data-sku") for r in d.find_elements(By.CSS_SELECTOR, "#lines tr[data-line-id]")
    ])
    assert skus == ["COFFEE"]
    browser.find_element(By.ID, "commit").click()
    wait(browser, lambda d: d.find_element(By.ID, "order-ref").text.startswith("WEB-"))


def test_shop_lets_the_cashier_pick_options_and_the_kitchen_sees_them(example: Example, browser,
                                                                    tmp_path: Path) -> None:
    """On shop, a cappuccino gets oat milk and two shots from the line's option buttons;
    the page shows the options, the coupon-free tax and the total, and so does the KDS."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    log_in(browser, example, "/pos/")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#channel option[value="shop"]'))
    Select(browser.find_element(By.ID, "channel")).select_by_value("shop")
    new_session(browser)
    tap(browser, "CAPPUCCINO", 1)

    def pick(code: str, rev: int) -> None:
        click(browser, f'tr[data-sku="CAPPUCCINO"] button[data-option="{code}"]')
        wait(browser, text_is("#session-rev", str(rev)))

    pick("SOY", 2)
    pick("OAT", 3)  # one milk at most: oat replaces soy
    pick("SHOT", 4)
    pick("SHOT", 5)
    wait(browser, text_is('tr[data-sku="CAPPUCCINO"] .options', "+ OAT, 2× SHOT"))
    # (6.50 + 1.50 + 2 × 2.00) = 12.00, tax 1.20: 13.20.
    wait(browser, lambda d: "12.00" in d.find_element(By.CSS_SELECTOR, 'tr[data-sku="CAPPUCCINO"]').text)
    # The page shows each pick at once (an estimate, without the tax) and the server's
    # pricing once its outbox is sent.
    sent(browser)
    assert "tax" in browser.find_element(By.ID, "adjustments").text
    assert "13.20" in browser.find_element(By.ID, "total").text
    browser.save_screenshot(str(screenshot_dir(tmp_path) / "pos-options.png"))

    browser.find_element(By.ID, "commit").click()
    wait(browser, lambda d: d.find_element(By.ID, "order-ref").text.startswith("SHOP-"))
    ref = browser.find_element(By.ID, "order-ref").text
    browser.get(example.url + "/kds/")
    ticket_css = f'#col-new article[data-ref="{ref}"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ticket_css))
    assert browser.find_element(By.CSS_SELECTOR, ticket_css + " .items").text == "1 × CAPPUCCINO (OAT, 2× SHOT)"


def _commit_on_pos(browser, example: Example, *taps: str) -> str:
    from selenium.webdriver.common.by import By

    log_in(browser, example, "/pos/")
    wait(browser, lambda d: d.find_element(By.ID, "channel").get_attribute("value") == "pos")
    new_session(browser)
    for rev, sku in enumerate(taps, start=1):
        tap(browser, sku, rev)
    browser.find_element(By.ID, "commit").click()
    wait(browser, lambda d: d.find_element(By.ID, "order-ref").text)
    wait(browser, lambda d: d.find_elements(By.ID, "pay-form"))
    return browser.find_element(By.ID, "order-ref").text


def _fill(browser, field: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    box = browser.find_element(By.ID, field)
    box.clear()
    if value:
        box.send_keys(value)


def test_pos_takes_cash_and_shows_the_change(example: Example, browser, tmp_path: Path) -> None:
    """After the commit: cash, 20.00 handed over for 17.50 and a 1.00 tip: 1.50 back."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ref = _commit_on_pos(browser, example, "COFFEE", "CAKE", "ESPRESSO", "WATER")  # 5 + 12 + 4.50 + 3 = 24.50
    assert "24.50" in browser.find_element(By.ID, "pay-due").text
    Select(browser.find_element(By.ID, "pay-method")).select_by_value("cash")
    _fill(browser, "pay-tip", "1.00")
    _fill(browser, "pay-tendered", "30.00")
    assert "4.50" in browser.find_element(By.ID, "pay-change-preview").text  # 30 − 24.50 − 1
    browser.find_element(By.ID, "pay-submit").click()
    wait(browser, lambda d: d.find_elements(By.ID, "pay-change"))
    assert "4.50" in browser.find_element(By.ID, "pay-change").text
    assert browser.find_element(By.ID, "pay-status").text == "paid"
    assert "0.00" in browser.find_element(By.ID, "pay-due").text
    browser.execute_script("document.getElementById('payment').scrollIntoView({block: 'center'});")
    browser.save_screenshot(str(screenshot_dir(tmp_path) / "pos-payment.png"))
    demo = example.manage("omniman_token", "demo").stdout.strip()
    order = example.request("GET", f"/api/orders/{ref}/", token=demo).body
    assert (order["payment_status"], order["amount_paid_q"], order["tip_q"]) == ("paid", 2450, 100)
    # Refund one cake from the order view.
    # The page names its own line ids (offline.js): find the cake's button by its label.
    cake = [b for b in browser.find_elements(By.CSS_SELECTOR, "button.refund-line") if b.text == "Refund 1 CAKE"]
    assert len(cake) == 1
    cake[0].click()
    wait(browser, text_is("#pay-status", "partially_refunded"))
    assert "12.00" in browser.find_element(By.ID, "pay-due").text


def test_pos_splits_a_bill_between_cash_and_a_card(example: Example, browser) -> None:
    """Part in cash, the rest on the card terminal: pending, then captured by its directive."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ref = _commit_on_pos(browser, example, "CAKE", "CROISSANT")  # 19.50
    _fill(browser, "pay-amount", "10.00")
    browser.find_element(By.ID, "pay-submit").click()
    wait(browser, text_is("#pay-status", "partially_paid"))
    assert "9.50" in browser.find_element(By.ID, "pay-due").text
    assert browser.find_element(By.ID, "pay-amount").get_attribute("value") == "9.50"  # what is left
    Select(browser.find_element(By.ID, "pay-method")).select_by_value("card")
    assert not browser.find_element(By.ID, "pay-tendered-label").is_displayed()
    browser.find_element(By.ID, "pay-submit").click()
    wait(browser, text_is("#pay-status", "paid"))
    statuses = [(r.get_attribute("data-method"), r.get_attribute("data-status"))
                for r in browser.find_elements(By.CSS_SELECTOR, "#pay-ledger tr.pay-row")]
    assert statuses == [("cash", "captured"), ("card", "captured")]
    demo = example.manage("omniman_token", "demo").stdout.strip()
    ledger = example.request("GET", f"/api/orders/{ref}/payments/", token=demo).body
    assert [(p["method"], p["amount_q"], p["status"]) for p in ledger["payments"]] == [
        ("cash", 1000, "captured"), ("card", 950, "captured")]
