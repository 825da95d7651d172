"""train.compilation_cache: XLA's persistent compilation cache in a folder of the user's."""

from __future__ import annotations

from conftest import NO_PICTURES, TINY_TOY, TOY_CONFIG, flags, run_cli


def test_a_run_writes_its_compiled_programs_into_the_compilation_cache(tmp_path):
    """The setting wins over JAX_COMPILATION_CACHE_DIR (the test session's shared cache)."""
    cache = tmp_path / "xla-cache"
    run_cli(["train", "--config", TOY_CONFIG, "--workdir", tmp_path / "run",
             *flags([*TINY_TOY, *NO_PICTURES, "train.steps=10", "train.checkpoint_every=10",
                     f"train.compilation_cache={cache}"])])
    entries = [p.name for p in cache.iterdir()] if cache.is_dir() else []
    assert any(name.startswith("jit_") for name in entries), entries
