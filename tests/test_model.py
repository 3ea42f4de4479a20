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
from tests import helpers
from tests.helpers import fitted_model
from tests.helpers import linear_gaussian_marginal
from tests.helpers import small_data
from tests.helpers import train_linear_on_ppca

# Its tests share trained models: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("model")

METRICS = {"loss", "reconstruction_nll", "kl"}


def assert_all_finite(history):
  for name, values in history.history.items():
    assert np.all(np.isfinite(values)), f"{name} became non-finite: {values}"


def test_hidden_units_defaults_to_the_snippet():
  model = helpers.vae(input_dim=7, num_atoms=0)
  assert model.hidden_units == (7,) and model.latent_dim == 5
  assert [layer.units for layer in model.encoder_net.dense_layers] == [7, 10]
  assert [layer.units for layer in model.decoder_net.layers] == [7, 14]
  linear = helpers.vae(input_dim=7, hidden_units=())
  assert len(linear.encoder_net.dense_layers) == 1
  deep = helpers.vae(input_dim=7, hidden_units=(32, 16), latent_dim=3,
                     num_atoms=2)
  # 2 family outputs per feature, and 2 + 1 mixture logits with atoms.
  assert [layer.units for layer in deep.decoder_net.layers] == [16, 32,
                                                                7 * 2 + 7 * 3]


def test_fit_numpy_with_validation_split_reports_every_metric():
  x = small_data()
  model = helpers.vae(input_dim=4)
  model.adapt(x)
  model.compile()
  history = model.fit(x, epochs=8, batch_size=32, validation_split=0.25,
                      verbose=0)
  # "lr": the recipe's learning-rate halving (`fit`'s `lr_patience`).
  assert set(history.history) == METRICS | {"gradient_norm", "lr"} | {
      f"val_{m}" for m in METRICS}
  assert_all_finite(history)
  assert history.history["loss"][-1] < history.history["loss"][0]
  result = model.evaluate(x, verbose=0, return_dict=True)
  assert set(result) == METRICS
  assert result["loss"] == pytest.approx(
      result["reconstruction_nll"] + result["kl"], rel=1e-5)


@pytest.mark.parametrize("options", [
    dict(kl_warmup_steps=10_000, beta=1.5), dict(free_bits=3.0)])
def test_validation_loss_is_the_target_objective(options):
  # During warm-up the beta in force is ~0 and free bits floor the KL: the
  # trained objective is lower than the ELBO. Validation must report
  # reconstruction_nll + target beta * real KL, so early stopping selects
  # on what the user asked for.
  x = small_data()
  model = helpers.vae(input_dim=4, **options)
  model.adapt(x)
  model.compile()
  history = model.fit(x[:200], validation_data=x[200:], epochs=3, verbose=0)
  beta = options.get("beta", 1.0)
  h = history.history
  for prefix in ("", "val_"):
    np.testing.assert_allclose(
        h[f"{prefix}loss"],
        np.array(h[f"{prefix}reconstruction_nll"]) + beta * np.array(
            h[f"{prefix}kl"]), rtol=1e-5)
  assert "objective" in h and "val_objective" not in h
  # The minimised objective differs from the honest loss.
  assert np.all(np.array(h["objective"]) != np.array(h["loss"]))


def test_fit_dataset_and_validation_tuple_with_early_stopping():
  x = small_data()
  model = helpers.vae(input_dim=4, hidden_units=(16,))
  model.adapt(x)
  model.compile()
  dataset = tf.data.Dataset.from_tensor_slices(x[:200]).batch(32)
  stopper = tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=1,
                                             min_delta=0.02,
                                             restore_best_weights=True)
  history = model.fit(dataset, validation_data=(x[200:],), epochs=60,
                      callbacks=[stopper], verbose=0)
  assert len(history.history["loss"]) < 60  # early stopping acted on val_loss
  validation_dataset = tf.data.Dataset.from_tensor_slices(x[200:]).batch(32)
  history = model.fit(dataset, validation_data=validation_dataset, epochs=1,
                      verbose=0)
  assert "val_kl" in history.history


def test_fit_accepts_what_users_pass():
  x = small_data()
  model = helpers.vae(input_dim=4)
  model.adapt(x)
  model.compile()
  # A bare validation array, a float64 dataset, a dataset with gaps.
  history = model.fit(x[:200], validation_data=x[200:], epochs=1, verbose=0)
  assert "val_loss" in history.history
  gappy = x.copy()
  gappy[::3, 1] = np.nan
  history = model.fit(tf.data.Dataset.from_tensor_slices(gappy).batch(32),
                      epochs=2, verbose=0)
  assert_all_finite(history)


def test_fit_rejects_bad_input():
  model = helpers.vae(input_dim=4)
  model.compile()
  with pytest.raises(ValueError, match="3 columns, but the model expects 4"):
    model.fit(np.ones((10, 3)), verbose=0)
  x = np.ones((10, 4))
  x[3, 2] = np.inf
  with pytest.raises(ValueError, match="infinite"):
    model.fit(x, verbose=0)
  with pytest.raises(ValueError, match="x alone"):
    model.fit(np.ones((10, 4)), np.ones((10, 4)), verbose=0)
  with pytest.raises(ValueError, match="validation_data: 2 columns"):
    model.fit(np.ones((10, 4)), validation_data=(np.ones((3, 2)),), verbose=0)
  with pytest.raises(ValueError, match="validation_split must be a fraction in"):
    model.fit(np.ones((10, 4)), validation_split=1.5, verbose=0)
  with pytest.raises(ValueError, match="dataset elements have 2 columns"):
    model.fit(tf.data.Dataset.from_tensor_slices(np.ones((4, 2))).batch(2))
  with pytest.raises(ValueError, match=r"batch it first"):
    model.fit(tf.data.Dataset.from_tensor_slices(np.ones((4, 4))))
  with pytest.raises(ValueError, match="x: 3 columns, but the model expects 4"):
    model.encode(np.ones((2, 3)))
  with pytest.raises(ValueError, match="fill value"):
    model.fit(np.full((10, 4), 9.96921e36), verbose=0)


def test_compile_refuses_arguments_it_would_ignore():
  model = helpers.vae(input_dim=3)
  for kwargs in ({"loss": "mse"}, {"metrics": ["mae"]}, {"loss_weights": [1]}):
    with pytest.raises(ValueError, match="not supported"):
      model.compile(**kwargs)
  model.compile(tf_keras.optimizers.SGD(0.1), steps_per_execution=2)


def test_fast_default_steps_report_the_same_metrics_as_plain_steps():
  # compile() runs STEPS_PER_EXECUTION steps per graph call by default; the
  # per-epoch metrics, callbacks' view of them and the weights must be those
  # of Keras' plain one step per call. 200 rows in batches of 32 make 7
  # steps per epoch, so an epoch ends inside a 32-step execution.
  # The fast loop traces each step once (Keras' traced train_step four
  # times per fit and test_step twice).
  assert model_lib.STEPS_PER_EXECUTION > 1
  x = small_data(n=200)
  histories, weights = [], []
  for steps in (None, 1):
    tf_keras.utils.set_random_seed(0)
    model = helpers.vae(input_dim=4, seed=0)
    traces = []
    for kind in ("train", "test"):
      step = getattr(model, f"{kind}_step")
      setattr(model, f"{kind}_step", lambda data, kind=kind, step=step: (
          traces.append(kind), step(data))[1])
    model.adapt(x)
    model.compile(**({} if steps is None else {"steps_per_execution": steps}))
    epochs_seen = []
    callback = tf_keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epochs_seen.append(epoch))
    history = model.fit(x, epochs=3, batch_size=32, validation_split=0.2,
                        shuffle=False, verbose=0, callbacks=[callback])
    assert epochs_seen == [0, 1, 2]
    if steps is None:
      assert sorted(traces) == ["test", "train"], traces
    histories.append(history.history)
    weights.append(model.get_weights())
  fast, plain = histories
  assert set(fast) == set(plain)
  for name in plain:
    np.testing.assert_allclose(fast[name], plain[name], rtol=1e-5, err_msg=name)
  for a, b in zip(*weights):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_sample_weight_is_a_weighted_elbo():
  x = small_data(n=64)
  model = fitted_model(x, epochs=2)
  plain = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
  # Zero-weighted rows appended after the real ones change nothing (the
  # posterior draws of the real rows are the same), and a constant weight
  # is no weighting at all.
  padded = np.concatenate([x, x[:16] * 10 + 100])
  weights = np.concatenate([np.ones(64), np.zeros(16)])
  weighted = model.evaluate(padded, batch_size=80, sample_weight=weights,
                            verbose=0, return_dict=True)
  scaled = model.evaluate(x, batch_size=64, sample_weight=np.full(64, 3.0),
                          verbose=0, return_dict=True)
  for name in METRICS:
    assert weighted[name] == pytest.approx(plain[name], rel=1e-5)
    assert scaled[name] == pytest.approx(plain[name], rel=1e-5)
  unweighted = model.evaluate(padded, batch_size=80, verbose=0,
                              return_dict=True)
  assert unweighted["loss"] > plain["loss"] + 1.0
  with pytest.raises(ValueError, match="one weight per row"):
    model.fit(x, sample_weight=np.ones(3), verbose=0)
  with pytest.raises(ValueError, match="finite and >= 0"):
    model.fit(x, sample_weight=-np.ones(64), verbose=0)


def test_zero_weighted_rows_do_not_move_training():
  x = small_data(n=64)
  garbage = np.full((16, 4), 50.0)
  deltas = []
  for rows, weights in ((x, None),
                        (np.concatenate([x, garbage]),
                         np.concatenate([np.ones(64), np.zeros(16)]))):
    tf_keras.utils.set_random_seed(0)
    model = helpers.vae(input_dim=4, seed=0)
    model.adapt(x)
    model.compile(tf_keras.optimizers.SGD(0.01))
    before = [w.numpy() for w in model.trainable_weights]
    # One step on one batch: the weighted loss is divided by the batch size
    # (Keras' convention), so the step is 64 / 80 of the unpadded one.
    model.fit(rows, sample_weight=weights, batch_size=len(rows), epochs=1,
              shuffle=False, verbose=0)
    deltas.append([w.numpy() - b for w, b in zip(model.trainable_weights,
                                                 before)])
  for plain, padded in zip(*deltas):
    # float32 weights of magnitude ~5 resolve changes of about 5e-7.
    np.testing.assert_allclose(padded * 80 / 64, plain, rtol=1e-4, atol=2e-6)


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
  model = helpers.vae(input_dim=4)
  if adapt:
    model.adapt(x)
  model.compile()
  history = model.fit(x, epochs=5, batch_size=32, validation_split=0.2,
                      verbose=0)
  assert_all_finite(history)
  assert np.all(np.isfinite(model.marginal_log_likelihood(x[:20], 50, seed=0)))
  assert np.all(np.isfinite(model.sample(5, seed=0)))


def test_extreme_finite_values_score_finitely():
  x = small_data(n=200)
  model = fitted_model(x, epochs=2)
  test = x[:4].copy()
  test[1, 2] = 1e38
  test[2, 0] = 9.96921e36  # the NetCDF fill value
  test[3, 3] = -1e300
  scores = model.anomaly_score(test, num_samples=20, seed=0)
  assert np.all(np.isfinite(scores))
  assert np.all(scores[1:] > scores[0] + 100)


@pytest.mark.parametrize("shifts", [(1e6, 0.0, 0.0, 0.0), (0.0, 1.7e9, -1e9, 0.0)])
def test_large_offsets_give_the_same_likelihood(shifts):
  # A column shifted by a constant has the same density; float32 would
  # round 1e6 + N(0, 0.01) to a few values and Unix seconds to 128 s.
  x = small_data(n=400) * [0.01, 0.5, 0.1, 1.0]
  shifts = np.array(shifts)
  lls = []
  for data in (x, x + shifts):
    model = fitted_model(data[:300], epochs=3, hidden_units=(8,), seed=4)
    lls.append(model.marginal_log_likelihood(data[300:], 100, seed=1))
  np.testing.assert_allclose(lls[1], lls[0], rtol=1e-4, atol=1e-4)


def test_marginal_likelihood_bounds_the_elbo_and_grows_with_samples():
  x = small_data()
  model = fitted_model(x, epochs=5, hidden_units=(16,))
  x_test = small_data(n=200, seed=5)
  # Average small-K estimates over repeated draws: one K = 1 estimate on 200
  # rows has a standard error of about 0.8 nats after this little training.
  repeats = {1: 40, 10: 10, 100: 3, 1000: 1}
  means = [np.mean([model.marginal_log_likelihood(x_test, num_samples=k, seed=s)
                    for s in range(r)]) for k, r in repeats.items()]
  # K = 1 is the ELBO up to the KL's Monte Carlo error; compare with the
  # negative loss from evaluate (an independent code path with the
  # analytic KL), also averaged over draws.
  elbo = -np.mean([model.evaluate(x_test, batch_size=200 // (s + 1), verbose=0,
                                  return_dict=True)["loss"] for s in range(8)])
  assert means[0] == pytest.approx(elbo, abs=0.6)
  assert all(b >= a - 0.05 for a, b in zip(means, means[1:])), means
  assert means[-1] > means[0] + 0.1


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
  np.testing.assert_allclose(ll_scaled, ll - math.log(1000.0), atol=1e-6)


def test_a_rows_score_does_not_depend_on_the_other_rows():
  x = small_data(n=50)
  model = fitted_model(x, epochs=2)
  whole = model.marginal_log_likelihood(x, num_samples=64, seed=4)
  alone = np.array([model.marginal_log_likelihood(x[i:i + 1], 64, seed=4)[0]
                    for i in range(0, 50, 7)])
  np.testing.assert_allclose(whole[::7], alone, rtol=1e-6)
  reversed_rows = model.marginal_log_likelihood(x[::-1], 64, seed=4)[::-1]
  np.testing.assert_allclose(reversed_rows, whole, rtol=1e-6)


def test_rows_get_independent_draws_so_a_mean_averages_out():
  # Batch-independent scores could share one set of draws among all rows;
  # then the Monte Carlo errors of the rows are correlated and the mean
  # log-likelihood of a data set is as noisy as one row's. Draws keyed by
  # the row make the errors independent: the spread of the mean over seeds
  # is about a row's spread / sqrt(N).
  x = small_data(n=200)
  model = fitted_model(x, epochs=3)
  runs = np.stack([model.marginal_log_likelihood(x, num_samples=4, seed=s)
                   for s in range(12)])  # [seeds, rows]
  per_row = np.mean(runs.std(axis=0))
  of_the_mean = runs.mean(axis=1).std()
  assert per_row > 0.05  # K = 4 is noisy enough to see the difference
  assert of_the_mean < 2.5 * per_row / math.sqrt(len(x))
  # Two rows a few standard deviations apart get unrelated errors.
  errors = runs - runs.mean(axis=0)
  assert abs(np.corrcoef(errors[:, 0], errors[:, 1])[0, 1]) < 0.9


def test_chunking_changes_nothing(monkeypatch):
  x = small_data(n=50)
  model = fitted_model(x, epochs=2)
  whole = model.marginal_log_likelihood(x, num_samples=64, seed=4)
  from tfvae.inference import importance  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(importance, "MAX_DECODED_ROWS", 48)  # samples split too
  chunked = model.marginal_log_likelihood(x, num_samples=64, seed=4)
  np.testing.assert_allclose(chunked, whole, rtol=1e-6)


def test_seeds_none_follow_the_global_seed_and_large_seeds_work():
  x = small_data(n=20)
  model = helpers.vae(input_dim=4)
  tf_keras.utils.set_random_seed(11)
  first = model.marginal_log_likelihood(x, 8)
  tf_keras.utils.set_random_seed(11)
  again = model.marginal_log_likelihood(x, 8)
  np.testing.assert_array_equal(first, again)
  for seed in (2**31, 2**40 + 1, 2**63 - 1):
    a = model.marginal_log_likelihood(x, 8, seed=seed)
    np.testing.assert_array_equal(a, model.marginal_log_likelihood(x, 8, seed=seed))
  assert not np.array_equal(model.marginal_log_likelihood(x, 8, seed=2**31),
                            model.marginal_log_likelihood(x, 8, seed=2**31 + 1))
  # The model's own seed (training noise) also follows the global seed.
  tf_keras.utils.set_random_seed(5)
  seed_a = helpers.vae(input_dim=4).seed
  tf_keras.utils.set_random_seed(5)
  assert helpers.vae(input_dim=4).seed == seed_a
  with pytest.raises(ValueError, match="seed"):
    model.marginal_log_likelihood(x, 8, seed=-1)


def test_training_is_reproducible_with_a_seed():
  x = small_data(n=128)
  a = fitted_model(x, epochs=2, seed=3).get_weights()
  b = fitted_model(x, epochs=2, seed=3).get_weights()
  for wa, wb in zip(a, b):
    np.testing.assert_array_equal(wa, wb)


def test_keras_save_and_load_model_round_trip(tmp_path):
  x = small_data()
  model = fitted_model(x, epochs=2, latent_dim=3, hidden_units=(8, 8),
                       likelihood="student_t", beta=0.5, free_bits=0.1,
                       feature_names=["a", "b", "c", "d"])
  path = str(tmp_path / "m.keras")
  model.save(path)
  clone = tf_keras.models.load_model(path)
  assert isinstance(clone, tfvae.VAE)
  assert clone.get_config() == model.get_config()
  np.testing.assert_array_equal(
      clone.marginal_log_likelihood(x[:5], 20, seed=2),
      model.marginal_log_likelihood(x[:5], 20, seed=2))
  # The optimizer's state came back: training on continues identically.
  assert int(clone.optimizer.iterations) == int(model.optimizer.iterations)
  for a, b in zip(model.optimizer.variables, clone.optimizer.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  model.fit(x, epochs=1, batch_size=64, shuffle=False, verbose=0)
  clone.fit(x, epochs=1, batch_size=64, shuffle=False, verbose=0)
  for a, b in zip(model.get_weights(), clone.get_weights()):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_config_and_weights_round_trip(tmp_path):
  x = small_data()
  model = fitted_model(x, epochs=1, latent_dim=3, kl_warmup_steps=10)
  path = str(tmp_path / "w.h5")
  model.save_weights(path)
  clone = tfvae.VAE.from_config(model.get_config())
  clone.load_weights(path)
  np.testing.assert_array_equal(clone.sample(4, seed=9), model.sample(4, seed=9))
  np.testing.assert_array_equal(clone.reconstruct(x[:5]), model.reconstruct(x[:5]))
  assert clone.is_adapted
  # A config saved before `df_transform` existed loads with softplus
  # degrees of freedom, which it was trained with; "exp" round-trips.
  config = model.get_config()
  assert config.pop("df_transform") == "softplus"
  old = tfvae.VAE.from_config(config)
  old.likelihood_head.raw_df.assign([math.log(math.expm1(3.0))] * 4)
  np.testing.assert_allclose(old.likelihood_head.degrees_of_freedom(),
                             [1.0 + 1e-3 + 3.0] * 4, rtol=1e-6)
  config["df_transform"] = "exp"
  assert tfvae.VAE.from_config(config).get_config()["df_transform"] == "exp"


def test_predict_and_call_are_deterministic_reconstructions():
  x = small_data()
  model = fitted_model(x, epochs=2)
  first = model.predict(x[:10], verbose=0)
  np.testing.assert_array_equal(first, model.predict(x[:10], verbose=0))
  np.testing.assert_array_equal(first, model(x[:10]).numpy())
  expected = model.likelihood_parameters(
      model.posterior_parameters(x[:10])["loc"])["mean"].numpy()
  np.testing.assert_array_equal(first, expected)
  assert first.dtype == np.float64


def test_sample_reconstruct_and_anomaly_score():
  x = small_data()
  model = fitted_model(x, epochs=3)
  assert model.sample(6, seed=1).shape == (6, 4)
  np.testing.assert_array_equal(model.sample(6, seed=1), model.sample(6, seed=1))
  assert not np.array_equal(model.sample(6, seed=1), model.sample(6, seed=2))
  outlier = x[:4].copy()
  outlier[2, 1] += 40.0
  scores = model.anomaly_score(outlier, 200, seed=5)
  assert int(np.argmax(scores)) == 2
  per_feature = model.anomaly_score(outlier, 200, seed=5, per_feature=True)
  np.testing.assert_allclose(per_feature, scores / 4, rtol=1e-12)
  with pytest.warns(DeprecationWarning, match="anomaly_score"):
    np.testing.assert_array_equal(model.score(outlier, 200, seed=5), scores)


def test_samples_follow_the_fitted_marginals():
  model, _, _ = train_linear_on_ppca(num_rows=2000, epochs=40)
  samples = model.sample(20000, seed=0)
  mean, covariance = linear_gaussian_marginal(model)
  np.testing.assert_allclose(samples.mean(0), mean, atol=0.1)
  np.testing.assert_allclose(np.cov(samples, rowvar=False), covariance,
                             atol=0.15 * np.abs(covariance).max())


def test_latent_dim_one_works_for_every_sample_shape():
  x = small_data(n=20)
  model = helpers.vae(input_dim=4, latent_dim=1)
  assert model.marginal_log_likelihood(x, num_samples=7, seed=0).shape == (20,)
  assert model.decode(np.zeros((3, 5, 1), np.float32)).batch_shape == (3, 5)
  assert model.sample(4, seed=0).shape == (4, 4)


def test_kl_warmup_schedule_reaches_the_logs():
  x = small_data(n=64)
  model = helpers.vae(input_dim=4, beta=2.0, kl_warmup_steps=8)
  model.compile()
  history = model.fit(x, epochs=4, batch_size=16, verbose=0)  # 4 steps/epoch
  # beta in force at each epoch's last step: 3/8, 7/8, then capped.
  np.testing.assert_allclose(history.history["beta"], [0.75, 1.75, 2.0, 2.0],
                             rtol=1e-6)
  assert float(model.current_beta) == 2.0


def test_constructor_validation():
  with pytest.raises(ValueError, match="input_dim"):
    helpers.vae(input_dim=0)
  with pytest.raises(ValueError, match="beta"):
    helpers.vae(input_dim=3, beta=-1)
  with pytest.raises(ValueError, match="beta must be a finite number"):
    helpers.vae(input_dim=3, beta=float("inf"))
  with pytest.raises(ValueError, match="unknown likelihood"):
    helpers.vae(input_dim=3, likelihood="bernoulli")
  with pytest.raises(ValueError, match="feature_names has 2 names"):
    helpers.vae(input_dim=3, feature_names=["a", "b"])
  with pytest.raises(ValueError, match="free_bits applies"):
    helpers.vae(input_dim=3, free_bits=1.0, num_train_samples=5)
  # Batches with gaps never get fewer draws than complete ones.
  assert [helpers.vae(input_dim=3, num_train_samples=k).missing_train_samples
          for k in (1, 10, 50)] == [20, 20, 50]
  with pytest.raises(ValueError, match="missing_train_samples"):
    helpers.vae(input_dim=3, missing_train_samples=0)
  with pytest.raises(ValueError, match="df_transform must be one of"):
    helpers.vae(input_dim=3, df_transform="log")


def test_adapt_beats_raw_values_on_wide_range_data():
  scales = np.array([1e-3, 1.0, 100.0, 1e4])
  x = synthetic.make_nonlinear(1500, seed=1) * scales
  x_test = synthetic.make_nonlinear(500, seed=2) * scales
  results = {}
  for adapt in (True, False):
    tf_keras.utils.set_random_seed(0)
    model = helpers.vae(input_dim=4, latent_dim=2, hidden_units=(32, 32))
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
  model = helpers.vae(input_dim=4)
  model.compile()
  with pytest.warns(UserWarning, match=r"call model.adapt\(x\) first"):
    model.fit(x, epochs=1, verbose=0)
  model.adapt(x)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    model.fit(x, epochs=1, verbose=0)


def test_adapt_streams_files_and_datasets(tmp_path):
  x = small_data(n=3000) * [1, 10, 100, 1000]
  np.save(tmp_path / "x.npy", x)
  in_memory = helpers.vae(input_dim=4).adapt(x)
  from_file = helpers.vae(input_dim=4).adapt(str(tmp_path / "x.npy"),
                                             batch_size=512)
  from_dataset = helpers.vae(input_dim=4).adapt(
        tf.data.Dataset.from_tensor_slices(x).batch(100))
  for other in (from_file, from_dataset):
    np.testing.assert_array_equal(other.standardization.loc.numpy(),
                                  in_memory.standardization.loc.numpy())
    np.testing.assert_array_equal(other.standardization.scale.numpy(),
                                  in_memory.standardization.scale.numpy())


# -- Missing values -------------------------------------------------------------


def exact_marginal_of_observed(x, mean, covariance):
  """log N(x_obs; mean_o, cov_oo) per row (0 for a row with nothing observed)."""
  out = np.zeros(len(x))
  for i, row in enumerate(x):
    observed = ~np.isnan(row)
    if observed.any():
      out[i] = synthetic.gaussian_log_density(
          row[observed][None], mean[observed],
          covariance[np.ix_(observed, observed)])[0]
  return out


def exact_conditional(x, mean, covariance):
  """E[x_mis | x_obs] and its standard deviation under N(mean, covariance)."""
  expected, std = x.copy(), np.zeros_like(x)
  for i, row in enumerate(x):
    m = np.isnan(row)
    o = ~m
    if not m.any():
      continue
    gain = covariance[np.ix_(m, o)] @ np.linalg.inv(covariance[np.ix_(o, o)])
    expected[i, m] = mean[m] + gain @ (row[o] - mean[o])
    std[i, m] = np.sqrt(np.diag(covariance[np.ix_(m, m)] -
                                gain @ covariance[np.ix_(o, m)]))
  return expected, std


def hide(x, fraction, seed):
  mask = np.random.default_rng(seed).uniform(size=x.shape) < fraction
  mask[mask.all(axis=1), 0] = False  # keep one value per row
  hidden = x.copy()
  hidden[mask] = np.nan
  return hidden, mask


@pytest.fixture(scope="session")
def ppca_model():
  return train_linear_on_ppca()


def test_likelihood_of_rows_with_gaps_matches_the_exact_marginal(ppca_model):
  # Trained on complete data, scored on rows with 30% of values hidden: the
  # closed-form pPCA fit gives log N(x_obs; mu_o, C_oo) exactly.
  model, x, x_test = ppca_model
  hidden, _ = hide(x_test[:500], 0.3, seed=0)
  ppca = baselines.fit_ppca(x, latent_dim=2)
  exact = exact_marginal_of_observed(hidden, ppca.mean, ppca.covariance)
  estimate = model.marginal_log_likelihood(hidden, num_samples=1000, seed=0)
  assert np.mean(estimate) == pytest.approx(np.mean(exact), rel=0.01)
  # Against the model's own exact marginal the estimate is a tight bound.
  mean, covariance = linear_gaussian_marginal(model)
  own = exact_marginal_of_observed(hidden, mean, covariance)
  gap = own - estimate
  assert np.mean(gap) == pytest.approx(0.0, abs=0.02)
  assert np.median(np.abs(gap)) < 0.01


def test_imputation_matches_the_exact_conditional_mean(ppca_model):
  model, _, x_test = ppca_model
  truth = x_test[:300]
  hidden, mask = hide(truth, 0.3, seed=1)
  mean, covariance = linear_gaussian_marginal(model)
  expected, expected_std = exact_conditional(hidden, mean, covariance)
  imputed, std = model.impute(hidden, num_samples=1000, seed=0, return_std=True)
  np.testing.assert_array_equal(imputed[~mask], truth[~mask])  # bit for bit
  assert np.all(std[~mask] == 0)
  # Self-normalised importance sampling with K = 1000 has an error of a few
  # percent of the conditional standard deviation on average.
  error = np.abs(imputed - expected)[mask] / expected_std[mask]
  assert error.mean() < 0.1 and np.median(error) < 0.05
  ratio = std[mask] / expected_std[mask]
  assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
  # And it beats filling in the column means.
  column_means = np.broadcast_to(np.nanmean(hidden, axis=0), truth.shape)
  assert np.mean((imputed - truth)[mask]**2) < 0.8 * np.mean(
      (column_means - truth)[mask]**2)


def test_imputation_error_is_within_two_percent_of_the_closed_form(ppca_model):
  # Against the true values: the linear model's imputations of 2,000 test
  # rows with 30% of values hidden have an RMSE within 2% of that of the
  # exact conditional mean under the parameters that drew the data (the
  # best any imputer can do). Measured 0.997 and 1.003 of it (seeds 1 and
  # 2 of the data) with the proposal's adapted components, 1.005 and 1.015
  # without them.
  model, _, x_test = ppca_model
  _, params = synthetic.make_ppca(3000, input_dim=6, latent_dim=2,
                                  noise_std=0.3, seed=1)  # the fixture's
  hidden, mask = hide(x_test, 0.3, seed=7)
  covariance = (params.weights @ params.weights.T +
                params.noise_variance * np.eye(6))
  best, _ = exact_conditional(hidden, params.mean, covariance)
  imputed = model.impute(hidden, num_samples=1000, seed=0)

  def rmse(filled):
    return np.sqrt(np.mean((filled - x_test)[mask]**2))

  assert rmse(imputed) < 1.02 * rmse(best)
  assert rmse(best) < 0.7 * rmse(np.where(mask, np.nanmean(hidden, 0),
                                          hidden))  # a real task


def test_multiple_imputations_follow_the_conditional_distribution(ppca_model):
  model, _, x_test = ppca_model
  hidden, mask = hide(x_test[:100], 0.3, seed=2)
  mean, covariance = linear_gaussian_marginal(model)
  expected, expected_std = exact_conditional(hidden, mean, covariance)
  draws = model.impute(hidden, num_samples=1000, seed=3, num_imputations=400)
  assert draws.shape == (400, 100, 6)
  for draw in draws[:5]:
    np.testing.assert_array_equal(draw[~mask], hidden[~mask])
  z = (draws.mean(0) - expected)[mask] / expected_std[mask]
  assert np.abs(z).mean() < 0.15
  assert np.median(draws.std(0)[mask] / expected_std[mask]) == pytest.approx(
      1.0, abs=0.1)


def test_imputation_of_a_row_does_not_depend_on_other_rows(ppca_model):
  model, _, x_test = ppca_model
  hidden, _ = hide(x_test[:40], 0.4, seed=4)
  whole = model.impute(hidden, 200, seed=5)
  for i in (0, 17, 39):
    np.testing.assert_allclose(model.impute(hidden[i:i + 1], 200, seed=5)[0],
                               whole[i], rtol=1e-7)
  draws = model.impute(hidden, 200, seed=5, num_imputations=3)
  np.testing.assert_allclose(
      model.impute(hidden[17:18], 200, seed=5, num_imputations=3)[:, 0],
      draws[:, 17], rtol=1e-6)


@pytest.mark.slow
def test_training_with_gaps_stays_close_to_the_complete_data_fit():
  # MIWAE: trained on the same pPCA data with 30% of the values hidden, the
  # held-out log-likelihood of complete rows stays within 2% of the
  # closed-form fit on complete data.
  x, params = synthetic.make_ppca(3000, input_dim=6, latent_dim=2,
                                  noise_std=0.3, seed=1)
  x_test, _ = synthetic.make_ppca(2000, seed=2, params=params)
  hidden, _ = hide(x.astype(np.float64), 0.3, seed=3)
  tf_keras.utils.set_random_seed(1)
  model = helpers.vae(input_dim=6, latent_dim=2, hidden_units=(),
                      likelihood="gaussian_shared", num_atoms=0, seed=1)
  model.adapt(hidden)
  model.compile(tf_keras.optimizers.Adam(3e-3))
  history = model.fit(hidden, epochs=80, batch_size=128, verbose=0)
  assert_all_finite(history)
  ppca = baselines.fit_ppca(x, latent_dim=2)
  reference = np.mean(synthetic.gaussian_log_density(x_test, ppca.mean,
                                                     ppca.covariance))
  held_out = np.mean(model.marginal_log_likelihood(x_test, 1000, seed=0))
  assert held_out == pytest.approx(reference, rel=0.02)


def test_on_complete_data_the_missing_value_machinery_changes_nothing():
  # The indicator's weights start at zero and get no gradient without gaps:
  # a model with it trains to exactly the numbers of one without it.
  x = small_data(n=128)
  results = []
  for indicator in (True, False):
    model = fitted_model(x, epochs=3, seed=9, missing_indicator=indicator)
    results.append((model.evaluate(x, verbose=0, return_dict=True),
                    model.marginal_log_likelihood(x[:20], 50, seed=1),
                    [w.numpy() for w in model.trainable_weights
                     if "missing" not in w.name]))
  assert results[0][0] == results[1][0]
  np.testing.assert_array_equal(results[0][1], results[1][1])
  for a, b in zip(results[0][2], results[1][2]):
    np.testing.assert_array_equal(a, b)
  # Training on data known to be complete skips the indicator's product:
  # the same bound and gradients, to the bit, as through the indicator
  # (whose kernel gets a zero gradient either way).
  from tfvae import bounds  # pylint: disable=g-import-not-at-top
  model = fitted_model(x, epochs=1, seed=9, missing_indicator=True)
  model.encoder_net.indicator_layer.kernel.assign(tf.random.normal(
      model.encoder_net.indicator_layer.kernel.shape))
  outcomes = []
  for known_complete in (False, True):
    with tf.GradientTape() as tape:
      terms = bounds.batch_terms(model, tf.constant(x), tf.constant([1, 2]),
                                 {"loss": 1.0}, None, known_complete)
      loss = tf.reduce_mean(terms["objective"])
    outcomes.append((terms["loss"].numpy(), [
        g.numpy() for g in tape.gradient(
            loss, model.trainable_variables,
            unconnected_gradients=tf.UnconnectedGradients.ZERO)]))
  np.testing.assert_array_equal(outcomes[0][0], outcomes[1][0])
  for a, b in zip(outcomes[0][1], outcomes[1][1]):
    np.testing.assert_array_equal(a, b)


def test_gaps_in_training_scoring_and_the_per_feature_score():
  x = small_data(n=300)
  hidden, mask = hide(x, 0.3, seed=0)
  hidden[5] = np.nan  # a row with nothing observed
  model = fitted_model(hidden, epochs=3)
  scores = model.anomaly_score(hidden[:10], 50, seed=0)
  assert np.all(np.isfinite(scores)) and scores[5] == 0.0
  per_feature = model.anomaly_score(hidden[:10], 50, seed=0, per_feature=True)
  observed = (~np.isnan(hidden[:10])).sum(1)
  np.testing.assert_allclose(per_feature, np.where(observed > 0, scores /
                                                   np.maximum(observed, 1), 0))
  with pytest.raises(ValueError, match="column 2 has no observed value"):
    model.fit(np.where(np.arange(4) == 1, np.nan, x), verbose=0)
  with pytest.raises(ValueError, match="column 2 has no observed value"):
    helpers.vae(input_dim=4).adapt(np.where(np.arange(4) == 1, np.nan, x))


# -- Atoms --------------------------------------------------------------------


def zero_inflated(n, seed):
  """Column 0: exactly 0 in about half the rows, more when column 1 is high."""
  rng = np.random.default_rng(seed)
  latent = rng.normal(size=n)
  zero = rng.uniform(size=n) < 1 / (1 + np.exp(-2 * latent - 0.4))
  amount = np.where(zero, 0.0, np.exp(0.5 * latent + 0.3 * rng.normal(size=n)))
  return np.stack([amount, latent + 0.2 * rng.normal(size=n),
                   rng.normal(size=n)], axis=1)


@pytest.fixture(scope="session")
def atom_models():
  x, x_test = zero_inflated(3000, 0), zero_inflated(1000, 1)
  return {atoms: fitted_model(x, epochs=15, num_atoms=atoms,
                              hidden_units=(32, 32), latent_dim=2,
                              batch_size=64)
          for atoms in (0, 2)}, x, x_test


def test_atoms_are_learned_and_pay_on_held_out_data(atom_models):
  models, x, x_test = atom_models
  with_atoms = models[2]
  np.testing.assert_array_equal(with_atoms.standardization.atoms.numpy()[0],
                                [0.0, np.nan])
  assert np.isnan(with_atoms.standardization.atoms.numpy()[1:]).all()
  ll = {atoms: model.marginal_log_likelihood(x_test, 200, seed=0)
        for atoms, model in models.items()}
  at_zero = x_test[:, 0] == 0
  # Away from the atom the two models are comparable densities.
  assert np.mean(ll[2][~at_zero]) > np.mean(ll[0][~at_zero]) - 0.5
  # The bases differ by what they measure, value by value: densities per
  # standard deviation add log(scale) for each value not at an atom; the
  # column has no resolution, so its atom stays a probability when
  # dequantised.
  scale = with_atoms.standardization.scale.numpy()
  standardized = with_atoms.marginal_log_likelihood(
      x_test, 200, seed=0, basis="standardized")
  np.testing.assert_allclose(
      standardized - ll[2],
      np.where(at_zero, 0.0, np.log(scale[0])) + np.log(scale[1:]).sum(),
      rtol=1e-9)
  np.testing.assert_array_equal(with_atoms.marginal_log_likelihood(
      x_test, 200, seed=0, basis="dequantized"), ll[2])
  np.testing.assert_allclose(with_atoms.anomaly_score(x_test, 200, seed=0),
                             -standardized, rtol=1e-12)
  # Samples put the right share of values exactly on the atom.
  samples = with_atoms.sample(5000, seed=3)
  assert np.mean(samples[:, 0] == 0.0) == pytest.approx(np.mean(x[:, 0] == 0),
                                                        abs=0.05)
  # The atom's probability follows the latent (more zeros where column 1
  # is high).
  z = with_atoms.posterior_parameters(x_test)["loc"]
  probability = with_atoms.likelihood_parameters(z)["atom_probability"].numpy()
  assert np.corrcoef(probability[:, 0], x_test[:, 1])[0, 1] > 0.5
  assert np.all(probability[:, 1:] == 0)


def test_imputing_a_column_with_an_atom(atom_models):
  models, _, x_test = atom_models
  model = models[2]
  hidden = x_test[:200].copy()
  hidden[:, 0] = np.nan
  draws = model.impute(hidden, 200, seed=0, num_imputations=50)
  truth_zero = x_test[:200, 0] == 0
  drawn_zero = (draws[:, :, 0] == 0).mean(axis=0)
  # Rows that were zeros get zeros more often than rows that were not.
  assert drawn_zero[truth_zero].mean() > drawn_zero[~truth_zero].mean() + 0.2
  mean = model.impute(hidden, 200, seed=0)
  assert np.all(np.isfinite(mean)) and np.all(mean[:, 0] >= -0.05)


def test_an_untrained_model_warns_when_it_scores_imputes_or_samples():
  from tfvae import model as model_lib  # pylint: disable=g-import-not-at-top
  x = small_data(n=64)
  model = helpers.vae(input_dim=4, hidden_units=(8,), latent_dim=2)
  gappy = x[:4].copy()
  gappy[0, 1] = np.nan
  for call in (lambda: model.anomaly_score(x[:4], 5, seed=0),
               lambda: model.impute(gappy, 5, seed=0),
               lambda: model.sample(3, seed=0)):
    with pytest.warns(model_lib.UntrainedModelWarning, match="never trained"):
      call()
  model.compile()
  model.fit(x, epochs=1, batch_size=32, verbose=0)
  with warnings.catch_warnings():
    warnings.simplefilter("error", model_lib.UntrainedModelWarning)
    model.anomaly_score(x[:4], 5, seed=0)
    model.sample(3, seed=0)


def _poisson_log_pmf(counts, rate):
  return counts * math.log(rate) - rate - np.array(
      [math.lgamma(k + 1) for k in counts.ravel()]).reshape(counts.shape)


def test_recorded_values_get_at_most_their_probability_over_the_resolution():
  # Counts: resolution 1. A density of a recorded value is at most one over
  # the resolution, and the densities of a grid of recorded values sum to
  # at most 1 + 2 exp(-pi) + ... = 1.0864 over it (a Normal at the floor
  # sampled on its grid, by Poisson summation), so the held-out
  # log-likelihood cannot beat the true log-probability of the same rows
  # (in closed form) by more than log 1.0864 per column; with spikes 1e-3
  # standard deviations wide it would by about 6 nats per column.
  rng = np.random.default_rng(0)
  rates = (3.0, 0.5)
  x = np.stack([rng.poisson(rate, 3000) for rate in rates], 1).astype(float)
  x_test = np.stack([rng.poisson(rate, 1000) for rate in rates], 1).astype(float)
  model = fitted_model(x, epochs=10, hidden_units=(16,), latent_dim=1,
                       likelihood="gaussian", batch_size=64)
  np.testing.assert_array_equal(model.standardization.resolution.numpy(),
                                [1.0, 1.0])
  floor = model.standardization.scale_floor(model.likelihood_scale_floor,
                                            tf.float64).numpy()
  np.testing.assert_allclose(
      floor * model.standardization.scale.numpy() * math.sqrt(2 * math.pi),
      [1.0, 1.0])
  log_px = model.marginal_log_likelihood(x_test, 100, seed=0)
  truth = np.mean(sum(_poisson_log_pmf(x_test[:, j], rate)
                      for j, rate in enumerate(rates)))
  # The peak of a Normal at its floor is exactly 1 / resolution: no value
  # scores above log(1) = 0 per column.
  assert log_px.max() <= 2 * math.log(1.0 + 1e-6)
  overshoot = math.log(1 + 2 * sum(math.exp(-math.pi * m * m)
                                   for m in range(1, 5)))
  assert np.mean(log_px) <= truth + 2 * overshoot + 0.02  # 0.02: chance
  assert np.mean(log_px) >= truth - 0.6  # and the fit is a good one


def test_calibration_gives_percentiles_and_thresholds_and_is_saved(tmp_path):
  x = small_data(n=600, seed=5)
  model = fitted_model(x[:400], epochs=3, hidden_units=(8,), latent_dim=2)
  with pytest.raises(ValueError, match="call model.calibrate"):
    model.score_percentile([1.0])
  held_out = x[400:]
  scores = model.calibrate(held_out, num_samples=50, seed=0)
  np.testing.assert_array_equal(scores,
                                model.anomaly_score(held_out, 50, seed=0))
  # The reference rows' own percentiles are even steps from 0 to 100.
  np.testing.assert_allclose(np.sort(model.score_percentile(scores)),
                             np.linspace(0, 100, 200), atol=1e-9)
  cut = model.anomaly_threshold(0.1)
  assert np.mean(scores > cut) == pytest.approx(0.1, abs=0.006)
  far = model.anomaly_score(held_out[:1] + 50, 50, seed=0)
  assert model.score_percentile(far)[0] == 100.0
  # Saved with the model: its config, so model.keras and checkpoints too.
  clone = model_lib.VAE.from_config(model.get_config())
  np.testing.assert_array_equal(clone.score_reference, model.score_reference)
  from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
  checkpoint.save_checkpoint(model, tmp_path / "ck")
  restored = checkpoint.load_checkpoint(tmp_path / "ck")
  np.testing.assert_array_equal(restored.score_reference,
                                model.score_reference)
  assert "score_reference" not in checkpoint.read_metadata(tmp_path / "ck")[
      "model"]  # the marker stays small: the reference is in model.keras
  assert helpers.vae(input_dim=4).get_config().get("score_reference") is None


@pytest.fixture(scope="session")
def sensor_zero_models():
  """Models of sensors idle at exactly 0, recorded to 0.01 and to 1."""
  models = {}
  for decimals in (2, 0):
    x, _ = synthetic.make_sensor_zeros(2000, 0, decimals=decimals, seed=0)
    models[decimals] = fitted_model(x, epochs=60, num_atoms=8,
                                    hidden_units=(64, 64), latent_dim=3,
                                    batch_size=64)
  return models


@pytest.mark.parametrize("decimals", [2, 0])
def test_values_common_alone_but_rare_together_rank_as_anomalies(
    sensor_zero_models, decimals):
  # Normal rows hold an exact 0 in one of three sensors 10% of the time
  # each; an anomaly holds zeros in all three. Each zero scores its
  # probability (about 0.1), not a density over a width, so at either
  # recording resolution the anomalies rank above the normal rows (with
  # spikes 1e-3 standard deviations wide, tfvae 0.2 ranked them below:
  # AUROC 0.07 at resolution 0.01).
  model = sensor_zero_models[decimals]
  assert np.all(np.any(model.standardization.atoms.numpy()[4:] == 0.0, 1))
  x, is_anomaly = synthetic.make_sensor_zeros(600, 20, decimals=decimals,
                                              seed=1)
  scores = model.anomaly_score(x, 100, seed=0)
  above = scores[is_anomaly][:, None] > scores[~is_anomaly][None, :]
  assert above.mean() > 0.9  # the AUROC
  assert np.median(scores[is_anomaly]) > np.percentile(scores[~is_anomaly], 90)


def mixed_rows(n, seed):
  """A real column, a 3-level category and a boolean, all driven by one
  latent, and an independent real column."""
  rng = np.random.default_rng(seed)
  z = rng.normal(size=n)
  level = np.digitize(z + 0.3 * rng.normal(size=n), [-0.6, 0.6])
  flag = rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-3.0 * z))
  return np.stack([z + 0.3 * rng.normal(size=n), level, flag,
                   rng.normal(size=n)], 1).astype(np.float64)


def test_categorical_columns_train_score_impute_and_sample():
  categories = [None, ["lo", "mid", "hi"], ["false", "true"], None]
  x, x_test = mixed_rows(1000, 0), mixed_rows(300, 1)
  tf_keras.utils.set_random_seed(0)
  model = tfvae.VAE(4, categories=categories, hidden_units=(32, 32),
                    num_train_samples=1, seed=0)
  model.adapt(x)
  assert model.num_atoms == 3  # the slots hold the largest category
  model.compile(tf_keras.optimizers.Adam(3e-3))
  model.fit(x, epochs=30, batch_size=64, verbose=0, lr_patience=0)
  # The category's level given the rest: far better than its commonest
  # level, and the "std" of a filled level is the chance it is wrong.
  hidden = x_test.copy()
  hidden[:, 1] = np.nan
  filled, wrong = model.impute(hidden, num_samples=100, seed=0,
                               return_std=True)
  majority = np.mean(x_test[:, 1] == np.bincount(x[:, 1].astype(int)).argmax())
  accuracy = np.mean(filled[:, 1] == x_test[:, 1])
  assert set(np.unique(filled[:, 1])) <= {0.0, 1.0, 2.0}
  assert accuracy > 0.72 and majority < 0.5, (accuracy, majority)
  assert np.all((wrong[:, 1] >= 0) & (wrong[:, 1] < 2 / 3))
  # The predicted chance of a wrong level is calibrated within noise.
  assert np.mean(wrong[:, 1]) == pytest.approx(1 - accuracy, abs=0.07)
  # With only the category observed, log p(x) is the log of the model's
  # marginal probability of the level: close to the level's frequency.
  alone = np.full_like(x_test[:150], np.nan)
  alone[:, 1] = x_test[:150, 1]
  frequencies = np.bincount(x[:, 1].astype(int)) / len(x)
  log_p = model.marginal_log_likelihood(alone, num_samples=100, seed=0)
  assert np.all(log_p < 0)
  np.testing.assert_allclose(
      np.mean(log_p),
      np.mean(np.log(frequencies[x_test[:150, 1].astype(int)])),
      atol=0.05)
  # A table of texts scores as its codes.
  texts = np.array([[x_test[0, 0], "mid", True, x_test[0, 3]],
                    [x_test[1, 0], "hi", "FALSE", None]], dtype=object)
  codes = np.array([[x_test[0, 0], 1.0, 1.0, x_test[0, 3]],
                    [x_test[1, 0], 2.0, 0.0, np.nan]])
  np.testing.assert_allclose(model.anomaly_score(texts, seed=3),
                             model.anomaly_score(codes, seed=3))
  # Each column's share of the score: a level's is -log of its probability
  # given z (positive); the shares add up to the score.
  shares = model.anomaly_score_shares(texts, seed=3)
  np.testing.assert_allclose(shares.sum(1), model.anomaly_score(texts, seed=3),
                             rtol=1e-7)
  assert np.all(shares[:, 1:3] > 0) and shares[1, 3] == 0.0
  with pytest.raises(ValueError, match="not a level code"):
    model.anomaly_score(np.array([[0.0, 1.5, 0.0, 0.0]]))
  # A DataFrame in, a DataFrame out in the table's types (its index
  # kept); sample's rows as one too.
  pandas = pytest.importorskip("pandas")
  filled_frame = model.impute(pandas.DataFrame(texts, index=[10, 11]),
                              num_samples=50, seed=0)
  assert isinstance(filled_frame, pandas.DataFrame)
  assert list(filled_frame.index) == [10, 11]
  assert list(filled_frame[1]) == ["mid", "hi"]
  assert list(filled_frame[2]) == ["true", "false"]
  assert filled_frame[0].dtype == np.float64
  assert not np.isnan(filled_frame[3]).any()
  drawn_frame = model.sample(5, seed=0, as_frame=True)
  assert set(drawn_frame[1]) <= {"lo", "mid", "hi"}
  np.testing.assert_array_equal(drawn_frame[0], model.sample(5, seed=0)[:, 0])
  # A condition gives a level by its text (`validation.condition_row`,
  # tested there): the model passes its levels.
  with pytest.raises(ValueError, match="'maybe' is not one of its levels"):
    model.sample_given({2: "maybe"}, 5)
  # Draws are levels at about the data's rates.
  model_sample, scores = (model.sample(50, seed=0),
                          model.anomaly_score(texts, seed=3))
  drawn = model.sample(2000, seed=0)
  assert set(np.unique(drawn[:, 2])) <= {0.0, 1.0}
  for level in range(3):
    assert np.mean(drawn[:, 1] == level) == pytest.approx(
        np.mean(x[:, 1] == level), abs=0.05)
  # Imputation recalibrated on held-out rows (`calibrate_levels`): both
  # categorical columns follow the latent, so the model keeps a weight
  # near 1 and its imputations.
  assert model.level_calibration is None
  report = model.calibrate_levels(x_test[150:], frequency_rows=x, seed=0)
  assert set(report) == {"column 2", "column 3"}
  for weight, gain, rows in report.values():
    assert weight > 0.5 and gain > 10 and rows == 150
  refilled = model.impute(hidden, num_samples=100, seed=0)
  assert np.mean(refilled[:, 1] == filled[:, 1]) > 0.95
  # A weight of 0 imputes the frequencies' mode with its chance of being
  # wrong, and multiple imputation draws the level at the frequencies.
  shares = [0.2, 0.3, 0.5]
  model.level_calibration = {
      "weights": [0.0, model.level_calibration["weights"][1]],
      "frequencies": [shares, model.level_calibration["frequencies"][1]]}
  refilled, wrong = model.impute(hidden[:20], num_samples=100, seed=0,
                                 return_std=True)
  np.testing.assert_array_equal(refilled[:, 1], 2.0)
  np.testing.assert_allclose(wrong[:, 1], 0.5)
  # (The M draws share their uniforms across rows: M are independent.)
  drawn = model.impute(hidden[:1], num_samples=100, seed=0,
                       num_imputations=2000)[:, 0, 1]
  for level, share in enumerate(shares):
    assert np.mean(drawn == level) == pytest.approx(
        share, abs=4 * np.sqrt(share * (1 - share) / drawn.size))
  # Unconditional draws stay the model's own (levels at the data's rates,
  # as above), and the likelihood does not change.
  np.testing.assert_array_equal(model.sample(50, seed=0), model_sample)
  np.testing.assert_allclose(model.anomaly_score(texts, seed=3), scores)
  # The levels and the calibration survive a save and load.
  config = model.get_config()
  assert config["categories"][1] == ("lo", "mid", "hi")
  assert type(config["level_calibration"]["weights"]) is list  # plain JSON
  loaded = model_lib.VAE.from_config(config)
  assert loaded.categories == model.categories
  assert loaded.level_calibration == model.level_calibration


def _positive_pair(rng):
  """A model with a positive column and the same model, weights and all,
  typed real and given log x: (x, log x, positive model, log model)."""
  x = np.stack([np.exp(rng.normal(1.0, 0.7, 300)), rng.normal(size=300)], 1)
  x[::7, 0] = np.nan
  x[::5, 1] = np.nan
  log_x = x.copy()
  log_x[:, 0] = np.log(x[:, 0])
  options = dict(hidden_units=(8,), latent_dim=1, num_atoms=0,
                 num_train_samples=1, seed=0)
  positive = tfvae.VAE(2, column_types=("positive", "real"), **options)
  positive.adapt(x)
  plain = tfvae.VAE(2, **options)
  plain.adapt(log_x)
  np.testing.assert_allclose(positive.standardization.loc.numpy(),
                             plain.standardization.loc.numpy())
  plain.set_weights(positive.get_weights())
  return x, log_x, positive, plain


def test_a_positive_column_is_the_log_scale_model_with_its_jacobian(rng):
  x, log_x, positive, plain = _positive_pair(rng)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # untrained
    log_p = positive.marginal_log_likelihood(x, num_samples=50, seed=0)
    log_p_of_log = plain.marginal_log_likelihood(log_x, num_samples=50, seed=0)
    # Change of variables: p(x) = p(log x) / x, where x is observed.
    np.testing.assert_allclose(
        log_p, log_p_of_log - np.nan_to_num(log_x[:, 0]), rtol=1e-9)
    # The anomaly score is per standard deviation of the working scale:
    # the same for both.
    np.testing.assert_allclose(positive.anomaly_score(x[:20], seed=1),
                               plain.anomaly_score(log_x[:20], seed=1),
                               rtol=1e-9)
    # Outputs in data units: imputation is the log-normal mean with the
    # log scale's predictive moments (and its standard deviation), draws
    # are exp of the log-scale draws.
    filled, spread = positive.impute(x[:30], num_samples=50, seed=2,
                                     return_std=True)
    filled_log, spread_log = plain.impute(log_x[:30], num_samples=50, seed=2,
                                          return_std=True)
    gap = np.isnan(x[:30, 0])
    assert gap.sum() >= 4 and np.all(np.isfinite(spread_log[gap, 0]))
    m, s2 = filled_log[gap, 0], spread_log[gap, 0]**2
    np.testing.assert_allclose(filled[gap, 0], np.exp(m + s2 / 2))
    np.testing.assert_allclose(spread[gap, 0],
                               np.exp(m + s2 / 2) * np.sqrt(np.expm1(s2)))
    np.testing.assert_array_equal(filled[~gap, 0], x[:30][~gap, 0])
    np.testing.assert_allclose(filled[:, 1], filled_log[:, 1])
    drawn = positive.sample(50, seed=3)
    drawn_log = plain.sample(50, seed=3)
    np.testing.assert_allclose(drawn[:, 0], np.exp(drawn_log[:, 0]))
    assert np.all(drawn[:, 0] > 0)
    # A value at or below 0 has no density: an infinite score.
    bad = x[:2].copy()
    bad[:, 0] = [0.0, -1.0]
    assert np.all(np.isinf(positive.anomaly_score(bad, seed=0)))


def test_a_count_column_is_a_probability_mass_function_given_z(rng):
  counts = rng.negative_binomial(2, 0.3, 400).astype(np.float64)
  x = np.stack([counts, rng.normal(size=400)], 1)
  model = tfvae.VAE(2, column_types=("count", "real"), hidden_units=(8,),
                    latent_dim=1, num_train_samples=1, seed=0)
  model.adapt(x)
  assert model.num_atoms > 0  # the commonest counts are atoms
  z = tf.constant(rng.normal(size=(3, 1)), tf.float32)
  standard = model.standard_likelihood_parameters(z)
  k = np.arange(0, 4000, dtype=np.float64)
  rows = np.stack([k, np.zeros_like(k)], 1)
  u, observed = model.standardize(tf.constant(rows))
  total = []
  for index in range(3):
    one = {name: value[index] if name == "atom_logits" or value.shape.rank
           and value.shape[0] == 3 else value
           for name, value in standard.items()}
    log_prob = model.column_log_prob(one, u, observed, tf.float64,
                                     model.atom_index(u)).numpy()
    total.append(np.exp(log_prob[:, 0]).sum())
  np.testing.assert_allclose(total, 1.0, rtol=1e-6)
  # A fraction or a negative count has no mass: an infinite score. Counts
  # are imputed and drawn as integers.
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # untrained
    scores = model.anomaly_score(np.array([[1.5, 0.0], [-1.0, 0.0],
                                           [2.0, 0.0]]), seed=0)
    assert np.isinf(scores[:2]).all() and np.isfinite(scores[2])
    filled = model.impute(np.array([[np.nan, 0.3], [np.nan, -1.0]]),
                          num_samples=50, seed=0)
    drawn = model.sample(200, seed=0)
  for values in (filled[:, 0], drawn[:, 0]):
    assert np.all(values == np.round(values)) and np.all(values >= 0)
