"""TensorBoard extras beyond Keras' own callback: what the latent code does.

Keras' `TensorBoard` callback already logs `epoch_loss`,
`epoch_reconstruction_nll` and `epoch_kl` under `DIR/train` and
`DIR/validation`. `LatentMonitor` adds, under `DIR/monitor`:

- `latent/kl/<i>`: the mean KL of latent dimension i, in nats;
- `latent/active_units`: dimensions whose posterior mean varies across
  examples (Cov_x E_q[z_i] > 0.01, Burda et al. 2016): collapsed dimensions
  are inactive;
- `decoder/stddev`: a histogram of the decoder's per-feature standard
  deviation at the posterior mean, in data units;
- `decoder/df`: Student's t degrees of freedom per feature (small: heavy
  tails; large: nearly Gaussian);
- `elbo/importance_weighted`: the IWAE estimate of log p(x), in nats;
- `elbo/beta`: the KL weight in force.
"""

import os

import numpy as np
import tensorflow as tf
import tf_keras

from tfvae import objectives

# Burda et al. (2016), section 5.2: a unit is active when its posterior mean's
# variance across examples exceeds 0.01.
ACTIVITY_THRESHOLD = 0.01


def compute_active_units(posterior_means, threshold=ACTIVITY_THRESHOLD):
  """Counts latent dimensions whose posterior mean varies across examples.

  Args:
    posterior_means: array [num_examples, latent_dim] of E_q[z|x].
    threshold: variance above which a dimension counts as active.

  Returns:
    Python int.
  """
  return int(np.sum(np.var(posterior_means, axis=0) > threshold))


class LatentMonitor(tf_keras.callbacks.Callback):
  """Writes latent and decoder summaries for a fixed set of examples.

  Args:
    logdir: the TensorBoard log directory (summaries go to `logdir/monitor`).
    x: float array [N, input_dim], the examples to monitor (a validation set).
    every_epochs: log every this many epochs. Default value: `10`.
    num_samples: importance samples for `elbo/importance_weighted`.
      Default value: `100`.
    max_examples: monitor at most this many rows of x. Default value: `1024`.
  """

  def __init__(self, logdir, x, every_epochs=10, num_samples=100,
               max_examples=1024):
    super().__init__()
    self.x = np.asarray(x, dtype=np.float64)[:max_examples]
    self.every_epochs = int(every_epochs)
    self.num_samples = int(num_samples)
    self.writer = tf.summary.create_file_writer(os.path.join(logdir, "monitor"))

  def on_train_begin(self, logs=None):
    self._last_epoch = None
    self._last_written = None

  def on_epoch_end(self, epoch, logs=None):
    self._last_epoch = epoch
    if epoch % self.every_epochs == 0:
      self.write(epoch)
      self._last_written = epoch

  def on_train_end(self, logs=None):
    if self._last_epoch is not None and self._last_written != self._last_epoch:
      self.write(self._last_epoch)
    self.writer.flush()

  def write(self, epoch):
    """Computes and writes every summary at step `epoch`."""
    model = self.model
    posterior = model.posterior_parameters(self.x)
    loc, scale = posterior["loc"], posterior["scale"]
    kl_per_dim = tf.reduce_mean(objectives.compute_gaussian_kl(loc, scale), 0)
    likelihood = model.likelihood_parameters(loc)
    log_likelihood = model.marginal_log_likelihood(
        self.x, num_samples=self.num_samples, seed=epoch)
    with self.writer.as_default(step=epoch):
      for i, kl in enumerate(kl_per_dim.numpy()):
        tf.summary.scalar(f"latent/kl/{i}", kl)
      tf.summary.scalar("latent/active_units",
                        compute_active_units(loc.numpy()))
      tf.summary.histogram("decoder/stddev", likelihood["stddev"])
      if "df" in likelihood:  # Student's t: the learned tail heaviness
        tf.summary.histogram("decoder/df", likelihood["df"][0])
      tf.summary.scalar("elbo/importance_weighted", np.mean(log_likelihood))
      tf.summary.scalar("elbo/beta", model.current_beta)
