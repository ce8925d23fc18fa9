"""scikit-learn estimators over the package's models: a drop-in ``BernoulliRBM`` and a ``VAE``.

Replacing ``from sklearn.neural_network import BernoulliRBM`` with
``from rbmvae.sklearn import BernoulliRBM`` is the whole migration; the extras (``method``,
``k``, ``momentum``, ``weight_decay``, ``device``, ...) are keyword parameters whose defaults keep
scikit-learn's behaviour, and ``log_likelihood`` / ``score`` give the exact or AIS
log-likelihood. Both estimators train with :func:`rbmvae.fit` and write checkpoints that
``rbmvae.load_model`` and the command line read::

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from rbmvae.sklearn import VAE, BernoulliRBM

    model = Pipeline([("rbm", BernoulliRBM(n_components=100)), ("logistic", LogisticRegression())])
    model.fit(X_train, y_train)
    model.named_steps["rbm"].save("runs/rbm-features")

Needs the optional dependencies: ``pip install 'rbmvae[sklearn]'``.
"""

from __future__ import annotations

try:  # optional dependencies: `import rbmvae` never needs them
    import scipy.sparse  # noqa: F401
    import sklearn
except ImportError:
    raise ImportError(
        "rbmvae.sklearn needs scikit-learn and SciPy: pip install 'rbmvae[sklearn]'"
    ) from None

if tuple(int(part) for part in sklearn.__version__.split(".")[:2]) < (1, 3):
    raise ImportError(
        f"rbmvae.sklearn needs scikit-learn >= 1.3, found {sklearn.__version__}: "
        "pip install -U 'rbmvae[sklearn]'"
    )

from ._rbm import BernoulliRBM  # noqa: E402
from ._rbm_likelihood import LogLikelihood  # noqa: E402
from ._vae import VAE  # noqa: E402

__all__ = ["VAE", "BernoulliRBM", "LogLikelihood"]
