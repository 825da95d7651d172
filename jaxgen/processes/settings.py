"""The choices the noise processes offer, for the families' declared settings (no jax)."""

SCHEDULE_NAMES = ("linear", "cosine")  # the keys of diffusion.SCHEDULES
PREDICTIONS = ("eps", "x0", "v")
VARIANCES = ("beta", "beta_tilde")
PATHS = ("straight", "ot", "cosine")  # flow-matching paths (paths.make_path)
FM_PREDICTIONS = ("velocity", "x1", "x0")  # what a flow-matching network may predict
# flow-matching training times (paths.sample_times)
TIME_SAMPLING = ("uniform", "skewed", "logit_normal", "mode")
MODE_SCALE_MAX = 2.0 / (3.141592653589793 - 2.0)  # mode sampling stays monotone below this
# x1/x0 -> velocity: the smallest sigma_t / alpha_t divided by (Li & He 2025, JiT: 0.05)
DIVISOR_FLOOR = 0.05
