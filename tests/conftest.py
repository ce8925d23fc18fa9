"""Fixtures shared by the whole suite.

Helpers are handed out as fixtures (each returns a function) so that test modules never import
this file: ``write_dataset``, ``tiny_rbm``, ``tiny_vae``, ``run_cli``, ``assert_cli_error``,
``corrupt`` (byte-level fault injectors) and ``http_server`` (a local server for downloads).
"""

import hashlib
import http.server
import os
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

# pooch's log handler writes to the sys.stderr of the moment pooch is first imported: imported
# here, that is pytest's session-long capture; imported inside a test that uses capsys, it would be
# that test's stream, closed afterwards, and later downloads would print a "Logging error".
import pooch  # noqa: F401
import pytest
import torch

import rbmvae
from rbmvae.cli import main
from rbmvae.data import STANDARD_FILES
from rbmvae.data.idx import write_idx
from rbmvae.models import RBM, VAE

# Under pytest-xdist (``make test``) every core runs a worker process of its own: one torch
# thread each, so that the workers do not contend for the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# The longest tests (tens of seconds each, `pytest --durations=20`), run first: pytest-xdist
# hands tests out in collection order, so that these start at once on separate workers and the
# short ones fill the gaps, instead of one of them starting last and the run waiting for it.
LONGEST_FIRST = (
    "test_notebook.py::test_notebook_runs_and_its_claims_hold",
    "test_study.py::test_quick_profile_and_report_in_a_browser",
    "test_vae_scores.py::test_quadrature_matches_an_independent_integral_and_bounds_iwae",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def order(item):
        name = item.nodeid.rsplit("/", 1)[-1]
        return rank.get(name, len(rank))

    items.sort(key=order)  # stable: every other test keeps its place


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


# ------------------------------------------------------------------------------------------------
# data sets and small models


def _write_dataset(directory, n_train=40, n_test=12, shape=(8, 8), gz=True, seed=0):
    """Random images and labels under the four standard IDX names in ``directory`` (created if
    needed), gzipped unless ``gz`` is false; returns the four uint8 arrays by split key."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        write_idx(directory / (STANDARD_FILES[key] + (".gz" if gz else "")), array)
    return arrays


@pytest.fixture(scope="session")
def write_dataset():
    """``write_dataset(directory, n_train=40, n_test=12, shape=(8, 8), gz=True, seed=0)``."""
    return _write_dataset


def _tiny_rbm(n_visible=5, n_hidden=4, scale=1.0, seed=0, dtype=torch.float64):
    """An RBM with weights ~ N(0, scale^2) and both biases ~ N(0, 0.25), drawn in ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(n_visible, n_hidden).to(dtype)
    with torch.no_grad():
        rbm.weight.copy_(torch.randn(n_visible, n_hidden, generator=g, dtype=dtype) * scale)
        rbm.visible_bias.copy_(torch.randn(n_visible, generator=g, dtype=dtype) * 0.5)
        rbm.hidden_bias.copy_(torch.randn(n_hidden, generator=g, dtype=dtype) * 0.5)
    return rbm


@pytest.fixture(scope="session")
def tiny_rbm():
    """``tiny_rbm(n_visible=5, n_hidden=4, scale=1.0, seed=0, dtype=torch.float64)``."""
    return _tiny_rbm


def _tiny_vae(n_visible=12, n_hidden=10, n_latent=2, scale=0.8, seed=0, dtype=torch.float64):
    """A VAE with every parameter ~ N(0, scale^2), drawn in ``dtype``, in eval mode."""
    g = torch.Generator().manual_seed(seed)
    vae = VAE(n_visible, n_hidden, n_latent).to(dtype)
    with torch.no_grad():
        for param in vae.parameters():
            param.copy_(torch.randn(param.shape, generator=g, dtype=dtype) * scale)
    return vae.eval()


@pytest.fixture(scope="session")
def tiny_vae():
    """``tiny_vae(n_visible=12, n_hidden=10, n_latent=2, scale=0.8, seed=0, dtype=float64)``."""
    return _tiny_vae


# ------------------------------------------------------------------------------------------------
# the command line


class CliResult(NamedTuple):
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*argv)`` runs ``rbmvae.cli.main`` in-process (arguments may be paths) and returns
    ``(exit status, stdout, stderr)``; an argparse usage error counts as its exit status."""

    def run(*argv):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:
            code = stop.code
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def _assert_cli_error(result, *fragments):
    code, _, err = result
    assert code == 2, err
    assert err.startswith("rbmvae: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


@pytest.fixture(scope="session")
def assert_cli_error():
    """``assert_cli_error(run_cli(...), *fragments)``: exit status 2 and exactly one line on
    stderr, starting ``rbmvae: error:``, holding every fragment and no traceback; returns it."""
    return _assert_cli_error


# ------------------------------------------------------------------------------------------------
# faults


def _truncate(path, end):
    """Keep ``path``'s bytes ``[:end]`` (a negative ``end`` cuts that many off the end)."""
    path = Path(path)
    path.write_bytes(path.read_bytes()[:end])


def _flip_byte(path, index=-1, mask=0x01):
    """XOR the byte at ``index`` of ``path`` with ``mask``."""
    path = Path(path)
    blob = bytearray(path.read_bytes())
    blob[index] ^= mask
    path.write_bytes(bytes(blob))


@pytest.fixture(scope="session")
def corrupt():
    """Fault injectors: ``corrupt.truncate(path, end)``, ``corrupt.flip_byte(path, index=-1,
    mask=0x01)``."""
    return SimpleNamespace(truncate=_truncate, flip_byte=_flip_byte)


class LocalServer:
    """A 127.0.0.1 HTTP server whose responses a test sets per file name (bytes, and the length
    claimed in Content-Length); unknown names get 404."""

    def __init__(self):
        self.routes = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                if name not in routes:
                    self.send_error(404)
                    return
                body, claimed = routes[name]
                self.send_response(200)
                self.send_header("Content-Length", str(claimed))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True  # a short body then a closed connection: cut off

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def serve(self, directory, cut_off=()):
        """Serve the four ``.gz`` files of ``directory`` as they are now; those whose stem is in
        ``cut_off`` stop halfway."""
        for stem in STANDARD_FILES.values():
            body = (Path(directory) / (stem + ".gz")).read_bytes()
            sent = body[: len(body) // 2] if stem in cut_off else body
            self.routes[stem + ".gz"] = (sent, len(body))

    @staticmethod
    def md5s(directory):
        """The MD5 of each of the four ``.gz`` files of ``directory``, by split key."""
        return {
            key: hashlib.md5((Path(directory) / (stem + ".gz")).read_bytes()).hexdigest()
            for key, stem in STANDARD_FILES.items()
        }


@pytest.fixture
def http_server():
    served = LocalServer()
    served.thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


# ------------------------------------------------------------------------------------------------
# the browser


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
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    required = os.environ.get("RBMVAE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # optional: the browser tests skip without it
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


@pytest.fixture(scope="session")
def full_mnist_dir():
    """The full MNIST files beside the project (``../shared/data/mnist``), or the test is skipped."""
    directory = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    if not (directory / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("full MNIST is not beside the project (../shared/data/mnist)")
    return directory
