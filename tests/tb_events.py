"""Reads TensorBoard event files for tests."""

import glob
import os

import tensorflow as tf


def read_tags(run_dir):
  """Maps each tag written under `run_dir` to its list of (step, value)."""
  tags = {}
  for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.HasField("tensor") and value.tensor.dtype == tf.float32.as_datatype_enum and not value.tensor.tensor_shape.dim:
          number = float(tf.make_ndarray(value.tensor))
        elif value.HasField("simple_value"):
          number = value.simple_value
        else:
          number = None
        tags.setdefault(value.tag, []).append((event.step, number))
  return tags
