"""Estimators of rbmvae.evaluation, each checked against an independent computation."""

import itertools
import json
import math
import time

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import rbmvae
from rbmvae import likelihood
from rbmvae.basics.errors import ConfigError
from rbmvae.basics.rng import make_generator
from rbmvae.cli import main
from rbmvae.data import Dataset
from rbmvae.evaluation import EvaluationSettings, scoring
from rbmvae.models import RBM, VAE


def all_states(n, dtype=torch.float64):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=dtype)


def random_rbm(n_visible, n_hidden, scale=1.0, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM(n_visible, n_hidden).to(dtype)
    with torch.no_grad():
        rbm.weight.copy_(torch.randn(n_visible, n_hidden, generator=g, dtype=dtype) * scale)
        rbm.visible_bias.copy_(torch.randn(n_visible, generator=g, dtype=dtype))
        rbm.hidden_bias.copy_(torch.randn(n_hidden, generator=g, dtype=dtype) * 0.5)
    return rbm


@torch.no_grad()
def brute_force_log_z(rbm):
    """log Z summed over every (v, h) pair from the energy of Eq. 1.1, no free energies."""
    v = all_states(rbm.n_visible, rbm.weight.dtype)
    h = all_states(rbm.n_hidden, rbm.weight.dtype)
    energy = (
        -(v @ rbm.visible_bias)[:, None] - (h @ rbm.hidden_bias)[None, :] - v @ rbm.weight @ h.T
    )
    return float(torch.logsumexp(-energy.flatten(), dim=0))


# ------------------------------------------------------------------------------------------------
# RBM


@pytest.mark.parametrize("shape", [(10, 8), (7, 11)])
@pytest.mark.parametrize("batch_size", [1, 5, 1 << 10])
def test_exact_log_z_equals_enumeration_over_both_layers(shape, batch_size):
    rbm = random_rbm(*shape, scale=1.0)
    exact = likelihood.log_partition_exact(rbm, batch_size=batch_size)
    assert exact == pytest.approx(brute_force_log_z(rbm), abs=1e-9)


def test_exact_log_z_splits_large_layers_correctly():
    # 784 visible x 12 hidden: compare with a plain logsumexp of -F(h) over all 4096 states.
    rbm = random_rbm(784, 12, scale=0.05, dtype=torch.float64)
    with torch.no_grad():
        reference = float(torch.logsumexp(-rbm.free_energy_hidden(all_states(12)), dim=0))
    for batch_size in (16, 1 << 10, 1 << 14):
        assert likelihood.log_partition_exact(rbm, batch_size=batch_size) == pytest.approx(
            reference, abs=1e-8
        )


def test_exact_log_z_refuses_large_models():
    with pytest.raises(ConfigError, match="at most 25"):
        likelihood.log_partition_exact(RBM(30, 26))


def test_exact_log_z_of_784_by_20_rbm_takes_seconds():
    rbm = random_rbm(784, 20, scale=0.05, dtype=torch.float32)
    with torch.no_grad():
        rbm.weight[:, 10:] = 0.0  # the last ten hidden units are independent of v
    started = time.perf_counter()
    exact = likelihood.log_partition_exact(rbm)
    seconds = time.perf_counter() - started
    assert seconds < 60  # about 2 s on 2 idle cores; generous for busy CI machines
    # Independent: the ten free hidden units factor out as sum softplus(c_j).
    first = RBM(784, 10).double()
    with torch.no_grad():
        first.weight.copy_(rbm.weight[:, :10])
        first.visible_bias.copy_(rbm.visible_bias)
        first.hidden_bias.copy_(rbm.hidden_bias[:10])
    with torch.no_grad():
        reference = float(torch.logsumexp(-first.free_energy_hidden(all_states(10)), dim=0))
        reference += float(torch.nn.functional.softplus(rbm.hidden_bias[10:].double()).sum())
    assert exact == pytest.approx(reference, abs=1e-3)


def test_log_likelihood_is_normalized():
    rbm = random_rbm(9, 6)
    log_z = likelihood.log_partition_exact(rbm)
    per_image = likelihood.rbm_log_likelihood(rbm, all_states(9), log_z, per_image=True)
    assert per_image.shape == (2**9,)
    assert float(torch.logsumexp(per_image, dim=0)) == pytest.approx(0.0, abs=1e-9)
    assert likelihood.rbm_log_likelihood(rbm, all_states(9), log_z) == pytest.approx(
        float(per_image.mean())
    )


def test_base_rate_bias_is_the_logit_of_smoothed_means():
    images = torch.zeros(8, 3)
    images[:, 1] = 1.0
    images[:4, 2] = 1.0
    bias = likelihood.base_rate_visible_bias(images, pseudo_count=1.0)
    torch.testing.assert_close(torch.sigmoid(bias), torch.tensor([1 / 10, 9 / 10, 5 / 10]))


def test_ais_betas_follow_sm08():
    betas = likelihood.ais_betas(14500)
    assert betas.shape == (14501,)
    assert betas[0] == 0 and betas[-1] == 1 and bool((betas.diff() > 0).all())
    steps = betas[1:]
    assert int((steps <= 0.5).sum()) == 500
    assert int(((steps > 0.5) & (steps <= 0.9)).sum()) == 4000
    assert int((steps > 0.9).sum()) == 10000
    assert likelihood.ais_betas(30).shape == (31,)
    with pytest.raises(ConfigError):
        likelihood.ais_betas(2)


@pytest.mark.parametrize("shape,scale", [((10, 8), 1.0), ((12, 16), 0.7)])
def test_ais_agrees_with_exact_log_z(shape, scale):
    rbm = random_rbm(*shape, scale=scale, seed=3)
    exact = likelihood.log_partition_exact(rbm)
    g = torch.Generator().manual_seed(0)
    data = (torch.rand(500, shape[0], generator=g) < torch.sigmoid(rbm.visible_bias)).double()
    base = likelihood.base_rate_visible_bias(data)
    result = likelihood.ais_log_partition(rbm, base, n_runs=200, n_betas=2000, generator=g)
    assert abs(result.log_z - exact) < 0.1
    assert result.log_z_low <= result.log_z <= result.log_z_high
    assert result.log_z_high - result.log_z_low < 0.5
    assert result.n_runs == 200 and result.n_betas == 2000 and result.seconds > 0


class CountMatmuls(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.bmm):
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("n_runs", [1, 64])
def test_ais_does_two_products_per_beta_whatever_the_runs(n_runs):
    rbm = random_rbm(10, 8, scale=0.5, dtype=torch.float32)
    with CountMatmuls() as counter:
        result = likelihood.ais_log_partition(
            rbm, torch.zeros(10), n_runs=n_runs, n_betas=50, generator=torch.Generator()
        )
    assert counter.count == result.matmuls == 2 * 50 - 1


def test_ais_refuses_bad_betas():
    rbm = random_rbm(4, 3)
    with pytest.raises(ConfigError, match="betas"):
        likelihood.ais_log_partition(rbm, torch.zeros(4), betas=torch.tensor([0.0, 0.7, 0.5, 1.0]))


# ------------------------------------------------------------------------------------------------
# VAE


def tiny_vae(n_latent=2, seed=0):
    vae = VAE(n_visible=12, n_hidden=10, n_latent=n_latent).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in vae.parameters():
            param.copy_(torch.randn(param.shape, generator=g, dtype=torch.float64) * 0.8)
        # a rough encoder, as after some training: posteriors narrower than the prior, not tiny
        vae.encoder_log_var.weight.mul_(0.05)
        vae.encoder_log_var.bias.fill_(-0.3)
        vae.encoder_mean.weight.mul_(0.2)
        vae.decoder_output.weight.mul_(0.5)
    return vae


def tiny_images(n=40, d=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g, dtype=torch.float64) < 0.4).double()


def test_iwae_approaches_quadrature_log_likelihood():
    vae, x = tiny_vae(), tiny_images(200)
    exact = likelihood.log_likelihood_quadrature(vae, x, grid_size=301, limit=7.0)
    errors = {}
    for k in (100, 5000):
        estimate = likelihood.iwae_log_likelihood(
            vae,
            x,
            k=k,
            chunk=700,
            batch_size=64,
            generator=torch.Generator().manual_seed(0),
            per_image=True,
        )
        assert estimate.shape == exact.shape
        errors[k] = (estimate - exact).abs()
    assert float(errors[5000].mean()) < 0.5 * float(errors[100].mean())
    assert float(errors[5000].median()) < 0.05
    mean = likelihood.iwae_log_likelihood(
        vae, x, k=5000, generator=torch.Generator().manual_seed(0)
    )
    assert mean == pytest.approx(float(exact.mean()), abs=0.05)


def test_elbo_below_iwae_which_grows_with_k():
    vae, x = tiny_vae(seed=2), tiny_images(200)
    many = x.repeat(200, 1)  # 200 draws per image make the ELBO's estimate precise
    lower = likelihood.elbo(vae, many, generator=torch.Generator().manual_seed(0))
    single = likelihood.iwae_log_likelihood(
        vae, many, k=1, generator=torch.Generator().manual_seed(1)
    )
    assert lower == pytest.approx(single, abs=0.1)  # L_1 is the ELBO
    bounds = [
        likelihood.iwae_log_likelihood(vae, x, k=k, generator=torch.Generator().manual_seed(0))
        for k in (1, 10, 100, 1000)
    ]
    assert all(a < b for a, b in itertools.pairwise(bounds))
    assert lower < bounds[1]


def test_active_units_count_varying_posterior_means():
    vae = tiny_vae(n_latent=3)
    with torch.no_grad():
        vae.encoder_mean.weight[1] = 0.0  # unit 1's posterior mean is a constant
        vae.encoder_mean.weight[2] *= 1e-3  # unit 2's barely moves
    x = tiny_images(300)
    means = vae.encode(x)[0].detach()
    reference = ((means - means.mean(0)) ** 2).mean(0)
    torch.testing.assert_close(likelihood.posterior_mean_variance(vae, x, batch_size=7), reference)
    assert reference[0] > 0.01 and reference[2] < 0.01
    assert likelihood.active_units(vae, x) == 1
    assert likelihood.active_units(vae, x, threshold=0.0) == 2


# ------------------------------------------------------------------------------------------------
# Inpainting quality


def test_knn_fill_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(50, 16, generator=g)
    images = torch.rand(9, 16, generator=g)
    mask = torch.rand(9, 16, generator=g) < 0.4
    filled = scoring.knn_fill(images, mask, train, k=3, batch_size=4)
    observed = (~mask).float()
    distances = (observed[:, None, :] * (images[:, None, :] - train[None]) ** 2).sum(-1)
    nearest = distances.argsort(dim=1)[:, :3]
    expected = torch.where(mask, train[nearest].mean(1), images)
    torch.testing.assert_close(filled, expected)
    # an image that is in the training set is completed from itself with k = 1
    copy = scoring.knn_fill(train[7:8], mask[:1], train, k=1)
    torch.testing.assert_close(copy, train[7:8])


def test_baseline_fills_keep_observed_pixels():
    g = torch.Generator().manual_seed(0)
    images, train = torch.rand(5, 6, generator=g), torch.rand(20, 6, generator=g)
    mask = torch.rand(5, 6, generator=g) < 0.5
    zero = scoring.zero_fill(images, mask)
    mean = scoring.mean_fill(images, mask, train)
    for filled in (zero, mean):
        assert torch.equal(filled[~mask], images[~mask])
    assert bool((zero[mask] == 0).all())
    torch.testing.assert_close(mean[mask], train.mean(0).expand(5, 6)[mask])


def test_missing_pixel_errors_by_hand():
    original = torch.tensor([[1.0, 0.0, 0.5, 1.0]])
    filled = torch.tensor([[0.8, 0.3, 0.5, 0.0]])
    mask = torch.tensor([[True, True, False, True]])
    mse, bce = scoring.missing_pixel_errors(filled, original, mask, clip=1e-4)
    assert mse == pytest.approx((0.2**2 + 0.3**2 + 1.0) / 3)
    assert bce == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(1e-4)) / 3)


@pytest.fixture(scope="module")
def small_data(sample_data):
    """The embedded sample cut down: 2,000 training and 300 test images."""
    return Dataset(
        name="mnist-sample-small",
        train_images=sample_data.train_images[:2000],
        train_labels=sample_data.train_labels[:2000],
        test_images=sample_data.test_images[:300],
        test_labels=sample_data.test_labels[:300],
        image_shape=sample_data.image_shape,
    )


@pytest.fixture(scope="module")
def classifier_cache(tmp_path_factory):
    """A classifier cache shared by this module's tests (the data cache's classifiers/)."""
    return tmp_path_factory.mktemp("cache") / "classifiers"


def test_evaluation_classifier_is_fitted_once_and_cached(small_data, classifier_cache, monkeypatch):
    classifier, info = scoring.evaluation_classifier(small_data, cache_dir=classifier_cache)
    assert info["test_accuracy"] > 0.8
    assert info["cache"] and "MLP" in info["name"]
    files = sorted(p.suffix for p in classifier_cache.glob(f"{info['key']}.*"))
    assert files == [".json", ".safetensors"]
    assert scoring.classifier_accuracy(
        classifier, small_data.test_images, small_data.test_labels
    ) == pytest.approx(info["test_accuracy"])

    def refit(*args, **kwargs):
        raise AssertionError("refitted although cached")

    monkeypatch.setattr(scoring, "fit_classifier", refit)
    again, info_again = scoring.evaluation_classifier(small_data, cache_dir=classifier_cache)
    assert info_again == info
    x = small_data.test_images[:10]
    torch.testing.assert_close(again(x), classifier(x))


def test_damaged_classifier_cache_is_refitted(small_data, tmp_path):
    _, info = scoring.evaluation_classifier(small_data, cache_dir=tmp_path)
    weights = next(tmp_path.glob("*.safetensors"))
    weights.write_bytes(b"garbage")
    _, refitted = scoring.evaluation_classifier(small_data, cache_dir=tmp_path)
    assert refitted["weights_sha256"] == info["weights_sha256"]  # deterministic fit
    assert weights.read_bytes() != b"garbage"


def test_inpainting_table_rows_share_masks(small_data, classifier_cache):
    rbm = RBM(784, 16)
    rbm.reset_parameters(small_data.train_images.mean(0), torch.Generator().manual_seed(0))
    vae = VAE(784, 32, 2)
    vae.reset_parameters(torch.Generator().manual_seed(0))
    classifier = scoring.evaluation_classifier(small_data, cache_dir=classifier_cache)
    table = scoring.inpainting_table(
        {"rbm": rbm, "vae": vae},
        small_data,
        fractions=(0.2, 0.5),
        n=60,
        steps=4,
        seed=5,
        classifier=classifier,
    )
    methods = [(r["method"], r["fraction"]) for r in table.rows]
    assert len(methods) == 2 * 6 and len(set(methods)) == 12
    assert {r["sampler"] for r in table.rows if r["kind"] == "vae"} == {
        "pseudo-gibbs",
        "metropolis",
    }
    images = small_data.test_images[:60]
    masks = scoring.evaluation_masks(60, 784, (0.2, 0.5), seed=5)
    for fraction, mask in zip((0.2, 0.5), masks, strict=True):
        assert int(mask.sum()) == 60 * round(fraction * 784)
        rows = {r["method"]: r for r in table.rows if r["fraction"] == fraction}
        zero = rows["zero fill"]
        assert zero["mse"] == pytest.approx(float(images[mask].double().pow(2).mean()))
        evidence = small_data.binarized_test_images(60, seed=5)  # observed pixels: binary
        knn = scoring.knn_fill(evidence, mask, small_data.train_images, k=10)
        assert rows["10-NN fill"]["mse"] == pytest.approx(
            scoring.missing_pixel_errors(knn, images, mask)[0]
        )
        # on digits, neighbours beat the pixel means, which beat zeros
        assert rows["10-NN fill"]["mse"] < rows["training-mean fill"]["mse"] < zero["mse"]
    assert table.classifier["accuracy_on_complete_images"] > 0.8
    assert "10-NN fill" in table.format()


def test_neighbour_starts_are_the_nearest_training_images():
    g = torch.Generator().manual_seed(1)
    train = torch.rand(40, 12, generator=g)
    images = torch.rand(7, 12, generator=g)
    mask = torch.rand(7, 12, generator=g) < 0.5
    starts = scoring.neighbour_starts(images, mask, train, chains=4)
    observed = (~mask).float()
    distances = (observed[:, None, :] * (images[:, None, :] - train[None]) ** 2).sum(-1)
    assert starts.shape == (7, 4, 12)
    torch.testing.assert_close(starts, train[distances.argsort(dim=1)[:, :4]])


def test_inpainting_table_runs_the_chains_it_names(small_data, classifier_cache):
    rbm = RBM(784, 16)
    rbm.reset_parameters(small_data.train_images.mean(0), torch.Generator().manual_seed(0))
    classifier = scoring.evaluation_classifier(small_data, cache_dir=classifier_cache)
    options = {"fractions": (0.8,), "n": 30, "steps": 4, "seed": 5, "classifier": classifier}
    table = scoring.inpainting_table(
        {"rbm": rbm}, small_data, baselines=False, chains=3, start="neighbours", **options
    )
    assert table.settings["chains"] == 3
    assert "nearest training image" in table.settings["start_fill"]
    (row,) = table.rows
    evidence = small_data.binarized_test_images(30, seed=5)
    (mask,) = scoring.evaluation_masks(30, 784, (0.8,), seed=5)
    starts = scoring.neighbour_starts(evidence, mask, small_data.train_images, 3)
    filled = rbmvae.inpaint(
        rbm, evidence, mask, steps=4, fill=starts, chains=3, generator=make_generator(5, "cpu")
    )
    expected = scoring.missing_pixel_errors(filled, small_data.test_images[:30], mask)[0]
    assert row["mse"] == pytest.approx(expected, rel=1e-6)
    one = scoring.inpainting_table({"rbm": rbm}, small_data, baselines=False, **options)
    assert one.settings["chains"] == 1 and one.rows[0]["mse"] != pytest.approx(expected)
    with pytest.raises(ConfigError, match="unknown start 'median'"):
        scoring.inpainting_table({"rbm": rbm}, small_data, start="median", **options)


def test_evaluation_settings_check_the_chains():
    with pytest.raises(ConfigError, match="inpaint_chains"):
        EvaluationSettings(inpaint_chains=0)
    with pytest.raises(ConfigError, match="unknown inpaint start 'last'; choose one of mean"):
        EvaluationSettings(inpaint_start="last")


# ------------------------------------------------------------------------------------------------
# Command line


def strict_json(text):
    """Parse JSON, refusing the non-standard NaN and Infinity."""

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_cli_evaluate_rbm(tmp_path, classifier_cache, monkeypatch, capsys):
    monkeypatch.setenv("RBMVAE_DATA_DIR", str(classifier_cache.parent))
    out = tmp_path / "rbm"
    args = ["train", "rbm", "--hidden", "8", "--epochs", "1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    args = ["evaluate", "--model", str(out), "--ais-runs", "50", "--ais-betas", "500"]
    args += ["--inpaint", "0.5", "--n", "40", "--steps", "3", "--ll-n", "500", "--json"]
    assert main(args) == 0
    report = strict_json(capsys.readouterr().out)
    assert report == strict_json((out / "evaluation.json").read_text())
    likelihood = report["log_likelihood"]
    assert likelihood["test_images"] == {
        "n": 500,
        "binarization": "stochastic",
        "seed": 0,
        "description": likelihood["test_images"]["description"],
    }
    exact, ais = likelihood["exact"], likelihood["ais"]
    assert exact["mean_log_likelihood"]["unit"] == "nats per image"
    assert abs(ais["log_z"]["value"] - exact["log_z"]["value"]) < 0.2
    assert -400 < exact["mean_log_likelihood"]["value"] < -100
    assert ais["n_runs"] == 50 and ais["n_betas"] == 500
    assert 1 <= ais["effective_runs"]["value"] <= 50
    rows = report["inpainting"]["rows"]
    assert {r["method"] for r in rows} == {
        "zero fill",
        "training-mean fill",
        "10-NN fill",
        "RBM, 8 hidden",
    }
    assert all(r["mse"]["unit"] == "squared error per missing pixel" for r in rows)
    assert set(report["seconds"]) == {"log_likelihood", "inpainting", "total"}
    # the text form
    args = ["evaluate", "--model", str(out), "--ais-runs", "0", "--inpaint", "none"]
    assert main([*args, "--ll-n", "100"]) == 0
    text = capsys.readouterr().out
    assert "exact" in text and "AIS" not in text and "seed 0" in text


def test_cli_evaluate_vae(tmp_path, classifier_cache, monkeypatch, capsys):
    monkeypatch.setenv("RBMVAE_DATA_DIR", str(classifier_cache.parent))
    out = tmp_path / "vae"
    args = ["train", "vae", "--latent", "3", "--hidden", "16", "--epochs", "1"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    args = ["evaluate", "--model", str(out), "--iwae-k", "20", "--ll-n", "50", "--no-baselines"]
    assert main([*args, "--inpaint", "0.5", "--n", "20", "--steps", "2", "--json"]) == 0
    report = strict_json(capsys.readouterr().out)
    likelihood = report["log_likelihood"]
    assert likelihood["test_images"]["n"] == 50 and likelihood["iwae"]["k"] == 20
    assert likelihood["elbo"]["mean"]["value"] < likelihood["iwae"]["mean_log_likelihood"]["value"]
    assert 0 <= likelihood["active_units"]["count"]["value"] <= 3
    assert len(likelihood["active_units"]["variances"]) == 3
    rows = report["inpainting"]["rows"]
    assert [(r["kind"], r["sampler"]) for r in rows] == [
        ("vae", "pseudo-gibbs"),
        ("vae", "metropolis"),
    ]


def test_cli_evaluate_baselines_alone(classifier_cache, monkeypatch, capsys):
    monkeypatch.setenv("RBMVAE_DATA_DIR", str(classifier_cache.parent))
    args = ["evaluate", "--baselines", "--inpaint", "0.2,0.8", "--n", "30", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] is None and "log_likelihood" not in report
    assert len(report["inpainting"]["rows"]) == 6
    assert all(r["kind"] == "baseline" for r in report["inpainting"]["rows"])


def test_cli_evaluate_errors(tmp_path, capsys):
    assert main(["evaluate"]) == 2
    assert "--baselines" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--baselines", "--inpaint", "0.2,1.5"])
    assert stop.value.code == 2
    assert main(["evaluate", "--model", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err


def test_the_shipped_classifier_of_the_sample_is_the_one_a_fit_gives(sample_data, tmp_path):
    from rbmvae.evaluation import classifier as module

    shipped, info = scoring.evaluation_classifier(sample_data, cache_dir=tmp_path)
    assert info["cache"] == "shipped with rbmvae" and not any(tmp_path.iterdir())  # no fit
    fitted = module.fit_classifier(
        sample_data.train_images, sample_data.train_labels, module.CLASSIFIER_SETTINGS
    )
    test = sample_data.test_images
    with torch.inference_mode():
        agree = (shipped(test).argmax(1) == fitted(test).argmax(1)).double().mean().item()
    assert agree > 0.995  # the same fit, up to the rounding of another machine's products
    accuracy = scoring.classifier_accuracy(fitted, test, sample_data.test_labels)
    assert accuracy == pytest.approx(info["test_accuracy"], abs=0.005)
    assert info["trained_on"] == "mnist-sample training split (5000 images)"


def test_a_damaged_shipped_classifier_is_refitted_into_the_cache(small_data, tmp_path, monkeypatch):
    from rbmvae.evaluation import classifier as module

    shipped = tmp_path / "shipped"
    _, info = scoring.evaluation_classifier(small_data, cache_dir=shipped)  # a shipped entry
    monkeypatch.setattr(module, "SHIPPED_DIR", shipped)
    _, again = scoring.evaluation_classifier(small_data, cache_dir=tmp_path / "cache")
    assert again["cache"] == "shipped with rbmvae" and not (tmp_path / "cache").exists()
    next(shipped.glob("*.safetensors")).write_bytes(b"garbage")
    _, refitted = scoring.evaluation_classifier(small_data, cache_dir=tmp_path / "cache")
    assert refitted["cache"].startswith(str(tmp_path / "cache"))
    assert refitted["weights_sha256"] == info["weights_sha256"]
