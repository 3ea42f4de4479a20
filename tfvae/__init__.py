"""tfvae: a TF2 / TFP variational autoencoder for unrestricted real-valued data.

`import tfvae` is cheap; TensorFlow loads on first use of `tfvae.VAE` or
`tfvae.export`.

- `tfvae.VAE`: the model (`tfvae.model`).
- `tfvae.export(model, export_dir, version=None, overwrite=False)`: encoder
  and decoder SavedModels for TF Serving (`tfvae.export`, a callable module).
"""

import importlib

__version__ = "0.1.0"

__all__ = ["VAE", "export", "__version__"]


def __getattr__(name):
  # Lazy, so that `tfvae-train --help` does not pay for importing TensorFlow.
  if name == "VAE":
    from tfvae.model import VAE  # pylint: disable=g-import-not-at-top
    return VAE
  if name == "export":
    return importlib.import_module("tfvae.export")
  raise AttributeError(f"module 'tfvae' has no attribute {name!r}")
