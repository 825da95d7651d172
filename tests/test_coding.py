"""Arithmetic coding and model-driven lossless compression (jaxgen.coding)."""

from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import fast_jit

from jaxgen.coding import arithmetic, codec
from jaxgen.kernel import config as config_lib
from jaxgen.kernel import transforms
from jaxgen.runner.experiment import DatasetInfo, Experiment

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "autoregressive"


# ------------------------------------------------------------ the coder
@pytest.mark.parametrize("seed,k,scale", [(0, 2, 1.0), (1, 7, 3.0), (2, 256, 4.0),
                                          (3, 256, 0.1), (4, 3, 12.0)])
def test_round_trip_and_length_within_two_bits_and_a_byte_of_the_ideal(seed, k, scale):
    rng = np.random.default_rng(seed)
    n = 3000
    logits = rng.normal(size=(n, k)) * scale
    cdf = arithmetic.quantized_cdf(logits)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    s = (rng.random((n, 1)) > np.cumsum(p, 1)).sum(1)  # s_i ~ p_i
    enc = arithmetic.ArithmeticEncoder()
    for row, sym in zip(cdf, s):
        enc.encode(row, sym)
    data = enc.finish()
    dec = arithmetic.ArithmeticDecoder(data)
    np.testing.assert_array_equal([dec.decode(row) for row in cdf], s)
    ideal = arithmetic.ideal_bits(cdf, s).sum()
    nll = -np.log2(p[np.arange(n), s]).sum()
    assert ideal <= 8 * len(data) <= ideal + 2 + 8
    assert abs(ideal - nll) < 1e-5 * n + 1e-6 * nll  # table rounding ~ K / 2^32 bits/symbol


def test_improbable_symbols_still_round_trip():
    # the model puts ~all mass on symbol 0; code the others anyway (each >= 1/2^32)
    logits = np.tile([60.0, 0.0, -60.0, -200.0], (50, 1))
    s = np.arange(50) % 4
    cdf = arithmetic.quantized_cdf(logits)
    assert np.all(np.diff(cdf, axis=1) >= 1)
    enc = arithmetic.ArithmeticEncoder()
    for row, sym in zip(cdf, s):
        enc.encode(row, sym)
    dec = arithmetic.ArithmeticDecoder(enc.finish())
    np.testing.assert_array_equal([dec.decode(row) for row in cdf], s)


def test_quantized_cdf_refuses_nan_and_one_bin():
    with pytest.raises(ValueError, match="inf or NaN"):
        arithmetic.quantized_cdf(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="K >= 2"):
        arithmetic.quantized_cdf(np.zeros((3, 1)))


# ------------------------------------------------------ model-driven codec
def _exp(config, event_shape, kind="images", *overrides, num_tokens=None):
    cfg = config_lib.load_config(CONFIGS / config, ["train.batch_size=4", *overrides])
    return Experiment(cfg, DatasetInfo("array", kind, tuple(event_shape), None, num_tokens))


def _params(exp, seed=0):
    x = np.zeros((2, *exp.info.event_shape), np.float32)
    return fast_jit(exp.objective.init, jax.random.key(seed), {"x": x})


def _sharp_images(n, rng, shape=(6, 5, 1)):
    """Structured 8-bit images (so a model can be sharper than uniform) plus noise."""
    base = np.linspace(0, 255, shape[0] * shape[1]).reshape(shape)
    return np.clip(base[None] + rng.integers(-8, 9, (n, *shape)), 0, 255).astype(np.uint8)


MODELS = [
    ("pixelcnn_fashion_mnist.py", ["model.channels=8", "model.num_layers=2", "model.hidden=8"]),
    ("transformer_fashion_mnist.py", ["model.d_model=16", "model.num_heads=2",
                                      "model.num_layers=1"]),
    ("transformer_fashion_mnist.py", ["model.d_model=16", "model.num_heads=2",
                                      "model.num_layers=1", "objective.order=random",
                                      "objective.order_seed=2"]),
]
TINY_MLP = ["model.context=3", "model.features=(8,)"]


@pytest.mark.parametrize("config,extra", MODELS, ids=["pixelcnn", "transformer",
                                                     "transformer_random_order"])
def test_compress_decompress_is_exact_and_costs_the_models_nll(config, extra):
    exp = _exp(config, (6, 5, 1), "images", *extra)
    params = _params(exp, 1)
    rng = np.random.default_rng(0)
    raw = _sharp_images(11, rng)  # 11 = 2 full batches of 4 and a partial one
    data, stats = codec.compress(exp.objective, params, raw, batch_size=4,
                                 model_meta={"workdir": "w", "step": 0})
    back, header = codec.decompress(exp.objective, params, data)
    assert back.dtype == np.uint8 and back.shape == raw.shape
    np.testing.assert_array_equal(back, raw)
    assert header["n"] == 11 and header["event_shape"] == [6, 5, 1]
    # the code length is the NLL of the parallel pass (float rounding apart) + <= 2 bits + a byte
    log_probs = exp.objective.tools.log_probs
    x = transforms.preprocess("images", raw, None, dequantize=False)
    nll_bits = -np.asarray(fast_jit(log_probs, params, x), np.float64).sum(1) / np.log(2)
    np.testing.assert_allclose(stats["ideal_bits_per_example"], nll_bits.mean(), rtol=1e-4)
    total_ideal = stats["ideal_bits_per_example"] * 11
    assert total_ideal <= 8 * stats["payload_bytes"] <= total_ideal + 2 + 8


def test_binarised_and_token_models_round_trip_and_bad_input_is_refused():
    rng = np.random.default_rng(3)
    exp = _exp("mlp_fashion_mnist.py", (4, 4, 1), "images", *TINY_MLP,
               "objective.binarize=threshold")
    params = _params(exp)
    raw = (255 * (rng.random((5, 4, 4, 1)) > 0.5)).astype(np.uint8)
    data, stats = codec.compress(exp.objective, params, raw, batch_size=2)
    np.testing.assert_array_equal(codec.decompress(exp.objective, params, data)[0], raw)
    with pytest.raises(ValueError, match="0 or 255"):
        codec.compress(exp.objective, params, raw // 2 + 1)

    exp = _exp("wavenet_fashion_mnist.py", (3, 3), "tokens", "model.channels=8",
               "model.skip_channels=8", "model.dilations=(1,2)", num_tokens=11)
    params = _params(exp)
    codes = rng.integers(0, 11, (7, 3, 3)).astype(np.int32)
    data, _ = codec.compress(exp.objective, params, codes, batch_size=3)
    back, _ = codec.decompress(exp.objective, params, data)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, codes)
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        codec.compress(exp.objective, params, codes + 5)
    with pytest.raises(ValueError, match="do not match"):
        codec.compress(exp.objective, params, codes[:, :2])


def test_decompress_refuses_other_params_a_foreign_file_and_a_corrupt_stream():
    exp = _exp("mlp_fashion_mnist.py", (3, 3, 1), "images", *TINY_MLP)
    params = _params(exp)
    raw = _sharp_images(3, np.random.default_rng(1), (3, 3, 1))
    data, _ = codec.compress(exp.objective, params, raw, batch_size=3)
    with pytest.raises(codec.FormatError, match="other parameters"):
        codec.decompress(exp.objective, _params(exp, seed=5), data)
    with pytest.raises(codec.FormatError, match="magic"):
        codec.decompress(exp.objective, params, b"PK\x03\x04 not ours")
    corrupt = bytearray(data)
    corrupt[-3] ^= 0xFF  # a damaged file is called damaged, not blamed on the machine
    with pytest.raises(codec.FormatError, match="damaged: its payload fails its CRC-32"):
        codec.decompress(exp.objective, params, bytes(corrupt))
    with pytest.raises(codec.FormatError, match="damaged: its payload has"):
        codec.decompress(exp.objective, params, data[:-2])
    # An intact file whose decoded examples differ (here: the check value altered) is the
    # model computing differently, and says so.
    header, payload = codec.read_header(data)
    with pytest.raises(codec.FormatError, match="passed their own check.*another machine"):
        codec.decompress(exp.objective, params,
                         codec._pack({**header, "crc32": header["crc32"] ^ 1}, payload))


def test_gaussian_sequences_cannot_be_coded_losslessly():
    cfg = config_lib.load_config(CONFIGS / "ar_toy.py", ["train.batch_size=4"])
    exp = Experiment(cfg, DatasetInfo("gaussian_ar2", "points", (8,)))
    with pytest.raises(ValueError, match="no exact discrete conditionals"):
        codec.Codec(exp.objective, _params(exp))


def test_baselines_png_and_gzip_on_constant_and_noise_images():
    rng = np.random.default_rng(0)
    flat = np.full((4, 28, 28, 1), 7, np.uint8)
    noise = rng.integers(0, 256, (4, 28, 28, 1)).astype(np.uint8)
    b_flat, b_noise = codec.baselines(flat), codec.baselines(noise)
    assert b_flat["raw"] == b_noise["raw"] == 784 * 8
    for key in ("png", "gzip_each", "gzip_all"):
        # constant images cost little more than the format's fixed overhead (PNG: ~80 bytes)
        assert b_flat[key] < 0.15 * b_flat["raw"]
        assert b_noise[key] > 0.98 * b_noise["raw"]  # uniform noise does not compress
