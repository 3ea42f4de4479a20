"""Several training or evaluation steps in one graph call, each traced once.

Keras runs `steps_per_execution` steps per call as
`for _ in tf.range(n): outputs = step()`. Since `outputs` is undefined
before that loop, autograph traces the step once more, in a throw-away
graph, to learn what the loop carries: every `fit` traced `train_step`
twice per trace of the training function and `test_step` twice. Tracing a
step of a mixed table's model takes seconds, so `VAE` builds its loops
with `run_steps`, whose loop variables start from outputs of the known
structure (`VAE.log_names`).
"""

import tensorflow as tf


def run_steps(step, num_steps, initial_outputs):
  """Runs `step()` `num_steps` times in one `tf.while_loop`.

  The same steps, in the same order, as Keras' loop; the step is traced
  once because the loop's variables are given.

  Args:
    step: callable without arguments returning a nest of tensors with the
      structure, dtypes and shapes of `initial_outputs`.
    num_steps: integer scalar tensor or variable, read when the loop runs
      (Keras lowers its `steps_per_execution` variable for an epoch's last
      steps); at least 1.
    initial_outputs: nest of tensors, what the loop carries before its
      first step.

  Returns:
    The last step's outputs.
  """
  def body(count, outputs):
    del outputs  # replaced by this step's
    return count + 1, step()

  count = tf.zeros([], num_steps.dtype)
  _, outputs = tf.while_loop(lambda count, _: count < num_steps, body,
                             (count, initial_outputs))
  return outputs


def zero_logs(names):
  """What a step's logs look like before the first step: {name: 0.0}.

  Args:
    names: the keys of a step's logs, whose values are float32 scalars.

  Returns:
    dict of float32 scalar tensors.
  """
  return {name: tf.zeros([], tf.float32) for name in names}
