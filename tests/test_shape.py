"""The package's shape, kept by tests: no import circles, generic code that names no family, no function longer
than 50 lines, upstream internals only behind their fence, and RunConfig the one source of every flag's default."""

import ast
import dataclasses
import importlib
import os

from absl import flags

from pipelines import config as run_config
from pipelines.config import RunConfig
from tests.conftest import ROOT

PACKAGES = ("pipelines", "models", "tuning")
# Generic code: it runs any task of any family, so it names none (DESIGN.md, principle 17).
GENERIC = ("pipelines/runner.py", "pipelines/state.py", "pipelines/health.py", "pipelines/stages/",
           "pipelines/data/", "pipelines/context.py")
PRIVATE = ("keras.src", "tensorflow.python", "tensorflow.compiler", "keras_tuner.src", "keras_tuner.engine",
           "tensorflow_datasets.core")


def modules() -> dict[str, str]:
    """Every module of the packages: dotted name → path."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            if "generated" in folder:
                continue
            for name in files:
                if name.endswith(".py"):
                    path = os.path.relpath(os.path.join(folder, name), ROOT)
                    dotted = path[:-3].replace(os.sep, ".").removesuffix(".__init__")
                    found[dotted] = path
    return found


def imports(path: str) -> set[str]:
    """The modules a file imports, anywhere in it (inside functions and TYPE_CHECKING blocks too)."""
    names = set()
    for node in ast.walk(ast.parse(open(os.path.join(ROOT, path)).read())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def family_modules() -> set[str]:
    """Every module under pipelines/families/ (its package, the Family record itself, is not one): where each family
    and what families share live."""
    return {name for name in modules() if name.startswith("pipelines.families.")}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {imported for imported in imports(path) if imported in known and imported != name}
            for name, path in known.items()}


def test_the_import_graph_of_the_packages_has_no_circle():
    edges, state, circles = graph(), {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"
    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not circles, circles


def test_every_registered_family_lives_in_a_module_under_families():
    from pipelines.tasks import FAMILIES
    homes = {name: importlib.import_module(name) for name in family_modules()}
    for family in FAMILIES.values():  # family_modules() holds every family: the next test keeps them all out
        assert any(value is family for module in homes.values() for value in vars(module).values()), family.name


def test_generic_code_imports_no_family_module():
    known, families = modules(), family_modules()
    offenders = {path: sorted(families & imports(path)) for path in known.values() if path.startswith(GENERIC)}
    assert not {path: found for path, found in offenders.items() if found}


def test_no_function_is_longer_than_50_lines():
    long = []
    for path in modules().values():
        for node in ast.walk(ast.parse(open(os.path.join(ROOT, path)).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 50:
                long.append(f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


DOCUMENTED_UNDERSCORE = {"os._exit"}  # public API whose name begins with an underscore


def attribute_uses(path: str) -> set[str]:
    """Every dotted attribute chain in a file, its first name resolved through the file's imports (kt.engine.trial
    → keras_tuner.engine.trial), and every private attribute an object of another package is asked for (`_x` on
    anything but a name the file's own classes define)."""
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    aliases = {alias.asname or alias.name: alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    own = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)}
    own |= {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    uses = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain, value = [node.attr], node.value
        while isinstance(value, ast.Attribute):
            chain, value = [value.attr, *chain], value.value
        full = ".".join([aliases.get(value.id, value.id), *chain]) if isinstance(value, ast.Name) else ""
        uses.add(full)
        if node.attr.startswith("_") and not node.attr.startswith("__") and node.attr not in own \
                and full not in DOCUMENTED_UNDERSCORE:
            uses.add(f"private attribute {node.attr}")
    return uses


def test_upstream_internals_are_used_only_behind_their_fence():
    """Neither imported nor reached as an attribute (tfds.core.registered…, an optimizer's _var_key) outside
    pipelines/upstream/."""
    outside = {path: sorted(name for name in imports(path) | attribute_uses(path)
                            if name.startswith(PRIVATE) or name.startswith("private attribute"))
               for path in modules().values() if not path.startswith("pipelines/upstream/")}
    assert not {path: names for path, names in outside.items() if names}


def test_every_flag_named_after_a_setting_defaults_to_the_settings_own():
    import pipelines.flags  # noqa: F401  (defines the flags)
    for field in dataclasses.fields(RunConfig):
        if field.name in run_config.DERIVED:
            continue
        default = flags.FLAGS[field.name].default
        default = tuple(default) if isinstance(default, list) else default
        expected = field.default or (None if field.default in ("", None) else field.default)
        assert default == expected or (default in ("", None) and field.default in ("", None)), field.name


def test_each_export_target_is_named_in_its_record_and_its_flag_alone():
    """An export target is a record (pipelines/exporters.py): outside it, only the flag that asks for it and its
    RunConfig field name it in the pipeline's code, so a new target is one record and not edits in every stage (a
    builder in models/ may say in a comment why a layer has the form a converter takes)."""
    from pipelines import exporters
    for target in ("onnx",):
        assert exporters.TARGETS[target]
        naming = sorted(path for path in modules().values() if path.startswith("pipelines/")
                        and "/upstream/" not in path and target in open(os.path.join(ROOT, path)).read().lower())
        assert naming == ["pipelines/config.py", "pipelines/exporters.py", "pipelines/flags.py"], naming


def test_no_stage_rewrites_the_context_it_is_given():
    """A stage returns what it resolved (StageResult) for the runner to hand on; none assigns ctx.config or
    ctx.inputs."""
    for path in modules().values():
        if path.startswith("pipelines/stages/"):
            for node in ast.walk(ast.parse(open(os.path.join(ROOT, path)).read())):
                if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    assert not [t for t in targets if isinstance(t, ast.Attribute) and t.attr in ("config", "inputs")
                                and isinstance(t.value, ast.Name) and t.value.id == "ctx"], path
