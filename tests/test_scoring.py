"""Scoring files."""

import numpy as np
import pytest

import tfvae
from tfvae import scoring


def test_score_file_matches_score_and_checks_width(tmp_path):
  x = np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32)
  model = tfvae.VAE(input_dim=2)
  path = tmp_path / "x.csv"
  np.savetxt(path, x, delimiter=",")
  scores = scoring.score_file(model, path, tmp_path / "s.csv", num_samples=10,
                              batch_size=7, seed=3)
  expected = np.concatenate([model.score(x[i:i + 7], 10, seed=3 + i)
                             for i in range(0, 30, 7)])
  np.testing.assert_allclose(scores, expected)
  lines = (tmp_path / "s.csv").read_text().splitlines()
  assert lines[0] == "row,score" and len(lines) == 31
  np.savetxt(tmp_path / "wide.csv", np.ones((3, 3)), delimiter=",")
  with pytest.raises(ValueError, match="3 columns, but the model expects 2"):
    scoring.score_file(model, tmp_path / "wide.csv", tmp_path / "t.csv")
  assert not (tmp_path / "t.csv").exists()
