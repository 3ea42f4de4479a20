"""TensorBoard extras: values, not just tags."""

import numpy as np
import tensorflow as tf

from tfvae import monitoring
from tfvae import objectives
from tests import tb_events
from tests.helpers import small_data


def test_active_units_counts_dimensions_whose_mean_varies():
  rng = np.random.default_rng(0)
  means = np.stack([rng.normal(0, 1, 500),      # active
                    rng.normal(0, 0.05, 500),   # variance 0.0025: inactive
                    np.zeros(500),              # collapsed
                    rng.normal(3, 0.2, 500)], axis=1)  # variance 0.04: active
  assert monitoring.compute_active_units(means) == 2


def test_latent_monitor_writes_the_models_own_numbers(tmp_path):
  import tfvae  # pylint: disable=g-import-not-at-top
  x = small_data(n=64, d=3)
  model = tfvae.VAE(input_dim=3, latent_dim=2, likelihood="student_t")
  model.adapt(x)
  model.compile()
  model.fit(x, epochs=3, verbose=0, callbacks=[
      monitoring.LatentMonitor(str(tmp_path), x, every_epochs=2, num_samples=8)])
  tags = tb_events.read_tags(str(tmp_path / "monitor"))
  # Epochs 0 and 2 (every 2), the last also at train end: no duplicate step.
  assert [step for step, _ in tags["elbo/importance_weighted"]] == [0, 2]
  # The last values equal what the trained model gives, computed here.
  posterior = model.posterior_parameters(x)
  kl = np.mean(objectives.compute_gaussian_kl(posterior["loc"],
                                              posterior["scale"]), axis=0)
  for i in range(2):
    assert tags[f"latent/kl/{i}"][-1][1] == np.float32(kl[i])
  active = tags["latent/active_units"][-1][1]
  assert active == monitoring.compute_active_units(posterior["loc"].numpy())
  assert active in (0, 1, 2)
  assert tags["elbo/importance_weighted"][-1][1] == np.float32(
      np.mean(model.marginal_log_likelihood(x, 8, seed=2)))
  assert tags["elbo/beta"][-1][1] == 1.0
  assert "decoder/df" in tags and "decoder/stddev" in tags
  assert tf.reduce_all(tf.math.is_finite(model.likelihood_head.degrees_of_freedom()))
