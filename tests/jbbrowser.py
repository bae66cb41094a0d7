"""Headless Chromium for tests that check what a person sees: the rendered DOM and a screenshot.

Debian's `chromium` (.ci/run installs it when missing). Without it a test skips, unless CI is
set: there a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from html import unescape
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI must install it: .ci/run)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    return exe


def _flags(profile: str) -> list[str]:
    # No network beyond the file itself, no first-run or update chatter.
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}"]


def render(page: Path, screenshot_name: str) -> tuple[str, str, Path]:
    """(rendered DOM, its visible text, screenshot path) of a local HTML file.

    The screenshot is kept under test-artifacts/ (gitignored) for a person to look at.
    """
    exe = chromium()
    url = page.resolve().as_uri()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / screenshot_name
    shot.unlink(missing_ok=True)            # a screenshot left by an earlier run proves nothing
    # One browser start for both: headless Chromium dumps the DOM and saves the screenshot of the
    # same load (a start costs a second or two of CPU).
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([exe, *_flags(profile), "--dump-dom", f"--screenshot={shot}", "--window-size=1280,2400",
                              "--hide-scrollbars", url], capture_output=True, text=True, timeout=120,
                             encoding="utf-8").stdout
    body = re.sub(r"(?s)<(script|style)[^>]*>.*?</\1>", " ", dom)
    text = unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))).strip()
    return dom, text, shot
