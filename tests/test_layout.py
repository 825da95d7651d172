"""The layout's rules, read from the import statements of every module of jaxgen.

* the core (`jaxgen.core`) imports no family: families register themselves;
* shared mathematics and generic layers (processes, distributions, samplers, nn,
  bijectors, data, viz, coding, eval) import no family;
* no import cycle between modules, counting every import statement, also those inside
  functions (the lazy imports that used to hide cycles);
* pyproject's package list names every package of the tree (a wheel built from it holds
  every module and every shipped config).

An import edge goes to the module an import statement names (`from a.b import c`: to
`a.b.c` when that is a module, else to `a.b`); the implicit import of a package's
`__init__` by its submodules is not an edge.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "jaxgen"
NO_FAMILY = ("jaxgen.core", "jaxgen.processes", "jaxgen.distributions", "jaxgen.samplers",
             "jaxgen.nn", "jaxgen.bijectors", "jaxgen.data", "jaxgen.viz", "jaxgen.coding",
             "jaxgen.eval")


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


def test_the_graph_sees_lazy_and_module_level_imports():
    g = import_graph()
    assert "jaxgen.core.registry" in g["jaxgen.nn.catalog"]  # module level
    assert "jaxgen.families.vae.vqvae" in g["jaxgen.families.vae.commands"]  # inside a function
    assert "jaxgen.families.vae.pictures" in g["jaxgen.families.vae.vqvae"]  # from pkg import mod
    # a planted cycle is found
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_and_shared_modules_import_no_family():
    bad = [(m, t) for m, edges in import_graph().items() if m.startswith(NO_FAMILY)
           for t in edges if t.startswith("jaxgen.families")]
    assert not bad, "generic modules importing a family:\n" + "\n".join(
        f"  {m} -> {t}" for m, t in bad)


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in cycles)


def test_pyproject_lists_every_package():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(jaxgen(?:\.[\w]+)*)"', text.split("packages = [", 1)[1]
                            .split("]", 1)[0]))
    tree = {".".join(p.parent.relative_to(ROOT).parts) for p in PKG.rglob("__init__.py")}
    tree |= {"jaxgen.configs." + p.parent.name if p.parent.name != "configs" else
             "jaxgen.configs" for p in (ROOT / "configs").rglob("__init__.py")}
    assert listed == tree, (sorted(tree - listed), sorted(listed - tree))
