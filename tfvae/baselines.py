"""Closed-form density baselines in numpy, to judge the VAE against.

- `fit_full_gaussian`: a Gaussian with full covariance (maximum likelihood).
- `fit_ppca`: probabilistic PCA by its closed-form maximum-likelihood
  solution (Tipping & Bishop 1999, eqs. 7-8).
- `fit_factor_analysis`: factor analysis (per-feature noise) by EM
  (Rubin & Thayer 1982).

Each returns (mean, covariance); score held-out data with
`tfvae.synthetic.gaussian_log_density`.
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
