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
import threading
import time

_NOISE = re.compile(
    r"absl::InitializeLog|port\.cc|oneDNN custom operations|cudart_stub|"
    r"cuda drivers|cuInit|cuda_platform|cpu_feature_guard|"
    r"To enable the following instructions|TF-TRT|Unable to register cu|"
    r"computation_placer|rebuild TensorFlow with the appropriate compiler|"
    r"This TensorFlow binary is optimized|TF_ENABLE_ONEDNN_OPTS|"
    r"gpu_device\.cc|Skipping registering GPU devices|"
    r"oneDNN supports DT_\w+ only on platforms with")

# Whether TensorFlow's own log lines are wanted (`import_tensorflow(verbose=
# True)`): `filtered_stderr` then passes everything through.
_keep_native_lines = False
# Whether standard error was a terminal before `filtered_stderr` replaced
# it with a pipe (None: not replaced), for `Progress`.
_stderr_was_terminal = None


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


def is_noise(line):
  """Whether a line of standard error is one of TensorFlow's notices."""
  return not _keep_native_lines and bool(_NOISE.search(line))


@contextlib.contextmanager
def filtered_stderr():
  """Drops TensorFlow's notices from file descriptor 2 for a whole command.

  Some notices come after start-up, at the first operation of a kind (the
  oneDNN "DT_INT32" line, whatever `TF_CPP_MIN_LOG_LEVEL` says): fd 2
  becomes a pipe, and a thread forwards every line that is not a notice
  (`_NOISE`) to the real standard error as it arrives, progress updates
  (ended by a carriage return) included. On exit, fd 2 is restored once
  every line has been forwarded.
  """
  global _stderr_was_terminal
  sys.stderr.flush()
  try:
    saved = os.dup(2)
  except OSError:  # no standard error at all
    yield
    return
  was_terminal = os.isatty(saved)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)
  forwarder = threading.Thread(target=_forward_lines, args=(read_end, saved),
                               daemon=True)
  forwarder.start()
  previous, _stderr_was_terminal = _stderr_was_terminal, was_terminal
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)  # closes the pipe's last write end: the thread ends
    forwarder.join(timeout=10)
    os.close(saved)
    _stderr_was_terminal = previous


def _forward_lines(read_end, target):
  """Copies lines from the pipe to `target` until every writer has closed
  it, leaving out the notices; a line ends at a newline or a carriage
  return (a progress update)."""
  pending = b""
  with os.fdopen(read_end, "rb", buffering=0) as pipe:
    while True:
      chunk = pipe.read(65536)
      parts = re.split(rb"(?<=[\r\n])", pending + chunk)
      pending = parts.pop() if chunk else b""  # an unfinished line waits
      for part in parts:
        if part and not is_noise(part.decode("utf-8", "replace")):
          os.write(target, part)
      if not chunk:
        return


def prefer_tf_keras():
  """Lets `import tensorflow` load tf-keras instead of Keras 3, in a process
  that has not imported TensorFlow yet and whose user has not chosen.

  tfvae imports `tf_keras` directly and never uses `tf.keras`; without this,
  `import tensorflow` also imports Keras 3 (and scikit-learn, if installed,
  through Keras 3's wrappers), about 1.3 s of every command's start-up on 2
  cores (`scripts/bench_startup.py --imports`). The commands call it for
  their own processes; `import tfvae` does not, so a program that imports
  tfvae keeps the `tf.keras` it expects.
  """
  if "tensorflow" not in sys.modules:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def stderr_is_terminal(stream):
  """Whether `stream` shows on a terminal (seen through `filtered_stderr`)."""
  if stream is sys.stderr and _stderr_was_terminal is not None:
    return _stderr_was_terminal
  return hasattr(stream, "isatty") and stream.isatty()


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
  global _keep_native_lines
  if verbose:
    _keep_native_lines = True
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
    if not is_noise(line):
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
    self.tty = enabled and stderr_is_terminal(self.stream)
    self.interval = 0.2 if self.tty else interval
    self._start = time.monotonic()
    self._last = -float("inf")
    self._last_line = None  # off a terminal, the last line written
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
    elif text == self._last_line:  # a log need not say it twice
      return
    else:
      self.stream.write(text + "\n")
      self._last_line = text
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
    raise ValueError(f"{what} needs about {format_size(num_bytes)} of "
                     f"memory, more than the {format_size(available)} "
                     f"available; {advice}")


def format_size(num_bytes):
  """A byte count for people: '12.3 MB'."""
  for unit in ("bytes", "KB", "MB", "GB", "TB"):
    if num_bytes < 1000 or unit == "TB":
      return f"{num_bytes:.0f} {unit}" if unit == "bytes" else (
          f"{num_bytes:.1f} {unit}")
    num_bytes /= 1000
