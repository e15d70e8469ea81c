"""The browser demo page in a real headless Chromium against a real server with the tiny model."""
import asyncio
import shutil
import threading

import pytest

from psfuture.model import load_model
from psfuture.policies import make_policy
from psfuture.serve.server import StreamServer
from psfuture.session import Session

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def server_url(model):
    """A server on its own event loop in a thread, since Selenium blocks."""
    loop = asyncio.new_event_loop()
    started, server = threading.Event(), StreamServer(port=0, model=model)

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(60), "server did not start"
    yield f"http://127.0.0.1:{server.port}/"
    asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to fail on JavaScript errors
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def offline(model, sentence):
    session = Session(model, make_policy("psfuture"))
    for word in sentence.split():
        session.push([word])
    session.finish()
    return session.text


def wait_for(browser, condition, what, timeout=90):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, timeout).until(lambda d: condition(d), f"timed out waiting for {what}")


def test_typed_and_spoken_german_is_translated_live(browser, server_url, model):
    from selenium.webdriver.common.by import By

    browser.get(server_url)
    wait_for(browser, lambda d: "connected" in d.find_element(By.ID, "status").text, "the websocket")
    done = lambda d: int(d.find_element(By.ID, "st-done").text)  # noqa: E731

    # Typed key by key: partial words arrive at the server and must wait for their end.
    typed = "Im Anfang schuf Gott die Himmel und die Erde."
    browser.find_element(By.ID, "source").send_keys(typed + "\n")
    wait_for(browser, lambda d: done(d) == 1, "the typed sentence")

    # Spoken: a sample at 20 words/s, cut into sentences by the page.
    browser.find_element(By.ID, "wps").clear()
    browser.find_element(By.ID, "wps").send_keys("20")
    sample = browser.execute_script("return SAMPLES[document.getElementById('sample').value]")
    spoken = [s + "." for s in sample.rstrip(".").split(". ")]
    browser.find_element(By.ID, "speak").click()
    wait_for(browser, lambda d: done(d) == 1 + len(spoken), "the spoken sample")

    paragraphs = [p.text.strip() for p in browser.find_elements(By.CSS_SELECTOR, "#output p")]
    assert paragraphs == [offline(model, s) for s in [typed] + spoken]
    stats = {name: browser.find_element(By.ID, "st-" + name).text for name in ("read", "written", "al", "ms")}
    assert int(stats["read"]) == sum(len(s.split()) for s in [typed] + spoken)
    assert int(stats["written"]) == sum(len(p.split()) for p in paragraphs)
    assert float(stats["al"]) > 0 and float(stats["ms"]) >= 0
    assert not browser.find_elements(By.CSS_SELECTOR, "#output .err")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
