"""`python -m lei_store`: the same as the `lei-store` command."""

import sys

from lei_store.cli.client import main

sys.exit(main())
