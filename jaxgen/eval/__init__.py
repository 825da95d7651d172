"""Evaluation metrics for generative models: one home for every family's numbers.

``likelihood``: the NLL and bits/dim conventions every family uses.
``mmd``: unbiased squared maximum mean discrepancy with a multi-bandwidth RBF
kernel, and its permutation test (`mmd_test`).
``two_sample``: the classifier two-sample test (`c2st`: held-out accuracy and
its exact binomial p-value), the lecture's "learned test statistic".
``frechet``: Fréchet distance and k-NN precision/recall in a feature space.
``modes``: mode coverage, % high-quality samples and reverse KL over the modes
of a Gaussian mixture (VEEGAN/PacGAN's mode-collapse protocol).
"""

from jaxgen.eval.frechet import (
                                 frechet_distance,
                                 frechet_from_features,
                                 gaussian_stats,
                                 precision_recall,
)
from jaxgen.eval.mmd import mmd2, mmd_test
from jaxgen.eval.modes import mode_metrics
from jaxgen.eval.two_sample import c2st

__all__ = ["mmd2", "mmd_test", "c2st", "frechet_distance", "frechet_from_features",
           "gaussian_stats", "precision_recall", "mode_metrics"]
