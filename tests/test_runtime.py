"""Quiet TensorFlow start-up and the progress line."""

import io
import os
import subprocess
import sys

import pytest

from tfvae import runtime


def test_tensorflow_starts_without_its_cuda_noise_or_keras_3():
  # As the commands start: tf-keras and TFP's layers work, Keras 3 (which
  # tfvae never uses) is not loaded.
  code = ("from tfvae import runtime\n"
          "runtime.prefer_tf_keras()\n"
          "tf = runtime.import_tensorflow()\n"
          "import sys\n"
          "import tfvae\n"
          "model = tfvae.VAE(input_dim=2)\n"
          "model.adapt(tf.random.normal([16, 2]).numpy())\n"
          "print('real error line', file=sys.stderr)\n"
          "print(tf.reduce_sum(tf.ones([3])).numpy(), model(tf.ones([1, 2])).shape,"
          " 'keras' in sys.modules)\n")
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300, env=env)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "3.0 (1, 2) False"
  assert result.stderr.strip() == "real error line"


def test_tf_keras_is_preferred_only_before_tensorflow_and_if_unset(
    monkeypatch):
  monkeypatch.delenv("TF_USE_LEGACY_KERAS", raising=False)
  runtime.prefer_tf_keras()  # this process has imported TensorFlow
  assert "TF_USE_LEGACY_KERAS" not in os.environ
  monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
  monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")
  runtime.prefer_tf_keras()
  assert os.environ["TF_USE_LEGACY_KERAS"] == "0"
  monkeypatch.delenv("TF_USE_LEGACY_KERAS")
  runtime.prefer_tf_keras()
  assert os.environ["TF_USE_LEGACY_KERAS"] == "1"


def test_progress_writes_lines_off_a_terminal():
  stream = io.StringIO()
  progress = runtime.Progress("scoring", 10, "rows", stream=stream, interval=0)
  progress.update(5, "half")
  progress.close(10)
  lines = stream.getvalue().splitlines()
  assert len(lines) == 2
  assert lines[0].startswith("scoring:  50% (5/10 rows)") and "half" in lines[0]
  assert lines[-1].startswith("scoring: 100% (10/10 rows)")
  # A final state already shown (a fast job's first update) is not repeated.
  once = io.StringIO()
  fast = runtime.Progress("scoring", 3, "rows", stream=once, interval=10)
  fast.update(3)
  fast.close(3)
  assert once.getvalue() == "scoring: 100% (3/3 rows), 0 s\n"
  silent = io.StringIO()
  runtime.Progress("x", 3, stream=silent, enabled=False).update(1)
  assert silent.getvalue() == ""


def test_work_that_cannot_fit_in_memory_is_refused_before_it_starts():
  assert runtime.available_memory() > 0
  runtime.check_memory(1, "one byte", "nothing")
  with pytest.raises(ValueError, match="a lot needs about 1000000000000000000.0 "
                     "TB of memory, more than the .* available; ask less"):
    runtime.check_memory(10**30, "a lot", "ask less")


def test_notices_after_start_up_are_dropped_and_the_rest_kept():
  # The oneDNN line comes at the first operation of a kind, whatever
  # TF_CPP_MIN_LOG_LEVEL says: written to fd 2 directly, as C++ does.
  code = (
      "import os, sys\n"
      "from tfvae import runtime\n"
      "with runtime.filtered_stderr():\n"
      "  assert not runtime.stderr_is_terminal(sys.stderr)\n"
      "  os.write(2, b'E0000 00:00:1 4125 util.cc:131] oneDNN supports "
      "DT_INT32 only on platforms with AVX-512. Falling back\\n')\n"
      "  print('training: 50%', end='\\r', file=sys.stderr, flush=True)\n"
      "  os.write(2, b'real error line\\nan unfinished line')\n"
      "print('after', file=sys.stderr)\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          timeout=60, env={**os.environ,
                                           "TF_CPP_MIN_LOG_LEVEL": "2"})
  assert result.returncode == 0, result.stderr
  assert result.stderr == (b"training: 50%\rreal error line\n"
                           b"an unfinished lineafter\n")


def test_progress_sees_the_terminal_behind_the_filter():
  code = ("import sys\nfrom tfvae import runtime\n"
          "with runtime.filtered_stderr():\n"
          "  print(runtime.Progress('x', 2).tty)\n")
  # A pseudo-terminal as standard error.
  import pty  # pylint: disable=g-import-not-at-top
  parent, child = pty.openpty()
  try:
    result = subprocess.run([sys.executable, "-c", code], stderr=child,
                            stdout=subprocess.PIPE, text=True, timeout=60)
  finally:
    os.close(child)
    os.close(parent)
  assert result.returncode == 0
  assert result.stdout.strip() == "True"
