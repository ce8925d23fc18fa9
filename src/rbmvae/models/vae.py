"""The variational autoencoder with Bernoulli pixels (docs/derivation.md, section 2).

Notation: an image x in [0, 1]^D, a code z in R^K with prior p(z) = N(0, I), a diagonal Gaussian
encoder q(z | x) = N(mean(x), diag(exp(log_var(x)))) and a Bernoulli decoder p(x | z) whose
logits come from the decoder network. The model holds parameters and the maths; it does no I/O
and keeps no hidden state between calls: every random draw takes an explicit ``torch.Generator``.

Tensors (checkpoint names): ``encoder_hidden`` (D -> H, ReLU), ``encoder_mean`` and
``encoder_log_var`` (H -> K), ``decoder_hidden`` (K -> H, ReLU), ``decoder_output`` (H -> D,
Bernoulli logits); each has ``.weight`` (out, in) and ``.bias`` (out).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..basics.checks import positive_int

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """``KL(N(mean, diag(exp(log_var))) || N(0, I))`` per row, in closed form (Eq. 2.4).

    ``0.5 * sum_k (mean_k^2 + exp(log_var_k) - 1 - log_var_k)``.
    """
    return 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(-1)


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``log p(x | logits) = sum_i x_i log sigm(l_i) + (1 - x_i) log sigm(-l_i)`` per row (Eq. 2.5).

    Written as ``x * l - softplus(l)``, which is exact, finite for any logits, and broadcasts
    (``x`` of shape (n, 1, D) against logits of shape (n, S, D) gives (n, S)). For grey ``x`` this is
    minus the binary cross-entropy, the loss of a VAE trained on grey values as Bernoulli targets.
    """
    return (x * logits - F.softplus(logits)).sum(-1)


def gaussian_log_density(
    z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
) -> torch.Tensor:
    """``log N(z; mean, diag(exp(log_var)))`` summed over the last dimension."""
    return -0.5 * (LOG_2PI + log_var + (z - mean).pow(2) * torch.exp(-log_var)).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` summed over the last dimension (the prior p(z))."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


class VAE(nn.Module):
    """A variational autoencoder: MLP encoder and decoder with one hidden ReLU layer each.

    Encoder ``D -> H (ReLU) -> (mean, log_var)`` of size K; decoder ``K -> H (ReLU) -> D`` Bernoulli
    logits. ``forward(x)`` returns the decoder logits at the posterior mean (deterministic).
    """

    kind = "vae"

    def __init__(self, n_visible: int = 784, n_hidden: int = 256, n_latent: int = 2) -> None:
        super().__init__()
        positive_int("n_visible", n_visible)
        positive_int("n_hidden", n_hidden)
        positive_int("n_latent", n_latent)
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        self.n_latent = n_latent
        self.encoder_hidden = nn.Linear(n_visible, n_hidden)
        self.encoder_mean = nn.Linear(n_hidden, n_latent)
        self.encoder_log_var = nn.Linear(n_hidden, n_latent)
        self.decoder_hidden = nn.Linear(n_latent, n_hidden)
        self.decoder_output = nn.Linear(n_hidden, n_visible)

    def config(self) -> dict:
        """Constructor arguments, stored in checkpoints."""
        return {"n_visible": self.n_visible, "n_hidden": self.n_hidden, "n_latent": self.n_latent}

    def label(self) -> str:
        """The model's name in tables and figures, e.g. ``"VAE, z = 2"``."""
        return f"VAE, z = {self.n_latent}"

    @torch.no_grad()
    def reset_parameters(
        self,
        generator: torch.Generator | None = None,
        visible_mean: torch.Tensor | None = None,
    ) -> None:
        """Draw every weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) using ``generator``.

        This is the distribution of PyTorch's default ``nn.Linear`` initialization, made
        reproducible. With ``visible_mean`` (the training images' mean), the decoder's output bias
        starts at ``log(p / (1 - p))`` (clipped to [1e-3, 1 - 1e-3]) so that the untrained decoder
        already produces the data's pixel marginals, as the RBM's visible biases do.
        """
        for layer in (
            self.encoder_hidden,
            self.encoder_mean,
            self.encoder_log_var,
            self.decoder_hidden,
            self.decoder_output,
        ):
            bound = 1.0 / math.sqrt(layer.in_features)
            for param in (layer.weight, layer.bias):
                noise = torch.rand(param.shape, generator=generator, device=param.device)
                param.copy_((2.0 * noise - 1.0) * bound)
        if visible_mean is not None:
            bias = self.decoder_output.bias
            p = visible_mean.to(device=bias.device, dtype=bias.dtype).clamp(1e-3, 1 - 1e-3)
            bias.copy_(torch.log(p) - torch.log1p(-p))

    # -- encoder and decoder ---------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_var)`` of q(z | x), each of shape (n, K)."""
        hidden = F.relu(self.encoder_hidden(x))
        return self.encoder_mean(hidden), self.encoder_log_var(hidden)

    @staticmethod
    def reparameterize(
        mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``z = mean + exp(log_var / 2) * eps`` with ``eps ~ N(0, I)`` from ``generator`` (Eq. 2.3)."""
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * log_var) * eps

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x | z), shape (..., D)."""
        return self.decoder_output(F.relu(self.decoder_hidden(z)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities ``p(x_i = 1 | z)``, shape (..., D)."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder logits at the posterior mean of q(z | x) (deterministic, draws nothing)."""
        mean, _ = self.encode(x)
        return self.decode_logits(mean)

    # -- inference -----------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self, n: int, steps: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` images from the model: ``z ~ N(0, I)``, shown as probabilities ``p(x = 1 | z)``.

        Ancestral sampling is exact, so ``steps`` (the RBM's Gibbs sweeps, same signature) is
        ignored. Shape: (n, D).
        """
        weight = self.decoder_output.weight
        z = torch.randn(
            (n, self.n_latent), generator=generator, device=weight.device, dtype=weight.dtype
        )
        return self.decode(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``p(x' = 1 | z = mean(x))``: the decoder's probabilities at the posterior mean."""
        return torch.sigmoid(self.forward(x))


def decoder_log_likelihood(model: VAE, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``log p(x | z)`` for images ``x`` (n, D) and codes ``z`` (..., n, K); shape (..., n) (Eq. 2.5).

    ``x'l - sum_i softplus(l_i)`` with the decoder's logits ``l = W_o h + b_o`` and hidden layer
    ``h = relu(W_d z + b_d)``. The data term is ``x'l = (W_o' x)'h + b_o'x``: ``W_o' x`` is
    computed once per image, so each code costs a dot product of length H there instead of a
    pass over the D logits; only the softplus sum reads every logit. For many codes per image
    (importance sampling) this removes two of the three passes over the logits.
    """
    hidden = F.relu(model.decoder_hidden(z))
    output = model.decoder_output
    x_weight = x @ output.weight  # (n, H)
    x_bias = (x * output.bias).sum(-1)  # (n,)
    data_term = (hidden * x_weight).sum(-1) + x_bias
    return data_term - F.softplus(output(hidden)).sum(-1)


def negative_elbo(
    model: VAE, x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, reconstruction, kl)`` per row, with one reparameterized sample of z (Eq. 2.6).

    ``reconstruction = log p(x | z)`` with ``z ~ q(z | x)`` (Eqs. 2.3, 2.5), ``kl`` the closed-form
    ``KL(q(z | x) || p(z))`` (Eq. 2.4), and ``loss = kl - reconstruction``, the negative ELBO
    (Eq. 2.2); the minibatch loss is its mean.
    """
    mean, log_var = model.encode(x)
    z = model.reparameterize(mean, log_var, generator)
    reconstruction = bernoulli_log_likelihood(x, model.decode_logits(z))
    kl = gaussian_kl(mean, log_var)
    return kl - reconstruction, reconstruction, kl


@torch.no_grad()
def negative_elbo_gradients(
    model: VAE, x: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The minibatch loss ``mean_n [KL - log p(x | z)]`` (Eq. 2.6) and its gradient, by hand.

    z is drawn exactly as :func:`negative_elbo` draws it (one reparameterized sample per image,
    Eq. 2.3), so both give the same loss from the same generator. The gradient is the chain rule
    written out, with ``s = 1/n``: for the logits ``dL/dl = s (sigm(l) - x)`` (Eq. 2.5); for the
    code ``dL/dmean = dL/dz + s mean`` and ``dL/dlog_var = dL/dz eps std / 2 + s (exp(log_var) -
    1) / 2`` (Eqs. 2.3, 2.4); for each layer ``y = x W' + b``: ``dL/dW = (dL/dy)' x``, ``dL/db =
    sum_n dL/dy`` and ``dL/dx = (dL/dy) W``, and a ReLU passes the gradient where its output is
    positive. The matrix products are those of autograd's backward pass; without autograd's
    graph, the rest of a training step costs a fraction. Returns ``(loss, {name: gradient})``
    for every parameter of ``model.named_parameters()``.
    """
    scale = 1.0 / x.shape[0]
    enc, enc_mean, enc_log_var = model.encoder_hidden, model.encoder_mean, model.encoder_log_var
    dec, out = model.decoder_hidden, model.decoder_output
    # forward pass, as negative_elbo
    h1 = F.linear(x, enc.weight, enc.bias).relu_()
    mean = F.linear(h1, enc_mean.weight, enc_mean.bias)
    log_var = F.linear(h1, enc_log_var.weight, enc_log_var.bias)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    std = torch.exp(0.5 * log_var)
    z = mean + std * eps
    h2 = F.linear(z, dec.weight, dec.bias).relu_()
    logits = F.linear(h2, out.weight, out.bias)
    reconstruction = torch.dot(x.reshape(-1), logits.reshape(-1)) - F.softplus(logits).sum()
    loss = (gaussian_kl(mean, log_var).sum() - reconstruction) * scale
    # backward pass
    # relu'(a) is sign(relu(a)): 1 where the ReLU passed its input, 0 where it clipped it
    d_logits = logits.sigmoid_().sub_(x).mul_(scale)
    d_h2 = (d_logits @ out.weight).mul_(h2.sign())
    d_z = d_h2 @ dec.weight
    d_mean = d_z + scale * mean
    d_log_var = d_z * eps * std * 0.5 + (log_var.exp() - 1.0) * (0.5 * scale)
    d_h1 = torch.addmm(d_mean @ enc_mean.weight, d_log_var, enc_log_var.weight)
    d_h1.mul_(h1.sign())
    grads = {}
    for name, d_out, inputs in (
        ("encoder_hidden", d_h1, x),
        ("encoder_mean", d_mean, h1),
        ("encoder_log_var", d_log_var, h1),
        ("decoder_hidden", d_h2, z),
        ("decoder_output", d_logits, h2),
    ):
        grads[f"{name}.weight"] = d_out.t() @ inputs
        grads[f"{name}.bias"] = d_out.sum(0)
    return loss, grads
