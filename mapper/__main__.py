"""``python -m mapper <verb>``: the bitloop command line."""

import sys

from mapper.cli import main

sys.exit(main())
