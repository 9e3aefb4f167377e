"""The results tests' own fixture: one headless Chromium for the session (the pages' tests).

The browser is the system's (Debian's ``chromium`` and ``chromium-driver``; ``.ci/run``
installs them), driven by Selenium with both paths given, so nothing downloads a browser
or a driver. It starts with networking features off and an empty profile (this machine's
network may be closed), logs the DevTools network events the tests read, and is stopped
when the session ends. Where either program is missing the tests that need it are skipped,
saying which.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Where Debian puts them; HARNESS_CHROMIUM and HARNESS_CHROMEDRIVER name others.
CHROMIUM = ("chromium", "/usr/bin/chromium", "chromium-browser")
CHROMEDRIVER = ("chromedriver", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def _program(variable: str, names: tuple[str, ...]) -> str | None:
    if os.environ.get(variable):
        return os.environ[variable]
    return next((found for name in names if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium (a Selenium driver) for every page test of the session."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    chromium = _program("HARNESS_CHROMIUM", CHROMIUM)
    driver_path = _program("HARNESS_CHROMEDRIVER", CHROMEDRIVER)
    if chromium is None or driver_path is None:
        pytest.skip(
            "no headless browser: install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; .ci/run does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in FLAGS:
        options.add_argument(flag)
    profile = Path(tmp_path_factory.mktemp("chromium-profile"))
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
