"""Evaluation metrics for generative models.

``mmd``: unbiased squared maximum mean discrepancy with a multi-bandwidth RBF
kernel (two-sample comparison of model samples with data).
"""

from jaxgen.eval.mmd import mmd2

__all__ = ["mmd2"]
