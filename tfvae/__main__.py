"""`python -m tfvae [COMMAND] ...`: the tfvae-* commands, `train` by
default (`python -m tfvae sample --checkpoint-dir ...` is `tfvae-sample`)."""

import sys

from tfvae import cli

COMMANDS = {"train": cli.train_main, "export": cli.export_main,
            "encode": cli.encode_main, "score": cli.score_main,
            "impute": cli.impute_main, "sample": cli.sample_main}

if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
  sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
sys.exit(cli.train_main())
