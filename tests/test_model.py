"""The VAE model: training mechanics, stability, likelihoods, round trips."""

import math
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import tfvae
from tfvae import baselines
from tfvae import model as model_lib
from tfvae import synthetic

METRICS = {"loss", "reconstruction_nll", "kl"}


def small_data(n=256, d=4, seed=0):
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(n, 2))
  w = rng.normal(size=(2, d))
  return (z @ w + 0.3 * rng.normal(size=(n, d)) + 5.0).astype(np.float32)


def fitted_model(x, epochs, **kwargs):
  """A VAE adapted to and trained on x for a few epochs."""
  model = tfvae.VAE(input_dim=x.shape[1], **kwargs)
  model.adapt(x)
  model.compile()
  model.fit(x, epochs=epochs, batch_size=32, verbose=0)
  return model


def assert_all_finite(history):
  for name, values in history.history.items():
    assert np.all(np.isfinite(values)), f"{name} became non-finite: {values}"


def test_hidden_units_defaults_to_the_snippet():
  model = tfvae.VAE(input_dim=7)
  assert model.hidden_units == (7,) and model.latent_dim == 5
  assert [layer.units for layer in model.encoder_net.layers] == [7, 10]
  assert [layer.units for layer in model.decoder_net.layers] == [7, 14]
  linear = tfvae.VAE(input_dim=7, hidden_units=())
  assert len(linear.encoder_net.layers) == 1
  deep = tfvae.VAE(input_dim=7, hidden_units=(32, 16), latent_dim=3)
  assert [layer.units for layer in deep.decoder_net.layers] == [16, 32, 14]


def test_fit_numpy_with_validation_split_reports_every_metric():
  model = tfvae.VAE(input_dim=4)
  model.adapt(small_data())
  model.compile()
  history = model.fit(small_data(), epochs=8, batch_size=32,
                      validation_split=0.25, verbose=0)
  assert set(history.history) == METRICS | {f"val_{m}" for m in METRICS}
  assert_all_finite(history)
  assert history.history["loss"][-1] < history.history["loss"][0]
  result = model.evaluate(small_data(), verbose=0, return_dict=True)
  assert set(result) == METRICS
  # loss = reconstruction_nll + beta * kl with beta = 1.
  assert result["loss"] == pytest.approx(
      result["reconstruction_nll"] + result["kl"], rel=1e-4)


def test_fit_dataset_and_validation_tuple_with_early_stopping():
  x = small_data()
  model = tfvae.VAE(input_dim=4, hidden_units=(16,))
  model.adapt(x)
  model.compile()
  dataset = tf.data.Dataset.from_tensor_slices(x[:200]).batch(32)
  stopper = tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=1,
                                             restore_best_weights=True)
  history = model.fit(dataset, validation_data=(x[200:],), epochs=60,
                      callbacks=[stopper], verbose=0)
  assert "val_loss" in history.history
  assert len(history.history["loss"]) < 60  # early stopping acted on val_loss
  validation_dataset = tf.data.Dataset.from_tensor_slices(x[200:]).batch(32)
  history = model.fit(dataset, validation_data=validation_dataset, epochs=1,
                      verbose=0)
  assert "val_kl" in history.history


def test_fit_rejects_bad_input():
  model = tfvae.VAE(input_dim=4)
  model.compile()
  with pytest.raises(ValueError, match="3 columns, but the model expects 4"):
    model.fit(np.ones((10, 3)), verbose=0)
  with pytest.raises(ValueError, match="non-finite"):
    model.fit(np.full((10, 4), np.nan), verbose=0)
  with pytest.raises(ValueError, match="x alone"):
    model.fit(np.ones((10, 4)), np.ones((10, 4)), verbose=0)
  with pytest.raises(ValueError, match="validation_data: 2 columns"):
    model.fit(np.ones((10, 4)), validation_data=(np.ones((3, 2)),), verbose=0)
  with pytest.raises(ValueError, match="dataset elements have 2 columns"):
    model.fit(tf.data.Dataset.from_tensor_slices(np.ones((4, 2))).batch(2))
  with pytest.raises(ValueError, match="x has 3 columns"):
    model.encode(np.ones((2, 3)))


@pytest.mark.filterwarnings("ignore:training on raw values")
@pytest.mark.parametrize("name", ["constant_column", "duplicated_rows",
                                  "wide_range_raw", "values_of_1e6"])
@pytest.mark.parametrize("adapt", [False, True])
def test_awkward_data_never_gives_nan(name, adapt):
  rng = np.random.default_rng(1)
  x = small_data(n=200)
  if name == "constant_column":
    x[:, 1] = 3.25
  elif name == "duplicated_rows":
    x = np.repeat(x[:5], 40, axis=0)
  elif name == "wide_range_raw":
    x = np.stack([rng.uniform(1e-3, 2e-3, 200), rng.uniform(0, 1e4, 200),
                  rng.normal(0, 1, 200), rng.lognormal(0, 3, 200)], axis=1)
  else:
    x = x * 1e6
  x = x.astype(np.float32)
  model = tfvae.VAE(input_dim=4)
  if adapt:
    model.adapt(x)
  model.compile()
  history = model.fit(x, epochs=5, batch_size=32, validation_split=0.2,
                      verbose=0)
  assert_all_finite(history)
  assert np.all(np.isfinite(model.marginal_log_likelihood(x[:20], 50, seed=0)))
  assert np.all(np.isfinite(model.sample(5, seed=0)))


def test_marginal_likelihood_bounds_the_elbo_and_grows_with_samples():
  model = fitted_model(small_data(), epochs=5, hidden_units=(16,))
  x_test = small_data(n=200, seed=5)
  # Average small-K estimates over repeated draws: one K = 1 estimate on 200
  # rows has a standard error of about 0.8 nats after this little training.
  repeats = {1: 40, 10: 10, 100: 3, 1000: 1}
  means = [np.mean([model.marginal_log_likelihood(x_test, num_samples=k, seed=s)
                    for s in range(r)]) for k, r in repeats.items()]
  # K = 1 is the ELBO; compare with the negative loss from evaluate (an
  # independent code path), also averaged over draws.
  elbo = -np.mean([model.evaluate(x_test, batch_size=200, verbose=0,
                                  return_dict=True)["loss"] for _ in range(40)])
  assert means[0] == pytest.approx(elbo, abs=0.6)
  assert all(b >= a - 0.05 for a, b in zip(means, means[1:])), means
  assert means[-1] > means[0] + 0.1


def linear_gaussian_marginal(model):
  """Exact p(x) of a linear decoder with z-independent scale, data units."""
  kernel, bias = [w.numpy().astype(np.float64)
                  for w in model.decoder_net.layers[-1].weights]
  raw_scale = model.likelihood_head.raw_scale.numpy().astype(np.float64)
  sigma = np.log1p(np.exp(raw_scale)) + model.likelihood_scale_floor
  loc = model.standardization.loc.numpy().astype(np.float64)
  scale = model.standardization.scale.numpy().astype(np.float64)
  mean = loc + scale * bias
  covariance = (kernel.T @ kernel + np.diag(sigma**2)) * np.outer(scale, scale)
  return mean, covariance


def train_linear_on_ppca(seed=1):
  x, params = synthetic.make_ppca(3000, input_dim=6, latent_dim=2,
                                  noise_std=0.3, seed=seed)
  x_test, _ = synthetic.make_ppca(2000, seed=seed + 1, params=params)
  model = tfvae.VAE(input_dim=6, latent_dim=2, hidden_units=(),
                    likelihood="gaussian_shared")
  model.adapt(x)
  model.compile(tf_keras.optimizers.Adam(3e-3))
  model.fit(x, epochs=80, batch_size=128, verbose=0)
  return model, x, x_test


def test_linear_vae_iwae_matches_its_exact_marginal_and_ppca():
  model, x, x_test = train_linear_on_ppca()
  iwae = model.marginal_log_likelihood(x_test, num_samples=2000, seed=0)
  # 1. The decoder's own exact marginal (independent computation).
  mean, covariance = linear_gaussian_marginal(model)
  exact = synthetic.gaussian_log_density(x_test, mean, covariance)
  assert np.mean(iwae) <= np.mean(exact) + 0.01
  assert np.mean(iwae) == pytest.approx(np.mean(exact), abs=0.02)
  # 2. Tipping & Bishop (1999): the closed-form pPCA maximum-likelihood fit,
  # scored on the same held-out data, within 1%.
  ppca = baselines.fit_ppca(x, latent_dim=2)
  ppca_ll = synthetic.gaussian_log_density(x_test, ppca.mean, ppca.covariance)
  assert np.mean(iwae) == pytest.approx(np.mean(ppca_ll), rel=0.01)


def test_rescaling_a_column_shifts_the_likelihood_by_its_log_jacobian():
  x = small_data()
  model = fitted_model(x, epochs=3, hidden_units=(8,))
  x_scaled = x.copy()
  x_scaled[:, 2] *= 1000.0
  scaled = tfvae.VAE.from_config(model.get_config())
  scaled.set_weights(model.get_weights())
  scaled.adapt(x_scaled)  # same standardised inputs, so the same networks
  ll = model.marginal_log_likelihood(x[:64], num_samples=200, seed=3)
  ll_scaled = scaled.marginal_log_likelihood(x_scaled[:64], num_samples=200, seed=3)
  np.testing.assert_allclose(ll_scaled, ll - math.log(1000.0), atol=2e-3)


def test_adapt_statistics():
  rng = np.random.default_rng(0)
  x = np.stack([
      rng.normal(10.0, 2.0, 4000),
      np.full(4000, 7.0),  # constant
      (rng.uniform(size=4000) < 0.1).astype(float),  # mostly zeros: IQR 0
      np.concatenate([rng.normal(0, 1, 3960), np.full(40, 1e6)]),  # outliers
  ], axis=1).astype(np.float32)
  loc, scale = model_lib.compute_standardization(x)
  assert loc[0] == pytest.approx(10.0, abs=0.1)
  assert scale[0] == pytest.approx(2.0, rel=0.05)
  assert scale[1] == 1.0 and loc[1] == 7.0
  assert scale[2] == pytest.approx(x[:, 2].std(), rel=1e-4)
  assert scale[3] == pytest.approx(1.0, rel=0.1)  # robust to the 1% outliers


def test_config_and_weights_round_trip(tmp_path):
  x = small_data()
  model = tfvae.VAE(input_dim=4, latent_dim=3, hidden_units=(8, 8),
                    likelihood="student_t", beta=0.5, kl_warmup_steps=10,
                    free_bits=0.1, feature_names=["a", "b", "c", "d"])
  model.adapt(x)
  model.compile()
  model.fit(x, epochs=2, verbose=0)
  path = str(tmp_path / "w.h5")
  model.save_weights(path)
  clone = tfvae.VAE.from_config(model.get_config())
  assert clone.get_config() == model.get_config()
  clone.load_weights(path)
  np.testing.assert_array_equal(clone.encode(x[:5]).mean(), model.encode(x[:5]).mean())
  np.testing.assert_array_equal(clone.sample(4, seed=9), model.sample(4, seed=9))
  np.testing.assert_array_equal(
      clone.marginal_log_likelihood(x[:5], 20, seed=2),
      model.marginal_log_likelihood(x[:5], 20, seed=2))
  np.testing.assert_array_equal(clone.reconstruct(x[:5]), model.reconstruct(x[:5]))


def test_sample_reconstruct_and_score():
  x = small_data()
  model = tfvae.VAE(input_dim=4)
  model.adapt(x)
  assert model.sample(6, seed=1).shape == (6, 4)
  np.testing.assert_array_equal(model.sample(6, seed=1), model.sample(6, seed=1))
  assert not np.array_equal(model.sample(6, seed=1), model.sample(6, seed=2))
  assert model.reconstruct(x[:3]).shape == (3, 4)
  np.testing.assert_allclose(model.score(x[:4], 30, seed=5),
                             -model.marginal_log_likelihood(x[:4], 30, seed=5))


def test_latent_dim_one_works_for_every_sample_shape():
  x = small_data(n=20)
  model = tfvae.VAE(input_dim=4, latent_dim=1)
  assert model.marginal_log_likelihood(x, num_samples=7, seed=0).shape == (20,)
  assert model.decode(np.zeros((3, 5, 1), np.float32)).batch_shape == (3, 5)
  assert model.sample(4, seed=0).shape == (4, 4)


def test_marginal_likelihood_chunks_give_the_same_answer(monkeypatch):
  x = small_data(n=50)
  model = tfvae.VAE(input_dim=4)
  whole = model.marginal_log_likelihood(x, num_samples=64, seed=4)
  monkeypatch.setattr(model_lib, "_MAX_DECODED_ROWS", 48)  # 48 samples x 1 row
  chunked = model.marginal_log_likelihood(x, num_samples=64, seed=4)
  assert whole.shape == chunked.shape == (50,)
  # Different chunking draws different samples: equal only statistically.
  assert np.mean(chunked) == pytest.approx(np.mean(whole), abs=0.5)


def test_kl_warmup_schedule_reaches_the_logs():
  x = small_data(n=64)
  model = tfvae.VAE(input_dim=4, beta=2.0, kl_warmup_steps=8)
  model.compile()
  history = model.fit(x, epochs=4, batch_size=16, verbose=0)  # 4 steps/epoch
  # beta in force at each epoch's last step: 3/8, 7/8, then capped.
  np.testing.assert_allclose(history.history["beta"], [0.75, 1.75, 2.0, 2.0],
                             rtol=1e-6)
  assert float(model.current_beta) == 2.0


def test_constructor_validation():
  with pytest.raises(ValueError, match="input_dim"):
    tfvae.VAE(input_dim=0)
  with pytest.raises(ValueError, match="beta"):
    tfvae.VAE(input_dim=3, beta=-1)
  with pytest.raises(ValueError, match="unknown likelihood"):
    tfvae.VAE(input_dim=3, likelihood="bernoulli")
  with pytest.raises(ValueError, match="feature_names has 2 names"):
    tfvae.VAE(input_dim=3, feature_names=["a", "b"])


def test_adapt_beats_raw_values_on_wide_range_data():
  scales = np.array([1e-3, 1.0, 100.0, 1e4], np.float32)
  x = synthetic.make_nonlinear(3000, seed=1) * scales
  x_test = synthetic.make_nonlinear(1000, seed=2) * scales
  results = {}
  for adapt in (True, False):
    tf_keras.utils.set_random_seed(0)
    model = tfvae.VAE(input_dim=4, latent_dim=2, hidden_units=(32, 32))
    if adapt:
      model.adapt(x)
    model.compile()
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      history = model.fit(x, epochs=15, batch_size=64, verbose=0)
    assert_all_finite(history)
    results[adapt] = np.mean(model.marginal_log_likelihood(x_test, 100, seed=0))
  assert np.isfinite(results[True]) and np.isfinite(results[False])
  assert results[True] > results[False] + 1.0, results


def test_fit_warns_about_raw_badly_scaled_data():
  x = small_data() * 1e4
  model = tfvae.VAE(input_dim=4)
  model.compile()
  with pytest.warns(UserWarning, match=r"call model.adapt\(x\) first"):
    model.fit(x, epochs=1, verbose=0)
  model.adapt(x)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    model.fit(x, epochs=1, verbose=0)
