"""`tfvae-sample`'s memory and speed against the number of rows.

Trains a model on the embedded Wine data once (tfvae-train's defaults,
into a temporary checkpoint), then runs `tfvae-sample` for each row count
in its own process and reports the peak resident memory of that process
(`ru_maxrss` of the child) and the rows per second, side by side: flat
memory means the 10-million-row file costs what the 100,000-row file
does.

    python scripts/bench_sample.py [--rows 100000,1000000,10000000]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def peak_of(command):
  """(seconds, peak resident MB) of a command run in a child process."""
  start = time.perf_counter()
  pid = subprocess.Popen(command, stdout=subprocess.DEVNULL).pid
  _, status, usage = os.wait4(pid, 0)
  if status:
    raise SystemExit(f"{command} failed")
  return time.perf_counter() - start, usage.ru_maxrss / 1024


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rows", default="100000,1000000,10000000")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as folder:
    checkpoint = os.path.join(folder, "ck")
    subprocess.run([os.path.join(BIN, "tfvae-train"), "--checkpoint-dir",
                    checkpoint, "--logdir", "", "--verbose", "0"], check=True,
                   stdout=subprocess.DEVNULL)
    print("| rows | seconds | rows/s | peak memory (MB) | file (MB) |")
    print("| --- | --- | --- | --- | --- |")
    for rows in (int(r) for r in args.rows.split(",")):
      output = os.path.join(folder, "synth.csv")
      seconds, peak = peak_of([
          os.path.join(BIN, "tfvae-sample"), "--checkpoint-dir", checkpoint,
          "--rows", str(rows), "--output", output, "--overwrite",
          "--verbose", "0"])
      size = os.path.getsize(output) / 1e6
      print(f"| {rows:,} | {seconds:.0f} | {rows / seconds:,.0f} | "
            f"{peak:,.0f} | {size:,.0f} |", flush=True)
      os.remove(output)


if __name__ == "__main__":
  main()
