"""One-dimensional Gaussian-process regression: fitted with GPyTorch, evaluated with numpy.

    gp = fit_gp(x, y)                 # GPyTorch ExactGP, hyper-parameters by marginal likelihood
    mean, std = gp.predict(xs)        # numpy only: posterior mean and std of the latent function
    GP.from_dict(gp.to_dict())        # JSON round trip (training points, hyper-parameters, noise)

The model: ``y = m(x) + f(x) + ε`` with a linear mean ``m(x) = a·x + b``, ``f ~ GP(0, k)``, ``k`` a
scaled Matérn-5/2 (default) or RBF kernel and ``ε ~ N(0, noise)``. Mean weights, kernel
length-scale and output scale, and the noise variance are all fitted by maximising the exact
marginal likelihood (L-BFGS from a few initial length-scales, the best optimum kept), optionally
within bounds (length-scale from below, noise from above). Everything runs in float64 so the
numpy posterior equals GPyTorch's to ~1e-10.

This is the only module of the package that imports torch and GPyTorch, and it does so inside
:func:`fit_gp` and :func:`torch_posterior` only: evaluating a saved fit needs numpy alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from tinyjax.errors import GPError

KERNELS = ("rbf", "matern52")
NOISE_FLOOR = 1e-6   # variance; the published TinyNet points are (nearly) noise-free design points


def _kernel(kind: str, a: np.ndarray, b: np.ndarray, lengthscale: float, outputscale: float) -> np.ndarray:
    r = np.abs(a[:, None] - b[None, :]) / lengthscale
    if kind == "rbf":
        return outputscale * np.exp(-0.5 * r * r)
    s5 = math.sqrt(5.0) * r
    return outputscale * (1.0 + s5 + s5 * s5 / 3.0) * np.exp(-s5)


@dataclass(frozen=True)
class GP:
    """A fitted GP regression of ``y`` on scalar ``x`` (see the module docstring for the model).

    ``noise`` is the observation-noise variance; ``log_marginal_likelihood`` the exact log evidence
    of the training data under the fitted hyper-parameters (nats, summed over points).
    """

    kernel: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    lengthscale: float
    outputscale: float
    noise: float
    mean_weight: float
    mean_bias: float
    log_marginal_likelihood: float = float("nan")

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise GPError(f"unknown kernel {self.kernel!r}; expected one of {', '.join(KERNELS)}")
        if len(self.x) != len(self.y) or not self.x:
            raise GPError("a GP needs as many targets as inputs, and at least one")
        for name in ("lengthscale", "outputscale", "noise"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise GPError(f"GP {name} must be a positive number, got {v!r}")

    def mean_fn(self, x: np.ndarray) -> np.ndarray:
        return self.mean_weight * x + self.mean_bias

    def predict(self, xs) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at ``xs`` (numpy only).

        The std is the latent function's (what a ±2σ band around the true curve means); add
        ``noise`` to the variance for the spread of a new observation.
        """
        xs = np.atleast_1d(np.asarray(xs, dtype=np.float64))
        x, y = np.asarray(self.x), np.asarray(self.y)
        kxx = _kernel(self.kernel, x, x, self.lengthscale, self.outputscale) + self.noise * np.eye(len(x))
        chol = np.linalg.cholesky(kxx)
        alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y - self.mean_fn(x)))
        ksx = _kernel(self.kernel, xs, x, self.lengthscale, self.outputscale)
        mean = self.mean_fn(xs) + ksx @ alpha
        v = np.linalg.solve(chol, ksx.T)
        var = np.maximum(self.outputscale - np.sum(v * v, axis=0), 0.0)
        return mean, np.sqrt(var)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["x"], d["y"] = list(self.x), list(self.y)
        return d

    @classmethod
    def from_dict(cls, d) -> GP:
        if not isinstance(d, dict):
            raise GPError(f"a GP must be a JSON object, got {type(d).__name__}")
        try:
            return cls(kernel=d["kernel"], x=tuple(float(v) for v in d["x"]),
                       y=tuple(float(v) for v in d["y"]), lengthscale=float(d["lengthscale"]),
                       outputscale=float(d["outputscale"]), noise=float(d["noise"]),
                       mean_weight=float(d["mean_weight"]), mean_bias=float(d["mean_bias"]),
                       log_marginal_likelihood=float(d.get("log_marginal_likelihood", "nan")))
        except KeyError as e:
            raise GPError(f"a GP needs the field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise GPError(f"malformed GP: {e}") from None


def _model(torch, gpytorch, x, y, kernel: str, min_lengthscale: float | None = None,
           max_noise: float | None = None):
    """An ExactGP with a linear mean and a scaled RBF/Matérn-5/2 kernel (float64), with optional
    bounds on the length-scale (below) and the noise variance (above)."""
    ls_con = None if min_lengthscale is None else gpytorch.constraints.GreaterThan(min_lengthscale)
    noise_con = (gpytorch.constraints.GreaterThan(NOISE_FLOOR / 2) if max_noise is None
                 else gpytorch.constraints.Interval(NOISE_FLOOR / 2, max_noise))

    class _Exact(gpytorch.models.ExactGP):
        def __init__(self, train_x, train_y, likelihood):
            super().__init__(train_x, train_y, likelihood)
            self.mean_module = gpytorch.means.LinearMean(1)
            base = (gpytorch.kernels.RBFKernel(lengthscale_constraint=ls_con) if kernel == "rbf"
                    else gpytorch.kernels.MaternKernel(nu=2.5, lengthscale_constraint=ls_con))
            self.covar_module = gpytorch.kernels.ScaleKernel(base)

        def forward(self, t):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(t), self.covar_module(t))

    lik = gpytorch.likelihoods.GaussianLikelihood(noise_constraint=noise_con)
    model = _Exact(x, y, lik).double()
    lik.double()
    return model, lik


def fit_gp(x, y, kernel: str = "matern52", min_lengthscale: float | None = None,
           max_noise: float | None = None, iterations: int = 100,
           init_lengthscales: tuple[float, ...] = (0.5, 1.0, 3.0), seed: int = 0) -> GP:
    """Fit a :class:`GP` to ``(x, y)`` by maximising the exact marginal likelihood with GPyTorch.

    ``min_lengthscale`` (in units of ``x``) and ``max_noise`` (a variance) bound the search where
    the data are too few to rule out a wiggly or an all-noise explanation (see
    :mod:`tinyjax.search.rubik`). The mean starts at the least-squares line; each initial
    length-scale is one L-BFGS run, and the run with the highest marginal likelihood wins. Needs torch
    and gpytorch (the ``rubik`` extra).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(x) != len(y) or len(x) < 2:
        raise GPError(f"a GP fit needs at least 2 points with one target each, got {len(x)} x, {len(y)} y")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise GPError("GP training points must be finite")
    if kernel not in KERNELS:
        raise GPError(f"unknown kernel {kernel!r}; expected one of {', '.join(KERNELS)}")
    try:
        import gpytorch
        import torch
    except ImportError:
        raise GPError("fitting a formula needs torch and gpytorch: pip install torch==2.13.0 "
                      "'tinyjax[rubik]'") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a 6-point GP: threads only add contention
    torch.manual_seed(seed)
    try:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        slope, bias = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, float(np.mean(y)))
        resid_var = float(np.var(y - (slope * x + bias)))
        best = None
        for ls in init_lengthscales:
            model, lik = _model(torch, gpytorch, tx, ty, kernel, min_lengthscale, max_noise)
            with torch.no_grad():
                model.mean_module.weights.fill_(float(slope))
                model.mean_module.bias.fill_(float(bias))
                model.covar_module.base_kernel.lengthscale = max(ls, 1.01 * (min_lengthscale or 0))
                model.covar_module.outputscale = max(resid_var, 1e-4)
                noise = max(resid_var / 10, NOISE_FLOOR)
                lik.noise = noise if max_noise is None else min(noise, max_noise / 2)
            model.train()
            lik.train()
            mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
            opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=iterations,
                                    line_search_fn="strong_wolfe")

            def closure(opt=opt, mll=mll, model=model):
                opt.zero_grad()
                loss = -mll(model(tx), ty)
                loss.backward()
                return loss

            try:
                opt.step(closure)
            except (RuntimeError, ValueError):   # a start that leaves the PSD region: skip it
                continue
            with torch.no_grad():
                logml = float(mll(model(tx), ty)) * len(x)   # GPyTorch divides by the number of points
            if best is None or logml > best[0]:
                best = (logml, model, lik)
    finally:
        torch.set_num_threads(threads)
    if best is None:
        raise GPError("the GP fit diverged from every starting point")
    logml, model, lik = best
    return GP(kernel=kernel, x=tuple(x.tolist()), y=tuple(y.tolist()),
              lengthscale=float(model.covar_module.base_kernel.lengthscale.item()),
              outputscale=float(model.covar_module.outputscale.item()),
              noise=float(lik.noise.item()),
              mean_weight=float(model.mean_module.weights.item()),
              mean_bias=float(model.mean_module.bias.item()), log_marginal_likelihood=logml)


def torch_posterior(gp: GP, xs) -> tuple[np.ndarray, np.ndarray]:
    """GPyTorch's own posterior mean and latent std at ``xs`` for ``gp``'s hyper-parameters: the
    reference the numpy evaluation (:meth:`GP.predict`) is tested against."""
    import gpytorch
    import torch

    model, lik = _model(torch, gpytorch, torch.tensor(gp.x, dtype=torch.float64),
                        torch.tensor(gp.y, dtype=torch.float64), gp.kernel)
    with torch.no_grad():
        model.mean_module.weights.fill_(gp.mean_weight)
        model.mean_module.bias.fill_(gp.mean_bias)
        model.covar_module.base_kernel.lengthscale = gp.lengthscale
        model.covar_module.outputscale = gp.outputscale
        lik.noise = gp.noise
    model.eval()
    lik.eval()
    with torch.no_grad(), gpytorch.settings.fast_pred_var(False), gpytorch.settings.debug(False):
        post = model(torch.as_tensor(np.atleast_1d(np.asarray(xs, dtype=np.float64))))
        return post.mean.numpy(), post.variance.clamp_min(0).sqrt().numpy()
