"""``python -m vwm_agents`` is ``python -m vwm_agents.train``."""

import sys

from vwm_agents.train import main

sys.exit(main())
