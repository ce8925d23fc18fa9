"""What the scikit-learn estimators share: input validation with scikit-learn's own helpers,
arrays to tensors and back, torch generators drawn from a ``RandomState``, tags, checkpoints.

The estimators keep their fitted state as NumPy arrays (or a CPU module), as scikit-learn's do,
so that they pickle and clone anywhere; each call builds the package's torch model on the
requested device from that state, without a copy on the CPU.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..basics.devices import resolve_device
from ..basics.rng import make_generator
from ..data import Dataset
from ..training.checkpoint import load_model, save_model
from ..training.objectives import ContrastiveDivergence

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn 1.3 - 1.5: the same checks as a method of BaseEstimator

    def _validate_data(estimator, X, **kwargs):
        return estimator._validate_data(X, **kwargs)


FLOAT_DTYPES = (np.float64, np.float32)
# Both estimators train in float32 whatever the input's dtype: float32 and float64 copies of the
# same data then draw the same random numbers and round the same way, so that they give the same
# model (a float64 pass of its own would draw other numbers, and one probability rounded
# differently flips a Bernoulli draw and sends the chains apart).
TRAINING_DTYPE = torch.float32
CHUNK_ROWS = 8192  # rows densified and sent to the device at a time (sparse input, inference)
JSON_SCALARS = (type(None), bool, int, float, str)


def validate(estimator, X, *, reset: bool, dtype=FLOAT_DTYPES):
    """``X`` checked and converted as scikit-learn's ``BernoulliRBM`` does: dense or CSR, float64
    or float32 kept (other types become float64), finite, 2-D, with ``n_features_in_`` and
    ``feature_names_in_`` set (``reset``) or checked against the fitted ones.

    Returns an ndarray or CSR matrix of shape (n_samples, n_features).
    """
    return _validate_data(estimator, X, accept_sparse="csr", dtype=dtype, reset=reset)


def torch_dtype(dtype) -> torch.dtype:
    """``torch.float64`` for NumPy float64, else ``torch.float32``."""
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def to_tensor(array, dtype: torch.dtype, device: torch.device, copy: bool = False) -> torch.Tensor:
    """A dense ndarray or sparse matrix as a tensor of ``dtype`` on ``device``.

    Shares memory with ``array`` on the CPU when the dtype already matches, unless ``copy``;
    a read-only or negatively strided array is copied (torch cannot view it).
    """
    if sp.issparse(array):
        array = array.toarray()
    array = np.asarray(array)
    if not array.flags.writeable or any(stride < 0 for stride in array.strides):
        array = np.array(array)
    shared = torch.from_numpy(array)
    tensor = shared.to(device=device, dtype=dtype)
    return tensor.clone() if copy and tensor.data_ptr() == shared.data_ptr() else tensor


def row_chunks(X, dtype: torch.dtype, device: torch.device, size: int = CHUNK_ROWS):
    """``X`` (n_samples, n_features), dense or sparse, as dense tensors of at most ``size`` rows."""
    for start in range(0, X.shape[0], size):
        yield to_tensor(X[start : start + size], dtype, device)


def to_numpy(tensor: torch.Tensor, dtype=None) -> np.ndarray:
    """A tensor as an ndarray (a view on the CPU), cast to ``dtype`` if given."""
    array = tensor.detach().cpu().numpy()
    return array if dtype is None else array.astype(dtype, copy=False)


def draw_seed(random_state: np.random.RandomState) -> int:
    """A 63-bit seed drawn from ``random_state`` (advancing it)."""
    return int(random_state.randint(0, np.iinfo(np.int64).max, dtype=np.int64))


def generator_from(random_state, device: torch.device) -> torch.Generator:
    """A torch generator on ``device`` seeded from ``random_state`` (int, RandomState or None)."""
    return make_generator(draw_seed(check_random_state(random_state)), device)


def fitted_random_state(estimator) -> np.random.RandomState:
    """The estimator's ``random_state_``, created from ``random_state`` on first use."""
    if not hasattr(estimator, "random_state_"):
        estimator.random_state_ = check_random_state(estimator.random_state)
    return estimator.random_state_


def device_of(estimator) -> torch.device:
    """The torch device the estimator computes on (``device``: ``cpu``, ``cuda``, ``auto``)."""
    return resolve_device(estimator.device)


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int if it is an integer >= ``minimum``; TypeError or ValueError otherwise
    (scikit-learn's ``check_scalar`` conventions)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value) -> float:
    """``value`` as a float if it is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {value!r}")
    if not 0 < float(value) < float("inf"):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def report_pass(estimator, record: dict, label: str, key: str) -> None:
    """With ``verbose``, one line per training pass in scikit-learn's form, e.g.
    ``[BernoulliRBM] Iteration 3, pseudo-likelihood = -25.10, time = 0.41s``."""
    if estimator.verbose:
        print(
            f"[{type(estimator).__name__}] Iteration {record['epoch']}, "
            f"{label} = {record[key]:.2f}, time = {record['train_seconds']:.2f}s"
        )


def training_data(images: torch.Tensor, name: str) -> Dataset:
    """A :class:`rbmvae.Dataset` around training rows (n_samples, n_features), for ``rbmvae.fit``.

    The estimators see no labels and no held-out split: the labels are zeros and the "test"
    images are the first training rows (the epoch-end monitor only).
    """
    labels = torch.zeros(images.shape[0], dtype=torch.int64)
    n_monitor = min(images.shape[0], 1000)
    return Dataset(
        name=name,
        train_images=images,
        train_labels=labels,
        test_images=images[:n_monitor],
        test_labels=labels[:n_monitor],
        image_shape=(1, images.shape[1]),
        source="scikit-learn estimator",
    )


def json_params(estimator) -> dict:
    """The estimator's parameters that JSON can hold (a ``RandomState`` is left out)."""
    return {k: v for k, v in estimator.get_params().items() if isinstance(v, JSON_SCALARS)}


def set_feature_names(estimator, info: dict) -> None:
    """``feature_names_in_`` from a checkpoint's ``sklearn`` section, when it has them."""
    names = info.get("feature_names_in")
    if names:
        estimator.feature_names_in_ = np.asarray(names, dtype=object)


class CheckpointMixin:
    """``save(directory)`` and ``from_checkpoint(directory)`` through :mod:`rbmvae.training.checkpoint`.

    Subclasses set ``_kind`` (the checkpoint's model kind) and implement ``to_model``,
    ``from_model`` and ``_checkpoint_extra``; ``_TRAIN_CONFIG_PARAMS`` maps ``TrainConfig``
    fields of a checkpoint trained elsewhere (CLI, Python API) to estimator parameters.
    """

    _kind = ""
    _TRAIN_CONFIG_PARAMS: dict[str, str] = {}
    _TRAIN_CONFIG_EXTRA: dict[str, object] = {}  # parameters implied by a TrainConfig

    def _checkpoint_extra(self) -> dict:
        return {}

    def save(self, directory) -> Path:
        """Write the fitted model as a checkpoint that ``rbmvae.load_model`` and the command line
        read (weights in float32, as every checkpoint holds them).

        Parameters
        ----------
        directory : str or path-like
            The model directory (created if missing).

        Returns
        -------
        directory : pathlib.Path
        """
        check_is_fitted(self)
        info = {"estimator": type(self).__name__, "params": json_params(self)}
        if hasattr(self, "feature_names_in_"):
            info["feature_names_in"] = [str(name) for name in self.feature_names_in_]
        info.update(self._checkpoint_extra())
        model = self.to_model().to(device="cpu", dtype=torch.float32)
        return save_model(model, directory, {"sklearn": info, "history": list(self.history_)})

    @classmethod
    def _params_from_meta(cls, meta: dict) -> dict:
        """Estimator parameters recorded in a checkpoint: this estimator's own, or those of a
        ``TrainConfig`` (a model trained by the CLI or ``rbmvae.fit``)."""
        names = set(cls._get_param_names())
        info = meta.get("sklearn") or {}
        if info.get("estimator") == cls.__name__:
            return {k: v for k, v in info.get("params", {}).items() if k in names}
        config = meta.get("train_config") or {}
        params = {
            param: config[field]
            for field, param in cls._TRAIN_CONFIG_PARAMS.items()
            if field in config and param in names
        }
        return {**params, **cls._TRAIN_CONFIG_EXTRA} if config else params

    @classmethod
    def from_checkpoint(cls, directory, **params):
        """A fitted estimator from a trained checkpoint (written by ``save``, ``rbmvae.fit`` with
        ``out_dir`` or ``rbmvae train``).

        Parameters
        ----------
        directory : str or path-like
            The model directory.
        **params
            Estimator parameters overriding those recorded in the checkpoint.

        Returns
        -------
        estimator : fitted instance of this class
        """
        model, meta = load_model(directory, kind=cls._kind)
        estimator = cls.from_model(model, **{**cls._params_from_meta(meta), **params})
        info = meta.get("sklearn") or {}
        set_feature_names(estimator, info)
        estimator._load_extra(info)
        estimator.history_ = list(meta.get("history", []))
        return estimator

    def _load_extra(self, info: dict) -> None:
        pass


class TagsMixin:
    """Put first among an estimator's bases (it edits the tags the scikit-learn mixins make).
    The tags of both estimators: sparse input accepted, float32 and float64 preserved, and
    the checks that cannot pass (``_EXPECTED_FAILED_CHECKS``, check name -> reason; read by
    scikit-learn < 1.6 from the ``_xfail_checks`` tag, by later versions from the test's
    ``expected_failed_checks``)."""

    _EXPECTED_FAILED_CHECKS: dict[str, str] = {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {
            "preserves_dtype": [np.float64, np.float32],
            "_xfail_checks": self._EXPECTED_FAILED_CHECKS,
        }


class WarmStart(ContrastiveDivergence):
    """CD-k / PCD-k training the estimator's parameters and persistent chains as they are:
    ``rbmvae.fit`` calls ``setup``, which here initializes nothing (the estimator did). The
    epoch-end monitor runs only when ``monitored`` (the estimator's ``verbose``: scikit-learn too
    computes its pseudo-likelihood only then), and leaves out the free-energy gap: the
    estimator's "test" rows are training rows."""

    monitor_gap = False

    def __init__(self, *args, monitored: bool = True, **options) -> None:
        super().__init__(*args, **options)
        self.monitored = monitored

    def monitor(self, model, train_subset, test_images) -> dict[str, float]:
        return super().monitor(model, train_subset, test_images) if self.monitored else {}

    def setup(self, model, train_images, generator) -> None:
        pass


def training_rows(X):
    """Rows ``X`` (dense or CSR) as float32, the training dtype: a float64 copy of float32 data
    gives the very values of that data."""
    return X.astype(np.float32, copy=False)
