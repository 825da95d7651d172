"""The toy flow-matching config with the objective of vp_x1_flow_matching.py.

    jaxgen train --config examples/vp_x1_flow_matching_config.py --workdir runs/vp_x1
"""

from pathlib import Path

import ml_collections

from jaxgen.configs.flow_matching.toy2d import get_config as toy2d


def get_config():
    c = toy2d()
    c.objective = ml_collections.ConfigDict(
        {"name": f"{Path(__file__).with_name('vp_x1_flow_matching.py')}:make"})
    return c
