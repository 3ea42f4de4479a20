"""Quiet TensorFlow start-up and the progress line."""

import io
import subprocess
import sys

import pytest

from tfvae import runtime


def test_tensorflow_starts_without_its_cuda_noise():
  code = ("from tfvae import runtime\n"
          "tf = runtime.import_tensorflow()\n"
          "import sys\n"
          "print('real error line', file=sys.stderr)\n"
          "print(tf.reduce_sum(tf.ones([3])).numpy())\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "3.0"
  assert result.stderr.strip() == "real error line"


def test_progress_writes_lines_off_a_terminal():
  stream = io.StringIO()
  progress = runtime.Progress("scoring", 10, "rows", stream=stream, interval=0)
  progress.update(5, "half")
  progress.close(10)
  lines = stream.getvalue().splitlines()
  assert lines[0].startswith("scoring:  50% (5/10 rows)") and "half" in lines[0]
  assert lines[-1].startswith("scoring: 100% (10/10 rows)")
  silent = io.StringIO()
  runtime.Progress("x", 3, stream=silent, enabled=False).update(1)
  assert silent.getvalue() == ""


def test_work_that_cannot_fit_in_memory_is_refused_before_it_starts():
  assert runtime.available_memory() > 0
  runtime.check_memory(1, "one byte", "nothing")
  with pytest.raises(ValueError, match="a lot needs about 1000000000000000000.0 "
                     "TB of memory, more than the .* available; ask less"):
    runtime.check_memory(10**30, "a lot", "ask less")
