"""Density baselines for tables of real and categorical columns with gaps
(benchmarks and tests only; numpy).

A table is float64 [N, D]: real columns in data units, categorical columns
as level codes 0..L-1, NaN for a missing cell; `categories` says which is
which (None for a real column, the levels otherwise, as `tfvae.VAE` takes
them). Every log-density here is of the observed cells of a row, the missing
ones marginalised, so `log_density(x with the categorical columns blanked)`
is the real columns' marginal.

- `tuned_independent`: independent columns: each categorical column its
  level frequencies, each real column its best 1-D density (a Gaussian
  mixture of 1 to 8 components or a kernel density estimate with a
  bandwidth from 1e-4 to 1 times the column's spread, and no narrower
  than the jitter of its resolution, chosen on validation; 1% of a broad
  Gaussian mixed in).
- `fit_latent_class` / `tuned_latent_class`: a mixture of products (the
  latent class model): per component, independent categorical columns and
  independent Gaussian real columns; fitted by EM with the gaps
  marginalised, components chosen on validation.
"""

import numpy as np

# Pseudo-count added to every level's count (per component): no level a
# model saw in training gets probability 0 (a Jeffreys-like prior).
LEVEL_PSEUDO_COUNT = 0.5
# The broad component's share in each 1-D density of `tuned_independent`.
DEFENSIVE_SHARE = 0.01
# Floor of a component's variance, as a share of the column's variance.
VARIANCE_FLOOR = 1e-4


def _kinds(categories, width):
  categories = list(categories) if categories is not None else [None] * width
  if len(categories) != width:
    raise ValueError(f"categories has {len(categories)} entries for {width} "
                     "columns")
  real = np.array([levels is None for levels in categories])
  levels = [0 if c is None else len(c) for c in categories]
  return real, levels


def _logsumexp(a, axis):
  peak = np.max(a, axis=axis, keepdims=True)
  peak = np.where(np.isfinite(peak), peak, 0.0)
  return np.squeeze(peak, axis) + np.log(np.sum(np.exp(a - peak), axis=axis))


class LatentClassModel:
  """A fitted mixture of products.

  Attributes:
    log_weights: [K] log mixture weights.
    means, variances: [K, R] per component, the real columns' Gaussians.
    log_levels: per categorical column, [K, L] log level probabilities.
  """

  def __init__(self, categories, log_weights, means, variances, log_levels):
    self.categories = list(categories)
    self.log_weights = log_weights
    self.means = means
    self.variances = variances
    self.log_levels = log_levels
    self._real, _ = _kinds(categories, len(categories))

  @property
  def num_components(self):
    return len(self.log_weights)

  def component_log_likelihood(self, x):
    """log p(x_obs | component) [N, K]."""
    x = np.asarray(x, np.float64)
    real = x[:, self._real]
    observed = ~np.isnan(real)
    filled = np.where(observed, real, 0.0)
    # [N, K, R]
    terms = -0.5 * (np.log(2 * np.pi * self.variances)[None] +
                    (filled[:, None, :] - self.means[None]) ** 2 /
                    self.variances[None])
    out = np.sum(np.where(observed[:, None, :], terms, 0.0), axis=2)
    for slot, column in enumerate(np.flatnonzero(~self._real)):
      codes = x[:, column]
      seen = ~np.isnan(codes)
      index = np.where(seen, codes, 0).astype(np.int64)
      out += np.where(seen[:, None], self.log_levels[slot][:, index].T, 0.0)
    return out

  def log_density(self, x):
    """log p(x_obs) [N]: densities of real cells in data units times
    probabilities of levels; missing cells marginalised."""
    return _logsumexp(self.log_weights[None] +
                      self.component_log_likelihood(x), axis=1)


def fit_latent_class(x, categories, num_components, seed=0,
                     max_iterations=300, tolerance=1e-7, restarts=3):
  """Maximum-likelihood latent class model by EM (best of `restarts`
  random starts by training log-likelihood).

  Args:
    x: float64 [N, D], NaN for missing cells.
    categories: per column None (real) or its levels (codes 0..L-1).
    num_components: K.

  Returns:
    A `LatentClassModel`.
  """
  x = np.asarray(x, np.float64)
  real, levels = _kinds(categories, x.shape[1])
  if not np.all(np.isnan(x[:, ~real]) | (x[:, ~real] >= 0)):
    raise ValueError("categorical codes must be non-negative")
  real_x = x[:, real]
  observed = ~np.isnan(real_x)
  filled = np.where(observed, real_x, 0.0)
  column_var = np.array([np.var(c[~np.isnan(c)]) if np.any(~np.isnan(c))
                         else 1.0 for c in real_x.T])
  floor = VARIANCE_FLOOR * np.where(column_var > 0, column_var, 1.0)
  cat_columns = np.flatnonzero(~real)
  one_hots = []
  for column in cat_columns:
    codes = x[:, column]
    seen = ~np.isnan(codes)
    hot = np.zeros((len(x), levels[column]))
    hot[np.flatnonzero(seen), codes[seen].astype(np.int64)] = 1.0
    one_hots.append(hot)
  rng = np.random.default_rng(seed)
  best = None
  for _ in range(restarts if num_components > 1 else 1):
    resp = rng.dirichlet(np.ones(num_components), size=len(x))
    previous = -np.inf
    for _ in range(max_iterations):
      # M-step.
      weight = resp.sum(axis=0) + 1e-12
      log_weights = np.log(weight / weight.sum())
      mass = resp.T @ observed + 1e-12  # [K, R]
      means = (resp.T @ filled) / mass
      second = (resp.T @ (filled ** 2)) / mass
      variances = np.maximum(second - means ** 2, floor[None])
      log_levels = []
      for hot in one_hots:
        counts = resp.T @ hot + LEVEL_PSEUDO_COUNT
        log_levels.append(np.log(counts / counts.sum(axis=1, keepdims=True)))
      model = LatentClassModel(categories, log_weights, means, variances,
                               log_levels)
      # E-step.
      joint = log_weights[None] + model.component_log_likelihood(x)
      total = _logsumexp(joint, axis=1)
      resp = np.exp(joint - total[:, None])
      current = float(np.mean(total))
      if current - previous < tolerance * max(1.0, abs(current)):
        break
      previous = current
    if best is None or current > best[0]:
      best = (current, model)
  return best[1]


def tuned_latent_class(train, validation, categories, max_components=20,
                       seed=0):
  """`fit_latent_class` with 1 to `max_components` components chosen on
  validation, refitted on all rows. Returns (log_density, description)."""
  best = None
  for k in range(1, max_components + 1):
    if k > len(train) // 10:
      break
    model = fit_latent_class(train, categories, k, seed=seed)
    score = float(np.mean(model.log_density(validation)))
    if best is None or score > best[0]:
      best = (score, k)
  everything = np.concatenate([train, validation])
  model = fit_latent_class(everything, categories, best[1], seed=seed)
  return model.log_density, f"{best[1]} classes"


def _mixture_1d(values, num_components, floor, max_iterations=300,
                tolerance=1e-8):
  """A maximum-likelihood 1-D Gaussian mixture by EM (means started at the
  quantiles, no variance below `floor`). Returns log_density(array)."""
  values = np.asarray(values, np.float64)
  means = np.quantile(values, (np.arange(num_components) + 0.5) /
                      num_components)
  variances = np.full(num_components, max(float(np.var(values)), floor))
  log_weights = np.full(num_components, -np.log(num_components))

  def joint(x):
    return (log_weights - 0.5 * np.log(2 * np.pi * variances) -
            (x[:, None] - means) ** 2 / (2 * variances))

  previous = -np.inf
  for _ in range(max_iterations):
    terms = joint(values)
    total = _logsumexp(terms, axis=1)
    current = float(np.mean(total))
    if current - previous < tolerance * max(1.0, abs(current)):
      break
    previous = current
    resp = np.exp(terms - total[:, None])
    mass = resp.sum(axis=0) + 1e-12
    log_weights = np.log(mass / mass.sum())
    means = resp.T @ values / mass
    variances = np.maximum(resp.T @ values ** 2 / mass - means ** 2, floor)
  return lambda x: _logsumexp(joint(np.asarray(x, np.float64)), axis=1)


def _kde_1d(values, bandwidth):
  """A Gaussian kernel density estimate. Returns log_density(array)."""
  values = np.asarray(values, np.float64)
  norm = np.log(len(values) * bandwidth * np.sqrt(2 * np.pi))

  def log_density(x):
    x = np.asarray(x, np.float64)
    out = np.empty(len(x))
    step = max(1, (1 << 22) // max(len(values), 1))
    for start in range(0, len(x), step):
      part = x[start:start + step, None]
      out[start:start + step] = _logsumexp(
          -0.5 * ((part - values) / bandwidth) ** 2, axis=1) - norm
    return out
  return log_density


def _best_1d_density(train, validation, resolution=0.0):
  """The better on validation of a Gaussian mixture (1 to 8 components)
  and a Gaussian KDE (bandwidth from 1e-4 to 1 times the spread), refitted
  on all values. No kernel or component is narrower than the standard
  deviation of the jitter of a column recorded at `resolution` (r /
  sqrt(12)): narrower ones only model that noise, and a test value in a
  bin the training rows left empty would get an absurdly low density.
  Returns (log_density of a 1-D array, description)."""
  everything = np.concatenate([train, validation])
  spread = float(np.std(everything)) or 1.0
  floor = max(1e-6 * spread ** 2, resolution ** 2 / 12.0)
  candidates = []
  for k in range(1, 9):
    if k > len(train) // 5:
      break
    fitted = _mixture_1d(train, k, floor)
    candidates.append((float(np.mean(fitted(validation))), ("mixture", k)))
  # Down to 1e-4 of the spread: a column whose values repeat exactly (ages
  # in whole years, with a few fractions) may be best fitted by narrow
  # kernels.
  for bandwidth in np.geomspace(1e-4, 1.0, 25) * spread:
    if bandwidth ** 2 < floor:
      continue
    fitted = _kde_1d(train, bandwidth)
    candidates.append((float(np.mean(fitted(validation))),
                       ("kde", bandwidth)))
  _, (kind, setting) = max(candidates, key=lambda c: c[0])
  if kind == "mixture":
    fitted = _mixture_1d(everything, setting, floor)
    described = f"mixture of {setting}"
  else:
    fitted = _kde_1d(everything, setting)
    described = f"kde {setting:.3g}"
  # A defensive mixture (Hesterberg 1995): 1% of a Gaussian twice as wide
  # as the column, so that a test value beyond the training values (a
  # count of 100 where they stop at 40) is not scored by a kernel's or a
  # narrow component's Gaussian tail alone.
  center = float(np.mean(everything))
  wide = 2.0 * spread

  def log_density(v):
    broad = (-0.5 * ((v - center) / wide) ** 2 -
             np.log(wide * np.sqrt(2 * np.pi)))
    return np.logaddexp(np.log(1 - DEFENSIVE_SHARE) + fitted(v),
                        np.log(DEFENSIVE_SHARE) + broad)
  return log_density, described


def tuned_independent(train, validation, categories, resolution=None):
  """Independent columns: level frequencies (with `LEVEL_PSEUDO_COUNT`)
  times each real column's best 1-D density (`resolution`: optional
  [D], each column's recording resolution, 0 for none). Returns
  (log_density, description)."""
  real, levels = _kinds(categories, train.shape[1])
  everything = np.concatenate([train, validation])
  parts, described = [], []
  for column in range(train.shape[1]):
    if real[column]:
      t, v = train[:, column], validation[:, column]
      density, text = _best_1d_density(
          t[~np.isnan(t)], v[~np.isnan(v)],
          0.0 if resolution is None else float(resolution[column]))
      described.append(text)
    else:
      codes = everything[:, column]
      counts = np.bincount(codes[~np.isnan(codes)].astype(np.int64),
                           minlength=levels[column]) + LEVEL_PSEUDO_COUNT
      table = np.log(counts / counts.sum())
      density = lambda v, table=table: table[v.astype(np.int64)]
    parts.append(density)

  def log_density(x):
    x = np.asarray(x, np.float64)
    out = np.zeros(len(x))
    for column, density in enumerate(parts):
      seen = ~np.isnan(x[:, column])
      if np.any(seen):
        out[seen] += density(x[seen, column])
    return out
  return log_density, "; ".join(described)
