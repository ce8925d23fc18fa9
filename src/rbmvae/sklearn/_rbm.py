"""``BernoulliRBM``: scikit-learn's RBM estimator on the package's model and training loop.

The estimator holds scikit-learn's fitted attributes as arrays; fitting builds a
:class:`rbmvae.RBM` over them and trains it with :func:`rbmvae.fit` (CD-k / PCD-k of
docs/derivation.md, Eqs. 1.10-1.14), keeping the persistent chains on the estimator between
``partial_fit`` calls. Inference calls the model's own conditionals (Eqs. 1.5, 1.6), free energy
(Eq. 1.7) and the package's likelihood estimators (Eqs. 3.1-3.6).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..basics.checks import one_of
from ..models.rbm import RBM, pseudo_log_likelihood
from ..training import TrainConfig, fit
from ._common import (
    FLOAT_DTYPES,
    TRAINING_DTYPE,
    CheckpointMixin,
    TagsMixin,
    WarmStart,
    check_int,
    check_positive,
    device_of,
    draw_seed,
    fitted_random_state,
    generator_from,
    report_pass,
    row_chunks,
    to_numpy,
    to_tensor,
    torch_dtype,
    training_data,
    training_rows,
    validate,
)
from ._rbm_likelihood import RBMLikelihoodMixin

INITS = ("zero", "marginals")
_SAME_NAMES = "learning_rate batch_size method k momentum final_momentum weight_decay lr_schedule"
# TrainConfig fields of a checkpoint trained by the CLI or rbmvae.fit -> estimator parameters
TRAIN_CONFIG_PARAMS = {name: name for name in _SAME_NAMES.split() + ["binarize"]} | {
    "epochs": "n_iter", "momentum_switch_epoch": "momentum_switch_iter", "seed": "random_state"
}  # fmt: skip

_ROW_DEPENDENT = (
    "score_samples flips one random feature per row, drawn for the rows in the order given, so a "
    "row's value depends on the rows scored with it (as in scikit-learn's own BernoulliRBM)"
)
EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance": _ROW_DEPENDENT,
    "check_methods_sample_order_invariance": _ROW_DEPENDENT,
}


class BernoulliRBM(
    TagsMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    RBMLikelihoodMixin,
    CheckpointMixin,
    BaseEstimator,
):
    """Bernoulli Restricted Boltzmann Machine, a drop-in for scikit-learn's ``BernoulliRBM``.

    The same parameters, defaults, attributes and methods as
    ``sklearn.neural_network.BernoulliRBM`` (PCD-1, plain SGD at a constant rate, no momentum,
    no weight decay, weights drawn from N(0, 0.01^2) by ``random_state``, zero biases), trained
    by ``rbmvae.fit`` on the CPU or a GPU; the keyword parameters after ``random_state`` are
    this package's extras, whose defaults keep scikit-learn's behaviour. On top:
    ``log_likelihood`` and ``score`` (exact or AIS log-likelihood), ``save``,
    ``from_checkpoint``, ``to_model``, ``from_model``.

    Parameters
    ----------
    n_components : int, default=256
        Number of binary hidden units.
    learning_rate : float, default=0.1
        Learning rate of the SGD updates.
    batch_size : int, default=10
        Rows per minibatch, and the number of persistent chains.
    n_iter : int, default=10
        Passes over the training data (epochs); 0 only initializes.
    verbose : int, default=0
        1 prints one line per pass (pseudo-likelihood of up to 1,000 training rows, time);
        2 also shows progress bars.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the training (shuffling, Gibbs sampling), ``gibbs`` and the
        random parts of ``score_samples`` and AIS (the latter two from ``random_state`` anew at
        each call, as scikit-learn does, so they repeat for an int).
    method : {"pcd", "cd"}, default="pcd"
        Persistent contrastive divergence (Eq. 1.14) or CD (Eq. 1.13).
    k : int, default=1
        Gibbs sweeps per update.
    momentum : float, default=0.0
        SGD momentum in [0, 1).
    final_momentum : float or None, default=None
        Momentum from pass ``momentum_switch_iter`` on (None: keep ``momentum``).
    momentum_switch_iter : int, default=5
        The (0-based) pass at which ``final_momentum`` takes over.
    weight_decay : float, default=0.0
        L2 penalty on the weights (not the biases).
    lr_schedule : {"constant", "linear"}, default="constant"
        ``linear`` decays the rate to 0 over the ``n_iter`` passes of ``fit``.
    binarize : {"none", "stochastic", "threshold"}, default="none"
        Training rows as given, a fresh Bernoulli draw of each row every pass, or ``x > 0.5``.
    init : {"zero", "marginals"}, default="zero"
        Visible biases at 0 (scikit-learn), or at the logit of each feature's training mean with
        the weights drawn by the package's model (Hinton 2010, section 8; ``rbmvae.fit``'s own).
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the model computes; inputs and outputs stay NumPy arrays.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The weights W' (``model.weight`` is W, of shape (n_features, n_components)).
    intercept_hidden_ : ndarray of shape (n_components,)
        Hidden biases c.
    intercept_visible_ : ndarray of shape (n_features,)
        Visible biases b.
    h_samples_ : ndarray of shape (batch_size, n_components)
        Hidden states of the persistent chains.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when they are all strings.
    history_ : list of dict
        ``rbmvae.fit``'s per-pass records (loss, times; with ``verbose`` also the
        pseudo-likelihood and reconstruction error of up to 1,000 training rows, which
        scikit-learn too computes only then).

    Notes
    -----
    Differences from scikit-learn, on purpose: rows are reshuffled every pass (scikit-learn
    keeps their order); the chains start from h = 0 as there, but under ``method="cd"`` they are
    not used; ``partial_fit`` makes one pass over its rows in minibatches of ``batch_size``
    (scikit-learn makes a single update from all of them; the same when they are one
    minibatch) and keeps their dtype (scikit-learn converts to float64); sparse input is
    densified for training. ``score`` is the log-likelihood, where scikit-learn has no score.
    """

    _EXPECTED_FAILED_CHECKS = EXPECTED_FAILED_CHECKS
    _kind = "rbm"
    _TRAIN_CONFIG_PARAMS = TRAIN_CONFIG_PARAMS
    _TRAIN_CONFIG_EXTRA = {"init": "marginals"}  # how rbmvae.fit initializes

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        method="pcd",
        k=1,
        momentum=0.0,
        final_momentum=None,
        momentum_switch_iter=5,
        weight_decay=0.0,
        lr_schedule="constant",
        binarize="none",
        init="zero",
        device="cpu",
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.method = method
        self.k = k
        self.momentum = momentum
        self.final_momentum = final_momentum
        self.momentum_switch_iter = momentum_switch_iter
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.binarize = binarize
        self.init = init
        self.device = device

    # -- settings and state ----------------------------------------------------------------------

    def _train_config(self, epochs: int, seed: int) -> TrainConfig:
        """The ``TrainConfig`` of the parameters (validated there; errors are ValueErrors)."""
        momentum = float(self.momentum)
        final = momentum if self.final_momentum is None else float(self.final_momentum)
        return TrainConfig.defaults_for(
            "rbm",
            epochs=epochs,
            batch_size=check_int("batch_size", self.batch_size, 1),
            learning_rate=check_positive("learning_rate", self.learning_rate),
            optimizer="sgd",
            momentum=momentum,
            final_momentum=final,
            momentum_switch_epoch=check_int("momentum_switch_iter", self.momentum_switch_iter, 0),
            weight_decay=float(self.weight_decay),
            lr_schedule=self.lr_schedule,
            binarize=self.binarize,
            method=self.method,
            k=check_int("k", self.k, 1),
            seed=seed,
        )

    def _check_params(self) -> None:
        check_int("n_components", self.n_components, 1)
        check_int("n_iter", self.n_iter, 0)
        check_int("verbose", int(self.verbose), 0)
        one_of("init", self.init, INITS)
        device_of(self)
        self._train_config(1, 0)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "components_")

    def _module(self, device: torch.device | None = None, copy: bool = False, dtype=None) -> RBM:
        """An :class:`rbmvae.RBM` over the fitted arrays (sharing their memory on the CPU unless
        ``copy`` or another ``dtype`` is asked for), in ``dtype`` (default: theirs), on ``device``
        (default: the estimator's)."""
        device = device_of(self) if device is None else device
        dtype = torch_dtype(self.components_.dtype) if dtype is None else dtype
        n_hidden, n_features = self.components_.shape
        model = RBM(n_visible=n_features, n_hidden=n_hidden)  # its fresh weights are replaced
        arrays = (self.components_.T, self.intercept_visible_, self.intercept_hidden_)
        names = ("weight", "visible_bias", "hidden_bias")
        tensors = {n: to_tensor(a, dtype, device, copy) for n, a in zip(names, arrays, strict=True)}
        model.load_state_dict(tensors, assign=True)
        return model.eval()

    def _store(self, model: RBM, chains: torch.Tensor | None = None, dtype=None) -> None:
        """The model's parameters (and the chains' hidden states) as the fitted arrays, in
        ``dtype`` (default: the model's)."""
        self.components_ = to_numpy(model.weight, dtype).T  # (n_components, n_features), F-ordered
        self.intercept_hidden_ = to_numpy(model.hidden_bias, dtype)
        self.intercept_visible_ = to_numpy(model.visible_bias, dtype)
        if chains is not None:
            self.h_samples_ = to_numpy(chains, dtype)

    def _initialize(self, X) -> None:
        """Fresh parameters and chains for rows ``X`` (n_samples, n_features), as ``init`` says,
        kept in X's dtype (the weights drawn as scikit-learn draws them, in float64, and
        rounded to that dtype; the marginals' start made in float32, the training dtype)."""
        n_features, n_hidden, dtype = X.shape[1], int(self.n_components), X.dtype
        weight = self.random_state_.normal(0, 0.01, (n_hidden, n_features))
        self.components_ = np.asarray(weight, order="F", dtype=dtype)
        self.intercept_hidden_ = np.zeros(n_hidden, dtype=dtype)
        self.intercept_visible_ = np.zeros(n_features, dtype=dtype)
        if self.init == "marginals":
            model = self._module(torch.device("cpu"), copy=True, dtype=TRAINING_DTYPE)
            mean = np.ravel(np.asarray(training_rows(X).mean(axis=0, dtype=np.float64)))
            generator = generator_from(self.random_state_, torch.device("cpu"))
            model.reset_parameters(visible_mean=torch.from_numpy(mean), generator=generator)
            self._store(model, dtype=dtype)
        self._reset_state()

    def _reset_state(self) -> None:
        """Chains at h = 0 and no training rows seen, for the fitted arrays' shapes and dtype."""
        (n_hidden, n_features), dtype = self.components_.shape, self.components_.dtype
        self.h_samples_ = np.zeros((int(self.batch_size), n_hidden), dtype=dtype)
        self._n_features_out = n_hidden
        self._feature_sum = np.zeros(n_features)
        self._n_samples_seen = 0
        self._log_z_cache = None
        self.history_ = []

    def _train(self, X, epochs: int) -> None:
        """``epochs`` passes of ``rbmvae.fit`` over rows ``X``, from the current state, in float32
        (``TRAINING_DTYPE``) whatever X's dtype; the fitted arrays keep theirs."""
        X = training_rows(X)
        self._feature_sum = self._feature_sum + np.ravel(X.sum(axis=0, dtype=np.float64))
        self._n_samples_seen += X.shape[0]
        self._log_z_cache = None
        if epochs == 0:
            return
        device, dtype = device_of(self), TRAINING_DTYPE
        seed = draw_seed(self.random_state_)
        config = self._train_config(epochs, seed)
        model = self._module(device, copy=True, dtype=dtype)
        objective = WarmStart(
            method=config.method, k=config.k, monitor_seed=seed, monitored=bool(self.verbose)
        )
        objective.chain_hidden = to_tensor(self.h_samples_, dtype, device, copy=True)
        data = training_data(to_tensor(X, dtype, device), type(self).__name__)
        history = fit(model, data, config, objective=objective, progress=self.verbose > 1)
        self._store(model, objective.chain_hidden, self.components_.dtype)
        offset = len(self.history_)
        for record in history:
            self.history_.append({**record, "epoch": offset + record["epoch"]})
            report_pass(self, self.history_[-1], "pseudo-likelihood", "pseudo_log_likelihood")

    # -- fitting -----------------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Fit the model to the rows of X: ``n_iter`` passes of CD-k / PCD-k.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, values in [0, 1] (binary, or grey values used as probabilities).
        y : None
            Ignored.

        Returns
        -------
        self : BernoulliRBM
            The fitted estimator.
        """
        self._check_params()
        X = validate(self, X, reset=True)
        self.random_state_ = check_random_state(self.random_state)
        self._initialize(X)
        self._train(X, int(self.n_iter))
        return self

    def partial_fit(self, X, y=None):
        """One pass over the rows of X, continuing from the current parameters and chains.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : BernoulliRBM
            The fitted estimator.
        """
        self._check_params()
        first = not hasattr(self, "components_")
        dtype = FLOAT_DTYPES if first else self.components_.dtype
        X = validate(self, X, reset=first, dtype=dtype)
        fitted_random_state(self)
        if first:
            self._initialize(X)
        self._train(X, 1)
        return self

    # -- inference ---------------------------------------------------------------------------------

    @torch.no_grad()
    def _rows(self, X, function, dtype=None, compute=None) -> np.ndarray:
        """``function(model, rows)`` over X in chunks, concatenated, as an ndarray of ``dtype``;
        the model and the rows in ``compute`` (default: the fitted arrays' dtype)."""
        compute = torch_dtype(self.components_.dtype) if compute is None else compute
        model = self._module(dtype=compute)
        chunks = row_chunks(X, compute, device_of(self))
        return to_numpy(torch.cat([function(model, rows) for rows in chunks]), dtype)

    def transform(self, X):
        """The hidden units' probabilities ``p(h = 1 | v = X)`` (Eq. 1.5).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to transform.

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            Latent representations of the data, in X's dtype.
        """
        check_is_fitted(self)
        X = validate(self, X, reset=False)
        return self._rows(X, lambda model, rows: model.hidden_probs(rows), X.dtype)

    def gibbs(self, v):
        """One block-Gibbs step ``v -> h -> v'`` (Eqs. 1.5, 1.6), drawn from ``random_state_``
        (in float32 for either input dtype, so that both draw the same states).

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values of the visible layer to start from.

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            The visible layer after one step, boolean (as scikit-learn returns it).
        """
        check_is_fitted(self)
        v = validate(self, v, reset=False)
        generator = generator_from(fitted_random_state(self), device_of(self))

        def step(model: RBM, rows: torch.Tensor) -> torch.Tensor:
            return model.gibbs_chain(rows, 1, generator)[0]

        return self._rows(v, step, bool, TRAINING_DTYPE)  # the same draws for either dtype

    def score_samples(self, X):
        """The stochastic pseudo-log-likelihood of each row (Eq. 4.1), as scikit-learn's.

        One feature per row, drawn from ``random_state``, is flipped (``x -> 1 - x``) and
        ``n_features * log sigm(F(x flipped) - F(x))`` returned (Eq. 1.7 for F).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Values of the visible layer (binary for the estimate to mean anything).

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate(self, X, reset=False)
        generator = generator_from(self.random_state, device_of(self))

        def pll(model: RBM, rows: torch.Tensor) -> torch.Tensor:
            return pseudo_log_likelihood(model, rows, generator=generator)

        return self._rows(X, pll, X.dtype)

    # -- interchange -------------------------------------------------------------------------------

    def to_model(self) -> RBM:
        """A copy of the fitted model as an :class:`rbmvae.RBM` (on the estimator's device)."""
        check_is_fitted(self)
        return self._module(copy=True)

    @classmethod
    def from_model(cls, model: RBM, **params) -> BernoulliRBM:
        """A fitted estimator holding a copy of ``model``'s parameters (chains at h = 0).

        Parameters
        ----------
        model : rbmvae.RBM
            A trained RBM with ``n_visible`` = n_features.
        **params
            Estimator parameters; ``n_components`` is the model's ``n_hidden``.
        """
        if not isinstance(model, RBM):
            raise ValueError(f"from_model needs an rbmvae.RBM, got {type(model).__name__}")
        if params.setdefault("n_components", model.n_hidden) != model.n_hidden:
            raise ValueError(f"n_components must be the model's n_hidden ({model.n_hidden})")
        estimator = cls(**params)
        estimator._store(copy.deepcopy(model))
        check_int("batch_size", estimator.batch_size, 1)
        estimator._reset_state()
        estimator.n_features_in_ = model.n_visible
        return estimator

    def _checkpoint_extra(self) -> dict:
        return {"feature_sum": self._feature_sum.tolist(), "n_samples_seen": self._n_samples_seen}

    def _load_extra(self, info: dict) -> None:
        if "feature_sum" in info and len(info["feature_sum"]) == self.n_features_in_:
            self._feature_sum = np.asarray(info["feature_sum"], dtype=np.float64)
            self._n_samples_seen = int(info.get("n_samples_seen", 0))
