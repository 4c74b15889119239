"""Without Chromium the browser tests skip with the reason -- and fail under CI=true."""

from __future__ import annotations

import pytest

import browser_support


def test_no_chromium_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setenv("HLOPS_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(browser_support.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser_support, "DEBIAN_CHROMIUM", "/nonexistent/usr-bin-chromium")
    assert browser_support.chromium_path() is None
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="skipped: no Chromium"):
        browser_support.require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: .ci/chromium.sh must install it"):
        browser_support.require_chromium()
