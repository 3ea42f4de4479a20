"""TensorBoard extras."""

import numpy as np

import tfvae
from tfvae import monitoring
from tests import tb_events


def test_active_units_counts_dimensions_whose_mean_varies():
  rng = np.random.default_rng(0)
  means = np.stack([rng.normal(0, 1, 500),      # active
                    rng.normal(0, 0.05, 500),   # variance 0.0025: inactive
                    np.zeros(500),              # collapsed
                    rng.normal(3, 0.2, 500)], axis=1)  # variance 0.04: active
  assert monitoring.compute_active_units(means) == 2


def test_latent_monitor_writes_namespaced_summaries(tmp_path):
  x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
  model = tfvae.VAE(input_dim=3, latent_dim=2, likelihood="student_t")
  model.compile()
  model.fit(x, epochs=3, verbose=0, callbacks=[
      monitoring.LatentMonitor(str(tmp_path), x, every_epochs=2, num_samples=8)])
  tags = tb_events.read_tags(str(tmp_path / "monitor"))
  assert set(tags) >= {"latent/kl/0", "latent/kl/1", "latent/active_units",
                       "decoder/stddev", "decoder/df", "elbo/importance_weighted",
                       "elbo/beta"}
  # Epochs 0 and 2 (every 2), the last also at train end: no duplicate step.
  assert [step for step, _ in tags["elbo/importance_weighted"]] == [0, 2]
  kl0 = [value for _, value in tags["latent/kl/0"]]
  assert all(np.isfinite(kl0)) and all(v >= 0 for v in kl0)
