"""The drawing page in a real headless Chromium: draw digits, clear, upload a photo."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import digitrec

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")
if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(
        "the page tests need Chromium from the OS packages: apt-get install chromium "
        "chromium-driver (/usr/bin/chromium and /usr/bin/chromedriver)",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from digitrec.serving import create_app  # noqa: E402

PAD_SIDE = 280
NO_ANSWER = "\u2013"  # what the label shows with nothing drawn
DIGITS = 10  # the first test digits drawn, one of each class or near it


@pytest.fixture(scope="module")
def model() -> digitrec.DigitClassifier:
    # Good enough to read drawn digits: the MLP recipe, two epochs on all of MNIST.
    trained = digitrec.DigitClassifier("mlp", seed=0)
    digitrec.Trainer(trained, epochs=2, progress=False).fit(digitrec.load_mnist("train"))
    return trained


@pytest.fixture(scope="module")
def server(model: digitrec.DigitClassifier) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    instance = uvicorn.Server(
        uvicorn.Config(create_app(model), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}/"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=900,800",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser: WebDriver, server: str) -> WebDriver:
    browser.get(server)
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "bars") is not None)
    return browser


def by_testid(driver: WebDriver, name: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{name}"]')


def answer(driver: WebDriver) -> str:
    """The label once it answers the latest drawing (the page numbers each change)."""
    pad, label = by_testid(driver, "pad"), by_testid(driver, "label")

    def settled(_: WebDriver) -> bool:
        version = pad.get_attribute("data-version")
        return bool(version != "0" and label.get_attribute("data-version") == version)

    WebDriverWait(driver, 20).until(settled)
    return str(label.text)


def strokes(pixels: np.ndarray, threshold: int = 100) -> list[tuple[int, int, int]]:
    """The digit as horizontal strokes, one per run of ink in each row: (y, x0, x1) in pad px."""
    scale = PAD_SIDE // pixels.shape[0]
    runs = []
    for y, row in enumerate(pixels >= threshold):
        x = 0
        while x < row.size:
            if row[x]:
                start = x
                while x < row.size and row[x]:
                    x += 1
                runs.append((y * scale + scale // 2, start * scale + 2, (x - 1) * scale + 8))
            x += 1
    return runs


def draw(driver: WebDriver, pixels: np.ndarray) -> None:
    pad = by_testid(driver, "pad")
    half = PAD_SIDE // 2
    actions = ActionChains(driver, duration=0)
    for y, x0, x1 in strokes(pixels):
        actions.move_to_element_with_offset(pad, x0 - half, y - half).click_and_hold()
        actions.move_to_element_with_offset(pad, x1 - half, y - half).release()
    actions.perform()


def test_drawn_digits_are_read(page: WebDriver) -> None:
    test = digitrec.load_mnist("test")[:DIGITS]
    right = 0
    seen = []
    for image, label in zip(test.images, test.labels, strict=True):
        by_testid(page, "clear").click()
        draw(page, image[0].numpy())
        got = answer(page)
        seen.append((int(label), got))
        right += got == str(int(label))
    print(f"drawn digits read right: {right} of {DIGITS}; (true, read): {seen}")
    assert right > DIGITS // 2, f"(true, read) pairs: {seen}"
    bars = page.find_elements(By.CSS_SELECTOR, '[data-testid="bars"] li')
    assert len(bars) == 10


def test_clear_empties_the_pad_and_the_answer(page: WebDriver) -> None:
    draw(page, digitrec.load_mnist("test").images[0, 0].numpy())
    assert answer(page) != NO_ANSWER
    by_testid(page, "clear").click()
    assert by_testid(page, "label").text == NO_ANSWER
    assert page.find_elements(By.CSS_SELECTOR, '[data-testid="bars"] li') == []
    ink = page.execute_script(
        "const c = document.getElementById('pad');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let dark = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) dark++;"
        "return dark;"
    )
    assert ink == 0


def test_upload_a_photo(page: WebDriver, model: digitrec.DigitClassifier, tmp_path: Path) -> None:
    # A "photo": dark ink on light paper, larger than MNIST, as a phone would take it.
    digit = digitrec.load_mnist("test").images[1, 0].numpy()
    photo = Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BILINEAR)
    path = tmp_path / "photo.png"
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    [expected] = digitrec.classify(model, [path.read_bytes()])
    by_testid(page, "upload").send_keys(str(path))
    assert answer(page) == expected.label


def test_a_refused_upload_shows_the_error(page: WebDriver, tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(b"not an image at all")
    by_testid(page, "upload").send_keys(str(path))
    assert answer(page) == "?"
    assert "not a PNG" in by_testid(page, "status").text
