"""``python -m radius_contracts.workers``: one worker, started by the main process."""

import sys

from radius_contracts.workers.process import main

sys.exit(main())
