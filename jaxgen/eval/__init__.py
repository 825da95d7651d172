"""Evaluation metrics for generative models.

``mmd``: unbiased squared maximum mean discrepancy with a multi-bandwidth RBF
kernel (two-sample comparison of model samples with data).
``modes``: mode coverage, % high-quality samples and reverse KL over the modes
of a Gaussian mixture (VEEGAN/PacGAN's mode-collapse protocol).
"""

from jaxgen.eval.mmd import mmd2
from jaxgen.eval.modes import mode_metrics

__all__ = ["mmd2", "mode_metrics"]
