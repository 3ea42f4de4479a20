"""`python -m tfvae` is `tfvae-train`."""

import sys

from tfvae import cli

sys.exit(cli.train_main())
