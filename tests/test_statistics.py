"""Standardisation statistics, exact and streamed."""

import numpy as np
import pytest

from tfvae import statistics


def test_robust_statistics():
  rng = np.random.default_rng(0)
  x = np.stack([
      rng.normal(10.0, 2.0, 4000),
      np.full(4000, 7.0),  # constant
      (rng.uniform(size=4000) < 0.1).astype(float),  # mostly zeros: IQR 0
      np.concatenate([rng.normal(0, 1, 3960), np.full(40, 1e6)]),  # outliers
  ], axis=1)
  loc, scale = statistics.compute_standardization(x)
  assert loc.dtype == np.float64
  assert loc[0] == pytest.approx(10.0, abs=0.1)
  assert scale[0] == pytest.approx(2.0, rel=0.05)
  assert scale[1] == 1.0 and loc[1] == 7.0
  assert scale[2] == pytest.approx(x[:, 2].std(), rel=1e-12)
  assert scale[3] == pytest.approx(1.0, rel=0.1)  # robust to the 1% outliers


def test_large_offsets_keep_their_spread():
  rng = np.random.default_rng(1)
  column = 1.7e9 + rng.normal(0, 0.01, 1000)  # float32 would keep nothing
  loc, scale = statistics.compute_standardization(column[:, None])
  assert scale[0] == pytest.approx(0.01, rel=0.1)
  assert loc[0] == pytest.approx(1.7e9, abs=0.01)


def test_missing_values_are_ignored():
  x = np.array([[1.0, np.nan], [2.0, 5.0], [3.0, 7.0], [np.nan, 9.0]])
  loc, _ = statistics.compute_standardization(x)
  np.testing.assert_array_equal(loc, [2.0, 7.0])
  with pytest.raises(ValueError, match="column 2 has no observed value"):
    statistics.compute_standardization(np.array([[1.0, np.nan]] * 3))


def test_streaming_equals_exact_below_capacity():
  rng = np.random.default_rng(2)
  x = rng.lognormal(size=(5000, 3))
  x[rng.uniform(size=x.shape) < 0.1] = np.nan
  stats = statistics.StreamingStatistics(3, capacity=8192)
  for start in range(0, 5000, 777):
    stats.update(x[start:start + 777])
  for got, expected in zip(stats.result(), statistics.compute_standardization(x)):
    np.testing.assert_array_equal(got, expected)
  np.testing.assert_array_equal(stats.missing_fraction, np.isnan(x).mean(0))


def test_reservoir_is_a_uniform_sample():
  # Rows 0..N-1 streamed: a uniform sample's mean is (N - 1) / 2 and its
  # quartiles N / 4 and 3N / 4, within a few standard errors.
  n, capacity = 1_000_000, 4096
  stats = statistics.StreamingStatistics(1, seed=3, capacity=capacity)
  for start in range(0, n, 65536):
    stats.update(np.arange(start, min(start + 65536, n), dtype=float)[:, None])
  sample = stats.sample[:, 0]
  assert len(sample) == capacity and len(np.unique(sample)) == capacity
  standard_error = n / np.sqrt(12 * capacity)
  assert abs(sample.mean() - (n - 1) / 2) < 4 * standard_error
  loc, scale = stats.result()
  assert loc[0] == pytest.approx(n / 2, rel=0.03)
  assert scale[0] == pytest.approx(n / 2 / 1.349, rel=0.05)


def test_rarely_observed_column_falls_back_to_exact_moments():
  stats = statistics.StreamingStatistics(2, capacity=1024)
  block = np.zeros((100_000, 2))
  block[:, 0] = np.arange(100_000)
  block[:, 1] = np.nan
  block[-1, 1] = 5.0  # one observed value, late: not in the reservoir
  stats.update(block)
  loc, scale = stats.result()
  assert loc[1] == 5.0 and scale[1] == 1.0


def test_atoms_are_the_values_held_many_times():
  rng = np.random.default_rng(0)
  x = np.stack([
      np.where(rng.uniform(size=1000) < 0.4, 0.0, rng.lognormal(size=1000)),
      rng.integers(0, 3, size=1000).astype(float),  # three atoms
      rng.normal(size=1000),  # no atom
      np.where(rng.uniform(size=1000) < 0.1, np.nan, 7.0),  # one, with gaps
  ], axis=1)
  atoms, frequencies = statistics.compute_atoms(x, num_atoms=2)
  assert atoms.shape == (4, 2)
  assert atoms[0, 0] == 0.0 and np.isnan(atoms[0, 1])
  assert frequencies[0, 0] == pytest.approx(0.4, abs=0.04)
  # The two most frequent of the three codes, most frequent first.
  counts = {v: np.sum(x[:, 1] == v) for v in (0.0, 1.0, 2.0)}
  top = sorted(counts, key=lambda v: -counts[v])[:2]
  np.testing.assert_array_equal(atoms[1], top)
  assert np.isnan(atoms[2]).all() and np.all(frequencies[2] == 0)
  assert atoms[3, 0] == 7.0 and frequencies[3, 0] == 1.0  # of observed values
  none, _ = statistics.compute_atoms(x, num_atoms=0)
  assert none.shape == (4, 0)
  # Too rare to count: fewer than 5 repeats, or under 1% of the rows.
  rare = np.concatenate([np.zeros(4), rng.normal(size=396)])[:, None]
  assert np.isnan(statistics.compute_atoms(rare, 2)[0]).all()


def test_atom_logits_start_the_mixture_at_the_data_frequencies():
  logits = statistics.compute_atom_logits([[0.2, 0.1], [0.0, 0.0],
                                           [0.6, 0.4]])
  np.testing.assert_allclose(np.exp(logits[0]), [0.7, 0.2, 0.1])
  np.testing.assert_allclose(np.exp(logits[1]), [1.0, 1e-6, 1e-6])
  # All rows at atoms: the continuous part keeps a floor of 1e-3.
  np.testing.assert_allclose(np.exp(logits[2]), [1e-3, 0.6, 0.4])


def test_resolution_is_the_decimal_step_the_values_were_recorded_at():
  rng = np.random.default_rng(0)
  values = rng.normal(size=(500, 1)) * 3
  x = np.concatenate([
      np.round(values, 2),  # two decimals
      np.round(values * 40),  # integers
      np.round(values * 40, -1),  # tens
      1.7e9 + np.round(values, 1),  # one decimal on a large offset
      values,  # full-precision floats: none
      np.full([500, 1], 4.2),  # one value: none
  ], axis=1)
  x[::7, 0] = np.nan  # missing values are ignored
  np.testing.assert_array_equal(statistics.compute_resolution(x),
                                [0.01, 1.0, 10.0, 0.1, 0.0, 0.0])
  # Decimal text read back as float64 (0.3 / 0.1 is 2.9999999999999996).
  assert statistics.compute_resolution(
      np.array([[0.1], [0.3], [0.7], [1.1]]))[0] == pytest.approx(0.1)


def test_atoms_are_point_masses_not_the_steps_of_a_grid():
  rng = np.random.default_rng(1)
  ages = np.round(rng.normal(40, 12, size=2000))  # a continuum, rounded
  amounts = np.where(rng.uniform(size=2000) < 0.2, 0.0,
                     np.round(rng.gamma(2.0, 3.0, size=2000), 1))
  months = rng.integers(1, 60, size=2000).astype(float)
  months[:300] = 24.0  # heaped
  atoms, _ = statistics.compute_atoms(np.stack([ages, amounts, months], 1), 8)
  assert np.isnan(atoms[0]).all()  # 39, 40, 41 are as common as each other
  assert atoms[1, 0] == 0.0 and np.isnan(atoms[1, 1:]).all()
  assert atoms[2, 0] == 24.0 and np.isnan(atoms[2, 1:]).all()
  # On a grid too coarse for a density (a step of at least a fifth of the
  # scale) the commonest levels are atoms, as in a discrete column.
  coarse = statistics.is_coarse_grid(np.array([1.0, 0.1, 1.0]),
                                     np.array([4.0, 3.0, 17.0]))
  np.testing.assert_array_equal(coarse, [True, False, False])
  atoms, _ = statistics.compute_atoms(np.stack([ages, amounts, months], 1), 8,
                                      coarse=coarse)
  assert np.sum(~np.isnan(atoms[0])) == 8
  # Independently: 24's neighbours 22, 23, 25, 26 are held about 34 times.
  unique, counts = np.unique(months, return_counts=True)
  index = int(np.flatnonzero(unique == 24.0)[0])
  assert statistics.neighbour_counts(counts)[index] == pytest.approx(
      np.mean(counts[[index - 2, index - 1, index + 1, index + 2]]))
  # Chance repeats of a small table are no atoms: six among values seen
  # once or twice (Poisson tail at mean 1.5: 0.004), but twelve are.
  counts = np.array([1, 2, 1, 6, 2, 1, 1, 2, 12, 1, 2, 1])
  np.testing.assert_array_equal(np.flatnonzero(statistics.stands_out(counts)),
                                [8])
