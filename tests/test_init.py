"""The package's public API and its import graph."""

import subprocess
import sys

import tfvae


def test_public_api():
  assert set(tfvae.__all__) == {"VAE", "export_model", "load_checkpoint",
                                "save_checkpoint", "__version__"}
  for name in tfvae.__all__:
    assert getattr(tfvae, name) is not None


def test_runtime_modules_do_not_import_test_helpers():
  # synthetic.py and baselines.py serve tests and benchmarks only.
  code = ("import sys\n"
          "import tfvae.cli, tfvae.training, tfvae.model, tfvae.export, "
          "tfvae.scoring, tfvae.serving, tfvae.monitoring\n"
          "bad = [m for m in ('tfvae.synthetic', 'tfvae.baselines') "
          "if m in sys.modules]\n"
          "assert not bad, bad\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]


def test_importing_tfvae_and_its_data_layer_is_cheap():
  code = ("import sys\nimport tfvae, tfvae.data, tfvae.cli, tfvae.training, "
          "tfvae.statistics, tfvae.atomic, tfvae.checkpoint\n"
          "assert 'tensorflow' not in sys.modules\n")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
