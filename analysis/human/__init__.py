"""People: their data (:mod:`.data`), the model-people comparison (:mod:`.comparison`), the
distance to people (:mod:`.distance`) and the criteria of a human-like fit (:mod:`.criteria`).

Before the topic layout ``analysis.human`` was the comparison module; a name imported from it the
old way fails with one line naming :mod:`analysis.human.comparison`.
"""

from __future__ import annotations

from pathlib import Path


def __getattr__(name: str):
    if name.startswith("__") or (Path(__file__).with_name(f"{name}.py")).is_file():
        raise AttributeError(name)  # a submodule: Python imports it
    raise ImportError(
        f"analysis.human.{name}: analysis.human is a package now; the comparison "
        f"moved to analysis.human.comparison ({name} is there or in a sibling)"
    )
