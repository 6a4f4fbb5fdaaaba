"""`python -m afpe.service` is the `afpe` command."""

import sys

from afpe.service.cli import main

sys.exit(main())
