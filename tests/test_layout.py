"""The layout's rules, read from the import statements of every module of jaxgen.

* the kernel (`jaxgen.kernel`: errors, settings, config, contract, registry, transforms)
  imports nothing else of jaxgen;
* no two packages import each other (a package: a folder of jaxgen, a family folder, or a
  top-level module; the top-level cli / api / __main__ count as one, "jaxgen");
* the runner and the shared mathematics and generic layers (processes, distributions,
  samplers, nn, bijectors, data, composed, viz, coding, eval) import no family: families
  register themselves;
* no import cycle between modules, counting every import statement, also those inside
  functions (the lazy imports that used to hide cycles);
* pyproject finds every package of the tree itself (a wheel built from it holds every
  module and every shipped config), and the registry finds every family and dataset.

An import edge goes to the module an import statement names (`from a.b import c`: to
`a.b.c` when that is a module, else to `a.b`); the implicit import of a package's
`__init__` by its submodules is not an edge.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "jaxgen"
NO_FAMILY = ("jaxgen.kernel", "jaxgen.runner", "jaxgen.processes", "jaxgen.distributions",
             "jaxgen.samplers", "jaxgen.nn", "jaxgen.bijectors", "jaxgen.data",
             "jaxgen.composed", "jaxgen.viz", "jaxgen.coding", "jaxgen.eval")
KERNEL = "jaxgen.kernel"
TOP = ("jaxgen", "jaxgen.cli", "jaxgen.api", "jaxgen.__main__")


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_package(name: str, mods: dict) -> bool:
    return mods.get(name, Path()).name == "__init__.py"


def import_graph() -> dict[str, set[str]]:
    """module -> the jaxgen modules its import statements name (anywhere in the file)."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    pkg = name if _is_package(name, mods) else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t.startswith("jaxgen") and t in mods and t != name}
        graph[name] = edges
    return graph


def _cycles(graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def package_of(module: str) -> str:
    """The package a module belongs to: jaxgen.families.<family>, jaxgen.<folder>, a top-level
    module of its own (jaxgen.distributions), or "jaxgen" for the entry points."""
    if module in TOP:
        return "jaxgen"
    parts = module.split(".")
    return ".".join(parts[:3] if parts[1] == "families" and len(parts) > 2 else parts[:2])


def kernel_imports(graph) -> list[tuple[str, str]]:
    """(kernel module, what it imports) for every import of the kernel that leaves it."""
    return sorted((m, t) for m, edges in graph.items() if package_of(m) == KERNEL
                  for t in edges if package_of(t) != KERNEL)


def mutual_packages(graph) -> list[tuple[str, str, str, str]]:
    """(package a, package b, an import a -> b, an import b -> a) for every pair of
    packages that import each other."""
    first = {}
    for m, edges in sorted(graph.items()):
        for t in sorted(edges):
            a, b = package_of(m), package_of(t)
            if a != b:
                first.setdefault((a, b), f"{m} -> {t}")
    return sorted((a, b, ab, first[(b, a)]) for (a, b), ab in first.items()
                  if a < b and (b, a) in first)


def test_the_graph_sees_lazy_and_module_level_imports():
    g = import_graph()
    assert "jaxgen.kernel.registry" in g["jaxgen.nn.catalog"]  # module level
    assert "jaxgen.families.vae.vqvae" in g["jaxgen.families.vae.commands"]  # inside a function
    assert "jaxgen.families.vae.pictures" in g["jaxgen.families.vae.vqvae"]  # from pkg import mod
    # a planted cycle is found
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_kernel_imports_nothing_else_of_jaxgen():
    bad = kernel_imports(import_graph())
    assert not bad, "kernel modules importing the rest of jaxgen:\n" + "\n".join(
        f"  {m} -> {t}" for m, t in bad)
    # a planted violation is caught: the registry importing the runner
    planted = {"jaxgen.kernel.registry": {"jaxgen.kernel.settings", "jaxgen.runner.runs"}}
    assert kernel_imports(planted) == [("jaxgen.kernel.registry", "jaxgen.runner.runs")]


def test_no_two_packages_import_each_other():
    bad = mutual_packages(import_graph())
    assert not bad, "packages importing each other:\n" + "\n".join(
        f"  {a} <-> {b}: {ab}; {ba}" for a, b, ab, ba in bad)
    # a planted violation is caught: data reading a run (runner), the runner reading data;
    # a family's modules importing each other, or the entry points, are not a violation
    planted = {"jaxgen.data.latents": {"jaxgen.runner.runs"},
               "jaxgen.runner.loop": {"jaxgen.data.pipeline"},
               "jaxgen.families.vae.vae": {"jaxgen.families.vae.config"},
               "jaxgen.cli": {"jaxgen.api"}, "jaxgen.api": {"jaxgen.cli"}}
    assert mutual_packages(planted) == [("jaxgen.data", "jaxgen.runner",
                                         "jaxgen.data.latents -> jaxgen.runner.runs",
                                         "jaxgen.runner.loop -> jaxgen.data.pipeline")]


def test_core_and_shared_modules_import_no_family():
    bad = [(m, t) for m, edges in import_graph().items() if m.startswith(NO_FAMILY)
           for t in edges if t.startswith("jaxgen.families")]
    assert not bad, "generic modules importing a family:\n" + "\n".join(
        f"  {m} -> {t}" for m, t in bad)


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in cycles)


def test_pyproject_finds_every_package():
    """pyproject finds the packages itself (no hand-kept list), and what it finds is every
    package of the tree, the shipped configs (jaxgen/configs, a link to configs/) included."""
    from setuptools import find_packages
    text = (ROOT / "pyproject.toml").read_text()
    assert "[tool.setuptools.packages.find]" in text and "packages = [" not in text
    found = set(find_packages(str(ROOT), include=["jaxgen", "jaxgen.*"]))
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in PKG.rglob("__init__.py")}
    tree |= {"jaxgen.configs" + "".join("." + part for part in p.parent.relative_to(
        ROOT / "configs").parts) for p in (ROOT / "configs").rglob("__init__.py")}
    assert (PKG / "configs").resolve() == (ROOT / "configs").resolve()
    assert found == tree, (sorted(tree - found), sorted(found - tree))


def test_families_and_datasets_are_discovered():
    """A family is a folder and a dataset a module: the registry's first lookup imports
    every folder of jaxgen/families and every module of jaxgen/data/datasets with no list,
    and each family folder registers an objective built from it."""
    import sys

    from jaxgen.kernel import registry
    registry.objective_names()  # the first lookup loads the built-ins
    families = sorted(p.parent.name for p in (PKG / "families").glob("*/__init__.py"))
    owners = {str(s.build).split(":")[0].split(".")[2] for s in registry.objective_specs()
              if str(s.build).startswith("jaxgen.families.")}
    assert families and families == sorted(owners)
    modules = [f"jaxgen.data.datasets.{p.stem}" for p in (PKG / "data" / "datasets").glob(
        "*.py") if not p.name.startswith("_")]
    assert modules and all(m in sys.modules for m in modules)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_the_metrics_writer_starts_without_importing_torch(tmp_path):
    """tensorboardX imports torch whenever it is installed (seconds of every run's start-up);
    the metrics writer opens its TensorBoard file without it, and a torch imported later is
    the real one."""
    code = ("import sys; from jaxgen.runner.logging import MetricsWriter; "
            f"w = MetricsWriter({str(tmp_path)!r}, None); w.write(1, {{'loss': 0.5}}); "
            "w.close(); print('torch' in sys.modules); import torch; print(torch.ones(2).sum())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "tensor(2.)"], out.stdout
    assert list((tmp_path / "tensorboard").iterdir())  # the event file was written
