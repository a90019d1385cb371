"""``python -m crm_attribution``."""

import sys

from crm_attribution.cli import main

sys.exit(main())
