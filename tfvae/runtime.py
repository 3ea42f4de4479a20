"""Starting TensorFlow quietly, and reporting progress on a terminal.

The full `tensorflow` wheel (which tf-keras pulls in) prints start-up lines
from C++ on every import and at the first operation on a CPU-only machine:
oneDNN notices, "Could not find cuda drivers", "failed call to cuInit:
INTERNAL: CUDA error", CPU-feature notes. `TF_CPP_MIN_LOG_LEVEL` does not
hide all of them, because some are written before logging is configured.
`import_tensorflow` captures the process's standard error while TensorFlow
starts, drops those known lines and passes everything else through, so a
real error is never hidden.

This module does not import TensorFlow at import time.
"""

import contextlib
import os
import re
import sys
import tempfile
import time

_NOISE = re.compile(
    r"absl::InitializeLog|port\.cc|oneDNN custom operations|cudart_stub|"
    r"cuda drivers|cuInit|cuda_platform|cpu_feature_guard|"
    r"To enable the following instructions|TF-TRT|Unable to register cu|"
    r"computation_placer|rebuild TensorFlow with the appropriate compiler|"
    r"This TensorFlow binary is optimized|TF_ENABLE_ONEDNN_OPTS|"
    r"gpu_device\.cc|Skipping registering GPU devices")


@contextlib.contextmanager
def _captured_stderr():
  """Redirects file descriptor 2 to a temporary file; yields a list that
  receives the captured lines afterwards."""
  sys.stderr.flush()
  saved = os.dup(2)
  lines = []
  with tempfile.TemporaryFile(mode="w+b") as capture:
    os.dup2(capture.fileno(), 2)
    try:
      yield lines
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      capture.seek(0)
      lines.extend(capture.read().decode("utf-8", "replace").splitlines(True))


def import_tensorflow(verbose=False, startup=None):
  """Imports TensorFlow, tf-keras and TFP and starts the CPU device, quietly.

  Args:
    verbose: keep TensorFlow's own start-up and log lines.
    startup: optional callable(tf) run right after the import, before any
      operation: what must be configured at program start-up (a
      `MultiWorkerMirroredStrategy`).

  Returns:
    The `tensorflow` module.
  """
  if verbose:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if startup is not None:
      startup(tf)
    return tf
  # Level 3 also hides ERROR lines that are notices on CPU-only machines
  # ("oneDNN supports DT_INT32 only on platforms with AVX-512"); failures
  # still surface as Python exceptions with their messages.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  with _captured_stderr() as lines:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tensorflow_probability  # pylint: disable=g-import-not-at-top,unused-import
    import tf_keras  # pylint: disable=g-import-not-at-top,unused-import
    if startup is not None:
      startup(tf)
    tf.config.list_physical_devices()
    (tf.zeros([1]) + 1.0).numpy()  # the first operation starts the device
  for line in lines:
    if not _NOISE.search(line):
      sys.stderr.write(line)
  tf.get_logger().setLevel("ERROR")
  try:
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
    absl_logging.set_verbosity(absl_logging.ERROR)
  except ImportError:
    pass
  return tf


class Progress:
  """One progress line: rewritten in place on a terminal, else a line every
  `interval` seconds (and at the end), so logs stay short.

  Args:
    label: what is being counted ("training", "scoring").
    total: the expected count, or None.
    unit: the counted unit ("epoch", "row").
    stream: where to write; default standard error.
    interval: seconds between lines when the stream is not a terminal.
    enabled: False makes every call a no-op.
  """

  def __init__(self, label, total=None, unit="", stream=None, interval=10.0,
               enabled=True):
    self.label = label
    self.total = total
    self.unit = unit
    self.stream = stream or sys.stderr
    self.enabled = enabled
    self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
    self.interval = 0.2 if self.tty else interval
    self._start = time.monotonic()
    self._last = -float("inf")
    self._width = 0

  def update(self, done, message="", force=False):
    """Shows `done` of `total` with an optional message."""
    if not self.enabled:
      return
    now = time.monotonic()
    if not force and now - self._last < self.interval:
      return
    self._last = now
    if self.total:
      fraction = min(done / self.total, 1.0)
      count = f"{fraction:4.0%} ({done}/{self.total} {self.unit})"
    else:
      count = f"{done} {self.unit}"
    elapsed = now - self._start
    text = f"{self.label}: {count}, {elapsed:.0f} s{'; ' if message else ''}{message}"
    if self.tty:
      pad = max(self._width - len(text), 0)
      self.stream.write("\r" + text + " " * pad)
      self._width = len(text)
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def close(self, done=None, message=""):
    """Shows the final state and ends the line."""
    if not self.enabled:
      return
    if done is not None:
      self.update(done, message, force=True)
    if self.tty and self._width:
      self.stream.write("\n")
      self.stream.flush()
    self._width = 0


def available_memory():
  """Bytes of memory available to new work (Linux' MemAvailable; the
  physical memory elsewhere), or None when unknown."""
  try:
    with open("/proc/meminfo", encoding="ascii") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
  except (ValueError, OSError, AttributeError):
    return None


def check_memory(num_bytes, what, advice):
  """Raises `ValueError` before work whose memory cannot be had.

  Args:
    num_bytes: the work's estimated peak memory.
    what: the work, for the message ("num_imputations=1000 for 1024 rows").
    advice: what to change, for the message.
  """
  available = available_memory()
  if available is not None and num_bytes > available:
    raise ValueError(f"{what} needs about {_size(num_bytes)} of memory, more "
                     f"than the {_size(available)} available; {advice}")


def _size(num_bytes):
  for unit in ("bytes", "KB", "MB", "GB", "TB"):
    if num_bytes < 1000 or unit == "TB":
      return f"{num_bytes:.0f} {unit}" if unit == "bytes" else (
          f"{num_bytes:.1f} {unit}")
    num_bytes /= 1000
