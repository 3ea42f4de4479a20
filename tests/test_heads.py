"""Distribution heads: densities and parameters against numpy, floors, configs."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfvae import families
from tfvae import heads


def numpy_normal_log_prob(x, loc, scale):
  return -0.5 * ((x - loc) / scale)**2 - np.log(scale) - 0.5 * np.log(2 * np.pi)


def numpy_laplace_log_prob(x, loc, scale):
  return -np.abs(x - loc) / scale - np.log(2 * scale)


def numpy_student_t_log_prob(x, df, loc, scale):
  lgamma = np.vectorize(math.lgamma)
  y = (x - loc) / scale
  return (lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * np.log(df * np.pi)
          - np.log(scale) - (df + 1) / 2 * np.log1p(y * y / df))


def softplus(v):
  return np.log1p(np.exp(v))


def expected_parameters(family, params, head):
  """Each family's parameters from the raw network outputs, in numpy."""
  d = head.event_size
  floor = head.scale_floor
  if family in (families.GAUSSIAN, families.LAPLACE):
    return {"loc": params[:, :d], "scale": softplus(params[:, d:]) + floor}
  if family == families.STUDENT_T:
    # The head's float32 df (its formula is tested on its own below): numpy
    # can round it differently in the last bit.
    df = head.degrees_of_freedom().numpy().astype(np.float64)
    return {"loc": params[:, :d], "scale": softplus(params[:, d:]) + floor,
            "df": np.broadcast_to(df, params[:, :d].shape)}
  if family == families.GAUSSIAN_SHARED:
    scale = softplus(head.raw_scale.numpy()) + floor
    return {"loc": params, "scale": np.broadcast_to(scale, params.shape)}
  return {"loc": params, "scale": np.full(params.shape, math.sqrt(1e-4 * d / 2))}


def numpy_log_prob(family, x, p):
  if family == families.LAPLACE:
    return numpy_laplace_log_prob(x, p["loc"], p["scale"])
  if family == families.STUDENT_T:
    return numpy_student_t_log_prob(x, p["df"], p["loc"], p["scale"])
  return numpy_normal_log_prob(x, p["loc"], p["scale"])


def test_posterior_log_prob_matches_numpy(rng):
  head = heads.PosteriorNormal(latent_dim=3, scale_floor=1e-4)
  params = rng.normal(size=(5, heads.PosteriorNormal.params_size(3))).astype(np.float32)
  z = rng.normal(size=(5, 3)).astype(np.float32)
  posterior = head(params)
  loc, scale = params[:, :3], softplus(params[:, 3:]) + 1e-4
  np.testing.assert_allclose(posterior.log_prob(z),
                             numpy_normal_log_prob(z, loc, scale).sum(-1),
                             rtol=1e-5)
  np.testing.assert_allclose(posterior.stddev(), scale, rtol=1e-5)


def test_posterior_converts_to_its_mean_without_drawing(rng):
  head = heads.PosteriorNormal(latent_dim=2)
  params = rng.normal(size=(4, 4)).astype(np.float32)
  tf.random.set_seed(7)
  converted = tf.convert_to_tensor(head(params))
  after = tf.random.uniform([3]).numpy()
  tf.random.set_seed(7)
  untouched = tf.random.uniform([3]).numpy()
  np.testing.assert_array_equal(converted, params[:, :2])
  np.testing.assert_array_equal(after, untouched)  # no random op was created


def test_posterior_scale_has_floor():
  head = heads.PosteriorNormal(latent_dim=2, scale_floor=1e-3)
  params = tf.constant([[0.0, 0.0, -200.0, -200.0]])
  np.testing.assert_allclose(head(params).stddev(), [[1e-3, 1e-3]], rtol=1e-6)


@pytest.mark.parametrize("family", families.NAMES)
def test_likelihood_parameters_and_log_prob_against_numpy(family, rng):
  d = 4
  head = heads.make_likelihood(family, d, scale_floor=1e-3)
  for weight in head.trainable_weights:  # known, non-default values
    weight.assign(rng.normal(size=weight.shape).astype(np.float32))
  params = rng.normal(size=(6, head.params_size(d))).astype(np.float32)
  expected = expected_parameters(family, params.astype(np.float64), head)
  got = head.distribution_parameters(params)
  assert set(got) == set(expected)
  for name in expected:
    np.testing.assert_allclose(got[name], expected[name], rtol=2e-6)
  u = rng.normal(size=(6, d))
  np.testing.assert_allclose(head(params).log_prob(u.astype(np.float32)),
                             numpy_log_prob(family, u, expected), rtol=2e-5,
                             atol=2e-5)


@pytest.mark.parametrize("family", families.NAMES)
def test_data_units_carry_the_log_jacobian(family, rng):
  d = 3
  head = heads.make_likelihood(family, d)
  params = rng.normal(size=(5, head.params_size(d))).astype(np.float64)
  data_loc = rng.normal(size=d) * 1e6
  data_scale = rng.uniform(0.01, 1000, size=d)
  standard = {k: tf.cast(v, tf.float64) for k, v in
              head.distribution_parameters(params).items()}
  x = data_loc + data_scale * rng.normal(size=(5, d))
  in_data_units = head.make_distribution(
      head.to_data_units(standard, data_loc, data_scale))
  u = (x - data_loc) / data_scale
  np.testing.assert_allclose(
      in_data_units.log_prob(x),
      head.make_distribution(standard).log_prob(u) - np.log(data_scale),
      rtol=1e-9, atol=1e-9)
  np.testing.assert_allclose(
      in_data_units.mean(),
      data_loc + data_scale * head.make_distribution(standard).mean(), rtol=1e-12)


@pytest.mark.parametrize("family", sorted(set(families.NAMES) - {families.MSE}))
def test_scale_floor_holds_for_every_learned_scale(family):
  head = heads.make_likelihood(family, 3, scale_floor=0.05)
  params = tf.fill([2, head.params_size(3)], -500.0)
  for weight in head.trainable_weights:
    weight.assign(tf.fill(weight.shape, -500.0))
  scale = head.distribution_parameters(params)["scale"].numpy()
  np.testing.assert_allclose(scale, 0.05, rtol=1e-6)


@pytest.mark.parametrize("min_df", [1.0, 2.5])
def test_student_t_df_has_its_floor_and_an_infinite_stddev_below_two(min_df):
  head = heads.StudentTLikelihood(3, min_df=min_df)
  head.raw_df.assign([-1000.0, 0.0, 1000.0])
  p = head.distribution_parameters(tf.zeros([1, 6]))
  df = p["df"].numpy()[0]
  floor = min_df + 1e-3
  np.testing.assert_allclose(df, [floor, floor + math.log(2.0), 1000 + floor],
                             rtol=1e-6)
  assert np.all(df > min_df)
  distribution = head.make_distribution(p)
  stddev = distribution.stddev().numpy()[0]
  scale = softplus(0.0) + head.scale_floor
  for value, d in zip(stddev, df):
    if d > 2:
      assert value == pytest.approx(scale * math.sqrt(d / (d - 2)), rel=1e-5)
    else:
      assert value == np.inf
  np.testing.assert_array_equal(distribution.mean(), 0.0)  # df > 1: mean exists
  with pytest.raises(ValueError, match="min_df"):
    heads.StudentTLikelihood(3, min_df=0.5)


def test_student_t_df_reaches_gaussian_tails_and_heavy_ones_quickly(rng):
  # Fit only df by Adam (learning rate 1e-3, 3,000 steps) on Gaussian data
  # and on Cauchy data. On the log scale df travels towards either end
  # (past 20, where the family is within 0.002 nats per value of a
  # Gaussian, and below 2); with softplus a step moves df by at most about
  # the learning rate, so it stays within 3 of its start (6).
  gaussian = rng.normal(size=(20000, 1)).astype(np.float32)
  cauchy = rng.standard_cauchy(size=(20000, 1)).astype(np.float32)
  for transform in ("exp", "softplus"):
    learned = []
    for data in (gaussian, cauchy):
      head = heads.StudentTLikelihood(1, df_transform=transform)
      parameters = head.distribution_parameters(tf.zeros([1, 2]))
      parameters["scale"] = tf.ones([1, 1])
      optimizer = tf_keras.optimizers.Adam(1e-3)
      optimizer.build([head.raw_df])
      batches = tf.constant(data.reshape(40, 500, 1))

      @tf.function
      def fit(head=head, parameters=parameters, optimizer=optimizer,
              batches=batches):
        # The 3,000 steps in one graph call (batch i % 40 at step i).
        for i in tf.range(3000):
          with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(head.family_log_prob(parameters,
                                                        batches[i % 40]))
          optimizer.apply_gradients(
              [(tape.gradient(loss, head.raw_df), head.raw_df)])

      fit()
      learned.append(float(head.degrees_of_freedom()[0]))
    if transform == "exp":
      assert learned[0] > 20 and learned[1] < 2, learned
    else:
      assert learned[0] < 9 and learned[1] > 2.5, learned
  with pytest.raises(ValueError, match="df_transform"):
    heads.StudentTLikelihood(3, df_transform="log")
  head = heads.StudentTLikelihood(3, min_df=2.5, df_transform="exp")
  head.raw_df.assign([-1000.0, 0.0, 1000.0])
  np.testing.assert_allclose(head.degrees_of_freedom(),
                             [2.501, 3.501, 2.501 + 1e5], rtol=1e-6)


def test_mse_head_reproduces_the_snippets_objective(rng):
  # (MSE + 1e-4 KL) / 1e-4 and (Gaussian NLL with the fixed scale + KL)
  # differ only by a constant, so they have the same minimiser.
  d = 5
  head = heads.FixedScaleGaussianLikelihood(d)
  assert head.fixed_scale == pytest.approx(math.sqrt(1e-4 * d / 2))
  kl = rng.uniform(0, 10, size=8)
  x = rng.normal(size=(8, d))
  differences = []
  for _ in range(3):
    mu = rng.normal(size=(8, d))
    nll = -head(mu).log_prob(x).numpy().sum(-1)
    snippet = np.mean((x - mu)**2, axis=-1) + 1e-4 * kl
    differences.append(nll + kl - snippet / 1e-4)
  # The NLLs are ~1e4 nats in float32, hence the absolute tolerance.
  np.testing.assert_allclose(differences[0], differences[1], atol=0.02)
  np.testing.assert_allclose(differences[0], differences[2], atol=0.02)
  expected_constant = 0.5 * d * np.log(2 * np.pi * head.fixed_scale**2)
  np.testing.assert_allclose(differences[0], expected_constant, atol=0.02)


@pytest.mark.parametrize("family", families.NAMES)
def test_keras_serialization_round_trip(family):
  head = heads.make_likelihood(family, 3, scale_floor=0.02, name="lik")
  config = tf_keras.saving.serialize_keras_object(head)
  assert config["registered_name"].startswith("tfvae>")
  clone = tf_keras.saving.deserialize_keras_object(config)
  assert type(clone) is type(head) and clone.get_config() == head.get_config()


def test_posterior_config_round_trip():
  head = heads.PosteriorNormal(4, scale_floor=1e-3, name="q")
  clone = tf_keras.saving.deserialize_keras_object(
      tf_keras.saving.serialize_keras_object(head))
  assert clone.get_config() == head.get_config()


def test_families_match_the_registry():
  assert tuple(heads.LIKELIHOODS) == families.NAMES
  assert families.DEFAULT in families.NAMES
  with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
    heads.make_likelihood("poisson", 3)


def test_each_head_consumes_exactly_its_params_size():
  loc = heads.PosteriorNormal(5).distribution_parameters(
      tf.zeros([2, heads.PosteriorNormal.params_size(5)]))["loc"]
  assert loc.shape == (2, 5)
  for family in families.NAMES:
    head = heads.make_likelihood(family, 7)
    params = tf.random.normal([2, head.params_size(7)])
    parameters = head.family_parameters(params)
    assert parameters["loc"].shape == (2, 7) == parameters["scale"].shape
    # Every input is used: each loc or scale moves with some input.
    with tf.GradientTape() as tape:
      tape.watch(params)
      total = tf.reduce_sum(head.family_parameters(params)["loc"] +
                            head.family_parameters(params)["scale"])
    used = tf.reduce_any(tape.gradient(total, params) != 0, axis=0)
    assert bool(tf.reduce_all(used)), family


@pytest.mark.parametrize("family", [families.GAUSSIAN, families.STUDENT_T])
def test_atoms_are_point_masses_scored_by_their_probability(family, rng):
  d, atoms = 3, 2
  head = heads.make_likelihood(family, d, scale_floor=1e-3, num_atoms=atoms)
  assert head.output_size == head.params_size(d) + d * (atoms + 1)
  params = rng.normal(size=(5, head.output_size)).astype(np.float64)
  parameters = {k: tf.cast(v, tf.float64)
                for k, v in head.distribution_parameters(params).items()}
  atom_loc = np.array([[0.0, 1.0], [-2.0, np.nan], [np.nan, np.nan]])
  parameters["atom_loc"] = tf.constant(atom_loc)
  parameters["atom_tolerance"] = tf.fill([d, atoms], tf.constant(0.05, tf.float64))
  distribution = head.make_distribution(parameters)
  u = rng.uniform(2.0, 4.0, size=(5, d))  # away from every atom
  u[0, 0], u[1, 1], u[2, 0] = 0.0, -2.0, 1.0  # values at atoms
  u[3, 0] = 1.0 + 0.04  # within the tolerance: the atom
  u[4, 0] = 0.0 + 0.06  # beyond it: the family
  u[4, 2] = 0.0  # a column without atoms: the family
  # Independent numpy: log w_j at atom j, else log w_0 + log f(u), where the
  # weights are a softmax over the logits of the atoms that exist.
  logits = params[:, head.params_size(d):].reshape(5, d, atoms + 1)
  logits = np.where(np.concatenate([np.zeros((d, 1), bool), np.isnan(atom_loc)],
                                   axis=1), -np.inf, logits)
  log_weights = logits - logits.max(-1, keepdims=True)
  log_weights -= np.log(np.exp(log_weights).sum(-1, keepdims=True))
  base = expected_parameters(family, params[:, :head.params_size(d)], head)
  expected = log_weights[..., 0] + numpy_log_prob(family, u, base)
  for (row, column), atom in {(0, 0): 1, (1, 1): 1, (2, 0): 2,
                              (3, 0): 2}.items():
    expected[row, column] = log_weights[row, column, atom]
  # (The mixture weights are worked out in float32, as the network's.)
  np.testing.assert_allclose(distribution.log_prob(u), expected, rtol=1e-6)
  np.testing.assert_allclose(head.log_prob(parameters, tf.constant(u)),
                             expected, rtol=1e-6)
  np.testing.assert_allclose(head.component_probabilities(parameters),
                             np.exp(log_weights), rtol=1e-12)
  # Values with more batch dimensions than the parameters broadcast, as in
  # any TFP distribution.
  np.testing.assert_allclose(distribution.log_prob(np.stack([u, u])),
                             np.stack([expected, expected]), rtol=1e-6)
  # No width: the atom's term is a probability (< 0 nats), whatever the
  # tolerance.
  narrow = dict(parameters, atom_tolerance=tf.fill([d, atoms], tf.constant(
      1e-9, tf.float64)))
  np.testing.assert_allclose(head.log_prob(narrow, tf.constant(u))[:3],
                             expected[:3], rtol=1e-6)
  assert np.all(expected[[0, 1, 2], [0, 1, 0]] < 0.0)


def test_a_hurdle_likelihood_is_maximised_by_the_atoms_frequencies(rng):
  # Against counting measure at the atom, the likelihood of n values of
  # which m sit at the atom is maximised at P(atom) = m / n (the mixture's
  # closed-form maximum likelihood), with the family fitted to the rest.
  head = heads.make_likelihood(families.GAUSSIAN, 1, num_atoms=1)
  values = np.concatenate([np.zeros(300), rng.normal(2.0, 0.5, size=700)])
  u = tf.constant(values[:, None])
  raw = tf.Variable(tf.zeros([1, head.output_size], tf.float64))
  optimizer = tf.optimizers.Adam(0.05)

  @tf.function
  def train():
    for _ in tf.range(600):  # one graph loop of 600 full-batch steps
      with tf.GradientTape() as tape:
        parameters = head.distribution_parameters(
            tf.broadcast_to(raw, [len(values), head.output_size]))
        parameters["atom_loc"] = tf.constant([[0.0]], tf.float64)
        parameters["atom_tolerance"] = tf.constant([[1e-9]], tf.float64)
        loss = -tf.reduce_mean(head.log_prob(parameters, u))
      optimizer.apply_gradients([(tape.gradient(loss, raw), raw)])

  train()
  parameters = head.distribution_parameters(raw)
  parameters["atom_loc"] = tf.constant([[0.0]], tf.float64)
  rest = values[300:]
  assert float(head.component_probabilities(parameters)[0, 0, 1]) == (
      pytest.approx(0.3, abs=2e-3))
  assert float(parameters["loc"][0, 0]) == pytest.approx(rest.mean(), abs=5e-3)
  assert float(parameters["scale"][0, 0]) == pytest.approx(rest.std(), rel=1e-2)


def test_draws_from_uniforms_hit_the_atoms_at_their_rates(rng):
  head = heads.make_likelihood(families.GAUSSIAN, 1, num_atoms=1)
  params = np.zeros((1, head.output_size))
  params[0, 2:] = [np.log(0.7), np.log(0.3)]  # P(family) 0.7, P(atom) 0.3
  parameters = {k: tf.cast(v, tf.float64)
                for k, v in head.distribution_parameters(params).items()}
  parameters["atom_loc"] = tf.constant([[5.0]], tf.float64)
  parameters["atom_tolerance"] = tf.constant([[1e-9]], tf.float64)
  n = 20000
  shape = [n, 1]
  tiled = {k: (tf.broadcast_to(v, shape) if k not in ("atom_loc", "atom_tolerance")
               else v) for k, v in parameters.items() if k != "atom_logits"}
  tiled["atom_logits"] = tf.broadcast_to(parameters["atom_logits"], [n, 1, 2])
  draws = head.draw(tiled, tf.constant(rng.uniform(size=shape)),
                    tf.constant(rng.uniform(size=shape))).numpy()
  assert np.mean(draws == 5.0) == pytest.approx(0.3, abs=0.015)
  rest = draws[draws != 5.0]
  scale = softplus(0.0) + 1e-3
  assert np.mean(rest) == pytest.approx(0.0, abs=0.05)
  assert np.std(rest) == pytest.approx(scale, rel=0.05)


def test_a_categorical_column_is_a_softmax_over_its_levels(rng):
  # atom_only: a column whose values are all atoms (a category's level
  # codes) has no family slot: log p(level j) is the log-softmax of the
  # levels' logits alone, the draws are levels at their rates, and the
  # mean is the probability-weighted code.
  d, atoms = 2, 3
  head = heads.make_likelihood(families.STUDENT_T, d, num_atoms=atoms)
  params = rng.normal(size=(4, head.output_size))
  parameters = {k: tf.cast(v, tf.float64)
                for k, v in head.distribution_parameters(params).items()}
  atom_loc = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, np.nan]])
  parameters["atom_loc"] = tf.constant(atom_loc)
  parameters["atom_tolerance"] = tf.fill([d, atoms], tf.constant(0.5, tf.float64))
  parameters["atom_only"] = tf.constant([True, True])
  logits = params[:, head.params_size(d):].reshape(4, d, atoms + 1)[..., 1:]
  logits = np.where(np.isnan(atom_loc), -np.inf, logits)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  u = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
  expected = np.take_along_axis(log_p, u.astype(int)[..., None], -1)[..., 0]
  np.testing.assert_allclose(head.log_prob(parameters, tf.constant(u)),
                             expected, rtol=1e-6)
  np.testing.assert_allclose(head.make_distribution(parameters).log_prob(u),
                             expected, rtol=1e-6)
  probabilities = head.component_probabilities(parameters).numpy()
  np.testing.assert_allclose(probabilities[..., 0], 0.0)
  np.testing.assert_allclose(probabilities[..., 1:], np.exp(log_p), rtol=1e-6)
  mean, _ = head.mean_and_variance(parameters)
  np.testing.assert_allclose(
      mean, (np.exp(log_p) * np.nan_to_num(atom_loc)).sum(-1), rtol=1e-6)
  # Draws: only levels, at their probabilities (row 0's), even for a
  # uniform of exactly 0.
  n = 20000
  row0 = {k: (v[:1] if k in ("loc", "scale", "df", "atom_logits") else v)
          for k, v in parameters.items()}
  tiled = {k: (tf.broadcast_to(v, [n, d]) if k in ("loc", "scale", "df")
               else v) for k, v in row0.items()}
  tiled["atom_logits"] = tf.broadcast_to(row0["atom_logits"], [n, d, atoms + 1])
  uniforms = rng.uniform(size=[n, d])
  uniforms[0] = 0.0
  draws = head.draw(tiled, tf.constant(uniforms),
                    tf.constant(rng.uniform(size=[n, d]))).numpy()
  assert set(np.unique(draws[:, 0])) <= {0.0, 1.0, 2.0}
  assert set(np.unique(draws[:, 1])) <= {0.0, 1.0}
  for level in range(3):
    assert np.mean(draws[:, 0] == level) == pytest.approx(
        np.exp(log_p[0, 0, level]), abs=0.015)


def test_mixture_moments_by_total_variance_even_with_infinite_tails():
  head = heads.make_likelihood(families.STUDENT_T, 2, num_atoms=1)
  head.raw_df.assign([-50.0, 50.0])  # df ~1 (infinite variance) and ~51
  params = np.zeros((1, head.output_size))
  params[0, 4:] = [np.log(0.6), np.log(0.4), np.log(0.6), np.log(0.4)]
  parameters = {k: tf.cast(v, tf.float64)
                for k, v in head.distribution_parameters(params).items()}
  parameters["atom_loc"] = tf.constant([[3.0], [3.0]], tf.float64)
  parameters["atom_tolerance"] = tf.constant([[1e-9], [1e-9]], tf.float64)
  mean, variance = head.mean_and_variance(parameters)
  np.testing.assert_allclose(mean, [[0.4 * 3.0, 0.4 * 3.0]], rtol=1e-9)
  assert np.isinf(variance[0, 0])
  df = 51.001
  scale = softplus(0.0) + 1e-3
  family_variance = scale**2 * df / (df - 2)
  expected = (0.6 * family_variance + 0.4 * 9.0) - 1.2**2
  assert float(variance[0, 1]) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("family", families.NAMES)
@pytest.mark.parametrize("atoms", [0, 3])
def test_closed_form_log_prob_equals_the_distributions(family, atoms, rng):
  d = 4
  head = heads.make_likelihood(family, d, num_atoms=atoms)
  for weight in head.trainable_weights:
    weight.assign(rng.normal(size=weight.shape).astype(np.float32))
  params = rng.normal(size=(7, head.output_size))
  parameters = {k: tf.cast(v, tf.float64)
                for k, v in head.distribution_parameters(params).items()}
  u = rng.normal(size=(7, d)) * 3
  if atoms:
    atom_loc = np.array([[0.0, 1.0, 2.5], [-1.0, np.nan, np.nan],
                         [np.nan] * 3, [0.5, 0.7, np.nan]])
    parameters["atom_loc"] = tf.constant(atom_loc)
    parameters["atom_tolerance"] = tf.fill([d, atoms],
                                           tf.constant(1e-3, tf.float64))
    u[0, 0], u[1, 1], u[2, 3], u[3, 0] = 1.0, -1.0, 0.7, 2.5 + 4e-3
    u[4, 3] = 0.5 + 1.5e-3  # between two atoms, within neither's tolerance
    u[5, 3] = 0.5 + 2.5e-3  # within the second's
    atom_loc[3, 1] = 0.5 + 3e-3
    parameters["atom_loc"] = tf.constant(atom_loc)
  np.testing.assert_allclose(head.log_prob(parameters, tf.constant(u)),
                             head.make_distribution(parameters).log_prob(u),
                             rtol=1e-6, atol=1e-6)
  # Parameters with a leading sample axis, [K, B, D], against values [B, D]
  # (as in importance-weighted training and scoring).
  params = rng.normal(size=(3, 7, head.output_size))
  stacked = {k: tf.cast(v, tf.float64)
             for k, v in head.distribution_parameters(params).items()}
  if atoms:
    stacked["atom_loc"], stacked["atom_tolerance"] = (
        parameters["atom_loc"], parameters["atom_tolerance"])
  np.testing.assert_allclose(
      head.log_prob(stacked, tf.constant(u)),
      head.make_distribution(stacked).log_prob(np.broadcast_to(u, (3, 7, d))),
      rtol=1e-6, atol=1e-6)
  # Gradients stay finite, also for columns without atoms.
  logits = tf.Variable(tf.cast(head.distribution_parameters(params)[
      "atom_logits" if atoms else "loc"], tf.float32))
  with tf.GradientTape() as tape:
    trial = {k: tf.cast(v, tf.float32) for k, v in stacked.items()}
    trial["atom_logits" if atoms else "loc"] = logits
    total = tf.reduce_sum(head.log_prob(trial, tf.constant(u, tf.float32)))
  assert np.all(np.isfinite(tape.gradient(total, logits)))


def exact_logistic_bins(k, loc, scale):
  """The logistic's mass of each bin (k - 1/2, k + 1/2] (below 1/2 for 0),
  in 400-digit decimal arithmetic: no cancellation in either tail."""
  import decimal  # pylint: disable=g-import-not-at-top
  with decimal.localcontext() as context:
    context.prec = 400
    loc, scale = decimal.Decimal(loc), decimal.Decimal(scale)

    def cdf(x):
      return 1 / (1 + ((loc - decimal.Decimal(x)) / scale).exp())

    return np.array([float(cdf(v + 0.5) - (cdf(v - 0.5) if v > 0 else 0))
                     for v in k])


@pytest.mark.parametrize("loc,scale", [(3.2, 1.5), (-4.0, 0.3), (40.0, 2.0),
                                       (0.4, 0.05)])
def test_a_count_bin_is_the_logistics_mass_and_the_bins_sum_to_one(loc, scale):
  # Data units (standardisation 0, 1): the bin of k is (k - 1/2, k + 1/2],
  # the bin of 0 everything below 1/2.
  k = np.arange(0, 400, dtype=np.float64)
  got = heads.logistic_log_bin_mass(
      tf.constant(loc, tf.float64), tf.constant(scale, tf.float64),
      tf.constant(k), tf.constant(0.5, tf.float64),
      tf.constant(0.5, tf.float64)).numpy()
  expected = exact_logistic_bins(k, loc, scale)
  sizable = expected > 1e-280  # float64's range
  np.testing.assert_allclose(np.exp(got[sizable]), expected[sizable],
                             rtol=1e-9)
  assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-12)
  # Far in the right tail a difference of CDFs would be 0 - 0: the mirrored
  # log-survival functions keep the digits (logistic tail: exp(-y)).
  far = heads.logistic_log_bin_mass(
      tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64),
      tf.constant(100.0, tf.float64), tf.constant(0.5, tf.float64),
      tf.constant(0.5, tf.float64)).numpy()
  expected = -99.5 + np.log1p(-np.exp(-1.0))  # S(99.5) - S(100.5)
  assert far == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("family", ["gaussian", "student_t"])
def test_a_count_column_with_atoms_is_a_probability_mass_function(family,
                                                                  rng):
  # Column 0 is a count (standardised with loc 2, scale 4) with atoms at 0
  # and 3, column 1 real: over the integers, atoms and the logistic's slot
  # add up to 1, and the real column keeps its density.
  head = heads.make_likelihood(family, 2, num_atoms=2)
  params = tf.constant(rng.normal(size=(3, head.output_size)), tf.float32)
  parameters = head.distribution_parameters(params)
  data_loc, data_scale = np.array([2.0, 0.0]), np.array([4.0, 1.0])
  atoms = np.array([[0.0, 3.0], [np.nan, np.nan]])
  parameters.update(
      atom_loc=tf.constant((atoms - data_loc[:, None]) / data_scale[:, None]),
      atom_tolerance=tf.constant(np.full((2, 2), 1e-9)),
      count_half_width=tf.constant([0.5 / 4.0, 0.0]),
      count_zero_edge=tf.constant([(0.5 - 2.0) / 4.0, 0.0]))
  parameters = {name: tf.cast(value, tf.float64) if name != "atom_logits"
                else value for name, value in parameters.items()}
  k = np.arange(0, 3000, dtype=np.float64)
  u = np.stack([(k - 2.0) / 4.0, np.zeros_like(k)], 1)[:, None, :]  # [K,1,2]
  log_prob = head.log_prob(parameters, tf.constant(u)).numpy()  # [K, 3, 2]
  np.testing.assert_allclose(np.exp(log_prob[..., 0]).sum(0), 1.0,
                             rtol=1e-6)
  # The atoms score their probabilities exactly.
  probabilities = head.component_probabilities(parameters).numpy()
  np.testing.assert_allclose(np.exp(log_prob[[0, 3], :, 0]),
                             probabilities[:, 0, 1:].T, rtol=1e-6)
  plain = head.log_prob({name: value for name, value in parameters.items()
                         if not name.startswith("count_")}, tf.constant(u))
  np.testing.assert_allclose(log_prob[..., 1], plain.numpy()[..., 1])


def test_count_bins_have_finite_gradients_far_from_the_data():
  # A bin of 0 far above the logistic (F = 1 in float32) and bins far in
  # either tail: the loss and its gradient stay finite.
  loc = tf.Variable([-300.0, 0.0, 0.0, 0.0])
  scale = tf.Variable([0.01, 0.01, 0.01, 2.0])
  u = tf.constant([0.0, 5.0, -5.0, 0.0])
  with tf.GradientTape() as tape:
    value = heads.logistic_log_bin_mass(loc, scale, u, tf.constant(0.05),
                                        tf.constant(0.05))
  gradients = tape.gradient(value, [loc, scale])
  assert np.all(np.isfinite(value.numpy()))
  assert all(np.all(np.isfinite(g.numpy())) for g in gradients)


def test_count_draws_follow_the_columns_probabilities(rng):
  # A count column with atoms at 0 and 3 (data units: loc and scale of the
  # standardisation 0 and 1): 200,000 draws by inverse CDF, the atoms' and
  # the logistic slot's, against the probabilities log_prob gives.
  head = heads.make_likelihood("student_t", 1, num_atoms=2)
  params = tf.constant(rng.normal(size=(1, head.output_size)), tf.float32)
  parameters = {name: tf.cast(value, tf.float64) for name, value in
                head.distribution_parameters(params).items()}
  parameters["loc"] = tf.constant([[2.5]], tf.float64)
  parameters["scale"] = tf.constant([[1.5]], tf.float64)
  atoms = tf.constant([[0.0, 3.0]], tf.float64)
  scoring = dict(parameters, atom_loc=atoms,
                 atom_tolerance=tf.fill([1, 2], tf.constant(1e-9, tf.float64)),
                 count_half_width=tf.constant([0.5], tf.float64),
                 count_zero_edge=tf.constant([0.5], tf.float64))
  k = np.arange(0, 200, dtype=np.float64)
  pmf = np.exp(head.log_prob(scoring, tf.constant(k[:, None, None])).numpy())
  pmf = pmf[:, 0, 0]
  assert pmf.sum() == pytest.approx(1.0, abs=1e-6)  # float32 mixture weights
  drawing = dict(parameters, atom_loc=atoms,
                 atom_tolerance=scoring["atom_tolerance"],
                 count_mask=tf.constant([True]))
  n = 200_000
  uniforms = rng.uniform(size=(2, n, 1))
  drawn = head.draw(
      {name: (tf.broadcast_to(value, [n, 1]) if name in ("loc", "scale", "df")
              else tf.broadcast_to(value, [n, 1, 3]) if name == "atom_logits"
              else value) for name, value in drawing.items()},
      tf.constant(uniforms[0]), tf.constant(uniforms[1])).numpy()[:, 0]
  assert np.all(drawn == np.round(drawn)) and drawn.min() >= 0
  frequencies = np.bincount(drawn.astype(int), minlength=200)[:200] / n
  # Within 4 binomial standard errors everywhere.
  assert np.all(np.abs(frequencies - pmf) <= 4 * np.sqrt(pmf / n) + 1e-4)
