"""``python -m azinfer.cli``: the ``azinfer`` command."""

import sys

from azinfer.cli import main

sys.exit(main())
