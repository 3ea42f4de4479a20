"""Tests of the mixed-table baselines against closed forms and brute force."""

import numpy as np
import pytest

from tfvae import mixed_baselines

CATEGORIES = [None, ("a", "b", "c"), None, ("no", "yes")]


def two_classes(n, seed):
  """Rows from two well separated classes: (x, class)."""
  rng = np.random.default_rng(seed)
  label = rng.random(n) < 0.3
  x = np.empty((n, 4))
  x[:, 0] = np.where(label, 5.0, -5.0) + rng.normal(size=n)
  x[:, 1] = np.where(label, rng.choice(3, n, p=[0.8, 0.1, 0.1]),
                     rng.choice(3, n, p=[0.1, 0.1, 0.8]))
  x[:, 2] = rng.normal(size=n) * np.where(label, 2.0, 0.5)
  x[:, 3] = np.where(label, rng.random(n) < 0.9, rng.random(n) < 0.2)
  return x, label


def test_one_class_is_the_independent_maximum_likelihood_fit():
  x, _ = two_classes(400, 0)
  x[::7, 0] = np.nan
  x[::5, 1] = np.nan
  model = mixed_baselines.fit_latent_class(x, CATEGORIES, 1)
  expected = np.zeros(len(x))
  for column, levels in enumerate(CATEGORIES):
    values = x[:, column]
    seen = ~np.isnan(values)
    if levels is None:
      mean, var = values[seen].mean(), values[seen].var()
      expected[seen] += -0.5 * np.log(2 * np.pi * var) - (
          values[seen] - mean) ** 2 / (2 * var)
    else:
      counts = np.bincount(values[seen].astype(int), minlength=len(levels))
      p = (counts + mixed_baselines.LEVEL_PSEUDO_COUNT) / (
          counts.sum() + len(levels) * mixed_baselines.LEVEL_PSEUDO_COUNT)
      expected[seen] += np.log(p[values[seen].astype(int)])
  np.testing.assert_allclose(model.log_density(x), expected, rtol=1e-10)


def test_em_finds_the_two_classes_and_marginalises_gaps_exactly():
  x, label = two_classes(2000, 1)
  model = mixed_baselines.fit_latent_class(x, CATEGORIES, 2, seed=0)
  weights = np.sort(np.exp(model.log_weights))
  np.testing.assert_allclose(
      weights, np.sort([np.mean(label), 1 - np.mean(label)]), atol=0.01)
  # log p of a row with gaps is the log of the sum over classes of the
  # products over its observed cells (brute force).
  row = np.array([[np.nan, 2.0, 0.3, np.nan]])
  total = 0.0
  for k in range(2):
    var = model.variances[k, 1]
    density = np.exp(-0.5 * (0.3 - model.means[k, 1]) ** 2 / var) / np.sqrt(
        2 * np.pi * var)
    total += np.exp(model.log_weights[k]) * density * np.exp(
        model.log_levels[0][k, 2])
  np.testing.assert_allclose(model.log_density(row), np.log(total), rtol=1e-10)
  # The probabilities of a categorical column's levels sum to one, and a
  # real column's density integrates to one.
  rows = np.full((3, 4), np.nan)
  rows[:, 1] = [0, 1, 2]
  assert np.sum(np.exp(model.log_density(rows))) == pytest.approx(1.0)
  grid = np.linspace(-15, 15, 30001)
  rows = np.full((len(grid), 4), np.nan)
  rows[:, 0] = grid
  area = np.sum(np.exp(model.log_density(rows))) * (grid[1] - grid[0])
  assert area == pytest.approx(1.0, abs=1e-6)


def test_more_classes_are_chosen_when_the_columns_are_dependent():
  x, _ = two_classes(1500, 2)
  train, validation, test = x[:900], x[900:1200], x[1200:]
  latent, chosen = mixed_baselines.tuned_latent_class(
      train, validation, CATEGORIES, max_components=4)
  independent, _ = mixed_baselines.tuned_independent(train, validation,
                                                     CATEGORIES)
  assert chosen != "1 classes"
  assert np.mean(latent(test)) > np.mean(independent(test)) + 0.5


def test_independent_columns_are_frequencies_times_densities():
  x, _ = two_classes(1000, 3)
  train, validation = x[:800], x[800:]
  density, _ = mixed_baselines.tuned_independent(train, validation,
                                                 CATEGORIES)
  rows = np.full((3, 4), np.nan)
  rows[:, 1] = [0, 1, 2]
  counts = np.bincount(x[:, 1].astype(int), minlength=3) + 0.5
  np.testing.assert_allclose(density(rows), np.log(counts / counts.sum()))
  # The real columns' densities integrate to one.
  grid = np.linspace(-20, 20, 4001)
  rows = np.full((len(grid), 4), np.nan)
  rows[:, 0] = grid
  area = np.sum(np.exp(density(rows))) * (grid[1] - grid[0])
  assert area == pytest.approx(1.0, abs=1e-3)


def test_the_1d_mixture_finds_two_components_and_the_kde_is_its_formula():
  rng = np.random.default_rng(4)
  values = np.concatenate([rng.normal(-4, 1, 3000), rng.normal(3, 0.5, 1000)])
  def true_log_density(v):
    return np.log(0.75 * np.exp(-0.5 * (v + 4) ** 2) / np.sqrt(2 * np.pi) +
                  0.25 * np.exp(-0.5 * ((v - 3) / 0.5) ** 2) /
                  (0.5 * np.sqrt(2 * np.pi)))
  fitted = mixed_baselines._mixture_1d(values, 2, 1e-6)  # pylint: disable=protected-access
  fresh = np.concatenate([rng.normal(-4, 1, 3000), rng.normal(3, 0.5, 1000)])
  # Fitted on 4,000 values, 5 parameters: within sampling noise of the
  # truth on new values (the fit's excess is about 5 / 4000 nats).
  assert np.mean(fitted(fresh)) == pytest.approx(
      np.mean(true_log_density(fresh)), abs=0.01)
  grid = np.linspace(-6, 4, 50)
  kde = mixed_baselines._kde_1d(values[:50], 0.3)  # pylint: disable=protected-access
  brute = np.log(np.mean(np.exp(-0.5 * ((grid[:, None] - values[:50]) / 0.3)
                                ** 2), axis=1) / (0.3 * np.sqrt(2 * np.pi)))
  np.testing.assert_allclose(kde(grid), brute, rtol=1e-10)
