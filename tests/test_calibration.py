"""Percentiles among held-out scores and contamination thresholds."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvae.inference import calibration


def test_the_reference_is_the_scores_or_their_quantiles():
  rng = np.random.default_rng(0)
  few = rng.normal(size=500)
  np.testing.assert_array_equal(calibration.reference_quantiles(few),
                                np.sort(few))
  many = rng.normal(size=20000)
  kept = calibration.reference_quantiles(many)
  assert kept.shape == (calibration.MAX_POINTS,)
  np.testing.assert_allclose(kept, np.quantile(many, np.linspace(0, 1, 1001)))
  assert kept[0] == many.min() and kept[-1] == many.max()
  for bad in ([1.0], [1.0, np.inf], [np.nan, 2.0, 3.0]):
    with pytest.raises(ValueError, match="at least 2 finite numbers"):
      calibration.reference_quantiles(bad)


def test_percentile_is_the_share_of_reference_rows_scoring_lower():
  rng = np.random.default_rng(1)
  reference_scores = rng.normal(size=100000)
  kept = calibration.reference_quantiles(reference_scores)
  new = rng.normal(size=2000) * 1.5
  # Against the share counted directly among all 100,000 rows: the kept
  # quantiles resolve it to 0.1 percentage points.
  counted = 100 * np.mean(reference_scores[None, :] < new[:, None], axis=1)
  np.testing.assert_allclose(calibration.percentile(kept, new), counted,
                             atol=0.1)
  # And against the normal CDF in closed form, to the sample's noise.
  cdf = 50 * (1 + np.vectorize(math.erf)(new / math.sqrt(2)))
  np.testing.assert_allclose(calibration.percentile(kept, new), cdf, atol=0.5)


def test_percentile_ends_ties_and_gaps():
  kept = np.array([1.0, 2.0, 2.0, 3.0])
  got = calibration.percentile(kept, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 9.0,
                                      np.nan])
  np.testing.assert_allclose(got[:7], [0, 0, 100 / 3, 200 / 3, 250 / 3, 100,
                                       100])
  assert np.isnan(got[7])


@pytest.mark.parametrize("kept", [
    np.array([1.0, 2.0, 2.0, 3.0]),
    np.array([4.0, 4.0, 4.0]),
    np.sort(np.random.default_rng(2).gamma(2.0, size=1001)),
])
def test_the_graphs_percentile_is_numpys(kept):
  scores = np.concatenate([
      kept, np.random.default_rng(3).uniform(kept[0] - 1, kept[-1] + 1, 500),
      [kept[0] - 5, kept[-1] + 5, np.nan]])
  graph = tf.function(lambda s: calibration.tf_percentile(kept, s))
  np.testing.assert_allclose(graph(tf.constant(scores)).numpy(),
                             calibration.percentile(kept, scores),
                             rtol=1e-12, atol=1e-9)


def test_a_contamination_is_the_references_upper_quantile():
  rng = np.random.default_rng(4)
  reference_scores = rng.normal(size=100000)
  kept = calibration.reference_quantiles(reference_scores)
  for contamination in (0.01, 0.05, 0.5):
    cut = calibration.threshold(kept, contamination)
    assert np.mean(reference_scores > cut) == pytest.approx(contamination,
                                                            abs=0.002)
  assert calibration.threshold(kept, 0.05) == pytest.approx(1.6449, abs=0.02)
  for bad in (0, -0.1, 0.6, math.nan):
    with pytest.raises(ValueError, match="contamination must be a "):
      calibration.threshold(kept, bad)
  with pytest.raises(ValueError, match="call model.calibrate"):
    calibration.required(None)
