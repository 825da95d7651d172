"""jaxgen.eval.inception against pytorch-fid 0.3.0's own network, and the Inception Score.

pytorch-fid's ``fid_inception_v3`` and ``InceptionV3([3])`` are built with their weight
loader replaced by random weights (conv and fc weights, and BatchNorm scales, shifts,
running means and variances, so the inference-mode BatchNorm is compared too). That state
dict is saved with ``torch.save`` and converted by ``jaxgen inception-weights`` (the CLI,
in this process), then read with ``inception.load``. Pool features and logits are compared
on uint8 batches of 32x32x3, 28x28x1 (grey, repeated to RGB for torch) and 320x300x3
(shrunk to 299: the resize without antialiasing), and the resize alone against
``F.interpolate`` on random floats. Relative error here = max |jax - torch| / max |torch|
over the batch (a batch's error relative to its largest value), <= 1e-4.

torchvision on this machine: the torchvision wheel that matches torch 2.13.0 (0.28.0) ships
a C++ extension (``torchvision/_C.so``) linked against libtorch_cuda, which the CPU build of
torch lacks, so the extension does not load (torchvision tolerates that: its ops then raise
"Couldn't load custom C++ ops"), but ``torchvision/_meta_registrations.py`` registers fake
kernels for ``torchvision::nms`` and ``torchvision::qnms`` unconditionally, and that fails
with "operator torchvision::nms does not exist", so ``import torchvision`` fails. No
environment variable of torchvision changes that (``TORCHVISION_WARN_WHEN_EXTENSION_LOADING_
FAILS`` only warns). ``_import_pytorch_fid`` checks whether the extension loads
(``torch.ops.load_library``, what torchvision's extension.py calls); when it does not, it
declares the two operators' schemas, as the extension itself declares them, with
``torch.library.Library("torchvision", "FRAGMENT").define(...)`` (torch's public API for
custom operators), then imports torchvision unmodified. Nothing is patched or stubbed; the
two operators have no kernel, so calling them still raises, and the network classes
pytorch-fid needs (torchvision.models.inception) are pure Python. With a torchvision whose
extension loads, nothing is declared.

PyTorch, torchvision and pytorch-fid are test-only dependencies (pyproject's "fid-test"
extra, installed by .ci/run after ``pip install torch==2.13.0``, the CPU build); without
them (outside CI) the comparisons are skipped, in CI they must run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.eval import inception
from jaxgen.kernel.errors import MissingError, UserError

TOLERANCE = 1e-4
IMAGE_SHAPES = [(2, 32, 32, 3), (2, 28, 28, 1), (2, 320, 300, 3)]
_TORCHVISION_OPS = []  # the Library objects declaring the operators: kept alive


def _import_pytorch_fid():
    """(torch, pytorch_fid.inception); see the module docstring for the torchvision step."""
    if os.environ.get("CI"):
        import torch  # .ci/run installs it: the comparison must run in CI
    else:
        torch = pytest.importorskip(
            "torch", reason="pip install torch==2.13.0 && pip install -e '.[fid-test]'")
    spec = importlib.util.find_spec("torchvision")
    if spec is not None and "torchvision" not in sys.modules and not _TORCHVISION_OPS:
        folder = Path(next(iter(spec.submodule_search_locations)))
        extension = next(folder.glob("_C*.so"), None)
        try:
            if extension is None:
                raise OSError("no extension file")
            torch.ops.load_library(str(extension))
        except OSError:
            lib = torch.library.Library("torchvision", "FRAGMENT")
            for op in ("nms", "qnms"):
                lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _TORCHVISION_OPS.append(lib)
    import pytorch_fid.inception as fid_inception
    return torch, fid_inception


def _random_state_dict(torch, template: dict) -> dict:
    """Random values for every entry of pytorch-fid's state dict: conv / fc weights
    N(0, 2 / fan_in), BatchNorm scale U(0.5, 1.5), shift N(0, 0.2^2), running mean
    N(0, 0.2^2) and variance U(0.5, 2), fc bias N(0, 0.2^2)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for key, t in template.items():
        if key.endswith("num_batches_tracked"):
            out[key] = t.clone()
        elif key.endswith("conv.weight") or key == "fc.weight":
            out[key] = torch.randn(t.shape, generator=g) * (2.0 / t[0].numel()) ** 0.5
        elif key.endswith("bn.weight"):
            out[key] = 0.5 + torch.rand(t.shape, generator=g)
        elif key.endswith(("bn.bias", "running_mean")) or key == "fc.bias":
            out[key] = 0.2 * torch.randn(t.shape, generator=g)
        elif key.endswith("running_var"):
            out[key] = 0.5 + 1.5 * torch.rand(t.shape, generator=g)
        else:
            raise KeyError(f"unexpected entry {key} in pytorch-fid's state dict")
    return out


@pytest.fixture(scope="module")
def torch_fid(tmp_path_factory):
    """pytorch-fid's fid_inception_v3 (for fc) and InceptionV3([3]) (pool features) with
    one random state dict, saved to a .pth."""
    torch, fid_inception = _import_pytorch_fid()
    built, weights = {}, {}
    build = fid_inception._inception_v3

    def capture(*args, **kwargs):  # the torchvision Inception3 that fid_inception_v3 patches
        built["net"] = build(*args, **kwargs)
        return built["net"]

    def random_weights(url, progress=True):
        assert url == inception.WEIGHTS_URL == fid_inception.FID_WEIGHTS_URL
        if "state" not in weights:  # at load time: the blocks are pytorch-fid's by then
            weights["state"] = _random_state_dict(torch, built["net"].state_dict())
        return weights["state"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fid_inception, "_inception_v3", capture)
        mp.setattr(fid_inception, "load_state_dict_from_url", random_weights)
        net = fid_inception.fid_inception_v3().eval()
        blocks = fid_inception.InceptionV3([3]).eval()
    pth = tmp_path_factory.mktemp("fid") / inception.WEIGHTS_FILE
    torch.save(weights["state"], pth)
    return {"torch": torch, "net": net, "blocks": blocks, "state": weights["state"], "pth": pth}


@pytest.fixture(scope="module")
def converted(torch_fid, tmp_path_factory):
    """The .pth converted by `jaxgen inception-weights`, loaded: (variables, sha, path)."""
    from jaxgen import cli
    out = tmp_path_factory.mktemp("weights") / "fid_inception_v3.npz"
    assert cli.main(["inception-weights", "--pth", str(torch_fid["pth"]), "--out",
                     str(out)]) == 0
    variables, sha = inception.load(out)
    assert sha == hashlib.sha256(out.read_bytes()).hexdigest()
    return variables, sha, out


def _torch_outputs(torch_fid, images: np.ndarray):
    torch = torch_fid["torch"]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255  # as ToTensor does
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    with torch.no_grad():
        pool = torch_fid["blocks"](x)[0].flatten(1)
        fc = torch_fid["net"].fc
        return pool.numpy(), fc(pool).numpy(), (pool @ fc.weight.T).numpy()


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


@pytest.mark.xdist_group("inception")
@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=lambda s: "x".join(map(str, s[1:])))
def test_features_and_logits_match_pytorch_fid(torch_fid, converted, shape):
    variables = converted[0]
    images = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    start = time.perf_counter()
    pool, logits = inception.features_fn(variables, logits_bias=True)(images)
    _, logits_is = inception.features_fn(variables)(images)
    seconds = time.perf_counter() - start
    want_pool, want_logits, want_is = _torch_outputs(torch_fid, images)
    assert pool.shape == (shape[0], 2048) and logits.shape == logits_is.shape == (shape[0], 1008)
    assert pool.dtype == logits.dtype == jnp.float32
    # not a vacuous comparison: the random network's outputs are varied and far from 0
    assert np.std(want_pool) > 0.1 and 0.3 < np.mean(want_pool > 0) < 0.99
    assert np.std(want_logits) > 0.1 and np.std(want_logits - want_is) > 0.05
    errors = {"pool": _rel(pool, want_pool), "logits (fc, with bias)": _rel(logits, want_logits),
              "logits (pool @ W, the IS's)": _rel(logits_is, want_is)}
    print(f"\n{shape}: max relative errors {errors}; jax {seconds:.1f} s (compile included)")
    assert max(errors.values()) <= TOLERANCE, errors


@pytest.mark.xdist_group("inception")
@pytest.mark.parametrize("hw", [(32, 32), (28, 17), (320, 300), (299, 299), (7, 640)])
def test_resize_is_torchs_bilinear_interpolate(torch_fid, hw):
    torch = torch_fid["torch"]
    x = np.random.default_rng(hw[0]).random((2, *hw, 3), dtype=np.float32)
    want = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2),
                                           size=(299, 299), mode="bilinear",
                                           align_corners=False).permute(0, 2, 3, 1).numpy()
    got = np.asarray(inception.resize_bilinear(jnp.asarray(x)))
    assert np.max(np.abs(got - want)) <= 1e-6
    m = inception.resize_matrix(hw[0])
    assert np.allclose(m.sum(axis=1), 1.0) and np.all(np.count_nonzero(m, axis=1) <= 2)


@pytest.mark.xdist_group("inception")
def test_conversion_never_replaces_a_foreign_file_without_force(torch_fid, converted, tmp_path,
                                                                capsys):
    from jaxgen import cli
    out = tmp_path / "mine.npz"
    out.write_bytes(b"the user's own file")
    argv = ["inception-weights", "--pth", str(torch_fid["pth"]), "--out", str(out)]
    assert cli.main(argv) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"the user's own file"
    assert cli.main(argv + ["--force"]) == 0
    assert cli.main(argv) == 0  # its own file: replaced without --force
    assert inception.load(out)[1] == converted[1]  # the same bytes as the first conversion


@pytest.mark.xdist_group("inception")
def test_conversion_rejects_another_state_dict(torch_fid, tmp_path):
    state = dict(torch_fid["state"])
    del state["Mixed_6b.branch1x1.bn.running_var"]
    state["fc.weight"] = state["fc.weight"][:1000]
    state["AuxLogits.fc.weight"] = state["fc.bias"]
    with pytest.raises(UserError) as e:
        inception.convert_state_dict(state)
    msg = str(e.value)
    for piece in ("1 missing (Mixed_6b.branch1x1.bn.running_var)", "1 unexpected (AuxLogits",
                  "1 wrong shape (fc.weight (1000, 2048))", inception.WEIGHTS_URL):
        assert piece in msg, msg
    pth = tmp_path / "bad.pth"
    pth.write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="cannot be read as a PyTorch state dict"):
        inception.convert(pth, tmp_path / "out.npz")


def test_missing_weights_say_what_to_download_and_run(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXGEN_CACHE", str(tmp_path / "cache"))
    assert inception.default_path() == tmp_path / "cache" / "inception" / "fid_inception_v3.npz"
    with pytest.raises(MissingError) as e:
        inception.load()
    assert inception.WEIGHTS_URL in str(e.value)
    assert f"jaxgen inception-weights --pth {inception.WEIGHTS_FILE}" in str(e.value)
    foreign = tmp_path / "other.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(UserError, match="not written by this version"):
        inception.load(foreign)


def test_conversion_without_torch_says_what_to_install(tmp_path, monkeypatch):
    pth = tmp_path / inception.WEIGHTS_FILE
    pth.write_bytes(b"weights")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    with pytest.raises(UserError, match=r"needs PyTorch .*pip install torch==2\.13\.0"):
        inception.convert(pth, tmp_path / "out.npz")
    with pytest.raises(MissingError, match="no such file"):
        inception.convert(tmp_path / "absent.pth", tmp_path / "out.npz")


def test_bad_images_are_one_clear_error():
    f = inception.features_fn({"params": {}, "batch_stats": {}})
    for images in (np.zeros((2, 8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.uint8),
                   np.zeros((2, 8, 8, 3), np.int32)):
        with pytest.raises(UserError, match="Inception features need"):
            f(images)


# ------------------------------------------------------------------- Inception Score
def _is_reference(logits: np.ndarray, splits: int):
    """openai/improved-gan's formula, written out: softmax, then per contiguous split
    exp(mean_x sum_y p (log p - log mean_x p))."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n = len(p)
    scores = []
    for k in range(splits):
        part = p[k * n // splits:(k + 1) * n // splits]
        kl = part * (np.log(part) - np.log(part.mean(axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return np.mean(scores), np.std(scores)


@pytest.mark.parametrize("n, splits", [(1003, 10), (250, 1), (64, 7)])
def test_inception_score_streamed_equals_one_shot_equals_the_formula(n, splits):
    rng = np.random.default_rng(n)
    logits = (rng.normal(size=(n, 1008)) * rng.uniform(0.5, 4.0, size=(n, 1))).astype(np.float32)
    one_shot = inception.inception_score(logits, splits)
    want = _is_reference(logits, splits)
    assert np.allclose(one_shot, want, rtol=1e-12, atol=0), (one_shot, want)
    for chunk in (1, 17, 100, n):
        acc = inception.ISAccumulator(n, splits)
        for start in range(0, n, chunk):
            acc.add(logits[start:start + chunk])
        assert acc.result() == one_shot, (chunk, acc.result(), one_shot)


def test_inception_score_of_known_distributions():
    # every example certain of its own class, classes used equally: IS = number of classes
    k, per = 8, 50
    logits = np.full((k * per, k), -1e3)
    logits[np.arange(k * per), np.arange(k * per) % k] = 0.0
    mean, std = inception.inception_score(logits, splits=5)
    assert abs(mean - k) < 1e-9 and std < 1e-9
    # all examples alike: p(y|x) = p(y), IS = 1
    mean, _ = inception.inception_score(np.tile(np.arange(10.0), (100, 1)), splits=10)
    assert abs(mean - 1.0) < 1e-12


def test_inception_score_accumulator_errors():
    with pytest.raises(UserError, match="splits <= num"):
        inception.ISAccumulator(5, splits=10)
    acc = inception.ISAccumulator(10, splits=2)
    acc.add(np.zeros((6, 4)))
    with pytest.raises(UserError, match="needs all 10 examples; 6 were added"):
        acc.result()
    with pytest.raises(UserError, match="set up for 10 examples; 11 were added"):
        acc.add(np.zeros((5, 4)))
    with pytest.raises(UserError, match="3 classes, earlier ones 4"):
        acc.add(np.zeros((2, 3)))
    with pytest.raises(UserError, match="NaN or inf"):
        acc.add(np.full((2, 4), np.nan))
