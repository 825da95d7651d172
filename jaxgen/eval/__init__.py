"""Evaluation metrics for generative models: one home for every family's numbers.

``likelihood``: the NLL and bits/dim conventions every family uses.
``mmd``: unbiased squared maximum mean discrepancy with a multi-bandwidth RBF
kernel, and its permutation test (`mmd_test`).
``two_sample``: the classifier two-sample test (`c2st`: held-out accuracy and
its exact binomial p-value), the lecture's "learned test statistic".
``frechet``: Fréchet distance and k-NN precision/recall in a feature space.
``modes``: mode coverage, % high-quality samples and reverse KL over the modes
of a Gaussian mixture (VEEGAN/PacGAN's mode-collapse protocol).
``sample_quality``: sliced Wasserstein-1 against a true sample in units of its
two-true-sample floor, and the mode-weight total variation on a mixture with known
components (anisotropic ones included).
"""

from jaxgen.eval.frechet import (
                                 frechet_distance,
                                 frechet_from_features,
                                 gaussian_stats,
                                 precision_recall,
)
from jaxgen.eval.mmd import mmd2, mmd_test
from jaxgen.eval.modes import mode_metrics
from jaxgen.eval.sample_quality import mixture_sample_metrics, mode_weight_tv, sliced_w1
from jaxgen.eval.two_sample import c2st

__all__ = ["mmd2", "mmd_test", "c2st", "frechet_distance", "frechet_from_features",
           "gaussian_stats", "precision_recall", "mode_metrics", "sliced_w1", "mode_weight_tv",
           "mixture_sample_metrics"]
