"""Scoring files: streamed, batch-independent, checked against exact densities."""

import os
import stat

import numpy as np
import pytest

from tfvae import scoring
from tfvae import synthetic
from tests.helpers import fitted_model
from tests.helpers import linear_gaussian_marginal
from tests.helpers import train_linear_on_ppca

# Its tests share trained models: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("scoring")


@pytest.fixture(scope="session")
def linear():
  return train_linear_on_ppca(num_rows=2000, epochs=40)


def test_scores_match_the_exact_density_and_do_not_depend_on_batches(
    tmp_path, linear):
  model, _, x_test = linear
  x = x_test[:300]
  path = tmp_path / "x.csv"
  np.savetxt(path, x, delimiter=",", header="a,b,c,d,e,f", comments="")
  result = scoring.score_file(model, path, tmp_path / "s.csv",
                              num_samples=2000, batch_size=64, seed=3)
  table = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
  np.testing.assert_array_equal(table[:, 0], np.arange(300))
  # An independent computation: the linear model's exact marginal density,
  # per standard deviation of each column (the score's basis).
  mean, covariance = linear_gaussian_marginal(model)
  exact = -(synthetic.gaussian_log_density(x, mean, covariance) +
            np.log(model.standardization.scale.numpy()).sum())
  # Rows get independent draws: at K = 2000 a row's error has a standard
  # deviation of about 0.012 nats here (measured), so the largest of 300 is
  # about 0.07, and their mean is within 0.002 of the bias (<= 0: IWAE
  # bounds log p from below in expectation).
  assert np.abs(table[:, 1] - exact).max() < 0.12
  assert abs(np.mean(table[:, 1] - exact)) < 0.005
  # The same numbers as the Python API on the whole array, whatever the
  # batches: a row's importance samples are keyed by its values.
  np.testing.assert_allclose(table[:, 1],
                             model.anomaly_score(x, 2000, seed=3), rtol=1e-9)
  assert result.rows == 300 and result.argmax == int(np.argmax(table[:, 1]))
  assert result.max == pytest.approx(table[:, 1].max())


def test_rows_with_gaps_and_the_per_feature_score(tmp_path, linear):
  model, _, x_test = linear
  x = x_test[:20].copy()
  x[3, 1] = np.nan
  x[5, :3] = np.nan
  x[7, :] = np.nan
  np.save(tmp_path / "x.npy", x)
  scoring.score_file(model, tmp_path / "x.npy", tmp_path / "s.csv",
                     num_samples=500, seed=0, per_feature=True)
  lines = (tmp_path / "s.csv").read_text().splitlines()
  assert lines[0] == "row,score,score_per_feature"
  table = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
  observed = (~np.isnan(x)).sum(1)
  assert table[7, 1] == 0.0 and table[7, 2] == 0.0  # nothing observed
  np.testing.assert_allclose(table[:, 2], np.where(observed > 0, table[:, 1] /
                                                   np.maximum(observed, 1), 0))


def test_bad_input_leaves_no_output_and_the_input_is_protected(tmp_path):
  x = np.random.default_rng(0).normal(size=(30, 2))
  model = fitted_model(x, epochs=1)
  np.savetxt(tmp_path / "wide.csv", np.ones((3, 3)), delimiter=",")
  with pytest.raises(ValueError, match="3 columns, but the model expects 2"):
    scoring.score_file(model, tmp_path / "wide.csv", tmp_path / "t.csv")
  assert not (tmp_path / "t.csv").exists()
  np.savetxt(tmp_path / "x.csv", x, delimiter=",")
  with pytest.raises(ValueError, match="is also an input"):
    scoring.score_file(model, tmp_path / "x.csv", tmp_path / "x.csv",
                       overwrite=True)
  old = os.umask(0o022)
  try:
    scoring.score_file(model, tmp_path / "x.csv", tmp_path / "s.csv",
                       num_samples=5)
  finally:
    os.umask(old)
  assert stat.S_IMODE(os.stat(tmp_path / "s.csv").st_mode) == 0o644
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      "s.csv", "wide.csv", "x.csv"]


def test_each_columns_share_is_its_posterior_surprise_in_closed_form(
    tmp_path, linear):
  model, _, x_test = linear
  x = x_test[:50].copy()
  x[0, 2] += 8 * x_test[:, 2].std()  # one strange value
  x[1, 4] = np.nan
  np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="a,b,c,d,e,f",
             comments="")
  scoring.score_file(model, tmp_path / "x.csv", tmp_path / "s.csv",
                     num_samples=2000, seed=3, per_column=True)
  lines = (tmp_path / "s.csv").read_text().splitlines()
  assert lines[0] == ("row,score," + ",".join(f"share_{c}" for c in "abcdef")
                      + ",share_latent")
  table = np.genfromtxt(tmp_path / "s.csv", delimiter=",", skip_header=1)
  score, shares = table[:, 1], table[:, 2:9]
  # The shares add up to the score, which is anomaly_score's (same draws).
  np.testing.assert_allclose(shares.sum(1), score, rtol=1e-9)
  # (anomaly_score sums its draws in chunks: rounding differs by ~1e-9.)
  np.testing.assert_allclose(score, model.anomaly_score(x, 2000, seed=3),
                             rtol=1e-7)
  assert shares[1, 4] == 0.0  # a missing value adds nothing
  assert np.argmax(shares[0, :6]) == 2  # the strange value stands out
  # Closed form: the linear model's posterior is N(m, S); a column's share
  # is E[-log N(u_d; (z W + b)_d, sigma_d^2)] under it, per standard
  # deviation, and the latent's is KL(N(m, S) || N(0, I)) (the ELBO is
  # tight at the exact posterior). Rows the model finds typical (row 0's
  # posterior, 8 sds out, is far from what the encoder proposes, and its
  # few effective draws place the shares only roughly).
  kernel, bias = [w.numpy().astype(np.float64)
                  for w in model.decoder_net.layers[-1].weights]  # [L, D]
  raw = model.likelihood_head.raw_scale.numpy().astype(np.float64)
  sigma2 = (np.log1p(np.exp(raw)) + model.standardization.scale_floor(
      model.likelihood_scale_floor, np.float64).numpy()) ** 2
  u = (x - model.standardization.loc.numpy()) / (
      model.standardization.scale.numpy())
  errors = []
  for row in range(1, len(x)):
    seen = ~np.isnan(u[row])
    w, s2 = kernel[:, seen], sigma2[seen]
    covariance = np.linalg.inv(np.eye(2) + (w / s2) @ w.T)
    mean = covariance @ (w / s2) @ (u[row, seen] - bias[seen])
    residual = u[row, seen] - bias[seen] - mean @ w
    expected = 0.5 * np.log(2 * np.pi * s2) + (
        residual ** 2 + np.einsum("ld,lk,kd->d", w, covariance, w)) / (2 * s2)
    kl = 0.5 * (np.trace(covariance) + mean @ mean - 2 -
                np.log(np.linalg.det(covariance)))
    errors.append(np.r_[shares[row, :6][seen] - expected, shares[row, 6] - kl])
  errors = np.concatenate(errors)
  # Monte Carlo error at K = 2000 (measured on these rows: mean absolute
  # 0.011 nats, largest 0.15; at K = 20,000, 0.003 and 0.024): each share
  # within noise, and no bias over the rows.
  assert np.mean(np.abs(errors)) < 0.03
  assert abs(np.mean(errors)) < 0.01
  assert np.max(np.abs(errors)) < 0.4
