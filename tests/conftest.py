import pytest
import torch

import rbmvae


@pytest.fixture(scope="session")
def sample_data():
    """The embedded MNIST sample (5,000 train / 10,000 test digits)."""
    return rbmvae.load_dataset("mnist-sample")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's cache: downloads and cached classifiers go to a temp dir."""
    monkeypatch.setenv("RBMVAE_DATA_DIR", str(tmp_path / "cache"))


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)


CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless chromium driven by Playwright (skips where absent, unless CI requires it)."""
    import os
    import shutil

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    required = os.environ.get("RBMVAE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if path is None or sync_playwright is None:
        reason = "chromium or playwright is not installed"
        if required:
            pytest.fail(f"{reason} (RBMVAE_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_FLAGS
        )
        yield instance
        instance.close()
