"""The package layout: no import cycle inside mlts, the library never imports a study or the
repository's configs/experiments, and the public API imports from outside the repository."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mlts"


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts = parts[:-1]
  return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
  return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: pathlib.Path, name: str, known: set[str]) -> set[str]:
  """Every module this file imports anywhere (function-level imports included)."""
  is_package = path.name == "__init__.py"
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:  # relative import
        base = name.split(".")
        base = base[:len(base) - node.level + (1 if is_package else 0)]
        module = ".".join(base + ([node.module] if node.module else []))
      else:
        module = node.module or ""
      for alias in node.names:
        child = f"{module}.{alias.name}"
        out.add(child if child in known else module)
  return out


def import_graph() -> dict[str, set[str]]:
  modules = _modules()
  known = set(modules)
  return {name: _imports(path, name, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """A cycle of the graph restricted to its own nodes, or None (iterative DFS)."""
  state = {}  # 1 = on the stack, 2 = done
  for root in sorted(graph):
    if state.get(root):
      continue
    stack = [(root, iter(sorted(graph[root] & graph.keys())))]
    path = [root]
    state[root] = 1
    while stack:
      node, children = stack[-1]
      child = next(children, None)
      if child is None:
        state[node] = 2
        stack.pop()
        path.pop()
      elif state.get(child) == 1:
        return path[path.index(child):] + [child]
      elif not state.get(child):
        state[child] = 1
        stack.append((child, iter(sorted(graph[child] & graph.keys()))))
        path.append(child)
  return None


def test_find_cycle_sees_a_cycle_and_its_absence():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_inside_mlts():
  cycle = find_cycle(import_graph())
  assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_library_never_imports_studies_configs_or_experiments():
  offenders = []
  for name, imported in import_graph().items():
    if name.startswith("mlts.studies"):
      continue
    for module in imported:
      top = module.split(".")[0]
      if top in ("configs", "experiments") or module.startswith("mlts.studies"):
        offenders.append(f"{name} imports {module}")
  assert not offenders, offenders


def test_studies_are_registered_once_and_every_config_names_one():
  from mlts import studies
  on_disk = {p.stem for p in (PACKAGE / "studies").glob("*.py") if p.stem != "__init__"}
  assert set(studies.REGISTRY.values()) == on_disk
  for config_file in sorted((ROOT / "configs").glob("*.py")):
    if config_file.stem in ("__init__",) or config_file.stem.endswith("_base"):
      continue
    text = config_file.read_text()
    if "def get_config" not in text:
      continue
    import importlib
    module = importlib.import_module(f"configs.{config_file.stem}")
    config = module.get_config()
    assert config.experiment in studies.available(), config_file.name
  with pytest.raises(ValueError, match="known studies: cognos_ablation, detector, diffusion"):
    studies.get("cognos")


def test_public_api_imports_outside_the_repository(tmp_path):
  code = ("import mlts.detectors, mlts.generators, mlts.studies, mlts.pipeline; "
          "from mlts import studies; [studies.get(n) for n in studies.available()]; "
          "import sys; assert not any(m.split('.')[0] in ('configs', 'experiments') "
          "for m in sys.modules), 'imported the repository'; print('ok')")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["JAX_PLATFORMS"] = "cpu"
  out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().endswith("ok")
