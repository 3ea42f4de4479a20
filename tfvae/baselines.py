"""Density baselines to judge the VAE against (tests and benchmarks only).

Closed forms in numpy, each returning (mean, covariance) to score with
`tfvae.synthetic.gaussian_log_density`:

- `fit_full_gaussian`: a Gaussian with full covariance (maximum likelihood).
- `fit_ppca`: probabilistic PCA by its closed-form maximum-likelihood
  solution (Tipping & Bishop 1999, eqs. 7-8).
- `fit_factor_analysis`: factor analysis (per-feature noise) by EM
  (Rubin & Thayer 1982).

Tuned baselines for `scripts/bench_quality.py` (`tuned_*`): each chooses
its hyper-parameters on a validation split, refits on all training rows,
and returns a log-density function in data units. The Gaussian mixture and
the kernel density estimate use scikit-learn, a benchmark-only dependency
imported inside those functions.
"""

import numpy as np

from tfvae import synthetic


def fit_full_gaussian(x, ridge=1e-6):
  """Maximum-likelihood Gaussian with full covariance.

  Args:
    x: array [N, D].
    ridge: added to each diagonal entry, relative to that column's own
      variance (columns may differ in scale by many orders of magnitude), so
      that a collinear set of columns does not make the covariance singular.

  Returns:
    (mean [D], covariance [D, D]).
  """
  x = np.asarray(x, dtype=np.float64)
  mean = x.mean(axis=0)
  covariance = np.cov(x, rowvar=False, bias=True)
  variances = np.diag(covariance)
  tiny = np.finfo(np.float64).tiny ** 0.5
  covariance = covariance + np.diag(ridge * np.maximum(variances, tiny))
  return mean, covariance


def fit_ppca(x, latent_dim):
  """Closed-form maximum-likelihood probabilistic PCA.

  sigma^2 is the mean of the discarded eigenvalues of the sample covariance
  and W = U_q (Lambda_q - sigma^2 I)^(1/2).

  Args:
    x: array [N, D].
    latent_dim: q < D.

  Returns:
    A `synthetic.PPCAParams`.
  """
  x = np.asarray(x, dtype=np.float64)
  mean = x.mean(axis=0)
  covariance = np.cov(x, rowvar=False, bias=True)
  eigenvalues, eigenvectors = np.linalg.eigh(covariance)
  order = np.argsort(eigenvalues)[::-1]
  eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
  noise_variance = float(eigenvalues[latent_dim:].mean())
  weights = eigenvectors[:, :latent_dim] * np.sqrt(
      np.maximum(eigenvalues[:latent_dim] - noise_variance, 0.0))
  return synthetic.PPCAParams(weights, mean, noise_variance)


def fit_factor_analysis(x, latent_dim, num_iterations=500, tolerance=1e-8):
  """Factor analysis x = W z + mean + e, e ~ N(0, diag(psi)), by EM.

  Args:
    x: array [N, D].
    latent_dim: q.
    num_iterations: maximum EM iterations.
    tolerance: stop when the mean log-likelihood improves by less.

  Returns:
    (mean [D], covariance W W^T + diag(psi) [D, D]).
  """
  x = np.asarray(x, dtype=np.float64)
  mean = x.mean(axis=0)
  centred = x - mean
  sample_cov = centred.T @ centred / len(x)
  variances = np.maximum(np.diag(sample_cov), 1e-12)
  start = fit_ppca(x, latent_dim)
  weights, psi = start.weights, np.maximum(
      np.full(len(mean), start.noise_variance), 1e-6 * variances)
  previous = -np.inf
  for _ in range(num_iterations):
    # E-step: posterior of z given x, shared across examples.
    inv_psi_w = weights / psi[:, None]
    posterior_cov = np.linalg.inv(np.eye(latent_dim) + weights.T @ inv_psi_w)
    projection = posterior_cov @ inv_psi_w.T  # [q, D]
    ez_x = sample_cov @ projection.T  # E[x z^T] / N, [D, q]
    ezz = posterior_cov + projection @ sample_cov @ projection.T
    # M-step.
    weights = ez_x @ np.linalg.inv(ezz)
    psi = np.maximum(np.diag(sample_cov - weights @ ez_x.T), 1e-6 * variances)
    covariance = weights @ weights.T + np.diag(psi)
    current = synthetic.gaussian_log_density(x, mean, covariance).mean()
    if current - previous < tolerance:
      break
    previous = current
  return mean, covariance


# -- Tuned baselines for the quality benchmark (scikit-learn: the bench extra) --


def _log_density_fn(mean, covariance):
  return lambda x: synthetic.gaussian_log_density(x, mean, covariance)


def tuned_full_gaussian(train, validation):
  """A full-covariance Gaussian fitted on train + validation.

  Returns:
    (log-density function x -> [N] nats, description).
  """
  mean, covariance = fit_full_gaussian(np.concatenate([train, validation]))
  return _log_density_fn(mean, covariance), "full covariance"


def tuned_factor_analysis(train, validation):
  """Factor analysis with its number of factors chosen on validation (1 to
  D - 1), refitted on train + validation."""
  best = None
  for q in range(1, max(train.shape[1], 2)):
    mean, covariance = fit_factor_analysis(train, q)
    score = synthetic.gaussian_log_density(validation, mean, covariance).mean()
    if best is None or score > best[0]:
      best = (score, q)
  everything = np.concatenate([train, validation])
  return (_log_density_fn(*fit_factor_analysis(everything, best[1])),
          f"{best[1]} factors")


def tuned_gaussian_mixture(train, validation, max_components=20, seed=0):
  """scikit-learn's `GaussianMixture` (full covariance) with 1 to
  `max_components` components chosen on validation, refitted on all rows."""
  from sklearn import mixture  # pylint: disable=g-import-not-at-top
  best = None
  for k in range(1, max_components + 1):
    if k > len(train) // 2:
      break
    model = mixture.GaussianMixture(k, covariance_type="full", random_state=seed,
                                    n_init=1, max_iter=500)
    model.fit(train)
    score = model.score(validation)
    if best is None or score > best[0]:
      best = (score, k)
  everything = np.concatenate([train, validation])
  model = mixture.GaussianMixture(best[1], covariance_type="full",
                                  random_state=seed, max_iter=500)
  model.fit(everything)
  return model.score_samples, f"{best[1]} components"


def tuned_kde(train, validation, bandwidths=None):
  """A Gaussian kernel density estimate on standardised columns, bandwidth
  chosen on validation, refitted on all rows; in data units (the
  log-Jacobian of the standardisation is subtracted)."""
  from sklearn import neighbors  # pylint: disable=g-import-not-at-top
  everything = np.concatenate([train, validation])
  mean, std = everything.mean(0), everything.std(0)
  std = np.where(std > 0, std, 1.0)
  log_jacobian = float(np.sum(np.log(std)))
  if bandwidths is None:
    bandwidths = np.geomspace(0.02, 2.0, 25)
  best = None
  for bandwidth in bandwidths:
    model = neighbors.KernelDensity(bandwidth=bandwidth).fit((train - mean) / std)
    score = model.score_samples((validation - mean) / std).mean()
    if best is None or score > best[0]:
      best = (score, bandwidth)
  model = neighbors.KernelDensity(bandwidth=best[1]).fit((everything - mean) / std)
  return (lambda x: model.score_samples((x - mean) / std) - log_jacobian,
          f"bandwidth {best[1]:.3g}")
