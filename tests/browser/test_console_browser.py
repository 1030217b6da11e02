"""The web console in a real browser: headless Debian chromium driven by Selenium, against
a running stack (hub on a real port, RabbitMQ, Redis, SQLite, simulators over sockets).

One stack and one browser for the module. The stack runs in its own thread and event
loop (Selenium blocks; the hub must keep serving meanwhile). Real dead letters of two
reasons are made by the tax simulator's fault switch (UNAVAILABLE) and a poison message
(VALIDATION); the UNAVAILABLE group is retried from the page after the fault is switched
off, its progress reaches done, the group's count goes to 0, and the deliveries are
counted at the tax simulator. A readonly user sees no retry button and is refused (403,
audited) when it posts anyway with its own session's valid CSRF token.

``CONSOLE_SHOTS=/tmp/console-shots`` saves a screenshot of each page there.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from adapters.core.translate import enrollment_to_event
from config.settings import load_settings
from contracts.national import NationalRequest, make_msgid, now_cst
from simulators.core import CoreStore
from simulators.harness import Stack, fast_policies, running_stack
from simulators.simkit import Fault
from storage.audit import AuditLog
from storage.deadletters import DeadLetterFilter, DeadLetterStore

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("HUB_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = os.environ.get("CONSOLE_SHOTS", "")
T = TypeVar("T")

if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
    if os.environ.get("CI"):
        raise RuntimeError(f"CI: {CHROMIUM} / {DRIVER} missing: run scripts/browser.sh")
    pytest.skip("chromium/chromedriver not installed (scripts/browser.sh)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402  (after the skip: selenium is a dev extra)
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def _replaced(exc: WebDriverException) -> bool:
    """Whether ``exc`` says the element's page has been replaced: Selenium's stale element,
    or what chromedriver sometimes answers instead while the next page is half loaded
    ("Node with given id does not belong to the document")."""
    return (isinstance(exc, StaleElementReferenceException)
            or "does not belong to the document" in str(exc))


def _left(element: Any) -> Callable[[WebDriver], bool]:
    """Selenium's ``staleness_of``, taking chromedriver's half-loaded answer as stale too."""
    def check(_: WebDriver) -> bool:
        try:
            element.is_enabled()
        except WebDriverException as exc:
            if _replaced(exc):
                return True
            raise
        return False
    return check


class StackThread:
    """``running_stack`` served from a thread of its own; ``call`` runs a coroutine there."""

    def __init__(self, store: CoreStore) -> None:
        self._store = store
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.st: Stack | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),),
                                        name="console-stack", daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            s = load_settings()
            async with running_stack(s, store=self._store, overrides=fast_policies(
                    s, max_attempts=2, delays_ms=(200, 400))) as st:
                self.st = st
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._ready.set()

    def __enter__(self) -> Stack:
        self._thread.start()
        self._ready.wait(120)
        if self.st is None:
            raise RuntimeError("the stack did not start") from self._error
        return self.st

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)


class Env:
    def __init__(self, stack: StackThread, st: Stack, driver: WebDriver) -> None:
        self.stack, self.st, self.driver = stack, st, driver
        engine = st.hub.deps.journal.engine
        self.store, self.audit = DeadLetterStore(engine), AuditLog(engine)

    def open(self, path: str) -> None:
        self.driver.get(f"{self.st.hub_url}{path}")

    def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))

    def sign_in(self, token: str) -> None:
        self.driver.delete_all_cookies()
        self.open("/console/login")
        self.driver.find_element(By.ID, "token").send_keys(token)
        self.click(self.driver.find_element(By.ID, "sign-in"))

    def click(self, element: Any) -> None:
        """Click and wait for the next page (a form's submit returns before it loads)."""
        html = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        WebDriverWait(self.driver, 20).until(_left(html))

    def until(self, check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if got := check():
                    return got
            except WebDriverException as exc:
                if not _replaced(exc):  # the page reloaded itself (the job page refreshes)
                    raise
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def count(self, **flt: Any) -> int:
        return self.stack.call(self.store.count(DeadLetterFilter(**flt)))


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    store = CoreStore.seed(1, 4, rng_seed=random.randrange(10**9))
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--lang=en-US"):
        opts.add_argument(arg)
    stack = StackThread(store)
    with stack as st:
        driver = webdriver.Chrome(options=opts,
                                  service=webdriver.ChromeService(executable_path=DRIVER))
        try:
            driver.implicitly_wait(0)
            yield Env(stack, st, driver)
        finally:
            driver.quit()


def _enroll(st: Stack, person: Any, seq: int) -> None:
    req = NationalRequest(infno="H2101", msgid=make_msgid("NJYBCORE0001", now_cst(), seq),
                          input={"data": enrollment_to_event(person)})
    r = httpx.post(f"{st.hub_url}/partners/core/events", timeout=10,
                   json=req.model_dump(mode="json", exclude_none=True),
                   auth=st.partner_auth("core"))
    assert r.status_code == 200, r.text


async def _poison(st: Stack) -> None:
    """An unreadable body on a work queue: parked at once with reason VALIDATION."""
    import aio_pika
    conn = await aio_pika.connect(st.settings.amqp_url)
    async with conn:
        ch = await conn.channel()
        work = await ch.get_exchange(st.hub.deps.names.work.name)
        await work.publish(aio_pika.Message(b'{"type": "tax.employee.enroll"',
                                            message_id="poison", delivery_mode=2),
                           routing_key="tax.employee.enroll")


def _ids(env: Env) -> list[str]:
    return [tr.get_attribute("data-id") or "" for tr in
            env.driver.find_elements(By.CSS_SELECTOR, "#dead-letters tr[data-id]")]


def test_sign_in_refuses_a_wrong_token(env: Env) -> None:
    env.open("/console/")
    assert env.driver.current_url.endswith("/console/login")
    env.shot("01-login")
    env.sign_in("not-a-valid-token-123")
    assert "not valid" in env.driver.find_element(By.ID, "error").text
    assert not env.driver.find_elements(By.ID, "who")
    env.sign_in("dev-ops")
    assert env.driver.current_url.endswith("/console/dead-letters")
    assert "dev-ops" in env.driver.find_element(By.ID, "who").text


def test_filter_dead_letters_then_retry_a_group_and_watch_it_drain(env: Env) -> None:
    st = env.st
    people = list(st.store.persons.values())[:2]
    st.tax_state.faults[:] = [Fault(kind="http_5xx", operation="EmployeeEnroll")]
    for i, person in enumerate(people, start=1):
        _enroll(st, person, i)
    env.stack.call(_poison(st))
    env.until(lambda: env.count(status="dead", reason_code="UNAVAILABLE") == 2 and
              env.count(status="dead", reason_code="VALIDATION") == 1,
              "two UNAVAILABLE and one VALIDATION dead letter")
    assert st.tax_state.log.summary()["effects"] == 0

    env.sign_in("dev-ops")
    env.open("/console/dead-letters")
    reasons = {tr.get_attribute("data-reason") for tr in
               env.driver.find_elements(By.CSS_SELECTOR, "#groups tr.group")}
    assert reasons == {"UNAVAILABLE", "VALIDATION"}
    assert len(_ids(env)) == 3
    env.shot("02-dead-letters")
    Select(env.driver.find_element(By.ID, "f-reason")).select_by_visible_text("UNAVAILABLE")
    env.click(env.driver.find_element(By.ID, "apply"))
    assert "reason_code=UNAVAILABLE" in env.driver.current_url
    assert len(_ids(env)) == 2 and env.driver.find_element(By.ID, "dl-total").text == "2"
    for raw in (p.id_number for p in people):
        assert raw not in env.driver.page_source  # masked
    env.open(f"/console/dead-letters/{_ids(env)[0]}")
    assert "UNAVAILABLE" in env.driver.find_element(By.ID, "failures").text
    env.shot("03-dead-letter-detail")

    st.tax_state.faults.clear()  # tax is back
    env.open("/console/dead-letters")
    group = env.driver.find_element(By.CSS_SELECTOR, '#groups tr.group[data-reason="UNAVAILABLE"]')
    env.click(group.find_element(By.CSS_SELECTOR, "button.retry-group"))
    env.until(lambda: env.driver.find_elements(By.ID, "job-state") and
              env.driver.find_element(By.ID, "job-state").text == "done", "the job to be done")
    bar = env.driver.find_element(By.CSS_SELECTOR, "#job progress[data-bar]")
    assert bar.get_attribute("value") == "100"
    env.shot("04-job-done")
    env.open("/console/dead-letters?reason_code=UNAVAILABLE&status=dead")
    assert env.driver.find_element(By.ID, "dl-total").text == "0" and _ids(env) == []
    # counted where it matters: at the tax simulator, once per person
    env.until(lambda: st.tax_state.log.summary()["effects"] == 2, "two enrollments at tax")
    assert st.tax_state.log.summary()["duplicates"] == {}
    assert env.count(status="dead", reason_code="VALIDATION") == 1  # the other group stays
    [retry] = env.stack.call(env.audit.list(action="dead_letter.retry"))
    assert (retry.actor, retry.outcome, retry.detail["done"]) == ("dev-ops", "ok", 2)
    env.open("/console/live")
    assert env.driver.find_element(By.CSS_SELECTOR, '#routes tr[data-route="tax.employee"]')
    env.shot("05-live")
    env.open(f"/console/transactions?q={people[0].id_number}")
    assert people[0].id_number not in env.driver.page_source
    env.shot("06-transactions")
    links = env.driver.find_elements(By.CSS_SELECTOR, "#transactions a")
    if links:
        env.click(links[0])
        assert env.driver.find_elements(By.ID, "hops")
        env.shot("07-transaction-path")
    env.open("/console/worklists")
    env.shot("08-worklists")
    env.open("/console/jobs")
    env.shot("09-jobs")


def test_readonly_sees_no_retry_button_and_is_refused_when_posting(env: Env) -> None:
    env.until(lambda: env.count(status="dead") >= 1, "a dead letter to look at")
    env.sign_in("dev-readonly")
    env.open("/console/dead-letters")
    assert _ids(env), "the page lists dead letters"
    assert not env.driver.find_elements(By.CSS_SELECTOR, "button.retry, input[name=ids]")
    env.shot("10-readonly")
    csrf = env.driver.find_element(By.CSS_SELECTOR, 'meta[name="csrf-token"]') \
        .get_attribute("content")
    cookies = {c["name"]: c["value"] for c in env.driver.get_cookies()}
    before = env.count(status="dead")
    r = httpx.post(f"{env.st.hub_url}/console/dead-letters/retry", cookies=cookies,
                   data={"csrf": csrf, "group_reason_code": "VALIDATION"}, timeout=10)
    assert r.status_code == 403 and "readonly" in r.text
    assert env.count(status="dead") == before
    refused = env.stack.call(env.audit.list(outcome="forbidden", actor="dev-readonly"))
    assert [e.action for e in refused] == ["POST /console/dead-letters/retry"]
