"""The layers import only downward: no cycle between modules, pure permissions, feature-free errors.

The graph is read from the source (every import statement, function-local ones included), so a
cycle hidden inside a function fails here as well.
"""

import ast
from pathlib import Path

import portal

ROOT = Path(portal.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def imports_of(name: str, source: str | None = None) -> set[str]:
    """The portal modules this module imports (`from portal.x import y` names portal.x.y when
    that is a module, else portal.x)."""
    found = set()
    for node in ast.walk(ast.parse(source or MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return {target for target in found if target in MODULES and target != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles() -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(sorted(group))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return groups


def test_the_graph_is_read_from_every_module_and_every_import_in_it():
    assert {"portal.teams.service", "portal.billing.service", "portal.permissions"} <= set(GRAPH)
    assert "portal.billing.seats" in GRAPH["portal.billing.cli"]
    inside_a_function = "def f():\n    from portal.teams import service\n    import portal.db\n"
    assert imports_of("portal.errors", inside_a_function) == {"portal.teams.service", "portal.db"}


def test_no_module_imports_one_that_imports_it_back():
    assert cycles() == []


def test_the_cycle_check_finds_a_cycle():
    GRAPH["portal.teams.queries"].add("portal.teams.service")
    try:
        assert any({"portal.teams.queries", "portal.teams.service"} <= set(g) for g in cycles())
    finally:
        GRAPH["portal.teams.queries"].discard("portal.teams.service")


def test_permissions_are_pure_predicates():
    """No database, no request, no g: only the models they look at."""
    source = MODULES["portal.permissions"].read_text()
    assert GRAPH["portal.permissions"] <= {"portal.teams.models"}
    assert not any(word in source for word in ("flask", "db.session", "sqlalchemy"))


def test_error_pages_know_no_feature():
    allowed = {"portal.exceptions", "portal.extensions", "portal.htmx", "portal.i18n"}
    assert GRAPH["portal.errors"] <= allowed


def test_the_factory_rewrites_no_module_globals():
    """What happens when someone joins is read in the service that does it, not in hook lists
    the factory fills in."""
    for name, path in MODULES.items():
        assert "_HOOKS" not in path.read_text(), name
