"""The layers, checked: core <- spool <- load <- ops <- cli (README, "Architecture").

Also the edge of the config file: only cli/ reads ``Config``; the library
below it takes typed options that the CLI makes (cli/common.py).

Each module may import only from its own layer or the layers below it, and
the project's modules import each other without a cycle. The graph is read
from the source (AST), so it counts imports inside functions and under
TYPE_CHECKING too: a function-local import is still a dependency, and hiding
one there is how the old cycle (inspect -> ledger -> status -> inspect) went
unnoticed. Invariant I3 (ingest never loads a database driver) is checked at
run time in test_ingest.py; this is its static counterpart for the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "spool_target"
LAYERS = ("core", "spool", "load", "ops", "cli")


def _module_name(path: Path) -> str:
    parts = ["spool_target", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> str:
    if module == "spool_target.__main__":
        return "cli"
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS[1:]:
        return parts[1]
    return "core"


def _imports(module: str, source: str | None = None) -> set[str]:
    """Project modules ``module`` imports, wherever in the file (``source``: its text, else the file's)."""
    names = _imported_names(module, source)
    found = {m for m, _ in names}
    found.discard(module)
    return {m for m in found if m in MODULES}


def _imported_names(module: str, source: str | None = None) -> set[tuple[str, str]]:
    """(project module, name) for every import in ``module``; name is "" for `import module`."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[tuple[str, str]] = set()
    text = path.read_text() if source is None else source
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            found.update((a.name, "") for a in node.names if a.name.startswith("spool_target"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("spool_target"):
                continue
            for alias in node.names:  # `from pkg import module` depends on the module
                sub = f"{source}.{alias.name}"
                found.add((sub, "") if sub in MODULES else (source, alias.name))
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{m} ({layer_of(m)}) imports {dep} ({layer_of(dep)})"
        for m, deps in sorted(graph.items())
        for dep in sorted(deps)
        if LAYERS.index(layer_of(dep)) > LAYERS.index(layer_of(m))
    ]


def test_every_module_imports_only_its_own_layer_or_lower():
    upward = _upward(GRAPH)
    assert upward == [], "upward imports:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    assert _cycles(GRAPH) == []


def test_the_checks_see_an_upward_import_and_a_cycle():
    """The two tests above can fail: fed a graph with a planted violation, each finds it."""
    ingest, engine = "spool_target.spool.ingest", "spool_target.load.engine"
    planted = {**GRAPH, ingest: GRAPH[ingest] | {engine}}
    assert _upward(planted) == [f"{ingest} (spool) imports {engine} (load)"]
    a, b = "spool_target.errors", "spool_target.config"
    assert _cycles({a: {b}, b: {a}}) == [[b, a]]
    assert GRAPH["spool_target.cli"] >= {"spool_target.cli.app", "spool_target.cli.ingest_cmd"}
    assert layer_of("spool_target.load.oracle.destination") == "load"
    assert layer_of("spool_target.ops.views") == "ops"
    assert layer_of("spool_target.naming") == "core"


# The config file's objects: the library below cli/ takes typed options instead.
CONFIG_MODULE = "spool_target.config"
CONFIG_READERS = {"Config", "load_config", ""}  # "": the module itself (config.Config)


def _config_readers(sources: dict[str, str] | None = None) -> list[str]:
    """Modules of spool/, load/ and ops/ that import ``Config`` (or the config module)."""
    sources = sources or {}
    return [
        f"{m} imports {name or 'the module'} from {CONFIG_MODULE}"
        for m in sorted(MODULES)
        if layer_of(m) in ("spool", "load", "ops")
        for dep, name in sorted(_imported_names(m, sources.get(m)))
        if dep == CONFIG_MODULE and name in CONFIG_READERS
    ]


def test_nothing_below_the_cli_reads_the_config():
    readers = _config_readers()
    assert readers == [], "below cli/, take typed options made in cli/common.py instead:\n" + "\n".join(readers)


def test_the_config_check_sees_a_module_that_reads_config():
    """The test above can fail: planted imports of Config, in three spellings, are each found."""
    engine, units, follow = "spool_target.load.engine", "spool_target.load.units", "spool_target.ops.follow"
    planted = {
        engine: MODULES[engine].read_text() + "\n\ndef _f():\n    from ..config import Config\n",
        units: MODULES[units].read_text() + "\nif TYPE_CHECKING:\n    from spool_target.config import Config, parse_duration\n",
        follow: MODULES[follow].read_text() + "\nfrom .. import config\n",
    }
    assert _config_readers(planted) == [
        f"{engine} imports Config from {CONFIG_MODULE}",
        f"{units} imports Config from {CONFIG_MODULE}",
        f"{follow} imports the module from {CONFIG_MODULE}",
    ]
    # The CLI is the edge: it reads Config, and the check leaves it alone.
    assert ("spool_target.config", "Config") in _imported_names("spool_target.cli.common")
