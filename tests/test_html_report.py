"""The HTML report of a fresh clone (`snakemake --report`) opened in a real browser: headless
Chromium driven by Selenium. Every figure of reports/default is listed, opens, and its image loads
at its own size; every table is listed with its bytes; the captions are there.

Needs Debian's chromium and chromium-driver (.ci/run installs them, best effort); without them
the tests skip and say so.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wildcat.report.names import TABLE_NAMES

from helpers import ROOT
from helpers.workflow import snakemake

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WAIT_S = 30
#: Words of each kind's caption (workflow/report/figures.rst, chosen by file name).
FIGURE_CAPTIONS = {"gallery": "What the class maps do", "modalities": "maps of each class before class-wise pooling",
                   "training": "Training curves", "methods": "bars are the mean over seeds",
                   "alpha": "The influence of alpha"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone of this checkout's HEAD with its HTML report unpacked in ``report/``."""
    clone = tmp_path_factory.mktemp("html") / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    archive = clone.parent / "report.zip"
    result = snakemake("--report", str(archive), cwd=clone)
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(archive) as handle:
        handle.extractall(clone.parent)
    return clone


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1600,1200"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _open_category(driver, clone: Path, category: str) -> None:
    """Load the report and click ``category`` in its menu (the React app has no URLs per view)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get((clone.parent / "report" / "report.html").as_uri())
    wait = WebDriverWait(driver, WAIT_S)
    wait.until(expected_conditions.element_to_be_clickable((By.XPATH, f"//*[normalize-space(text())='{category}']"))).click()
    wait.until(expected_conditions.presence_of_element_located((By.XPATH, "//td[starts-with(normalize-space(text()), 'reports/')]")))


def _button(driver, path: str, icon: str):
    """The ``icon`` button (``eye``: view, ``information-circle``: caption) of result ``path``."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//tr[td[normalize-space(text())='{path}']]//a[@iconname='{icon}']")


def _bytes_at(uri: str) -> bytes:
    """What a link or an image of the report points at (a file beside it in the zip report)."""
    with urllib.request.urlopen(uri) as response:
        return response.read()


def test_every_figure_opens_and_its_image_loads(clone, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    figures = sorted((clone / "reports" / "default" / "figures").glob("*.png"))
    kinds = {path.stem.split("_", 1)[0] for path in figures}
    assert set(FIGURE_CAPTIONS) <= kinds, f"figures missing from reports/default: {set(FIGURE_CAPTIONS) - kinds}"
    _open_category(browser, clone, "Figures")
    listed = {element.text for element in browser.find_elements(By.XPATH, "//td[contains(text(), '.png')]")}
    assert {f"reports/default/figures/{path.name}" for path in figures} <= listed
    for path in figures:
        _open_category(browser, clone, "Figures")  # the caption view below replaces the list
        _button(browser, f"reports/default/figures/{path.name}", "eye").click()
        image = WebDriverWait(browser, WAIT_S).until(
            lambda driver: next((img for img in driver.find_elements(By.CSS_SELECTOR, "div.p-3 > img")
                                 if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)),
                                None))
        shown = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
        with Image.open(path) as png:
            assert shown == list(png.size), f"{path.name}: the browser shows {shown}, the file is {png.size}"
        assert _bytes_at(image.get_attribute("src")) == path.read_bytes()
        _button(browser, f"reports/default/figures/{path.name}", "information-circle").click()
        caption = FIGURE_CAPTIONS[path.stem.split("_", 1)[0]]
        WebDriverWait(browser, WAIT_S).until(lambda driver, caption=caption: caption in driver.find_element(By.TAG_NAME, "body").text,
                                             f"{path.name}: no caption with {caption!r}")
        if path.stem.startswith("gallery"):
            screenshot = tmp_path / "gallery.png"
            browser.save_screenshot(str(screenshot))
            pixels = np.asarray(Image.open(screenshot).convert("RGB"))
            # Drawn, not blank: the gallery's maps and masks give many distinct colours.
            assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000


def test_every_table_is_listed_with_its_bytes_and_captioned(clone, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open_category(browser, clone, "Tables")
    for name in TABLE_NAMES:
        path = clone / "reports" / "default" / f"{name}.md"
        link = _button(browser, f"reports/default/{name}.md", "eye")
        assert _bytes_at(link.get_attribute("href")) == path.read_bytes()
    # The info button of a table shows its caption: the paper's tables share tables.rst, ours have their own.
    for name, words in (("classification", "with the published number"), ("claims", "verdict, resolved"),
                        ("per_class", "Per-class AP"), ("modalities", "Do the M maps of a class learn")):
        _open_category(browser, clone, "Tables")
        _button(browser, f"reports/default/{name}.md", "information-circle").click()
        WebDriverWait(browser, WAIT_S).until(lambda driver, words=words: words in driver.find_element(By.TAG_NAME, "body").text,
                                             f"{name}.md: no caption with {words!r}")
