"""The synthetic-data report's measures against closed forms and brute
force (numpy only)."""

import itertools
import statistics

import numpy as np
import pytest

from tfvae import fidelity


def test_ks_complement_closed_forms():
  a = np.array([0.0, 1.0, 2.0, 3.0])
  assert fidelity.ks_complement(a, a) == 1.0
  # The empirical CDFs of {0..3} and {2..5} differ by at most 1/2.
  assert fidelity.ks_complement(a, a + 2.0) == pytest.approx(0.5)
  assert fidelity.ks_complement(a, a + 10.0) == 0.0
  assert fidelity.ks_complement(np.r_[a, np.nan], a) == 1.0  # gaps left out


def test_ks_complement_matches_the_largest_cdf_gap_by_brute_force(rng):
  a, b = rng.normal(size=37), rng.normal(0.4, 1.3, size=53)
  grid = np.r_[a, b]
  gaps = [abs(np.mean(a <= t) - np.mean(b <= t)) for t in grid]
  assert fidelity.ks_complement(a, b) == pytest.approx(1 - max(gaps))


def test_correlation_similarity():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(500, 3))
  x[:, 1] += x[:, 0]
  same = fidelity.correlation_similarity(x, x)
  np.testing.assert_allclose(same[np.triu_indices(3, 1)], 1.0)
  flipped = x * [1, -1, 1]
  r = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
  assert fidelity.correlation_similarity(x, flipped)[0, 1] == pytest.approx(
      1 - abs(2 * r) / 2)


def test_roc_auc_counts_pairs_with_ties_as_half(rng):
  labels = rng.random(60) < 0.4
  scores = np.round(rng.normal(size=60) + labels, 1)
  pairs = [1.0 if p > n else 0.5 if p == n else 0.0
           for p, n in itertools.product(scores[labels], scores[~labels])]
  assert fidelity.roc_auc(labels, scores) == pytest.approx(np.mean(pairs))
  assert fidelity.roc_auc([0, 0, 1, 1], [1, 2, 3, 4]) == 1.0
  assert fidelity.roc_auc([0, 0, 1, 1], [4, 3, 2, 1]) == 0.0


def test_logistic_regression_reaches_its_optimum(rng):
  # At the minimum of mean log-loss + l2/2 |W|^2 the gradient vanishes.
  x = rng.normal(size=(400, 3))
  labels = np.argmax(x @ rng.normal(size=(3, 3)) + rng.gumbel(size=(400, 3)),
                     axis=1)
  l2 = 0.01
  weights = fidelity.fit_logistic(x, labels, 3, l2=l2)
  design = np.hstack([x, np.ones([400, 1])])
  p = fidelity.predict_logistic(weights, x)
  gradient = design.T @ (p - np.eye(3)[labels]) / 400
  gradient[:-1] += l2 * weights[:-1]
  np.testing.assert_allclose(gradient, 0.0, atol=1e-8)


def test_detection_tells_apart_only_what_differs(rng):
  real = rng.normal(size=(1500, 4))
  same = rng.normal(size=(1500, 4))
  shifted = same + [0, 0, 2.0, 0]
  score_same, auc_same = fidelity.detection_score(real, same)
  score_shifted, auc_shifted = fidelity.detection_score(real, shifted)
  assert auc_same < 0.56 and score_same > 0.88
  # One column shifted by 2 sd: the best AUC is Phi(2 / sqrt(2)) = 0.921.
  best = statistics.NormalDist().cdf(2 / np.sqrt(2))
  assert auc_shifted == pytest.approx(best, abs=0.02)
  assert score_shifted == pytest.approx(2 - 2 * auc_shifted, abs=0.02)


def test_privacy_sees_copies_and_not_fresh_rows(rng):
  train = rng.normal(size=(2000, 3))
  holdout = rng.normal(size=(500, 3))
  copies = fidelity.privacy(train, holdout, train[:500].copy())
  assert copies["exact_copies"] == 500 and copies["dcr_ratio"] == 0.0
  fresh = fidelity.privacy(train, holdout, rng.normal(size=(500, 3)))
  assert fresh["exact_copies"] == 0
  assert fresh["dcr_ratio"] == pytest.approx(1.0, abs=0.2)


def test_ml_efficacy_regression_and_classification(rng):
  x = rng.normal(size=(3000, 3))
  y = x @ [1.0, -2.0, 0.5] + rng.normal(size=3000)  # R^2 = 5.25 / 6.25
  table = np.column_stack([x, y])
  metric, value = fidelity.ml_efficacy(table[:2000], table[2000:], 3)
  assert metric == "r2" and value == pytest.approx(5.25 / 6.25, abs=0.03)
  labels = (x[:, 0] > 0).astype(float)
  table = np.column_stack([x, labels])
  metric, value = fidelity.ml_efficacy(table[:2000], table[2000:], 3)
  assert metric == "accuracy" and value > 0.97


def test_report_puts_the_training_rows_as_ceiling(rng):
  cov = [[1.0, 0.8], [0.8, 1.0]]
  train = rng.multivariate_normal([0, 0], cov, size=800)
  holdout = rng.multivariate_normal([0, 0], cov, size=400)
  independent = rng.normal(size=(800, 2))  # right shapes, no correlation
  result = fidelity.report(train, holdout, independent, ("a", "b"), target=1)
  assert result["column_shapes"]["score"] > 0.9
  assert result["column_pair_trends"]["score"] == pytest.approx(0.6, abs=0.05)
  assert result["ceiling"]["column_pair_trends"]["score"] > 0.95
  assert result["ml_efficacy"]["value"] < 0.05 < (
      result["ceiling"]["ml_efficacy"]["value"])
  assert set(result["column_shapes"]["per_column"]) == {"a", "b"}
  assert "synthetic" in fidelity.markdown(result)
