"""The toy DDPM config with the objective of min_snr_ddpm.py.

    jaxgen train --config examples/min_snr_ddpm_config.py --workdir runs/min_snr
"""

from pathlib import Path

from jaxgen.configs.diffusion.ddpm_toy2d import get_config as ddpm_toy2d


def get_config():
    c = ddpm_toy2d()
    c.objective.name = f"{Path(__file__).with_name('min_snr_ddpm.py')}:make"
    c.objective.gamma = 5.0
    return c
