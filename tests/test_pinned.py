"""Same checkpoint, same numbers: a model saved by tfvae at commit cde1eee
(before the redesign) loads, and today's code computes from it what that
code computed (`fixtures/make_pinned.py` wrote both).

`pinned.json` was rewritten once since, when atoms became point masses
(tfvae 0.3): only the likelihood's values at atoms changed (the
log-likelihoods, scores and the loss; variances by the old spikes' 1e-6);
posteriors, samples, imputations and likelihood means kept every digit.
And for tfvae 0.4, for two changes, each checked to change nothing else:
`sample` lays its uniforms out row by row (so that row i is the same
whatever the number of rows): only "sample" changed; the importance
proposal of rows with gaps gained the prior as a defensive component
(`tfvae.inference.importance.proposal`): only the three test rows with
gaps changed (their log-likelihoods, scores and imputations). And for
tfvae 0.5, when that proposal gained components adapted to each row
(population Monte Carlo): again only the three rows with gaps changed.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import tfvae
from tfvae import export
from tests.fixtures import make_pinned

# Its tests share trained models: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("pinned")

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture(scope="session")
def pinned():
  model = tfvae.load_checkpoint(os.path.join(FIXTURES, "pinned_checkpoint"))
  with open(os.path.join(FIXTURES, "pinned.json"), encoding="utf-8") as f:
    expected = json.load(f)
  return model, make_pinned.pinned_data()[1], expected


def _array(values):
  return np.array(values, dtype=np.float64)  # None -> NaN


def test_the_old_checkpoint_computes_the_same_numbers(pinned):
  model, test, expected = pinned
  got = make_pinned.compute(model, test)
  assert set(got) == set(expected)
  for name, value in got.items():
    if name == "evaluate":
      assert value.keys() == expected[name].keys()
      for metric, number in value.items():
        assert number == pytest.approx(expected[name][metric], rel=1e-6), metric
      continue
    np.testing.assert_allclose(np.asarray(value, np.float64),
                               _array(expected[name]), rtol=1e-9, atol=1e-12,
                               err_msg=name)


def test_the_served_scorer_gives_the_pinned_numbers(pinned):
  # The exported scorer's functions, called before saving: that saving
  # keeps their numbers is `test_export`'s concern.
  model, test, expected = pinned
  scorer = export.ScorerModule(model, num_samples=50)
  seed = tf.constant([3, 0], tf.int64)
  served = scorer.score(x=tf.constant(test), seed=seed)
  np.testing.assert_allclose(served["log_likelihood"],
                             _array(expected["marginal_log_likelihood"]),
                             rtol=1e-9)
  imputed = scorer.impute(x=tf.constant(test), seed=seed)
  np.testing.assert_allclose(imputed["x_imputed"],
                             _array(expected["impute_mean"]), rtol=1e-7)
  np.testing.assert_allclose(imputed["x_stddev"],
                             _array(expected["impute_std"]), rtol=1e-6)
