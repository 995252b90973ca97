"""The import graph: config flows one way (each layer imports only the layers below it, so
training/ and evaluation/ import neither plan.py nor experiments/), the renderer stays free of
model code, and no module imports itself through others."""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = (
    "model",
    "data",
    "objectives",
    "sections",
    "training",
    "evaluation",
    "experiments",
    "benchmarks",
)
TOP_MODULES = ("plan", "launch", "train", "eval", "distill")


def _modules() -> dict[str, str]:
    """Module name -> file, for every project module."""
    found = {name: os.path.join(REPO, f"{name}.py") for name in TOP_MODULES}
    found = {name: path for name, path in found.items() if os.path.exists(path)}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO, package)):
            for file in files:
                if file.endswith(".py"):
                    path = os.path.join(folder, file)
                    name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: str, modules: dict[str, str]) -> set[str]:
    """The project modules a file imports at module level (not inside functions)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {name for name in names if name in modules}
    return out


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of module-level imports, or None. A package's __init__ that imports its own
    submodules is how it exports them, not a cycle: edges from a package to its children are
    left out, as are edges from a module to the package that contains it."""

    def inside(child: str, parent: str) -> bool:
        return child.startswith(parent + ".")

    pruned = {
        node: {t for t in targets if t != node and not inside(t, node) and not inside(node, t)}
        for node, targets in edges.items()
    }
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(pruned.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(pruned):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_training_and_evaluation_never_import_experiments():
    bad = [
        (name, target)
        for name, targets in graph().items()
        if name.startswith(("training", "evaluation", "model", "data", "plan"))
        for target in targets
        if target.startswith("experiments")
    ]
    assert bad == []


# Bottom to top: a module imports only modules of its own layer or of the layers below.
LAYERS = (
    ("model", "data", "launch"),
    ("objectives",),  # What a model learns from: losses, read by training and evaluation.
    ("sections",),  # The typed run plan they receive.
    ("training",),
    ("evaluation",),
    ("plan",),  # Experiment files -> plans; only the entry points call it.
    ("experiments", "benchmarks", "train", "eval", "distill"),
)


def _layer(module: str) -> int:
    top = module.split(".")[0]
    return next(i for i, layer in enumerate(LAYERS) if top in layer)


def test_config_flows_down_every_import_stays_in_its_layer_or_below():
    upward = [
        (name, target)
        for name, targets in graph().items()
        for target in targets
        if _layer(target) > _layer(name)
    ]
    assert upward == []
    importers_of_plan = sorted(
        name
        for name, targets in graph().items()
        if name.startswith(("training", "evaluation")) and any(t == "plan" for t in targets)
    )
    assert importers_of_plan == []


def test_the_import_graph_has_no_cycle():
    assert _cycle(graph()) is None


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"p": {"p.x"}, "p.x": {"p.y"}, "p.y": set()}) is None
