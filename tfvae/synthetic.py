"""Synthetic data with known latent structure and exactly known densities.

Pure numpy, for tests and benchmarks:

- `make_ppca`: probabilistic PCA (Tipping & Bishop 1999), x = W z + mu + e,
  whose density is the Gaussian N(mu, W W^T + sigma^2 I).
- `make_nonlinear`: a one-dimensional latent t ~ N(0, 1) mapped through a
  curve f(t) with noise whose scale g(t) depends on t (heteroscedastic);
  `nonlinear_log_density` integrates over t numerically.
"""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class PPCAParams:
  """x ~ N(mean, weights @ weights.T + noise_variance * I)."""

  weights: np.ndarray  # [input_dim, latent_dim]
  mean: np.ndarray  # [input_dim]
  noise_variance: float

  @property
  def covariance(self):
    d = self.weights.shape[0]
    return self.weights @ self.weights.T + self.noise_variance * np.eye(d)


def gaussian_log_density(x, mean, covariance):
  """log N(x; mean, covariance) per row, via a Cholesky factor.

  Args:
    x: array [N, D].
    mean: array [D].
    covariance: array [D, D], symmetric positive definite.

  Returns:
    float64 array [N], nats.
  """
  x = np.asarray(x, dtype=np.float64)
  chol = np.linalg.cholesky(np.asarray(covariance, dtype=np.float64))
  solved = np.linalg.solve(chol, (x - mean).T)  # [D, N]
  d = x.shape[1]
  return (-0.5 * np.sum(solved**2, axis=0) - np.sum(np.log(np.diag(chol)))
          - 0.5 * d * math.log(2 * math.pi))


def make_ppca(num_examples, input_dim=6, latent_dim=2, noise_std=0.3,
              seed=0, params=None):
  """Draws from a probabilistic-PCA model.

  Args:
    num_examples: Python int N.
    input_dim: D.
    latent_dim: q < D.
    noise_std: the isotropic noise standard deviation sigma.
    seed: int, for both the parameters and the draws.
    params: optional `PPCAParams` to draw from (new ones are made otherwise).

  Returns:
    (x, params): float32 array [N, D] and the `PPCAParams` used.
  """
  rng = np.random.default_rng(seed)
  if params is None:
    params = PPCAParams(
        weights=rng.normal(size=(input_dim, latent_dim)) * 1.5,
        mean=rng.normal(size=input_dim) * 3.0,
        noise_variance=float(noise_std) ** 2)
  d, q = params.weights.shape
  z = rng.normal(size=(num_examples, q))
  noise = rng.normal(size=(num_examples, d)) * math.sqrt(params.noise_variance)
  x = z @ params.weights.T + params.mean + noise
  return x.astype(np.float32), params


# The nonlinear set: a curve in D = 4 dimensions with t-dependent noise.
NONLINEAR_INPUT_DIM = 4


def _curve(t):
  """f(t) [..., 4]: a bent, twisting curve; g(t) [..., 4]: its noise scale."""
  loc = np.stack([
      2.0 * np.sin(1.5 * t),
      t**2 - 1.0,
      1.5 * np.cos(2.0 * t) + 0.5 * t,
      np.tanh(2.0 * t),
  ], axis=-1)
  scale = np.stack([
      0.10 + 0.10 * t**2,
      0.15 * np.exp(0.4 * t),
      0.20 + 0.10 * np.sin(3.0 * t),
      0.05 + 0.10 / (1.0 + t**2),
  ], axis=-1)
  return loc, scale


def make_nonlinear(num_examples, seed=0):
  """Draws x = f(t) + g(t) * e, t ~ N(0, 1), e ~ N(0, I_4).

  Args:
    num_examples: Python int N.
    seed: int.

  Returns:
    float32 array [N, 4].
  """
  return _draw(_curve, [num_examples], seed).astype(np.float32)


def nonlinear_log_density(x, num_grid=8001, chunk=512):
  """The exact log-density of `make_nonlinear` data, by quadrature over t.

  log p(x) = log integral N(t; 0, 1) prod_d N(x_d; f_d(t), g_d(t)^2) dt,
  evaluated with the trapezoid rule on `num_grid` points in [-8, 8] (the
  prior mass outside is below 1e-15) in log space.

  Args:
    x: array [N, 4].
    num_grid: quadrature points.
    chunk: rows per vectorised block.

  Returns:
    float64 array [N], nats.
  """
  x = np.asarray(x, dtype=np.float64)
  t = np.linspace(-8.0, 8.0, num_grid)
  log_step = math.log(t[1] - t[0])
  log_prior = -0.5 * t**2 - 0.5 * math.log(2 * math.pi)
  trapezoid = np.zeros(num_grid)
  trapezoid[[0, -1]] = math.log(0.5)
  loc, scale = _curve(t)  # [G, 4]
  out = np.empty(len(x))
  for start in range(0, len(x), chunk):
    block = x[start:start + chunk, None, :]  # [B, 1, 4]
    log_lik = np.sum(
        -0.5 * ((block - loc) / scale)**2 - np.log(scale)
        - 0.5 * math.log(2 * math.pi), axis=-1)  # [B, G]
    terms = log_lik + log_prior + trapezoid
    peak = terms.max(axis=1, keepdims=True)
    out[start:start + chunk] = (
        peak[:, 0] + np.log(np.exp(terms - peak).sum(axis=1)) + log_step)
  return out


# The surface set: two latents t ~ N(0, I_2) mapped to 10 columns.
SURFACE_INPUT_DIM = 10
# The first two columns are t itself plus noise of this scale, so the
# posterior over t sits within a few noise scales of (x_1, x_2).
_SURFACE_ANCHOR_NOISE = 0.2


def _surface(t1, t2):
  """f(t) [..., 10] and its noise scale g(t) [..., 10]."""
  loc = np.stack([
      t1, t2,
      np.sin(1.5 * t1) + 0.5 * t2,
      0.5 * t1 * t2,
      1.5 * np.cos(t2),
      np.tanh(t1 + t2),
      0.3 * t1**2 - t2,
      np.exp(0.3 * t1),
      np.sin(t1 - t2),
      0.3 * t2**2 + 0.2 * t1,
  ], axis=-1)
  anchor = np.full_like(t1, _SURFACE_ANCHOR_NOISE)
  scale = np.stack([
      anchor, anchor,
      0.10 + 0.05 * np.abs(t2),
      0.15 * np.ones_like(t1),
      0.10 + 0.10 / (1.0 + t1**2),
      0.05 * np.ones_like(t1),
      0.20 * np.ones_like(t1),
      0.05 + 0.05 * np.exp(0.2 * t1),
      0.15 * np.ones_like(t1),
      0.10 + 0.05 * np.abs(np.sin(t1)),
  ], axis=-1)
  return loc, scale


def make_surface(num_examples, seed=0):
  """Draws N rows x = f(t) + g(t) * e, t ~ N(0, I_2), e ~ N(0, I_10), as
  `make_nonlinear` does on a curve: float64 [N, 10]."""
  return _draw(lambda t: _surface(t[:, 0], t[:, 1]), [num_examples, 2], seed)


def _draw(location_scale, latent_shape, seed):
  """x = loc(t) + scale(t) * e with t and e standard normal, float64."""
  rng = np.random.default_rng(seed)
  loc, scale = location_scale(rng.normal(size=latent_shape))
  return loc + scale * rng.normal(size=loc.shape)


def surface_log_density(x, half_width=1.6, step=0.0125):
  """The exact log-density of `make_surface` data, by quadrature over t.

  The posterior over t lies within `half_width` (8 noise scales) of the
  row's first two values, where a trapezoid grid of spacing `step` (a
  fifth of the posterior's typical width or less) integrates
  N(t; 0, I) prod_d N(x_d; f_d(t), g_d(t)^2); the mass outside is below
  1e-13.

  Args:
    x: array [N, 10].
    half_width: half the side of the integration square.
    step: grid spacing.

  Returns:
    float64 array [N], nats.
  """
  x = np.asarray(x, dtype=np.float64)
  offsets = np.arange(-half_width, half_width + step / 2, step)
  weights_1d = np.ones(len(offsets))
  weights_1d[[0, -1]] = 0.5
  log_weights = (np.log(weights_1d)[:, None] + np.log(weights_1d)[None, :]
                 ).ravel() + 2 * math.log(step)
  grid1, grid2 = [g.ravel() for g in np.meshgrid(offsets, offsets,
                                                 indexing="ij")]
  out = np.empty(len(x))
  for i, row in enumerate(x):
    t1, t2 = row[0] + grid1, row[1] + grid2
    loc, scale = _surface(t1, t2)
    terms = (np.sum(-0.5 * ((row - loc) / scale)**2 - np.log(scale), axis=-1)
             - 0.5 * (t1**2 + t2**2) - math.log(2 * math.pi)
             - 5.0 * math.log(2 * math.pi) + log_weights)
    peak = terms.max()
    out[i] = peak + math.log(np.exp(terms - peak).sum())
  return out


def make_sensor_zeros(num_examples, num_anomalies=0, decimals=2, seed=0):
  """Readings of 7 sensors (two hidden factors) where an idle sensor reads
  exactly 0: each normal row has at most one of sensors 4 to 6 idle (each
  10% of the rows); an anomaly has all three idle at once.

  Args:
    num_examples: normal rows.
    num_anomalies: anomalous rows, appended after the normal ones.
    decimals: the readings' recording resolution, 10**-decimals.
    seed: int.

  Returns:
    (x [num_examples + num_anomalies, 7], is_anomaly bool [same rows]).
  """
  rng = np.random.default_rng(seed)
  weights = np.random.default_rng(1234).normal(size=(2, 7))
  total = num_examples + num_anomalies
  x = 10.0 + rng.normal(size=(total, 2)) @ weights + 0.5 * rng.normal(
      size=(total, 7))
  idle = rng.choice(4, size=num_examples, p=[0.7, 0.1, 0.1, 0.1])
  for sensor in (1, 2, 3):
    x[:num_examples][idle == sensor, 3 + sensor] = 0.0
  x[num_examples:, 4:] = 0.0
  return (np.round(x, decimals),
          np.arange(total) >= num_examples)
