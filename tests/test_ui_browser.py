"""The status page in a real browser: headless Chromium, driven by Selenium, against a real
`notifyd serve` with a token, delivering to receivers on 127.0.0.1.

Logging in (and being refused), a new event appearing without a reload, Retry of a dead job,
Disable and Enable keeping the config file's comments, Log out (and an old cookie refused), and
for every page: labelled controls, no positive tabindex, Tab reaching every link and button of
<main>, live refreshes that leave an unchanged page (and the keyboard focus) alone, nothing wider
than a 360 px screen.

One daemon and one browser serve the whole module (each test logs in again if it needs to); it
skips when Debian's chromium and chromium-driver are missing. With NOTIFYD_SCREENSHOTS=FOLDER set,
the screenshot test saves a PNG of every page there:

    NOTIFYD_SCREENSHOTS=docs/screenshots python -m pytest tests/test_ui_browser.py
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from conftest import FIXTURES, Daemon, DaemonFactory, Receiver, wait_for, write_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("no headless Chromium and driver: apt-get install chromium chromium-driver",
                allow_module_level=True)
selenium = pytest.importorskip("selenium", reason="no selenium: pip install -e '.[test]'")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TOKEN = "ui-test-token-4f9c2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COOKIE = "notifyd_session"
WAIT = 15.0                       # the longest any browser wait may take (a busy 2-core machine)
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync")
RUN_DONE = "7f3c2a9e-5b1d-4c8e-9a2f-0d6e1b4c3a21"
RUN_GOING = "0b9e4d1c-2a7f-4e3b-8c6d-5f1a9e2b7c40"


# -- the daemon, its receivers and the browser ---------------------------------------------------


@dataclass
class Site:
    """A running daemon with a token, `sink` (every event) and `phone` (health only, always 500)."""

    daemon: Daemon
    config: Path
    sink: Receiver
    phone: Receiver

    @property
    def url(self) -> str:
        return self.daemon.url

    def webhook(self, source: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.daemon.post(f"/webhooks/{source}", body, headers=AUTH)
        assert answer.status_code in (200, 202), answer.text
        return answer.json()

    def event(self, event_id: int) -> dict[str, Any]:
        answer = self.daemon.get(f"/events/{event_id}", headers=AUTH)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def job(self, event_id: int, job_id: int) -> dict[str, Any]:
        return next(j for j in self.event(event_id)["jobs"] if j["id"] == job_id)

    def wait_job(self, event_id: int, job_id: int, state: str) -> dict[str, Any]:
        return wait_for(lambda: (lambda j: j if j["state"] == state else None)(self.job(event_id, job_id)),
                        WAIT, interval=0.1, message=f"job {job_id} to be {state}")

    def settled(self) -> dict[str, Any]:
        """Wait until no job is queued or running; the queue's numbers."""
        def quiet() -> dict[str, Any] | None:
            queue = self.daemon.get("/health").json()["queue"]
            return queue if queue["queued"] == 0 and queue["running"] == 0 else None
        return wait_for(quiet, WAIT, interval=0.1, message="every job to finish")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("ui")
    sink, phone = Receiver(), Receiver()
    phone.default_status = 500
    factory = DaemonFactory(tmp)
    try:
        config = write_config(tmp / "config.toml", sink.json_url, max_attempts=2)
        text = config.read_text().replace('max_body = "64KB"', f'max_body = "64KB"\ntoken = "{TOKEN}"')
        text += f'\n[services.phone]\ntype = "apprise"\nurl = "json://127.0.0.1:{phone.port}/phone"\nevents = ["health"]\n'
        config.write_text(text)
        yield Site(factory.start(config), config, sink, phone)
    finally:
        factory.cleanup()
        sink.close()
        phone.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="notifyd-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1200,900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def logged_in(browser: WebDriver, site: Site) -> WebDriver:
    """The browser, logged in (again, if a test before logged out), at a width of 1200 px."""
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    log_in(browser, site)
    return browser


@pytest.fixture(scope="module")
def seeded(site: Site) -> dict[str, int]:
    """Realistic data: *arr events, a generic one, a dead job (phone answers 500), two runs."""
    ids: dict[str, int] = {}

    def run_update(run_id: str, status: str) -> None:
        body = json.loads((FIXTURES / f"comfydeploy-run-{status}.json").read_text())
        site.webhook("comfydeploy", {**body, "run_id": run_id})

    for run_id, name in ((RUN_DONE, "Portrait batch"), (RUN_GOING, "Upscale 4x")):
        answer = site.daemon.post("/runs", {"id": run_id, "name": name, "notify": ["sink"],
                                            "cost_rate": {"amount": 0.00114, "unit": "second"}}, headers=AUTH)
        assert answer.status_code == 201, answer.text
        run_update(run_id, "queued")
        run_update(run_id, "running")
    for name in ("radarr-grab", "radarr-download", "sonarr-download", "lidarr-download", "radarr-health"):
        ids[name] = site.webhook(name.split("-")[0], json.loads((FIXTURES / f"{name}.json").read_text()))["event_id"]
    ids["generic"] = site.webhook("generic", {"title": "Nightly backup couldn't reach the NAS",
                                              "body": "rsync: connection refused (nas.lan:873), 3 tries"})["event_id"]
    run_update(RUN_DONE, "success")          # after the events: the run took a little while
    queue = site.settled()
    assert queue["dead"] >= 1, "phone's job for the health event went dead"
    phone_job = next(j for j in site.event(ids["radarr-health"])["jobs"] if j["service"] == "phone")
    assert phone_job["state"] == "dead"
    ids["dead_job"] = phone_job["id"]
    return ids


# -- helpers -------------------------------------------------------------------------------------


def until(driver: WebDriver, check: Callable[[], Any], message: str) -> Any:
    """Wait (at most WAIT seconds) until check() is truthy; its value."""
    return WebDriverWait(driver, WAIT, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(lambda _: check(), message)


def path_of(driver: WebDriver) -> str:
    return urlsplit(driver.current_url).path


def main_text(driver: WebDriver) -> str:
    """The text of <main> (read in one go: live.js may swap its content at any time)."""
    return driver.execute_script("var m = document.getElementById('main'); return m ? m.innerText : '';")


def heading(driver: WebDriver) -> str:
    return driver.execute_script("var h = document.querySelector('h1'); return h ? h.innerText : '';")


def labelled(driver: WebDriver, label: str) -> WebElement:
    """The control a <label for> with this text names."""
    target = driver.find_element(By.XPATH, f"//label[normalize-space()='{label}']").get_attribute("for")
    return driver.find_element(By.ID, target)


def button(scope: WebDriver | WebElement, text: str) -> WebElement:
    return scope.find_element(By.XPATH, f".//button[normalize-space()='{text}']")


def log_in(driver: WebDriver, site: Site) -> None:
    driver.get(site.url + "/")
    if path_of(driver) == "/ui/login":
        labelled(driver, "Token").send_keys(TOKEN)
        button(driver, "Log in").click()
        until(driver, lambda: path_of(driver) == "/", "the overview after logging in")
    until(driver, lambda: heading(driver) == "Overview", "the overview")


def row_button(driver: WebDriver, row_id: str, text: str) -> WebElement | None:
    found = driver.find_elements(By.XPATH, f"//*[@id='{row_id}']//button[normalize-space()='{text}']")
    return found[0] if found else None


def press(driver: WebDriver, row_id: str, text: str) -> str:
    """Click the button with this text in the row (found again if live.js swapped the row under
    us); the button's accessible name."""
    def click() -> str | None:
        found = row_button(driver, row_id, text)
        if found is None:
            return None
        try:
            name = found.accessible_name
            found.click()
        except StaleElementReferenceException:
            return None
        return name
    return until(driver, click, f"the {text} button of #{row_id}")


def live_fetches(driver: WebDriver) -> int:
    """How many refreshes live.js has fetched (and read to the end) since the page loaded."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').filter(function (e) {"
        "  return e.initiatorType === 'fetch'; }).length;")


def service_table(config: Path) -> dict[str, Any]:
    return tomllib.loads(config.read_text())["services"]


# -- the tests -----------------------------------------------------------------------------------


def test_a_token_sends_the_visitor_to_log_in_first(browser: WebDriver, site: Site) -> None:
    browser.delete_all_cookies()
    browser.get(site.url + "/")
    assert path_of(browser) == "/ui/login"
    assert parse_qs(urlsplit(browser.current_url).query)["next"] == ["/"]
    assert heading(browser) == "Log in"

    labelled(browser, "Token").send_keys(TOKEN)
    button(browser, "Log in").click()
    until(browser, lambda: path_of(browser) == "/", "the overview after logging in")
    assert heading(browser) == "Overview"
    assert "dead" in main_text(browser) and "queued" in main_text(browser)
    cookie = browser.get_cookie(COOKIE)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_a_wrong_token_is_refused_and_the_form_keeps_its_place(browser: WebDriver, site: Site) -> None:
    browser.delete_all_cookies()
    browser.get(site.url + "/ui/events")
    assert path_of(browser) == "/ui/login"
    labelled(browser, "Token").send_keys("not-the-token")
    button(browser, "Log in").click()
    alert = until(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "[role=alert]"), "the refusal")
    assert "not the token" in alert[0].text
    assert path_of(browser) == "/ui/login" and browser.get_cookie(COOKIE)["value"]

    # Reading the refusal away from the field: a live refresh (every 2 s) must not wipe it, nor
    # the page the form goes back to.
    browser.execute_script("document.activeElement.blur();")
    time.sleep(2.5)
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "[role=alert]")] == [alert[0].text]
    assert browser.find_element(By.CSS_SELECTOR, "input[name=next]").get_attribute("value") == "/ui/events"

    labelled(browser, "Token").send_keys(TOKEN)
    button(browser, "Log in").click()
    until(browser, lambda: path_of(browser) == "/ui/events", "the events page after logging in")


def test_logging_in_returns_to_the_filtered_page(browser: WebDriver, site: Site) -> None:
    browser.delete_all_cookies()
    browser.get(site.url + "/ui/jobs?state=dead&service=phone")
    assert path_of(browser) == "/ui/login"
    labelled(browser, "Token").send_keys(TOKEN)
    button(browser, "Log in").click()
    until(browser, lambda: path_of(browser) != "/ui/login", "a page after logging in")
    assert urlsplit(browser.current_url).query == "state=dead&service=phone"


def test_a_new_event_appears_without_a_reload(logged_in: WebDriver, site: Site) -> None:
    browser = logged_in
    browser.get(site.url + "/ui/events")
    browser.execute_script("window.__marker = 1;")
    title = "Plex library scan finished (live test)"
    assert title not in main_text(browser)

    site.webhook("generic", {"title": title, "body": "2 new items"})
    until(browser, lambda: title in main_text(browser), "the new event on the page")
    assert browser.execute_script("return window.__marker;") == 1, "the page was reloaded"
    assert path_of(browser) == "/ui/events"


def test_retry_a_dead_job_once_its_receiver_is_back(logged_in: WebDriver, site: Site) -> None:
    browser = logged_in
    site.sink.default_status = 500
    try:
        answer = site.webhook("generic", {"title": "Certificate renewal for example.org", "body": "renewed"})
        event_id = answer["event_id"]
        job_id = next(j["id"] for j in answer["jobs"] if j["service"] == "sink")
        dead = site.wait_job(event_id, job_id, "dead")
        assert dead["attempts"] == 2 and "500" in (dead["last_error"] or "")

        browser.get(site.url + "/ui/jobs?state=dead")
        until(browser, lambda: row_button(browser, f"job-{job_id}", "Retry"), "the dead job's Retry")
    finally:
        site.sink.default_status = 200
    delivered = len(site.sink.bodies())
    assert press(browser, f"job-{job_id}", "Retry") == f"Retry job {job_id}"

    until(browser, lambda: f"job {job_id}: queued" in browser.find_element(By.TAG_NAME, "body").text,
          "the Retry's result")
    assert path_of(browser) == "/ui/jobs" and parse_qs(urlsplit(browser.current_url).query)["state"] == ["dead"]
    browser.get(site.url + "/ui/jobs?service=sink")
    until(browser, lambda: "succeeded" in browser.execute_script(
        f"var row = document.getElementById('job-{job_id}'); return row ? row.innerText : '';"),
        "the job to show succeeded")
    wait_for(lambda: len(site.sink.bodies()) > delivered, WAIT, message="the retried delivery")
    assert any(isinstance(b, dict) and b.get("title") == "Certificate renewal for example.org"
               for b in site.sink.bodies()[delivered:])
    assert site.job(event_id, job_id)["state"] == "succeeded"


def test_disable_and_enable_a_service_keeps_the_config_comments(logged_in: WebDriver, site: Site) -> None:
    browser = logged_in
    assert "# the receiver the tests run" in site.config.read_text()
    browser.get(site.url + "/ui/services")
    assert row_button(browser, "service-sink", "Enable") is None
    assert press(browser, "service-sink", "Disable") == "Disable sink"

    until(browser, lambda: row_button(browser, "service-sink", "Enable"), "the page to offer Enable")
    assert "service sink disabled" in browser.find_element(By.TAG_NAME, "body").text
    text = site.config.read_text()
    assert "# the receiver the tests run" in text and "# test config" in text
    assert service_table(site.config)["sink"]["enabled"] is False
    assert service_table(site.config)["phone"].get("enabled", True) is True
    assert "disabled" in browser.execute_script("return document.getElementById('service-sink').innerText;")

    assert press(browser, "service-sink", "Enable") == "Enable sink"
    until(browser, lambda: row_button(browser, "service-sink", "Disable"), "the page to offer Disable again")
    assert "# the receiver the tests run" in site.config.read_text()
    assert service_table(site.config)["sink"].get("enabled", True) is True


# Every input, select, button and textarea must have a name a screen reader can say.
A11Y_PROBLEMS = """
var problems = [];
function text(el) { return (el.textContent || '').replace(/\\s+/g, ' ').trim(); }
function nameOf(el) {
  var aria = (el.getAttribute('aria-label') || '').trim();
  if (aria) { return aria; }
  var by = el.getAttribute('aria-labelledby');
  if (by) {
    var joined = by.split(/\\s+/).map(function (id) {
      var it = document.getElementById(id); return it ? text(it) : ''; }).join(' ').trim();
    if (joined) { return joined; }
  }
  if (el.id) {
    var label = document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
    if (label && text(label)) { return text(label); }
  }
  var around = el.closest('label');
  if (around && text(around)) { return text(around); }
  if (el.tagName === 'BUTTON') { return text(el); }
  if (el.tagName === 'INPUT' && /^(submit|button|reset)$/.test(el.type)) { return (el.value || '').trim(); }
  return '';
}
document.querySelectorAll('input, select, button, textarea').forEach(function (el) {
  if (el.type !== 'hidden' && !nameOf(el)) { problems.push('no accessible name: ' + el.outerHTML.slice(0, 160)); }
});
document.querySelectorAll('[tabindex]').forEach(function (el) {
  if (parseInt(el.getAttribute('tabindex'), 10) > 0) { problems.push('tabindex > 0: ' + el.outerHTML.slice(0, 160)); }
});
document.querySelectorAll('a[href]').forEach(function (el) {
  if (!text(el) && !el.getAttribute('aria-label')) { problems.push('a link with no text: ' + el.outerHTML.slice(0, 160)); }
});
var seen = {};
document.querySelectorAll('[id]').forEach(function (el) {
  if (seen[el.id]) { problems.push('duplicate id: ' + el.id); }
  seen[el.id] = true;
});
return problems;
"""

# Remember every visible link and button of <main>, and note each one that keyboard focus reaches.
TAB_TARGETS = """
window.__targets = Array.prototype.filter.call(document.querySelectorAll('#main a[href], #main button'),
  function (el) { return el.getClientRects().length > 0; });
window.__reached = [];
function note() {
  var i = window.__targets.indexOf(document.activeElement);
  if (i >= 0 && window.__reached.indexOf(i) < 0) { window.__reached.push(i); }
}
document.addEventListener('focusin', note);
note();
return document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea').length;
"""

TAB_MISSED = """
return window.__targets.filter(function (el, i) { return window.__reached.indexOf(i) < 0; })
  .map(function (el) { return el.outerHTML.slice(0, 160); });
"""


def main_pages(seeded: dict[str, int]) -> list[str]:
    return ["/", "/ui/events", f"/ui/events/{seeded['radarr-health']}", "/ui/jobs", "/ui/jobs?state=dead",
            "/ui/services", "/ui/runs", "/ui/login"]


def test_every_page_is_labelled_and_keyboard_usable(logged_in: WebDriver, site: Site,
                                                    seeded: dict[str, int]) -> None:
    browser = logged_in
    problems: dict[str, list[str]] = {}
    for page in main_pages(seeded):
        browser.get(site.url + page)
        assert path_of(browser) == urlsplit(page).path, f"{page} sent the browser to {browser.current_url}"
        assert TOKEN not in browser.page_source, f"{page} shows the token"
        found = list(browser.execute_script(A11Y_PROBLEMS))
        focusable = browser.execute_script(TAB_TARGETS)
        ActionChains(browser).send_keys(Keys.TAB * (focusable + 2)).perform()
        found += [f"Tab never reaches {missed}" for missed in browser.execute_script(TAB_MISSED)]
        if found:
            problems[page] = found
    assert not problems, json.dumps(problems, indent=1)


def test_live_refresh_leaves_an_unchanged_page_and_the_focus_alone(logged_in: WebDriver, site: Site,
                                                                     seeded: dict[str, int]) -> None:
    """Nothing changed, nothing rewritten: the events page (a title with an apostrophe) and the jobs
    filtered by state (a selected option). And a keyboard user resting on a link keeps their place:
    refreshes wait while the focus is inside the page's main part."""
    browser = logged_in
    site.settled()
    for page in ("/ui/events", "/ui/jobs?state=dead"):
        browser.get(site.url + page)
        browser.execute_script(
            "window.__mutations = 0;"
            "new MutationObserver(function (m) { window.__mutations += m.length; })"
            "  .observe(document.getElementById('main'), {childList: true, subtree: true, characterData: true});"
            "document.activeElement && document.activeElement.blur();")
        start = live_fetches(browser)
        until(browser, lambda start=start: live_fetches(browser) >= start + 2, f"two live refreshes of {page}")
        assert browser.execute_script("return window.__mutations;") == 0, f"{page}: <main> rewritten unchanged"
    browser.execute_script("window.__link = document.querySelector('#main a[href]'); window.__link.focus();")
    held = live_fetches(browser)
    time.sleep(5)                                          # two refresh periods and more
    assert live_fetches(browser) == held, "a refresh ran while the reader's focus was in the page"
    assert browser.execute_script("return document.activeElement === window.__link;")
    browser.execute_script("document.activeElement.blur();")
    until(browser, lambda: live_fetches(browser) > held, "refreshes once the focus left")


def test_every_page_fits_a_360_px_screen(logged_in: WebDriver, site: Site, seeded: dict[str, int]) -> None:
    browser = logged_in
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": False})
    try:
        overflowing = {}
        for page in main_pages(seeded):
            browser.get(site.url + page)
            inner, scroll = browser.execute_script(
                "return [window.innerWidth, document.documentElement.scrollWidth];")
            assert inner == 360
            if scroll > inner + 1:
                overflowing[page] = scroll
            # A table may scroll sideways in itself, but no column may be squeezed to a letter a line.
            squeezed = browser.execute_script(
                "return Array.prototype.filter.call(document.querySelectorAll('#main td'), function (td) {"
                "  return td.getBoundingClientRect().height > 200; }).map(function (td) { return td.innerText; });")
            assert not squeezed, f"{page}: cells squeezed at 360 px: {squeezed}"
            # Every button is on screen, not past a table's sideways scroll.
            hidden = browser.execute_script(
                "return Array.prototype.filter.call(document.querySelectorAll('#main button'), function (b) {"
                "  var r = b.getBoundingClientRect(); return r.left < 0 || r.right > window.innerWidth; })"
                ".map(function (b) { return b.getAttribute('aria-label') || b.innerText; });")
            assert not hidden, f"{page}: buttons off screen at 360 px: {hidden}"
        assert "/" not in overflowing, f"the overview scrolls sideways at 360 px: {overflowing}"
        assert not overflowing, f"pages wider than 360 px: {overflowing}"
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def shoot(browser: WebDriver, url: str, target: Path, width: int) -> int:
    """Load url at this width and save the whole page (at most 2400 px tall) as a PNG; its size."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600})
    browser.get(url)
    browser.execute_script("document.activeElement && document.activeElement.blur();")
    height = min(2400, browser.execute_script("return document.documentElement.scrollHeight;"))
    shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    data = base64.b64decode(shot["data"])
    target.write_bytes(data)
    return len(data)


def test_screenshots(logged_in: WebDriver, site: Site, seeded: dict[str, int]) -> None:
    folder = os.environ.get("NOTIFYD_SCREENSHOTS")
    if not folder:
        pytest.skip("set NOTIFYD_SCREENSHOTS=FOLDER to save screenshots of every page")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    browser = logged_in
    site.settled()
    pages = {"overview": "/", "events": "/ui/events", "event": f"/ui/events/{seeded['radarr-health']}",
             "jobs": "/ui/jobs", "services": "/ui/services", "runs": "/ui/runs"}
    sizes = {}
    try:
        for name, page in pages.items():
            sizes[f"{name}.png"] = shoot(browser, site.url + page, out / f"{name}.png", 1200)
        sizes["overview-360.png"] = shoot(browser, site.url + "/", out / "overview-360.png", 360)
        browser.delete_all_cookies()
        sizes["login.png"] = shoot(browser, site.url + "/ui/login?next=/", out / "login.png", 1200)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    too_big = {name: size for name, size in sizes.items() if size >= 200_000}
    assert not too_big, f"screenshots of 200 KB or more: {too_big}"


def test_log_out_and_be_refused(logged_in: WebDriver, site: Site, seeded: dict[str, int]) -> None:
    browser = logged_in
    browser.get(site.url + "/ui/services")
    old_cookie = browser.get_cookie(COOKIE)["value"]
    csrf = browser.find_element(By.CSS_SELECTOR, "#service-sink form input[name=csrf]").get_attribute("value")

    def replay(action: str) -> httpx.Response:
        return httpx.post(site.url + action, data={"csrf": csrf, "next": "/ui/services"},
                          cookies={COOKIE: old_cookie}, timeout=10)

    # Before logging out the same cookie and CSRF token work: the refusals below are the logout's.
    assert replay("/ui/services/sink/test").status_code == 303

    button(browser, "Log out").click()
    until(browser, lambda: path_of(browser) == "/ui/login", "the login page after logging out")
    assert browser.get_cookie(COOKIE) is None or browser.get_cookie(COOKIE)["value"] != old_cookie
    browser.get(site.url + "/")
    assert path_of(browser) == "/ui/login"
    browser.get(site.url + "/ui/jobs")
    assert path_of(browser) == "/ui/login"

    config_before = site.config.read_bytes()
    for action in ("/ui/services/sink/disable", f"/ui/jobs/{seeded['dead_job']}/retry", "/ui/jobs/retry-dead"):
        answer = replay(action)
        assert answer.status_code in (401, 403), f"{action} after logout: {answer.status_code} {answer.text}"
    assert site.config.read_bytes() == config_before
    assert site.job(seeded["radarr-health"], seeded["dead_job"])["state"] == "dead"
    assert httpx.get(site.url + "/ui/jobs", cookies={COOKIE: old_cookie}, timeout=10).status_code == 303
