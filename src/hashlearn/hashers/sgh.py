"""Stochastic Generative Hashing (SGH).

Dai, Guo, Kumar, He & Song, "Stochastic Generative Hashing", ICML 2017.

SGH treats the code ``h`` in {0, 1}^l of a sample ``x`` in R^d as the latent variable of a
generative model and learns the hash function as its approximate posterior, following the
Minimum Description Length principle (the best code compresses the data most):

* prior ``p(h) = prod_k theta_k^h_k (1 - theta_k)^(1 - h_k)``;
* decoder ``p(x | h) = N(x; U^T h + a, rho^2 I)`` (linear Gaussian);
* encoder (the hash function) ``q(h | x) = prod_k Bernoulli(h_k; sigmoid(w_k . x + c_k))``.

The parameters minimise the description length (the negative evidence lower bound), averaged
over the data::

    L(x) = E_q[ |x - U^T h - a|^2 / (2 rho^2) ] + d/2 log(2 pi rho^2) + KL(q(h | x) || p(h)).

The KL term between factorised Bernoullis has a closed form and is differentiated exactly. The
expected reconstruction cost is estimated with the paper's *stochastic neuron*
``h~_k = 1[sigmoid(z_k) >= xi_k]``, ``xi ~ U(0, 1)``, which samples ``q(h | x)``, and its gradient
with respect to ``z_k`` is the *distributional derivative* of the paper (its Lemma on
``E_xi[l(h~)]``)::

    d/dz_k E_xi[r(h~)] = E_xi[ r(h~ with h_k = 1) - r(h~ with h_k = 0) ] * sigmoid'(z_k),

an unbiased estimate when evaluated at one sample ``xi``. For the Gaussian decoder the
difference has a closed form, ``((1 - 2 h~_k) |u_k|^2 - 2 u_k . e) / (2 rho^2)`` with ``e`` the
residual ``x - U^T h~ - a``, so it costs what the paper's cheaper Taylor approximation
(``dr/dh_k`` at ``h~``) costs and is used instead. ``U``, ``a``, ``log rho^2`` and the prior logits
get ordinary gradients. All parameters are trained together by minibatch Adam (Kingma & Ba,
ICLR 2015), in numpy, with seeded initialisation, ordering and neuron noise.

The data are centred with the training mean. A sample's code is the mode of ``q(h | x)``:
``h_k = 1[sigmoid(z_k) >= 0.5] = 1[z_k >= 0]``, so ``transform`` returns
``z = (x - mean_) @ projection_ + intercept_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashlearn._parallel import single_threaded_blas
from hashlearn._validation import check_float, check_int, check_random_state
from hashlearn.hashers.base import Hasher


class SGH(Hasher):
    """Stochastic Generative Hashing: ``bits = (X - mean_) @ projection_ + intercept_ >= 0``.

    The optimisation settings are this implementation's, sized for a fit of a few seconds on a
    few thousand samples (the objective has flattened by then on mnist5k); train longer on large
    data. The encoder starts from Gaussian weights scaled so that ``z ~ N(0, 1)`` (random
    hyperplanes through the mean), the decoder from ``U = 0``, ``a = 0``, ``rho^2`` the data's
    variance per feature and ``theta = 1/2``.

    Parameters
    ----------
    n_bits : code length ``l``.
    epochs : passes over the training data (30).
    batch_size : minibatch size (128); clamped to the number of samples.
    learning_rate : Adam step size (0.01; Adam's moment decays are 0.9 and 0.999).
    random_state : seed of the initial encoder, the minibatch order and the stochastic neurons.

    Attributes
    ----------
    mean_ : float32 (n_features,), the training mean.
    projection_ : float32 (n_features, n_bits), encoder weights ``W``.
    intercept_ : float32 (n_bits,), encoder offsets ``c``.
    decoder_ : float32 (n_bits, n_features), decoder ``U``: ``x ~ h @ decoder_ + decoder_bias_``.
    decoder_bias_ : float32 (n_features,), decoder offset ``a``.
    noise_var_ : float, decoder variance ``rho^2``.
    prior_ : float32 (n_bits,), prior bit probabilities ``theta``.
    loss_history_ : float64 (epochs,), the mean description length per sample (nats) during
        each epoch.
    """

    name = "sgh"

    def __init__(
        self,
        n_bits: int = 32,
        *,
        epochs: int = 30,
        batch_size: int = 128,
        learning_rate: float = 0.01,
        random_state: int | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> SGH:
        n_bits = self._check_n_bits()
        epochs = check_int(self.epochs, "epochs", minimum=1)
        batch_size = check_int(self.batch_size, "batch_size", minimum=1)
        learning_rate = check_float(
            self.learning_rate, "learning_rate", minimum=0.0, strict_minimum=True
        )
        rng = np.random.default_rng(check_random_state(self.random_state))
        X = self._check_input(X)
        n, d = X.shape
        self.mean_ = X.mean(axis=0, dtype=np.float64).astype(np.float32)
        Xc = X - self.mean_
        scale = float(np.mean(np.sum(Xc.astype(np.float64) ** 2, axis=1)))
        scale = max(scale, np.finfo(np.float32).tiny)

        # encoder: z ~ N(0, 1) at the start; decoder: mean predictor, the data's noise level
        params = {
            "W": (rng.standard_normal((d, n_bits)) / np.sqrt(scale)).astype(np.float32),
            "c": np.zeros(n_bits, np.float32),
            "U": np.zeros((n_bits, d), np.float32),
            "a": np.zeros(d, np.float32),
            "log_var": np.array(np.log(scale / d), np.float64),
            "prior_logit": np.zeros(n_bits, np.float64),
        }
        adam = _Adam(params, learning_rate)
        batch_size = min(batch_size, n)
        history = []
        with single_threaded_blas():
            for _ in range(epochs):
                order = rng.permutation(n)
                total = 0.0
                for start in range(0, n, batch_size):
                    batch = Xc[order[start : start + batch_size]]
                    loss, grads = _description_length(params, batch, rng)
                    adam.step(params, grads)
                    total += loss * batch.shape[0]
                history.append(total / n)

        self.projection_ = params["W"]
        self.intercept_ = params["c"]
        self.decoder_ = params["U"]
        self.decoder_bias_ = params["a"]
        self.noise_var_ = float(np.exp(params["log_var"]))
        self.prior_ = _sigmoid(params["prior_logit"]).astype(np.float32)
        self.loss_history_ = np.asarray(history, dtype=np.float64)
        return self

    @property
    def n_features_in_(self) -> int:
        """Values per sample the fitted hasher reads."""
        return int(self.projection_.shape[0])

    def transform(self, X: Any) -> np.ndarray:
        self._check_fitted()
        X = self._check_input(X, fitted_features=self.n_features_in_)
        return ((X - self.mean_) @ self.projection_ + self.intercept_).astype(np.float32)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "mean": self.mean_,
            "projection": self.projection_,
            "intercept": self.intercept_,
            "decoder": self.decoder_,
            "decoder_bias": self.decoder_bias_,
            "prior": self.prior_,
            "loss_history": self.loss_history_,
        }
        return arrays, {"noise_var": self.noise_var_}

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.mean_ = arrays["mean"]
        self.projection_ = arrays["projection"]
        self.intercept_ = arrays["intercept"]
        self.decoder_ = arrays["decoder"]
        self.decoder_bias_ = arrays["decoder_bias"]
        self.prior_ = arrays["prior"]
        self.loss_history_ = arrays["loss_history"]
        self.noise_var_ = float(values["noise_var"])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _description_length(
    params: dict[str, np.ndarray], X: np.ndarray, rng: np.random.Generator
) -> tuple[float, dict[str, np.ndarray]]:
    """One-sample estimate of the mean description length of the rows of ``X`` and its gradient.

    Returns the estimate (nats per sample) and the gradient of every parameter.
    """
    W, c, U, a = params["W"], params["c"], params["U"], params["a"]
    var = float(np.exp(params["log_var"]))
    eta = params["prior_logit"]
    m, d = X.shape

    z = X @ W + c
    q = _sigmoid(z)
    h = (q >= rng.random(q.shape)).astype(np.float32)  # the stochastic neuron
    residual = X - h @ U - a
    sq_error = np.einsum("ij,ij->i", residual, residual, dtype=np.float64)
    # KL(Bernoulli(q) || Bernoulli(theta)) with log q = -softplus(-z), log(1 - q) = -softplus(z)
    kl = q * (_softplus(-eta) - _softplus(-z)) + (1.0 - q) * (_softplus(eta) - _softplus(z))
    loss = (
        sq_error.mean() / (2.0 * var)
        + 0.5 * d * np.log(2.0 * np.pi * var)
        + kl.sum(axis=1, dtype=np.float64).mean()
    )

    # distributional derivative: d/dq_k E[r] = r(h_k = 1) - r(h_k = 0); d/dq_k KL = z_k - eta_k
    difference = flip_cost(residual, h, U, var)
    grad_z = ((difference + (z - eta)) * (q * (1.0 - q)) / m).astype(np.float32)
    grads = {
        "W": X.T @ grad_z,
        "c": grad_z.sum(axis=0),
        "U": -(h.T @ residual) / (m * var),
        "a": -residual.mean(axis=0) / var,
        "log_var": np.array(0.5 * d - sq_error.mean() / (2.0 * var)),
        "prior_logit": (_sigmoid(eta) - q).mean(axis=0),
    }
    return float(loss), grads


def flip_cost(residual: np.ndarray, h: np.ndarray, U: np.ndarray, var: float) -> np.ndarray:
    """``r(h with h_k = 1) - r(h with h_k = 0)`` for every sample and bit, in closed form.

    ``r(h) = |x - h @ U - a|^2 / (2 var)`` and ``residual = x - h @ U - a`` at the given codes
    ``h`` (m, l) in {0, 1}; ``U`` is (l, d). Returns float (m, l):
    ``((1 - 2 h_k) |u_k|^2 - 2 u_k . residual) / (2 var)``.
    """
    u_sq = np.einsum("kj,kj->k", U, U)
    return ((1.0 - 2.0 * h) * u_sq - 2.0 * (residual @ U.T)) / (2.0 * var)


class _Adam:
    """Adam (Kingma & Ba, ICLR 2015) with the default moment decays 0.9 / 0.999, eps 1e-8."""

    def __init__(self, params: dict[str, np.ndarray], learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.t = 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        rate = self.learning_rate * np.sqrt(1.0 - 0.999**self.t) / (1.0 - 0.9**self.t)
        for key, grad in grads.items():
            self.m[key] = 0.9 * self.m[key] + 0.1 * grad
            self.v[key] = 0.999 * self.v[key] + 0.001 * grad * grad
            update = rate * self.m[key] / (np.sqrt(self.v[key]) + 1e-8)
            params[key] = (params[key] - update).astype(params[key].dtype)
