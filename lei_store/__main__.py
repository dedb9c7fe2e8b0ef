import sys

from lei_store.cli.client import main

sys.exit(main())
