"""Every input check and its message (`tfvae.validation`)."""

import numpy as np
import pytest
import tensorflow as tf

from tfvae import validation


def test_validate_array_rejects_strings_empty_and_infinity():
  with pytest.raises(TypeError, match="numeric"):
    validation.validate_array(np.array([["a", "b"]]))
  with pytest.raises(ValueError, match="empty"):
    validation.validate_array(np.zeros((0, 3)))
  x = np.ones((4, 2))
  x[2, 1] = -np.inf
  with pytest.raises(ValueError, match=r"1 infinite values, the first at row "
                     r"2 \(0-based\), column 1"):
    validation.validate_array(x)
  x[2, 1] = np.nan
  assert np.isnan(validation.validate_array(x)[2, 1])
  with pytest.raises(ValueError, match="NaN"):
    validation.validate_array(x, allow_missing=False)


def test_validators():
  assert validation.check_positive_int(3, "n") == 3
  for bad in (0, -1, 2.5, True, "3"):
    with pytest.raises(ValueError, match="n must be a positive integer"):
      validation.check_positive_int(bad, "n")
  assert validation.check_widths([64, 32]) == (64, 32)
  with pytest.raises(ValueError, match="hidden_units"):
    validation.check_widths("64")
  for bad in (float("nan"), float("inf")):
    with pytest.raises(ValueError, match="lr must be a finite number"):
      validation.check_finite(bad, "lr")
  with pytest.raises(ValueError, match="must be a number > 0"):
    validation.check_finite(0.0, "lr", minimum=0, exclusive=True)
  assert validation.check_seed(2**40) == 2**40
  with pytest.raises(ValueError, match="seed"):
    validation.check_seed(-1)


def test_a_named_table_in_memory_is_matched_by_name():
  class Frame:  # the part of a pandas DataFrame that tfvae reads
    def __init__(self, values, columns):
      self.values, self.columns = values, columns

    def to_numpy(self):
      return self.values

  x = np.arange(6.0).reshape(2, 3)
  with pytest.warns(validation.DataWarning):
    got = validation.validate_array(Frame(x[:, [1, 2, 0]], ["b", "c", "a"]),
                                  expected_names=("a", "b", "c"))
  np.testing.assert_array_equal(got, x)
  with pytest.raises(ValueError, match="unknown column 'z'"):
    validation.validate_array(Frame(x, ["a", "b", "z"]),
                            expected_names=("a", "b", "c"))


def test_fractions_counts_and_versions():
  assert validation.check_fraction(0.0) == 0.0
  for bad in (1.0, -0.1, 1.5, float("nan")):
    with pytest.raises(ValueError, match="validation_split must be a"):
      validation.check_fraction(bad)
  assert validation.check_num_samples(10**6) == 10**6
  with pytest.raises(ValueError, match="at most 1,000,000 importance samples"):
    validation.check_num_samples(10**6 + 1)
  assert validation.check_version(2**63 - 1) == 2**63 - 1
  for bad in (0, 2**63, 1.5, True):
    with pytest.raises(ValueError, match="version must be a positive integer"):
      validation.check_version(bad)


def test_sample_weights_and_values_training_cannot_use():
  np.testing.assert_array_equal(validation.check_sample_weight([1, 2], 2),
                                np.array([1, 2], np.float32))
  with pytest.raises(ValueError, match=r"shape \(3,\), expected \[2\]"):
    validation.check_sample_weight([1, 2, 3], 2)
  with pytest.raises(ValueError, match="finite and >= 0"):
    validation.check_sample_weight([1, -1], 2)
  x = np.array([[0.0, 1.0], [1.0, -1e10]])
  validation.check_trainable(x[:1], np.zeros(2), np.ones(2), adapted=True)
  with pytest.raises(ValueError, match="row 1 \\(0-based\\), column 1: "
                     "-10000000000.0 is more than 1e\\+08 robust standard"):
    validation.check_trainable(x, np.zeros(2), np.ones(2), adapted=True)


def test_datasets_must_yield_batches_of_the_model_width():
  rows = tf.data.Dataset.from_tensor_slices(np.zeros((4, 3)))
  with pytest.raises(ValueError, match="batch it first"):
    validation.check_dataset(rows, "x", 3)
  with pytest.raises(ValueError, match="2 columns, but the model expects 3"):
    validation.check_dataset(
        tf.data.Dataset.from_tensor_slices(np.zeros((4, 2))).batch(2), "x", 3)
  with pytest.raises(TypeError, match="yields string tensors"):
    validation.check_dataset(
        tf.data.Dataset.from_tensor_slices([["a"]]).batch(1), "x", 1)
  ok = rows.batch(2)
  assert validation.check_dataset(ok, "x", 3) is ok


def test_graph_checks_refuse_what_arrays_refuse():
  @tf.function
  def data(x):
    return validation.refuse_infinity(x)

  @tf.function
  def latent(z):
    return validation.refuse_non_finite(z, "z")

  np.testing.assert_array_equal(data(tf.constant([[1.0, np.nan]])),
                                [[1.0, np.nan]])
  with pytest.raises(tf.errors.InvalidArgumentError, match="infinite values"):
    data(tf.constant([[1.0, np.inf]]))
  with pytest.raises(tf.errors.InvalidArgumentError, match="z holds a NaN"):
    latent(tf.constant([[np.nan]]))


def test_a_condition_gives_a_categorical_column_by_its_level():
  categories = [None, ("Lyon", "Paris"), ("false", "true")]
  row = validation.condition_row({"city": "Paris", "smoker": "True"}, 3,
                                 ["age", "city", "smoker"],
                                 categories=categories)
  np.testing.assert_array_equal(row, [np.nan, 1.0, 1.0])
  row = validation.condition_row({1: 0}, 3, categories=categories)
  np.testing.assert_array_equal(row, [np.nan, 0.0, np.nan])
  with pytest.raises(ValueError, match=r"'Rome' is not one of its levels "
                     r"\(Lyon, Paris\)"):
    validation.condition_row({"city": "Rome"}, 3, ["age", "city", "smoker"],
                             categories=categories)
  with pytest.raises(ValueError, match="not a level code"):
    validation.condition_row({1: 2.5}, 3, categories=categories)
