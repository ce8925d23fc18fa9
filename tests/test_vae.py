"""The VAE: its maths against independent computations, training, figures, inpainting, CLI."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal

import rbmvae
from rbmvae.basics.errors import ConfigError
from rbmvae.basics.rng import make_generator
from rbmvae.cli import main
from rbmvae.data import Dataset, binarize
from rbmvae.likelihood import log_likelihood_quadrature
from rbmvae.models.vae import VAE, bernoulli_log_likelihood, gaussian_kl, negative_elbo
from rbmvae.pages.figures import latent_coordinates, latent_values, manifold_array, traversal_array
from rbmvae.samplers.inpainting import metropolis_within_gibbs, pseudo_gibbs
from rbmvae.training.objectives import VAEObjective


def _tiny_vae(n_visible=6, n_hidden=16, n_latent=2, seed=0, scale=3.0):
    """A small random VAE whose posterior is far from the prior (weights scaled up)."""
    vae = VAE(n_visible, n_hidden, n_latent)
    vae.reset_parameters(generator=make_generator(seed))
    with torch.no_grad():
        for param in vae.parameters():
            param.mul_(scale)
    return vae.eval()


# ------------------------------------------------------------------------------------------------
# the model's maths


def test_constructor_checks_and_config():
    vae = VAE(n_visible=20, n_hidden=7, n_latent=3)
    assert vae.config() == {"n_visible": 20, "n_hidden": 7, "n_latent": 3}
    assert VAE(**vae.config()).config() == vae.config()
    for bad in ({"n_latent": 0}, {"n_hidden": -1}, {"n_visible": 2.5}, {"n_latent": True}):
        with pytest.raises(ConfigError):
            VAE(**bad)


def test_gaussian_kl_matches_monte_carlo():
    generator = make_generator(0)
    mean = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    log_var = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    q = Normal(mean, torch.exp(0.5 * log_var))
    z = q.sample((200_000,))
    log_ratio = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1)
    estimate = log_ratio.mean(0)
    stderr = log_ratio.std(0) / math.sqrt(z.shape[0])
    closed = gaussian_kl(mean, log_var)
    assert torch.all((closed - estimate).abs() < 5 * stderr + 1e-6)
    assert torch.all(gaussian_kl(torch.zeros(2, 5), torch.zeros(2, 5)) == 0)


def test_bernoulli_log_likelihood_matches_distribution_and_is_stable():
    generator = make_generator(1)
    logits = 4 * torch.randn(5, 30, generator=generator, dtype=torch.float64)
    x = (torch.rand(5, 30, generator=generator, dtype=torch.float64) < 0.5).double()
    expected = Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits), expected)
    # grey targets: minus the binary cross-entropy
    grey = torch.rand(5, 30, generator=generator, dtype=torch.float64)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, grey, reduction="none")
    torch.testing.assert_close(bernoulli_log_likelihood(grey, logits), -bce.sum(-1))
    # extreme logits stay finite and exact
    big = torch.tensor([[1e4, -1e4]])
    assert bernoulli_log_likelihood(torch.tensor([[1.0, 0.0]]), big).item() == 0.0
    assert bernoulli_log_likelihood(torch.tensor([[0.0, 1.0]]), big).item() == -2e4


def test_negative_elbo_parts_and_reparameterization():
    vae = _tiny_vae(n_visible=12, n_latent=3, scale=1.0)
    x = (torch.rand(8, 12, generator=make_generator(2)) < 0.5).float()
    loss, reconstruction, kl = negative_elbo(vae, x, make_generator(7))
    mean, log_var = vae.encode(x)
    eps = torch.randn(mean.shape, generator=make_generator(7))
    z = mean + torch.exp(0.5 * log_var) * eps  # Eq. 2.3 by hand
    expected = Bernoulli(logits=vae.decode_logits(z)).log_prob(x).sum(-1)
    torch.testing.assert_close(reconstruction, expected)
    torch.testing.assert_close(kl, gaussian_kl(mean, log_var))
    torch.testing.assert_close(loss, kl - reconstruction)
    torch.testing.assert_close(vae(x), vae.decode_logits(mean))
    torch.testing.assert_close(vae.reconstruct(x), torch.sigmoid(vae.decode_logits(mean)))


def test_every_parameter_gets_a_fresh_gradient_from_the_objective():
    vae = VAE(n_visible=20, n_hidden=8, n_latent=2)
    x = torch.rand(16, 20, generator=make_generator(3))
    objective = VAEObjective()
    objective.setup(vae, x, make_generator(0))
    loss = objective.step(vae, x, make_generator(5))
    first = {name: p.grad.clone() for name, p in vae.named_parameters()}
    assert set(first) == {name for name, _ in vae.named_parameters()}
    for name, grad in first.items():
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # the same as autograd on the loss written out, and not accumulated over steps
    objective.step(vae, x, make_generator(5))
    manual = negative_elbo(vae, x, make_generator(5))[0].mean()
    grads = torch.autograd.grad(manual, list(vae.parameters()))
    torch.testing.assert_close(loss, manual.detach())
    for (name, param), grad in zip(vae.named_parameters(), grads, strict=True):
        torch.testing.assert_close(param.grad, first[name])
        torch.testing.assert_close(param.grad, grad)


def test_setup_is_reproducible_and_starts_at_the_pixel_marginals():
    images = torch.rand(50, 20, generator=make_generator(4))
    a, b, c = (VAE(20, 8, 2) for _ in range(3))
    VAEObjective().setup(a, images, make_generator(11))
    VAEObjective().setup(b, images, make_generator(11))
    VAEObjective().setup(c, images, make_generator(12))
    named = zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True)
    for (name, pa), pb, pc in named:
        assert torch.equal(pa, pb)
        if name != "decoder_output.bias":  # set from the data, not drawn
            assert not torch.equal(pa, pc)
    bound = 1 / math.sqrt(20)
    assert a.encoder_hidden.weight.abs().max() <= bound
    torch.testing.assert_close(
        torch.sigmoid(a.decoder_output.bias), images.mean(0).clamp(1e-3, 1 - 1e-3)
    )


def test_quadrature_log_likelihood_sums_to_one_over_all_images():
    """On 5 pixels, sum_x p(x) over all 32 binary images is 1: a necessary condition for Eq. 3.8
    (any normalized density passes it; the Monte Carlo test below checks the values)."""
    vae = _tiny_vae(n_visible=5, scale=2.0).double()
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=torch.float64)
    log_p = log_likelihood_quadrature(vae, images, grid_size=301, limit=8.0)
    assert abs(torch.logsumexp(log_p, 0).item()) < 1e-6
    with pytest.raises(ConfigError):
        log_likelihood_quadrature(VAE(5, 4, 3), images)


def test_quadrature_matches_monte_carlo_over_the_prior():
    """Eq. 3.8 against an independent estimate: p(x) = E_{z ~ N(0, I)} p(x | z) with 400,000
    prior draws (p(x) of a 5-pixel image is large enough for plain Monte Carlo)."""
    vae = _tiny_vae(n_visible=5, scale=2.0).double()
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)), dtype=torch.float64)
    quadrature = log_likelihood_quadrature(vae, images, grid_size=301, limit=8.0).exp()
    z = torch.randn(400_000, 2, generator=make_generator(3), dtype=torch.float64)
    with torch.no_grad():
        probs = torch.sigmoid(vae.decode_logits(z))  # (S, 5)
        likelihood = torch.stack(
            [(probs * x + (1 - probs) * (1 - x)).prod(1).mean() for x in images]
        )
    torch.testing.assert_close(quadrature, likelihood, rtol=0.02, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# a z = 2 VAE trained on the embedded sample, shared by the tests below


@pytest.fixture(scope="module")
def trained(sample_data):
    """15 epochs on the 5,000 training digits, monitored on 1,000 test digits (a few seconds)."""
    data = Dataset(
        "mnist-sample-small-test",
        sample_data.train_images,
        sample_data.train_labels,
        sample_data.test_images[:1000],
        sample_data.test_labels[:1000],
        sample_data.image_shape,
    )
    untrained = VAE(n_latent=2)
    objective = VAEObjective()
    objective.setup(untrained, data.train_images, make_generator(0))
    before = objective.monitor(untrained, data.train_images[:1000], data.test_images)
    vae = VAE(n_latent=2)
    history = rbmvae.fit(vae, data, epochs=15, progress=False)
    return vae, history, before


@pytest.fixture(scope="module")
def classifier(sample_data):
    """Multinomial logistic regression on the training digits (L-BFGS, a few seconds)."""
    x, y = sample_data.train_images, sample_data.train_labels
    weight = torch.zeros(784, 10, requires_grad=True)
    bias = torch.zeros(10, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], max_iter=100, history_size=10, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight + bias, y)
        loss = loss + 1e-3 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return lambda images: (images @ weight.detach() + bias.detach()).argmax(1)


def test_training_improves_the_test_elbo(trained):
    _, history, before = trained
    keys = {"train_elbo", "train_reconstruction", "train_kl", "test_elbo"}
    assert keys | {"test_reconstruction", "test_kl"} <= set(history[0])
    for record in history:
        assert record["test_elbo"] == pytest.approx(
            record["test_reconstruction"] - record["test_kl"], abs=1e-3
        )
        assert record["test_kl"] > 0
    assert history[-1]["test_elbo"] > history[0]["test_elbo"] + 5
    assert history[-1]["test_elbo"] > before["test_elbo"] + 30
    assert history[-1]["loss"] < history[0]["loss"]


def test_monitor_is_deterministic_and_leaves_the_training_generator_alone(trained, sample_data):
    vae, _, _ = trained
    objective = VAEObjective(binarize="stochastic")
    images = sample_data.test_images[:300]
    first = objective.monitor(vae, images[:100], images)
    again = VAEObjective(binarize="stochastic").monitor(vae, images[:100], images)
    assert first == again
    assert first["test_elbo"] < 0 and first["test_kl"] > 0


def test_elbo_is_below_log_likelihood_by_quadrature(trained, sample_data):
    vae, _, _ = trained
    x = binarize(sample_data.test_images[:12], "stochastic", generator=make_generator(3))
    with torch.no_grad():
        log_p = log_likelihood_quadrature(vae, x, grid_size=201, limit=5.0)
        finer = log_likelihood_quadrature(vae, x, grid_size=301, limit=6.0)
        torch.testing.assert_close(log_p, finer, atol=0.02, rtol=0)
        # the ELBO from many reparameterized samples (Eq. 2.2) lies below log p(x) (Eq. 2.1)
        mean, log_var = vae.encode(x)
        n_samples = 4000
        eps = torch.randn((n_samples, *mean.shape), generator=make_generator(9))
        z = mean + torch.exp(0.5 * log_var) * eps
        log_lik = bernoulli_log_likelihood(x, vae.decode_logits(z))
        elbo = log_lik.mean(0) - gaussian_kl(mean, log_var)
        stderr = log_lik.std(0) / math.sqrt(n_samples)
        assert torch.all(elbo + 4 * stderr < log_p)


def test_manifold_shows_distinct_digits(trained, classifier, sample_data):
    vae, _, _ = trained
    accuracy = (classifier(sample_data.test_images) == sample_data.test_labels).float().mean()
    assert accuracy > 0.85
    n = 20
    array = manifold_array(vae, n=n)
    images = torch.from_numpy(array).reshape(n, 28, n, 28).permute(0, 2, 1, 3).reshape(-1, 784)
    classes = torch.unique(classifier(images))
    assert len(classes) >= 6, classes.tolist()


# ------------------------------------------------------------------------------------------------
# figure arrays


def test_manifold_array_layout():
    vae = _tiny_vae(n_visible=12, scale=1.0)
    n = 5
    array = manifold_array(vae, n=n, value_range=(-2.0, 1.0), image_shape=(3, 4))
    assert array.shape == (n * 3, n * 4)
    assert array.min() >= 0 and array.max() <= 1
    values = torch.linspace(-2.0, 1.0, n)
    for row, col in [(0, 0), (0, 4), (4, 0), (2, 3)]:
        z = torch.tensor([[values[col], values[n - 1 - row]]])
        expected = vae.decode(z).detach().reshape(3, 4).numpy()
        block = array[row * 3 : (row + 1) * 3, col * 4 : (col + 1) * 4]
        np.testing.assert_allclose(block, expected, rtol=1e-6, atol=1e-7)
    with pytest.raises(ConfigError):
        manifold_array(VAE(12, 4, 3), image_shape=(3, 4))
    with pytest.raises(ConfigError):
        manifold_array(vae, value_range=(1.0, -1.0), image_shape=(3, 4))
    with pytest.raises(ConfigError):
        manifold_array(vae, image_shape=(28, 28))


def test_traversal_array_layout():
    vae = _tiny_vae(n_visible=12, n_latent=4, scale=1.0)
    steps = 7
    array = traversal_array(vae, steps=steps, value_range=(-3.0, 3.0), image_shape=(3, 4))
    assert array.shape == (4 * 3, steps * 4)
    assert array.min() >= 0 and array.max() <= 1
    values = latent_values((-3.0, 3.0), steps)
    for unit, col in [(0, 0), (3, 6), (2, 1)]:
        z = torch.zeros(1, 4)
        z[0, unit] = values[col]
        expected = vae.decode(z).detach().reshape(3, 4).numpy()
        block = array[unit * 3 : (unit + 1) * 3, col * 4 : (col + 1) * 4]
        np.testing.assert_allclose(block, expected, rtol=1e-6, atol=1e-7)
    # the middle column decodes z = 0 in every row
    middle = array[:, 3 * 4 : 4 * 4].reshape(4, 3, 4)
    assert np.allclose(middle, middle[0])


def test_latent_coordinates_are_principal_components(sample_data, tmp_path):
    vae = VAE(n_latent=8)
    vae.reset_parameters(generator=make_generator(0))
    images = sample_data.test_images[:500]
    coords, names = latent_coordinates(vae, images)
    means = vae.encode(images)[0].detach().double()
    centred = means - means.mean(0)
    eigenvalues = torch.linalg.eigvalsh(centred.t() @ centred).flip(0)
    variances = torch.from_numpy(coords).pow(2).sum(0)
    torch.testing.assert_close(variances, eigenvalues[:2], rtol=1e-6, atol=1e-9)
    assert abs(float(torch.from_numpy(coords[:, 0] * coords[:, 1]).sum())) < 1e-6
    share = 100 * eigenvalues[0] / eigenvalues.sum()
    assert names[0].startswith("PC1") and f"{share:.0f}%" in names[0]
    assert names[1].startswith("PC2")
    path = tmp_path / "scatter.png"
    rbmvae.pages.figures.latent_scatter(vae, images, sample_data.test_labels[:500], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    two = VAE(n_latent=2)
    coords2, names2 = latent_coordinates(two, images)
    np.testing.assert_allclose(coords2, two.encode(images)[0].detach().double().numpy())
    assert names2 == ("z1", "z2")


# ------------------------------------------------------------------------------------------------
# inpainting


@pytest.mark.parametrize("sampler", ["pseudo-gibbs", "metropolis"])
def test_vae_inpainting_keeps_observed_and_beats_mean_fill(trained, sample_data, sampler):
    vae, _, _ = trained
    images = sample_data.test_images[1000:1100]
    mask = rbmvae.random_mask(100, 784, 0.5, generator=make_generator(1))
    fill = sample_data.train_images.mean(0)
    filled = rbmvae.inpaint(
        vae, images, mask, steps=40, fill=fill, generator=make_generator(2), sampler=sampler
    )
    assert torch.equal(filled[~mask], images[~mask])
    assert filled.min() >= 0 and filled.max() <= 1
    mean_fill = torch.where(mask, fill.expand_as(images), images)
    error = rbmvae.missing_pixel_errors(filled, images, mask)[0]
    assert error < 0.9 * rbmvae.missing_pixel_errors(mean_fill, images, mask)[0]


def test_samplers_keep_observed_pixels_in_their_states(trained, sample_data):
    vae, _, _ = trained
    images = sample_data.test_images[:10]
    mask = rbmvae.random_mask(10, 784, 0.7, generator=make_generator(5))
    for run in (pseudo_gibbs, metropolis_within_gibbs):
        result = run(vae, images, mask, steps=5, average_last=3, generator=make_generator(0))
        assert torch.equal(result.states[~mask], images[~mask])
        assert torch.equal(result.images[~mask], images[~mask])
        assert set(result.states[mask].unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ConfigError):
        rbmvae.inpaint(vae, images, mask, steps=5, sampler="gibbs")
    with pytest.raises(ConfigError):
        pseudo_gibbs(vae, images, mask, steps=5, average_last=6)


def test_metropolis_within_gibbs_samples_the_exact_conditional():
    """On 6 pixels the exact p(x_missing | x_observed) comes from quadrature over all 8 fillings."""
    vae = _tiny_vae(n_visible=6, scale=2.5, seed=3).double()
    observed = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    mask = torch.tensor([False, False, False, True, True, True])
    fillings = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=torch.float64)
    candidates = observed.repeat(8, 1)
    candidates[:, mask] = fillings
    log_p = log_likelihood_quadrature(vae, candidates, grid_size=301, limit=8.0)
    weights = torch.softmax(log_p, 0)
    exact = weights @ fillings  # p(x_i = 1 | observed) for the three missing pixels
    n_chains = 2000
    chains = (observed.repeat(n_chains, 1), mask.repeat(n_chains, 1))
    result = metropolis_within_gibbs(
        vae, *chains, steps=150, average_last=100, generator=make_generator(8)
    )
    estimate = result.images[:, mask].mean(0)
    torch.testing.assert_close(estimate, exact, atol=0.02, rtol=0)
    # pseudo-Gibbs trusts q(z | x) as if it were the posterior; on this model that visibly biases it
    pseudo = pseudo_gibbs(vae, *chains, steps=150, average_last=100, generator=make_generator(8))
    assert (pseudo.images[:, mask].mean(0) - exact).abs().max() > 0.05


# ------------------------------------------------------------------------------------------------
# training loop, checkpoints, command line


def _tiny_data(sample_data):
    return Dataset(
        "tiny",
        sample_data.train_images[:300],
        sample_data.train_labels[:300],
        sample_data.test_images[:100],
        sample_data.test_labels[:100],
        sample_data.image_shape,
    )


def test_fit_resumes_bit_exactly_and_checkpoints_round_trip(sample_data, tmp_path):
    data = _tiny_data(sample_data)
    settings = {"epochs": 3, "batch_size": 64, "binarize": "stochastic", "progress": False}
    straight = VAE(n_hidden=16, n_latent=3)
    rbmvae.fit(straight, data, **settings)
    resumed = VAE(n_hidden=16, n_latent=3)
    rbmvae.fit(resumed, data, out_dir=tmp_path / "run", **{**settings, "epochs": 1})
    again = VAE(n_hidden=16, n_latent=3)
    history = rbmvae.fit(again, data, out_dir=tmp_path / "run", resume=True, **settings)
    assert len(history) == 3
    for a, b in zip(straight.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    loaded, meta = rbmvae.load_model(tmp_path / "run", kind="vae")
    assert meta["kind"] == "vae" and meta["config"] == again.config()
    assert meta["tensors"]["encoder_hidden.weight"] == [16, 784]
    x = data.test_images[:5]
    assert torch.equal(loaded.reconstruct(x), again.reconstruct(x))


def _cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def cli_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    common = ["--hidden", 16, "--epochs", 1, "--quiet", "--device", "cpu"]
    assert _cli("train", "vae", "--latent", 2, *common, "--out", root / "z2") == 0
    assert _cli("train", "vae", "--latent", 8, *common, "--out", root / "z8") == 0
    rbmvae.save_model(rbmvae.RBM(n_visible=784, n_hidden=4), root / "rbm")
    return root


def test_cli_train_vae_writes_a_model(cli_models):
    meta = json.loads((cli_models / "z2" / "model.json").read_text())
    assert meta["kind"] == "vae"
    assert meta["config"] == {"n_visible": 784, "n_hidden": 16, "n_latent": 2}
    assert meta["train_config"]["optimizer"] == "adam"
    assert meta["train_config"]["batch_size"] == 128
    assert "test_elbo" in meta["history"][0]


def test_cli_figures(cli_models, tmp_path, capsys):
    for command, model, out in [
        (["manifold", "--n", 6, "--range", -2, 2], "z2", "manifold.png"),
        (["traverse", "--steps", 5], "z8", "traversal.png"),
        (["latents", "--n", 300], "z8", "latents.png"),
        (["latents", "--n", 300], "z2", "latents2.png"),
        (["sample", "--n", 9], "z2", "samples.png"),
    ]:
        path = tmp_path / out
        assert _cli(*command, "--model", cli_models / model, "--out", path) == 0
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_refusals(cli_models, tmp_path, capsys):
    assert _cli("manifold", "--model", cli_models / "z8", "--out", tmp_path / "m.png") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "2 latent units" in error and "traverse" in error
    for command in ("manifold", "traverse", "latents"):
        assert _cli(command, "--model", cli_models / "rbm", "--out", tmp_path / "x.png") == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "needs a VAE" in error
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("sampler", ["pseudo-gibbs", "metropolis"])
def test_cli_inpaint_with_a_vae(cli_models, tmp_path, capsys, sampler):
    out = tmp_path / "inpaint.png"
    args = ["inpaint", "--model", cli_models / "z2", "--n", 4, "--steps", 6, "--json"]
    assert _cli(*args, "--sampler", sampler, "--out", out) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "vae" and result["missing_pixels"] == 4 * 392
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
