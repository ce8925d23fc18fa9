"""The interactive explorer: the page's arithmetic against PyTorch, its samplers against exact and
Python results, a browser session driving it, its size and speed, and the ``explore`` command.

Browser tests use the ``browser`` fixture (Debian's chromium through Playwright); they skip where
chromium is absent unless RBMVAE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from importlib import resources

import pytest
import torch

import rbmvae
from rbmvae.basics.errors import ConfigError
from rbmvae.cli import main
from rbmvae.data.masks import random_mask
from rbmvae.pages.explore import (
    MAX_PAGE_BYTES,
    build_explorer,
    build_page,
    explorer_fragment,
    explorer_page,
    write_explorer,
)
from rbmvae.samplers.inpainting import pseudo_gibbs

PREFIX = "rbmvae-explorer"
TOLERANCE = 1e-4


def _random_models(seed: int = 0, latents=(2, 3), rbm_hidden: int = 12) -> dict:
    """Small models with random weights large enough to make every unit matter."""
    generator = torch.Generator().manual_seed(seed)
    rbm = rbmvae.RBM(784, rbm_hidden)
    rbm.reset_parameters(generator=generator, weight_std=0.3)
    with torch.no_grad():
        rbm.visible_bias.normal_(-1.0, 1.0, generator=generator)
        rbm.hidden_bias.normal_(0.0, 1.0, generator=generator)
    models = {"rbm-small": rbm}
    for k in latents:
        vae = rbmvae.VAE(784, 24, k)
        vae.reset_parameters(generator)
        with torch.no_grad():
            vae.encoder_log_var.bias.fill_(-1.5)  # posterior std 0.47, unlike the prior's 1
            vae.decoder_output.weight.mul_(4.0)
        models[f"vae-small-z{k}"] = vae
    return models


def _rounded_to_half(model):
    """A copy whose weight matrices are rounded to float16, as the page stores them."""
    copied = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in copied.state_dict().values():
            if tensor.dim() == 2:
                tensor.copy_(tensor.half().float())
    return copied


def _open(browser, html: str, viewport=(1200, 1500)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    page.set_content(html)
    return page, problems


def _canvas_red(page, name: str, index: int = 0) -> list[int]:
    """The red channel of canvas ``.PREFIX-name`` (number ``index`` on the page)."""
    return page.evaluate(
        """([selector, index]) => {
            const canvas = document.querySelectorAll(selector)[index];
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            const out = [];
            for (let i = 0; i < data.length; i += 4) out.push(data[i]);
            return out;
        }""",
        [f".{PREFIX}-{name}", index],
    )


def _grey_levels(values) -> torch.Tensor:
    return torch.floor(torch.as_tensor(values, dtype=torch.float64).clamp(0, 1) * 255 + 0.5)


# ------------------------------------------------------------------------------------------------
# arithmetic


@pytest.mark.browser
@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_page_arithmetic_matches_pytorch(browser, sample_data, precision):
    models = _random_models()
    html = explorer_page(models, sample_data, n_digits=4, n_points=50, precision=precision)
    page, problems = _open(browser, html)
    references = {
        name: _rounded_to_half(model) if precision == "float16" else model
        for name, model in models.items()
    }
    images = sample_data.test_images[:3]
    mask = random_mask(3, 784, 0.5, torch.Generator().manual_seed(7))
    with torch.no_grad():
        for name, model in references.items():
            if model.kind == "vae":
                codes = torch.tensor([[0.0] * model.n_latent, [1.5] * model.n_latent])
                codes[1, 0], codes[0, -1] = -2.75, 3.0
                for code in codes:
                    page_x = page.evaluate(
                        "([n, z]) => rbmvaeExplorer.decode(n, z)", [name, code.tolist()]
                    )
                    expected = model.decode(code[None])[0]
                    assert torch.allclose(torch.tensor(page_x), expected, atol=TOLERANCE, rtol=0)
                encoded = page.evaluate(
                    "([n, x]) => rbmvaeExplorer.encode(n, x)", [name, images[0].tolist()]
                )
                mean, log_var = model.encode(images[:1])
                assert torch.allclose(torch.tensor(encoded["mean"]), mean[0], atol=TOLERANCE)
                assert torch.allclose(torch.tensor(encoded["logVar"]), log_var[0], atol=TOLERANCE)
                # v' = where(mask, decode(mean(encode(v))), v)
                step = model.decode(model.encode(images)[0])
            else:
                # v' = where(mask, sigm(b + sigm(c + vW) W'), v)
                step = model.visible_probs(model.hidden_probs(images))
            expected = torch.where(mask, step, images)
            for row in range(3):
                page_step = page.evaluate(
                    "([n, x, m]) => rbmvaeExplorer.meanFieldStep(n, x, m)",
                    [name, images[row].tolist(), mask[row].tolist()],
                )
                got = torch.tensor(page_step)
                assert torch.allclose(got, expected[row], atol=TOLERANCE, rtol=0), name
                assert torch.equal(got[~mask[row]], images[row][~mask[row]])
    if precision == "float16":  # the rounding is real: the float32 models differ
        vae = models["vae-small-z2"]
        rounded = references["vae-small-z2"]
        assert not torch.equal(vae.decoder_output.weight, rounded.decoder_output.weight)
    page.close()
    assert problems == []


@pytest.mark.browser
def test_page_reads_every_float16_value_exactly(browser):
    """The page's float16 decoder, run on all 65,536 bit patterns, agrees with NumPy's."""
    import numpy as np

    source = (
        resources.files("rbmvae.pages.explore").joinpath("maths.js").read_text(encoding="utf-8")
    )
    function = re.search(r"function halfToFloat\(bits\) \{.*?\n\}", source, re.S).group(0)
    page, problems = _open(browser, "<!DOCTYPE html><html><body></body></html>")
    values = page.evaluate(
        "() => {" + function + "; const out = [];"
        " for (let i = 0; i < 65536; i++) { const v = halfToFloat(i);"
        " out.push(Number.isFinite(v) ? v : String(v)); } return out; }"
    )
    page.close()
    got = np.array([float(v) for v in values])
    expected = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float64)
    assert ((got == expected) | (np.isnan(got) & np.isnan(expected))).all()
    numbers = ~np.isnan(expected)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(expected[numbers]))  # -0 too
    assert problems == []


@pytest.mark.browser
def test_page_gibbs_chain_matches_the_exact_conditional(browser, sample_data):
    """With 5 missing pixels, p(v_missing | v_observed) is exact by enumerating the 32 completions
    weighted by exp(-F(v)) (Eqs. 1.7, 5.1); the page's clamped Gibbs chain must agree. The
    missing pixels are strongly coupled through the hidden units, so that a chain which skipped
    sampling h (mean-field h) would be off by up to 0.18."""
    generator = torch.Generator().manual_seed(3)
    rbm = rbmvae.RBM(784, 8)
    rbm.reset_parameters(generator=generator, weight_std=0.02)
    missing = torch.tensor([300, 301, 328, 405, 406])
    with torch.no_grad():
        rbm.weight[missing] = 2.0 * torch.randn(5, 8, generator=generator)
        rbm.visible_bias.normal_(0.0, 0.5, generator=generator)
        rbm.hidden_bias.normal_(0.0, 1.0, generator=generator)
    image = sample_data.test_images[0].clone()
    mask = torch.zeros(784, dtype=torch.bool)
    mask[missing] = True
    completions = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))
    visible = image.repeat(32, 1)
    visible[:, missing] = completions
    with torch.no_grad():
        weights = torch.softmax(-copy.deepcopy(rbm).double().free_energy(visible.double()), dim=0)
    exact = (weights[:, None] * completions.double()).sum(0).float()
    assert (exact > 0.05).all() and (exact < 0.95).all(), "choose a less trivial conditional"

    page, problems = _open(browser, explorer_page({"rbm": rbm}, None, n_digits=0))
    result = page.evaluate(
        "([x, m]) => rbmvaeExplorer.runChain('rbm', x, m, 8000, 200, 11)",
        [image.tolist(), mask.tolist()],
    )
    estimate = torch.tensor(result["estimate"])
    state = torch.tensor(result["state"])
    assert result["step"] == 8000
    assert torch.allclose(estimate[missing], exact, atol=0.03), (estimate[missing], exact)
    assert torch.equal(estimate[~mask], image[~mask])
    assert torch.equal(state[~mask], image[~mask])
    assert set(state[mask].tolist()) <= {0.0, 1.0}
    page.close()
    assert problems == []


@pytest.mark.browser
def test_page_pseudo_gibbs_agrees_with_python(browser, sample_data):
    """The page's pseudo-Gibbs chain (Eq. 5.3) and rbmvae.samplers.inpainting.pseudo_gibbs sample the same
    chain: their averages of p over many sweeps agree within Monte Carlo error."""
    models = _random_models(seed=5, latents=(2,))
    vae = models["vae-small-z2"]
    image = sample_data.test_images[1]
    mask = random_mask(1, 784, 0.5, torch.Generator().manual_seed(2))[0]
    chains = 400
    python = pseudo_gibbs(
        vae,
        image.repeat(chains, 1),
        mask.repeat(chains, 1),
        steps=60,
        average_last=40,
        generator=torch.Generator().manual_seed(0),
    ).images.mean(0)
    page, problems = _open(browser, explorer_page(models, None, n_digits=0))
    result = page.evaluate(
        "([x, m]) => rbmvaeExplorer.runChain('vae-small-z2', x, m, 6000, 20, 3)",
        [image.tolist(), mask.tolist()],
    )
    estimate = torch.tensor(result["estimate"])
    assert torch.equal(estimate[~mask], image[~mask])
    difference = (estimate[mask] - python[mask]).abs()
    assert float(difference.max()) < 0.015, float(difference.max())
    # and the chains move: the estimate is not the starting fill p(x | z = 0)
    with torch.no_grad():
        start = vae.decode(torch.zeros(1, 2))[0]
    assert float((estimate[mask] - start[mask]).abs().max()) > 0.05
    page.close()
    assert problems == []


# ------------------------------------------------------------------------------------------------
# a run directory, the command, and a session in the page


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, sample_data):
    """A run directory with three small trained models, as rbmvae reproduce lays them out."""
    run = tmp_path_factory.mktemp("run")
    small = dataclasses.replace(
        sample_data,
        train_images=sample_data.train_images[:2000],
        train_labels=sample_data.train_labels[:2000],
        test_images=sample_data.test_images[:200],
        test_labels=sample_data.test_labels[:200],
    )
    torch.manual_seed(0)
    for name, model in (
        ("rbm-h20", rbmvae.RBM(784, 20)),
        ("vae-z2", rbmvae.VAE(784, 96, 2)),
        ("vae-z8", rbmvae.VAE(784, 48, 8)),
    ):
        rbmvae.fit(model, small, epochs=1, out_dir=run / "models" / name, progress=False)
    return run


def test_explore_command_needs_models(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    assert main(["explore", "--run", str(tmp_path), "--out", str(tmp_path / "e.html")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("rbmvae: error: ")
    assert "no trained models" in error
    assert not (tmp_path / "e.html").exists()


def test_explorer_refuses_bad_input(sample_data):
    models = _random_models(latents=(2,))
    with pytest.raises(ConfigError, match="id prefix"):
        explorer_fragment(models, sample_data, id_prefix='x" onload="alert(1)')
    with pytest.raises(ConfigError, match="different numbers of pixels"):
        explorer_fragment({**models, "other": rbmvae.RBM(100, 5)})
    with pytest.raises(ConfigError, match="at least one model"):
        explorer_fragment({})


@pytest.mark.browser
def test_explore_command_and_a_session_in_the_page(browser, tiny_run, tmp_path, capsys):
    out = tmp_path / "explore.html"
    assert main(["explore", "--run", str(tiny_run), "--out", str(out)]) == 0
    assert "3 models" in capsys.readouterr().out
    page = browser.new_page(viewport={"width": 1200, "height": 1500})
    problems: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.as_uri())
    page.wait_for_function("window.rbmvaeExplorer && rbmvaeExplorer.instances.length === 1")
    state = lambda: page.evaluate("rbmvaeExplorer.state()")  # noqa: E731

    # -- the latent pad: the pointer's position is decoded live
    pad = page.locator(f".{PREFIX}-pad").bounding_box()
    for fx, fy in ((0.75, 0.25), (0.1, 0.9), (0.5, 0.4)):
        page.mouse.move(pad["x"] + fx * pad["width"], pad["y"] + fy * pad["height"])
        z = state()["pad"]["z"]
        assert z[0] == pytest.approx(-3 + 6 * fx, abs=0.03)
        assert z[1] == pytest.approx(3 - 6 * fy, abs=0.03)
        decoded = page.evaluate("(z) => rbmvaeExplorer.decode('vae-z2', z)", z)
        assert _canvas_red(page, "pad-out") == _grey_levels(decoded).int().tolist()
    page.screenshot(path=str(tmp_path / "latent.png"), full_page=False)

    # -- sliders for the 8-D code
    page.locator(f".{PREFIX}-slider").nth(2).fill("2.5")
    page.locator(f".{PREFIX}-slider").nth(5).fill("-1.25")
    sliders = state()["sliders"]
    assert sliders["model"] == "vae-z8"
    assert sliders["z"] == [0, 0, 2.5, 0, 0, -1.25, 0, 0]
    decoded = page.evaluate("(z) => rbmvaeExplorer.decode('vae-z8', z)", sliders["z"])
    assert _canvas_red(page, "slider-out") == _grey_levels(decoded).int().tolist()

    # -- inpainting: pick a digit, a random mask, erase a stroke with the mouse
    page.locator(f".{PREFIX}-thumb").nth(3).click()
    page.get_by_role("button", name="random 50%").click()
    before = state()
    assert before["digit"] == 3 and sum(before["mask"]) == 392
    edit = page.locator(f".{PREFIX}-edit")
    edit.scroll_into_view_if_needed()
    box = edit.bounding_box()
    row_y = box["y"] + 14.5 / 28 * box["height"]
    page.mouse.move(box["x"] + 3 / 28 * box["width"], row_y)
    page.mouse.down()
    for col in range(4, 26, 2):
        page.mouse.move(box["x"] + col / 28 * box["width"], row_y)
    page.mouse.up()
    erased = state()
    assert all(erased["mask"][14 * 28 + col] == 1 for col in range(4, 25))
    assert sum(erased["mask"]) > sum(before["mask"])
    assert erased["image"] == before["image"]  # hiding pixels does not change the image
    image = torch.tensor(erased["image"])
    observed = torch.tensor(erased["mask"]) == 0
    edit_red = torch.tensor(_canvas_red(page, "edit"))
    assert torch.equal(edit_red[observed], _grey_levels(image)[observed].int())
    assert (edit_red[~observed] == 64).all()  # missing pixels are drawn in blue

    # -- run each kind of chain for 40 steps; observed pixels never change
    page.locator(f".{PREFIX}-steps").fill("40")
    page.locator(f".{PREFIX}-speed").select_option("5")
    for name in ("rbm-h20", "vae-z2"):
        page.locator(f".{PREFIX}-model").select_option(name)
        assert state()["step"] == 0
        page.locator(f".{PREFIX}-run").click()
        page.wait_for_function("rbmvaeExplorer.state().step >= 40", timeout=20_000)
        page.wait_for_function("!rbmvaeExplorer.state().running")
        after = state()
        assert after["model"] == name and after["step"] == 40
        assert after["mask"] == erased["mask"]
        chain = torch.tensor(after["chainState"])
        estimate = torch.tensor(after["estimate"])
        assert torch.equal(chain[observed], image[observed])
        assert torch.equal(estimate[observed], image[observed])
        assert set(chain[~observed].tolist()) <= {0.0, 1.0}
        assert ((estimate[~observed] >= 0) & (estimate[~observed] <= 1)).all()
        fill = torch.tensor(_canvas_red(page, "fill"))
        assert torch.equal(fill, _grey_levels(estimate).int())
        assert torch.equal(fill[observed], _grey_levels(image)[observed].int())
        assert "step 40 / 40" in page.locator(f".{PREFIX}-counter").inner_text()
        page.screenshot(path=str(tmp_path / f"inpaint-{name}.png"), full_page=True)

    # -- a blank canvas and a pen stroke: drawn pixels are observed ink
    page.get_by_role("button", name="blank canvas").click()
    box = edit.bounding_box()
    page.mouse.move(box["x"] + 14.5 / 28 * box["width"], box["y"] + 5 / 28 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 14.5 / 28 * box["width"], box["y"] + 23 / 28 * box["height"])
    page.mouse.up()
    drawn = state()
    column = [drawn["image"][row * 28 + 14] for row in range(6, 22)]
    assert min(column) == 1.0 and sum(drawn["mask"]) == 0
    assert sum(drawn["image"]) < 60  # a stroke, not a filled canvas
    page.locator(f".{PREFIX}-half").select_option("right")
    assert sum(state()["mask"]) == 392
    page.screenshot(path=str(tmp_path / "drawn.png"), full_page=True)

    page.close()
    print(f"\nscreenshots in {tmp_path}")
    assert problems == []
    assert requests == [out.as_uri()]  # nothing fetched but the page itself


# ------------------------------------------------------------------------------------------------
# size, speed, and living beside other content


@pytest.mark.browser
def test_page_size_and_speed_with_default_models(browser, sample_data):
    generator = torch.Generator().manual_seed(0)
    mean = sample_data.train_images.mean(0)
    models = {}
    for hidden in (20, 100, 500):
        rbm = rbmvae.RBM(784, hidden)
        rbm.reset_parameters(mean, generator, weight_std=0.1)
        models[f"rbm-h{hidden}"] = rbm
    for latent in (2, 8, 16):
        vae = rbmvae.VAE(784, 256, latent)
        vae.reset_parameters(generator, mean)
        models[f"vae-z{latent}"] = vae
    page_html, info = build_page(models, sample_data)
    size = len(page_html.encode("utf-8"))
    print(
        f"\npage: {size / 1e6:.3f} MB; float16 matrices in {info.float16}; left out {info.dropped}"
    )
    assert size == info.n_bytes < MAX_PAGE_BYTES
    assert info.models == list(models) and info.dropped == []
    assert info.float16  # all-float32 would not fit: the page says so
    assert "float16" in info.notes[0] and info.notes[0] in page_html

    page, problems = _open(browser, page_html)
    timings = page.evaluate(
        """() => ({
            decode: Object.fromEntries(["vae-z2", "vae-z8", "vae-z16"].map(
                (n) => [n, rbmvaeExplorer.timeDecode(n, 300)])),
            sweep: Object.fromEntries(["rbm-h500", "vae-z16"].map(
                (n) => [n, rbmvaeExplorer.timeSweep(n, 30)])),
        })"""
    )
    print(f"ms per decode: {timings['decode']}; ms per inpainting sweep: {timings['sweep']}")
    assert page.locator(f".{PREFIX}-notes").is_visible()
    # the float16 weights cost little: compare the page with the float32 model
    vae = models["vae-z16"]
    code = torch.linspace(-2, 2, 16)
    decoded = torch.tensor(
        page.evaluate("(z) => rbmvaeExplorer.decode('vae-z16', z)", code.tolist())
    )
    with torch.no_grad():
        exact = vae.decode(code[None])[0]
        rounded = _rounded_to_half(vae).decode(code[None])[0]
    assert torch.allclose(decoded, rounded, atol=TOLERANCE, rtol=0)
    print(
        f"float16 storage vs float32 model, max |p| difference: {(decoded - exact).abs().max():.2e}"
    )
    page.close()
    assert problems == []


@pytest.mark.browser
def test_two_fragments_share_a_page_without_clashing(browser):
    first = explorer_fragment(_random_models(seed=1, latents=(2,)), None, n_digits=0)
    second = explorer_fragment(_random_models(seed=2, latents=(2, 4)), None, n_digits=0)
    # no ids, and every CSS rule is scoped to the fragment's root
    assert not re.search(r"\sid=", first)
    style = re.search(r"<style>(.*?)</style>", first, re.S).group(1)
    selectors = [s.strip() for rule in re.findall(r"([^{}]+)\{", style) for s in rule.split(",")]
    assert selectors and all(s.startswith(f".{PREFIX}") for s in selectors)
    blank, _ = _open(browser, "<!DOCTYPE html><html><body></body></html>")
    baseline = set(blank.evaluate("Object.keys(window)"))
    blank.close()
    html = (
        "<!DOCTYPE html><html><head><style>canvas { border: 5px solid red; }</style></head><body>"
        f'<div class="pad">other content</div>{first}<p>between</p>{second}</body></html>'
    )
    page, problems = _open(browser, html)
    assert set(page.evaluate("Object.keys(window)")) - baseline == {"rbmvaeExplorer"}
    names = page.evaluate("rbmvaeExplorer.instances.map((i) => i.modelNames)")
    assert names == [
        ["rbm-small", "vae-small-z2"],
        ["rbm-small", "vae-small-z2", "vae-small-z4"],
    ]
    # the second explorer's pad moves only its own state
    pad = page.locator(f".{PREFIX}-pad").nth(1)
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 0.9 * box["width"], box["y"] + 0.9 * box["height"])
    z = page.evaluate("rbmvaeExplorer.instances.map((i) => i.state().pad.z)")
    assert z[0] == [0, 0] and z[1][0] > 2 and z[1][1] < -2
    # each runs its own weights
    codes = page.evaluate(
        "rbmvaeExplorer.instances.map((i) => i.decode('vae-small-z2', [0.5, -0.5]).slice(0, 50))"
    )
    assert codes[0] != codes[1]
    page.close()
    assert problems == []


def test_write_explorer_loads_the_run(tiny_run, tmp_path):
    out = tmp_path / "page.html"
    info = write_explorer(tiny_run, out, n_digits=10)
    text = out.read_text(encoding="utf-8")
    assert info.models == ["rbm-h20", "vae-z2", "vae-z8"]
    assert info.n_bytes == len(text.encode("utf-8")) < MAX_PAGE_BYTES
    assert info.float16 == [] and info.dropped == [] and info.notes == []
    assert not any(p.name.startswith(".page.html") for p in tmp_path.iterdir())  # no temp files
    assert "http://" not in text and "https://" not in text


def test_size_budget_shrinks_then_drops(sample_data):
    """Over budget, the largest matrices go to float16 first, then whole models, with a note."""
    models = _random_models(latents=(2, 3))
    full, info = build_explorer(models, sample_data, n_digits=2, precision="float32")
    assert info.float16 == [] and info.notes == []
    # one matrix fewer in float32 is enough: the largest one (784 x 24 in a VAE) is halved
    _, shrunk = build_explorer(models, sample_data, n_digits=2, max_bytes=len(full) - 1000)
    assert len(shrunk.float16) == 1 and shrunk.dropped == []
    assert shrunk.n_bytes <= len(full) - 1000 and "float16" in shrunk.notes[0]
    # far too small: models are left out, largest first, and the note names them
    text, tight = build_explorer(models, sample_data, n_digits=2, max_bytes=len(full) // 3)
    assert tight.dropped and len(tight.models) >= 1
    assert sorted(tight.models + tight.dropped) == sorted(models)
    assert f"Left out to keep this page under {len(full) // 3 / 1e6:g} MB" in text
    sizes = {n: sum(v.numel() for v in m.state_dict().values()) for n, m in models.items()}
    assert min(sizes[n] for n in tight.dropped) >= max(sizes[n] for n in tight.models)
