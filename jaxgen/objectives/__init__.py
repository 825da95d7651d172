"""Pure objectives, one module per family. See `base.py` for the protocol."""

from jaxgen.objectives.base import Objective, Player

__all__ = ["Objective", "Player"]
