"""The browser demo page in a real headless Chromium against a real server with the tiny model."""
import asyncio
import shutil
import threading

import pytest

from psfuture.model import load_model
from psfuture.policies import make_policy
from psfuture.serve.server import StreamServer
from psfuture import longform

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


def segments(model, text):
    """What the engine writes for the text as one stream: each segment's English."""
    return [s.text for s in longform.translate(model, make_policy("psfuture"), text)]


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
    wait_for(browser, lambda d: done(d) == 1, "the typed sentence's segment")

    # Spoken into the same stream: a sample at 20 words/s; the engine, not the page, cuts it.
    browser.find_element(By.ID, "wps").clear()
    browser.find_element(By.ID, "wps").send_keys("20")
    sample = browser.execute_script("return SAMPLES[document.getElementById('sample').value]")
    browser.find_element(By.ID, "speak").click()
    expected = segments(model, typed + " " + sample)
    wait_for(browser, lambda d: done(d) == len(expected), "the spoken sample's segments")

    assert browser.execute_script("return state.next") == 2  # one stream for everything typed or spoken
    paragraphs = [p.text.strip() for p in browser.find_elements(By.CSS_SELECTOR, "#output p")]
    assert paragraphs == expected and len(expected) == 1 + sample.count(". ") + 1
    stats = {name: browser.find_element(By.ID, "st-" + name).text for name in ("read", "written", "al", "ms", "lag")}
    assert int(stats["read"]) == len((typed + " " + sample).split())
    assert int(stats["written"]) == sum(len(p.split()) for p in paragraphs)
    assert float(stats["al"]) > 0 and float(stats["ms"]) >= 0 and stats["lag"] != "–"
    assert not browser.find_elements(By.CSS_SELECTOR, "#output .err")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_a_room_followed_live_in_the_captions_view(browser, server_url, model):
    from selenium.webdriver.common.by import By

    browser.get(server_url)
    wait_for(browser, lambda d: "connected" in d.find_element(By.ID, "status").text, "the websocket")
    browser.find_element(By.ID, "room").send_keys("hall")
    browser.find_element(By.ID, "token").send_keys("t0k")
    link = browser.find_element(By.ID, "link-view").get_attribute("href")
    assert link == server_url + "captions?room=hall&token=t0k"
    first, rest = "Im Anfang schuf Gott die Himmel und die Erde.", "Und Gott sah das Licht, dass es gut war. Und es ward Abend."
    expected = segments(model, first + " " + rest)
    speaker = browser.current_window_handle
    browser.find_element(By.ID, "source").send_keys(first + " ")
    wait_for(browser, lambda d: int(d.find_element(By.ID, "st-done").text) == 1, "the first segment")

    # A listener joining late: the text so far, then the rest as it is written.
    browser.switch_to.new_window("tab")
    browser.get(link)
    text = lambda d: d.execute_script("return document.getElementById('text').textContent").strip()  # noqa: E731
    wait_for(browser, lambda d: text(d) == expected[0], "the catch-up")
    browser.switch_to.window(speaker)
    browser.find_element(By.ID, "source").send_keys(rest + " ")
    browser.find_element(By.ID, "end").click()
    wait_for(browser, lambda d: int(d.find_element(By.ID, "st-done").text) == len(expected), "the speaker's segments")
    browser.switch_to.window([h for h in browser.window_handles if h != speaker][0])
    wait_for(browser, lambda d: text(d) == " ".join(expected), "the captions")
    shown = browser.find_element(By.ID, "text").text  # what is in view: the end of it
    assert shown and " ".join(expected).endswith(" ".join(shown.split()))
    # Big text, at most two lines of it in view, and nothing else on the screen.
    box = browser.execute_script("const b = document.getElementById('box'), s = getComputedStyle(b); "
                                 "return [b.clientHeight - parseFloat(s.paddingBottom), parseFloat(s.lineHeight), "
                                 "parseFloat(s.fontSize), document.getElementById('status').hidden]")
    assert abs(box[0] - 2 * box[1]) <= 1 and box[2] >= 24 and box[3]
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    browser.close()
    browser.switch_to.window(speaker)
