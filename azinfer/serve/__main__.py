"""``python -m azinfer.serve``: the ``azinfer serve`` command on its own."""

from __future__ import annotations

import argparse
import sys

from azinfer.cli.serve import add_arguments, run


def main() -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="azinfer serve", description="Serve a fine-tuned model with its LoRA adapter.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
