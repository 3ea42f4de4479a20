"""TensorBoard that shows what a VAE is doing, at a small, bounded cost.

`VAEMonitor` is a Keras callback for any `fit` of a `tfvae.VAE`. Keras' own
`TensorBoard` callback keeps writing `epoch_*` scalars under `LOGDIR/train`
and `LOGDIR/validation`; the monitor adds, under `LOGDIR/monitor`, computed
on a fixed set of monitored rows (at most 1,024, e.g. the validation split):

- `latent/kl/<i>`: the mean KL of latent dimension i (nats); a collapsed
  dimension sits at 0. `latent/kl` is their sum. `latent/active_units`:
  dimensions whose posterior mean varies across rows (variance > 0.01,
  Burda et al. 2016). Histograms `latent/posterior_mean` and
  `latent/posterior_stddev` (near 0 and 1 respectively for a collapsed
  dimension, which then follows the prior).
- `decoder/scale/<feature>`: histograms of the decoder's scale over the
  monitored rows, in data units, for up to 12 features;
  `decoder/scale_at_floor`: the share of (row, feature) scales within 5%
  of their floor, the road to numerical trouble on discrete columns;
  `decoder/df`: Student's t degrees of freedom per feature.
- `elbo/importance_weighted`: the monitored rows' importance-weighted
  log-likelihood (K = 64 by default), every `iwae_every` epochs;
  `elbo/beta`: the KL weight in force.
- `optimizer/learning_rate` and `optimizer/gradient_norm` (the epoch's mean
  global norm, measured inside `train_step`: no second backward pass).
- Images (`images/reconstruction`, `images/latent_space`,
  `images/marginals`), drawn with matplotlib every `image_every` epochs.
- With `hparams`: the run's hyper-parameters and final metrics
  (`hparams/best_val_loss`, `hparams/validation_log_likelihood`) for the
  HParams dashboard, where runs started with different flags sit in one
  table (open TensorBoard on the folder above the runs' log directories).

Cost: everything but the final record is skipped while the monitor's time
exceeds `time_budget` (5%) of the run's, so logging never slows training
noticeably. At the end of training the monitor writes one more record at
step = epochs run, with the final (best, restored) weights. A failure to
draw an image is a warning, never a lost run.
"""

import io
import math
import os
import time
import warnings

import numpy as np
import tensorflow as tf
import tf_keras

from tfvae import objectives

# Burda et al. (2016), section 5.2: a unit is active when its posterior mean's
# variance across examples exceeds 0.01.
ACTIVITY_THRESHOLD = 0.01
MAX_PLOTTED_FEATURES = 12
# A decoder scale this close to its floor (relative) counts as at the floor.
FLOOR_TOLERANCE = 0.05


def compute_active_units(posterior_means, threshold=ACTIVITY_THRESHOLD):
  """Counts latent dimensions whose posterior mean varies across examples.

  Args:
    posterior_means: array [num_examples, latent_dim] of E_q[z|x].
    threshold: variance above which a dimension counts as active.

  Returns:
    Python int.
  """
  return int(np.sum(np.var(posterior_means, axis=0) > threshold))


def _feature_name(model, index):
  if model.feature_names:
    return model.feature_names[index]
  return f"column_{index + 1}"


class VAEMonitor(tf_keras.callbacks.Callback):
  """Writes latent, decoder, bound, optimizer and image summaries.

  Args:
    logdir: the TensorBoard log directory (summaries go to `logdir/monitor`,
      hyper-parameters to `logdir` itself).
    x: float array [N, input_dim], the rows to monitor (at most `max_rows`
      are used: the first ones).
    iwae_every: epochs between importance-weighted bounds. Default: `10`.
    num_samples: importance samples K for the bound. Default: `64`.
    image_every: epochs between images. Default: `50`.
    max_rows: monitored rows. Default: `1024`.
    hparams: optional dict of hyper-parameters for the HParams dashboard.
    time_budget: the largest share of the run's time the monitor may take
      before it skips a record. Default: `0.05`.
    skip_epoch: optional callable() -> bool; True skips an epoch's record
      (an epoch interrupted by a signal, redone on resumption).
    seed: int, for the bound's and the samples' draws.
  """

  def __init__(self, logdir, x, iwae_every=10, num_samples=64, image_every=50,
               max_rows=1024, hparams=None, time_budget=0.05, skip_epoch=None,
               seed=0):
    super().__init__()
    self.logdir = os.fspath(logdir)
    self.x = np.asarray(x, dtype=np.float64)[:max_rows]
    self.iwae_every = int(iwae_every)
    self.num_samples = int(num_samples)
    self.image_every = int(image_every)
    self.hparams = hparams
    self.time_budget = float(time_budget)
    self.skip_epoch = skip_epoch
    self.seed = int(seed)
    self._writer = None
    self._spent = 0.0
    self._start = None

  @property
  def writer(self):
    if self._writer is None:
      self._writer = tf.summary.create_file_writer(
          os.path.join(self.logdir, "monitor"))
    return self._writer

  # -- Keras hooks ----------------------------------------------------------

  def on_train_begin(self, logs=None):
    self._start = time.monotonic()
    self._spent = 0.0
    self._due_iwae = self._due_images = False
    if self.hparams is not None:
      self._write_hparams_start()

  def on_epoch_end(self, epoch, logs=None):
    if self.skip_epoch is not None and self.skip_epoch():
      return
    # A bound or images skipped for the budget stay due: they are written
    # at the next epoch the budget allows, so short runs still show them.
    self._due_iwae |= (epoch + 1) % self.iwae_every == 0
    self._due_images |= (epoch + 1) % self.image_every == 0
    elapsed = time.monotonic() - self._start
    if self._spent > self.time_budget * elapsed:
      return
    started = time.monotonic()
    self.write(epoch, iwae=self._due_iwae, images=self._due_images,
               gradient_norm=(logs or {}).get("gradient_norm"))
    self._due_iwae = self._due_images = False
    self._spent += time.monotonic() - started

  def on_train_end(self, logs=None):
    if self._writer is not None:
      self._writer.flush()

  # -- Records --------------------------------------------------------------

  def write(self, step, iwae=True, images=True, gradient_norm=None):
    """Computes and writes the summaries at `step` with the model as it is.

    Reads no synchronised metric (under tf.distribute such a read is a
    collective step that only the chief would take): the gradient norm
    comes from the epoch's logs.
    """
    model = self.model
    posterior = model.posterior_parameters(self.x)
    loc, scale = posterior["loc"].numpy(), posterior["scale"].numpy()
    kl_per_dim = np.mean(objectives.compute_gaussian_kl(loc, scale), axis=0)
    likelihood = model.likelihood_parameters(posterior["loc"])
    with self.writer.as_default(step=step):
      for i, kl in enumerate(kl_per_dim):
        tf.summary.scalar(f"latent/kl/{i}", kl)
      tf.summary.scalar("latent/kl", float(np.sum(kl_per_dim)))
      tf.summary.scalar("latent/active_units", compute_active_units(loc))
      tf.summary.histogram("latent/posterior_mean", loc)
      tf.summary.histogram("latent/posterior_stddev", scale)
      self._write_decoder(likelihood)
      self._write_column_types(posterior["loc"])
      tf.summary.scalar("elbo/beta", float(model.current_beta.numpy()))
      tf.summary.scalar("optimizer/learning_rate",
                        float(tf_keras.backend.get_value(
                            model.optimizer.learning_rate)))
      if gradient_norm is not None:
        tf.summary.scalar("optimizer/gradient_norm", float(gradient_norm))
      scores = None
      if iwae or images:
        log_likelihood = model.marginal_log_likelihood(
            self.x, num_samples=self.num_samples, seed=self.seed)
        scores = -log_likelihood
        if iwae:
          tf.summary.scalar("elbo/importance_weighted",
                            float(np.mean(log_likelihood)))
      if images:
        self._write_images(loc, scores)
    self.writer.flush()

  def _write_column_types(self, loc):
    """Reconstruction by column type at the posterior mean: nats per
    observed value (`reconstruction/nats/<type>`: -log p(x_d|z), real
    values per standard deviation, positive ones per standard deviation of
    log x, counts and levels by their probability) and, for
    text columns, how often the most probable level is the value
    (`reconstruction/accuracy/<categorical|binary>`)."""
    model = self.model
    u, observed = model.standardize(tf.constant(self.x))
    standard = model.standard_likelihood_parameters(loc)
    atom_index = model.atom_index(u)
    nats = -model.column_log_prob(standard, u, observed, tf.float64,
                                  atom_index).numpy()
    observed = observed.numpy()
    levels = np.asarray(model.num_levels)
    numeric_types = (np.asarray(model.column_types)
                     if isinstance(model.column_types, tuple)
                     else np.full(model.input_dim, "real"))
    kinds = {kind: (levels == 0) & (numeric_types == kind)
             for kind in ("real", "positive", "count")}
    kinds.update(binary=levels == 2, categorical=levels > 2)
    predicted = None
    if levels.any():
      probabilities = model.likelihood_head.component_probabilities(
          standard).numpy()[..., 1:]  # [B, D, A]: level i in slot i
      predicted = np.argmax(probabilities, axis=-1)
    for kind, columns in kinds.items():
      cells = observed & columns[None, :]
      if not cells.any():
        continue
      tf.summary.scalar(f"reconstruction/nats/{kind}",
                        float(np.mean(nats[cells])))
      if kind in ("binary", "categorical"):
        right = predicted == np.where(cells, self.x, -1)
        tf.summary.scalar(f"reconstruction/accuracy/{kind}",
                          float(np.mean(right[cells])))

  def _write_decoder(self, likelihood):
    model = self.model
    scale = likelihood["scale"].numpy()
    data_scale = model.standardization.scale.numpy()
    floor = model.standardization.scale_floor(
        model.likelihood_scale_floor, tf.float64).numpy() * data_scale
    at_floor = scale <= floor * (1 + FLOOR_TOLERANCE)
    tf.summary.scalar("decoder/scale_at_floor", float(np.mean(at_floor)))
    for feature in range(min(model.input_dim, MAX_PLOTTED_FEATURES)):
      tf.summary.histogram(f"decoder/scale/{_feature_name(model, feature)}",
                           scale[:, feature])
    if "df" in likelihood:  # Student's t: the learned tail heaviness
      tf.summary.histogram("decoder/df", likelihood["df"].numpy()[0])

  def write_final(self, step, metrics=None):
    """The last record: every summary and image at `step` (the number of
    epochs run), with the final weights, and the HParams metrics."""
    self.write(step, iwae=True, images=True)
    if self.hparams is not None and metrics:
      with tf.summary.create_file_writer(self.logdir).as_default(step=step):
        for name, value in metrics.items():
          if value is not None and math.isfinite(value):
            tf.summary.scalar(f"hparams/{name}", value)

  # -- HParams ----------------------------------------------------------------

  def _write_hparams_start(self):
    from tensorboard.plugins.hparams import api as hp  # pylint: disable=g-import-not-at-top
    values = {name: (value if isinstance(value, (bool, int, float, str))
                     else str(value)) for name, value in self.hparams.items()}
    metrics = [
        hp.Metric("hparams/best_val_loss", display_name="best val_loss"),
        hp.Metric("hparams/validation_log_likelihood",
                  display_name="validation log-likelihood"),
        hp.Metric("epoch_loss", group="validation", display_name="val_loss"),
        hp.Metric("epoch_loss", group="train", display_name="loss"),
    ]
    with tf.summary.create_file_writer(self.logdir).as_default():
      hp.hparams_config(hparams=[hp.HParam(name) for name in values],
                        metrics=metrics)
      hp.hparams(values, trial_id=os.path.basename(
          os.path.abspath(self.logdir)))

  # -- Images -----------------------------------------------------------------

  def _write_images(self, loc, scores):
    for name, draw in (("reconstruction", self._draw_reconstruction),
                       ("latent_space", self._draw_latent_space),
                       ("marginals", self._draw_marginals)):
      try:
        png = draw(loc, scores)
        tf.summary.image(f"images/{name}",
                         tf.image.decode_png(png, channels=4)[None])
      except Exception as error:  # pylint: disable=broad-except
        warnings.warn(f"TensorBoard image {name} failed: "
                      f"{type(error).__name__}: {error}", RuntimeWarning)

  @staticmethod
  def _figure(width, height):
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg", force=False)
    from matplotlib import figure  # pylint: disable=g-import-not-at-top
    return figure.Figure(figsize=(width, height), dpi=80)

  @staticmethod
  def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()

  def _draw_reconstruction(self, loc, scores):
    """Data vs reconstruction mean with a +-2 stddev band, standardised."""
    del scores
    model = self.model
    rows = np.arange(min(4, len(self.x)))
    features = np.arange(min(model.input_dim, MAX_PLOTTED_FEATURES))
    likelihood = model.likelihood_parameters(loc[rows])
    center = model.standardization.loc.numpy()[features]
    spread = model.standardization.scale.numpy()[features]

    def standard(values):
      return (np.asarray(values)[:, features] - center) / spread

    mean = standard(likelihood["mean"].numpy())
    stddev = np.asarray(likelihood["stddev"].numpy())[:, features] / spread
    stddev = np.where(np.isfinite(stddev), stddev, np.nan)
    data = standard(self.x[rows])
    fig = self._figure(8, 1.8 * len(rows))
    for i, row in enumerate(rows):
      axis = fig.add_subplot(len(rows), 1, i + 1)
      axis.fill_between(features, mean[i] - 2 * stddev[i],
                        mean[i] + 2 * stddev[i], alpha=0.3,
                        label="reconstruction +- 2 sd")
      axis.plot(features, mean[i], "-", label="reconstruction mean")
      axis.plot(features, data[i], "o", color="black", label="data")
      axis.set_ylabel(f"row {row}")
      if i == 0:
        axis.legend(loc="upper right", fontsize=7)
    axis.set_xticks(features)
    axis.set_xticklabels([_feature_name(model, f) for f in features],
                         rotation=45, fontsize=7, ha="right")
    fig.suptitle("reconstructions (standardised units)", fontsize=9)
    _tight_layout(fig)
    return self._png(fig)

  def _draw_latent_space(self, loc, scores):
    """Posterior means in 2-D (the first two latents, or a PCA)."""
    if loc.shape[1] == 1:
      points = np.concatenate([loc, np.zeros_like(loc)], axis=1)
      labels = ("z_0", "")
    elif loc.shape[1] == 2:
      points, labels = loc, ("z_0", "z_1")
    else:
      centred = loc - loc.mean(0)
      _, _, components = np.linalg.svd(centred, full_matrices=False)
      points, labels = centred @ components[:2].T, ("PC 1", "PC 2")
    fig = self._figure(5, 4)
    axis = fig.add_subplot(1, 1, 1)
    shown = axis.scatter(points[:, 0], points[:, 1], c=scores, s=8,
                         cmap="viridis")
    fig.colorbar(shown, ax=axis, label="anomaly score (nats)")
    axis.set_xlabel(labels[0])
    axis.set_ylabel(labels[1])
    axis.set_title("posterior means", fontsize=9)
    _tight_layout(fig)
    return self._png(fig)

  def _draw_marginals(self, loc, scores):
    """Histograms of the data vs of `model.sample` for up to 12 features."""
    del loc, scores
    model = self.model
    # The model's own draws (no range, no rounding): its density as it is.
    samples = model.sample(max(len(self.x), 500), seed=self.seed,
                           as_recorded=False)
    features = range(min(model.input_dim, MAX_PLOTTED_FEATURES))
    columns = 4
    rows = math.ceil(len(features) / columns)
    fig = self._figure(10, 2.2 * rows)
    for feature in features:
      axis = fig.add_subplot(rows, columns, feature + 1)
      data = self.x[:, feature]
      data = data[~np.isnan(data)]
      low, high = np.percentile(np.concatenate([data, samples[:, feature]]),
                                [0.5, 99.5])
      bins = np.linspace(low, high if high > low else low + 1, 30)
      # One polygon per histogram ("stepfilled"), not a patch per bar: the
      # figure draws several times faster.
      axis.hist(data, bins=bins, density=True, alpha=0.5, label="data",
                histtype="stepfilled")
      axis.hist(samples[:, feature], bins=bins, density=True, alpha=0.5,
                label="model", histtype="stepfilled")
      axis.set_title(_feature_name(model, feature), fontsize=8)
      axis.tick_params(labelsize=6)
      if feature == 0:
        axis.legend(fontsize=6)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.08, top=0.92,
                        wspace=0.25, hspace=0.5)  # tight_layout costs 0.7 s
    return self._png(fig)


class EpochTensorBoard(tf_keras.callbacks.TensorBoard):
  """Keras' TensorBoard callback, resumable without duplicated epochs.

  `skip_epoch()` True skips an epoch's record (an epoch interrupted by a
  signal: it is redone on resumption). `fill_missing(history, first)`
  writes from a restored history any epoch before `first` that a crash
  kept from the logs (the backup is written before this callback logs).
  """

  def __init__(self, log_dir, skip_epoch=None, **kwargs):
    kwargs.setdefault("write_graph", False)
    super().__init__(log_dir=log_dir, **kwargs)
    self.skip_epoch = skip_epoch

  def on_epoch_end(self, epoch, logs=None):
    if self.skip_epoch is not None and self.skip_epoch():
      return
    super().on_epoch_end(epoch, logs)

  def fill_missing(self, history, first):
    """Writes restored epochs the logs lack (those after the last logged)."""
    if first <= 0 or not history:
      return
    for run, prefix in (("train", ""), ("validation", "val_")):
      # Per run: a kill can keep one writer's last record and lose the
      # other's.
      logged = last_logged_step(os.path.join(self.log_dir, run), "epoch_loss")
      for epoch in range((logged if logged is not None else -1) + 1, first):
        values = {name[len(prefix):]: series[epoch]
                  for name, series in history.items()
                  if (name.startswith("val_") == bool(prefix)) and
                  epoch < len(series)}
        if not values:
          continue
        with tf.summary.create_file_writer(
            os.path.join(self.log_dir, run)).as_default(step=epoch):
          for name, value in values.items():
            tf.summary.scalar(f"epoch_{name}", value)


def last_logged_step(run_dir, tag):
  """The largest step of `tag` in a run's event files, or None."""
  if not os.path.isdir(run_dir):
    return None
  last = None
  for name in sorted(os.listdir(run_dir)):
    if not name.startswith("events.out.tfevents"):
      continue
    try:
      for event in tf.compat.v1.train.summary_iterator(
          os.path.join(run_dir, name)):
        if any(value.tag == tag for value in event.summary.value):
          last = event.step if last is None else max(last, event.step)
    except tf.errors.DataLossError:
      pass  # a record cut short by a kill: the ones before it count
  return last


def _tight_layout(fig):
  """`fig.tight_layout()`, without matplotlib's warning when long labels
  leave it no room (the figure is still drawn, only less tidily)."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    fig.tight_layout()
