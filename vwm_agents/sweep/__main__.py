"""``python -m vwm_agents.sweep``: see :mod:`vwm_agents.sweep.cli`."""

import sys

from vwm_agents.sweep.cli import main

sys.exit(main())
