"""Small data sets and models shared by the tests."""

import functools

import numpy as np
import tf_keras

import tfvae
from tfvae import synthetic


def small_data(n=256, d=4, seed=0):
  """Rows near a 2-D plane in d dimensions, offset to 5."""
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(n, 2))
  w = rng.normal(size=(2, d))
  return z @ w + 0.3 * rng.normal(size=(n, d)) + 5.0


# The constructor's defaults before they followed the recipe (the original
# snippet's architecture, the ELBO, 8 atom slots): small, and built at
# once, for tests that need a model without data.
PREVIOUS_DEFAULTS = {"latent_dim": 5, "hidden_units": "snippet",
                     "num_train_samples": 1, "df_transform": "softplus",
                     "num_atoms": 8}


def vae(**kwargs):
  """A `tfvae.VAE` with `PREVIOUS_DEFAULTS` under the given settings."""
  return tfvae.VAE(**{**PREVIOUS_DEFAULTS, **kwargs})


def fitted_model(x, epochs, seed=0, batch_size=32, **kwargs):
  """A VAE (`vae`) adapted to and trained on x for a few epochs, at a
  constant learning rate."""
  tf_keras.utils.set_random_seed(seed)
  model = vae(input_dim=x.shape[1], seed=seed, **kwargs)
  model.adapt(x)
  model.compile()
  model.fit(x, epochs=epochs, batch_size=batch_size, lr_patience=0,
            verbose=0)
  return model


def linear_gaussian_marginal(model):
  """The exact p(x) = N(mean, covariance) of a linear `gaussian_shared` VAE.

  x = loc + scale * (W z + b + sigma * e) with z ~ N(0, I), e ~ N(0, I).
  """
  kernel, bias = [w.numpy().astype(np.float64)
                  for w in model.decoder_net.layers[-1].weights]
  raw_scale = model.likelihood_head.raw_scale.numpy().astype(np.float64)
  sigma = np.log1p(np.exp(raw_scale)) + model.standardization.scale_floor(
      model.likelihood_scale_floor, np.float64).numpy()
  loc = model.standardization.loc.numpy()
  scale = model.standardization.scale.numpy()
  mean = loc + scale * bias
  covariance = (kernel.T @ kernel + np.diag(sigma**2)) * np.outer(scale, scale)
  return mean, covariance


@functools.lru_cache(maxsize=None)
def train_linear_on_ppca(seed=1, num_rows=3000, epochs=80):
  """A linear `gaussian_shared` VAE trained on pPCA data: (model, x, x_test).

  Trained once per test process for each setting and shared: tests only
  read it (score, impute, sample), never train it further.
  """
  x, params = synthetic.make_ppca(num_rows, input_dim=6, latent_dim=2,
                                  noise_std=0.3, seed=seed)
  x_test, _ = synthetic.make_ppca(2000, seed=seed + 1, params=params)
  tf_keras.utils.set_random_seed(seed)
  model = tfvae.VAE(input_dim=6, latent_dim=2, hidden_units=(),
                    likelihood="gaussian_shared", num_atoms=0,
                    num_train_samples=1, seed=seed)
  model.adapt(x)
  model.compile(tf_keras.optimizers.Adam(3e-3))
  model.fit(x, epochs=epochs, batch_size=128, lr_patience=0, verbose=0)
  return model, x.astype(np.float64), x_test.astype(np.float64)
