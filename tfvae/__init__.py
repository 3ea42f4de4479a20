"""tfvae: a TF2 / TFP variational autoencoder for unrestricted real-valued data.

`import tfvae` is cheap; TensorFlow loads on first use of `tfvae.VAE` or
`tfvae.export_model`.

- `tfvae.VAE`: the model (`tfvae.model`).
- `tfvae.export_model(model, export_dir, version=None, overwrite=False)`:
  encoder and decoder SavedModels for TF Serving (`tfvae.export`).
- `tfvae.load_checkpoint(directory)` / `tfvae.save_checkpoint(model,
  directory)`: a trained model with its optimizer state
  (`tfvae.checkpoint`).
"""

__version__ = "0.12.2"

__all__ = ["VAE", "export_model", "load_checkpoint", "save_checkpoint",
           "__version__"]


def __getattr__(name):
  # Lazy, so that `tfvae-train --help` does not pay for importing TensorFlow.
  if name == "VAE":
    from tfvae.model import VAE  # pylint: disable=g-import-not-at-top
    return VAE
  if name == "export_model":
    from tfvae.export import export_model  # pylint: disable=g-import-not-at-top
    return export_model
  if name in ("load_checkpoint", "save_checkpoint"):
    from tfvae import checkpoint  # pylint: disable=g-import-not-at-top
    return getattr(checkpoint, name)
  raise AttributeError(f"module 'tfvae' has no attribute {name!r}")
