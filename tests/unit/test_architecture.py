"""Architecture rules, read from the source with ``ast`` (tests/support/architecture.py).

The first half checks the real tree; the second proves every check can fail, by
running the same functions on small trees written in ``tmp_path``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.architecture import (
    RULES,
    Rule,
    all_imports,
    cycles,
    misplaced_tests,
    module_cycle_problems,
    module_graph,
    package_cycle_problems,
    package_graph,
    project_modules,
    rule_problems,
    simulator_problems,
)

ROOT = Path(__file__).resolve().parents[2]
RULE_IDS = [r.source for r in RULES]
SYSTEM_SUITES = frozenset({"faults"})  # whole hub processes (python main.py run) under faults
CROSS_CUTTING = frozenset({"test_architecture.py"})


# ---------------------------------------------------------------- the real tree


def test_the_whole_tree_is_read() -> None:
    """Guards the checks below against passing on nothing."""
    modules = project_modules(ROOT)
    assert {"main", "contracts.errors", "kernel.runtime", "bootstrap.wiring",
            "adapters.tax.client", "tools.fixtures.generate_core"} <= set(modules)
    assert not any(m.startswith(("tests", "alembic")) for m in modules)
    edges = module_graph(all_imports(ROOT))
    assert "contracts.envelope" in edges["kernel.runtime"]
    assert "tools.replay" in edges["cli.main"]  # imported inside a function
    assert "adapters.channels.port" in edges["adapters.channels.client"]  # TYPE_CHECKING
    packages = package_graph(all_imports(ROOT))
    assert {"main", "contracts", "kernel", "routes", "simulators"} <= set(packages)
    assert "bootstrap" in packages["cli"]


def test_no_import_cycle_between_modules() -> None:
    problems = module_cycle_problems(ROOT)
    assert not problems, "\n".join(problems)


def test_no_import_cycle_between_top_level_folders() -> None:
    problems = package_cycle_problems(ROOT)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("rule", RULES, ids=RULE_IDS)
def test_layer_rule(rule: Rule) -> None:
    problems = rule_problems(ROOT, rule)
    assert not problems, "\n".join(problems)


def test_no_simulator_under_adapters() -> None:
    problems = simulator_problems(ROOT)
    assert not problems, "\n".join(problems)


def test_tests_mirror_the_packages() -> None:
    problems = misplaced_tests(ROOT, system_suites=SYSTEM_SUITES, cross_cutting=CROSS_CUTTING)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the checks can fail


def tree(root: Path, files: dict[str, str]) -> Path:
    """Writes ``files`` under ``root``; every folder on the way is a package."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        for folder in path.relative_to(root).parents:
            init = root / folder / "__init__.py"
            if folder != Path(".") and not init.exists():
                init.write_text("", encoding="utf-8")
    return root


def test_a_cycle_through_imports_in_functions_is_reported(tmp_path: Path) -> None:
    tree(tmp_path, {
        "pkg/a.py": "def f():\n    from pkg import b\n    return b\n",
        "pkg/b.py": "def g():\n    import pkg.a\n    return pkg.a\n",
        "pkg/c.py": "import pkg.a\n",
    })
    [problem] = module_cycle_problems(tmp_path)
    assert problem.startswith("import cycle between modules: pkg.a -> pkg.b -> pkg.a")
    assert "pkg/a.py:2: from pkg import b" in problem
    assert "pkg/b.py:2: import pkg.a" in problem


def test_a_type_checking_import_closes_a_cycle(tmp_path: Path) -> None:
    tree(tmp_path, {
        "pkg/a.py": """\
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pkg.b import Thing
            """,
        "pkg/b.py": "from pkg.a import TYPE_CHECKING\nThing = 1\n",
    })
    [problem] = module_cycle_problems(tmp_path)
    assert "pkg.a -> pkg.b -> pkg.a" in problem
    assert "pkg/a.py:3: from pkg.b import Thing" in problem


def test_a_longer_cycle_names_every_module(tmp_path: Path) -> None:
    tree(tmp_path, {
        "p/one.py": "from p import two\n",
        "p/two.py": "from p.three import x\n",
        "p/three.py": "from p.one import y\nx = 1\n",
        "q/alone.py": "from p import one\n",
    })
    [cycle] = cycles(module_graph(all_imports(tmp_path)))
    assert cycle == ["p.one", "p.two", "p.three", "p.one"]


def test_from_package_import_name_resolves_to_the_module_or_the_package(
        tmp_path: Path) -> None:
    tree(tmp_path, {
        "pkg/__init__.py": "from pkg.mod import VALUE\n",
        "pkg/mod.py": "VALUE = 1\n",
        "pkg/user.py": "from pkg import VALUE\nfrom pkg import mod\n",
        "other/rel.py": "from . import sibling\nfrom .sibling import z\nfrom .. import pkg\n",
        "other/sibling.py": "z = 1\n",
    })
    edges = module_graph(all_imports(tmp_path))
    assert edges["pkg.user"] == {"pkg", "pkg.mod"}
    assert edges["pkg"] == {"pkg.mod"}
    assert edges["other.rel"] == {"other.sibling", "pkg"}
    assert module_cycle_problems(tmp_path) == []


def test_a_cycle_between_folders_is_reported(tmp_path: Path) -> None:
    tree(tmp_path, {
        "main.py": "from low import x\n",
        "low/x.py": "def f():\n    import main\n",
        "high/y.py": "from low.x import f\n",
        "tests/test_it.py": "import high.y\n",
        "alembic/env.py": "import high.y\n",
    })
    [problem] = package_cycle_problems(tmp_path)
    assert problem.startswith("import cycle between folders: low -> main -> low")
    assert "low/x.py:2: import main" in problem
    assert "main.py:1: from low import x" in problem
    assert set(package_graph(all_imports(tmp_path))) == {"main", "low", "high"}


def test_no_folder_cycle_when_imports_go_one_way(tmp_path: Path) -> None:
    tree(tmp_path, {
        "low/x.py": "import low.z\n",
        "low/z.py": "",
        "high/y.py": "from low.x import f\n",
        "tests/test_it.py": "import high.y\n",
    })
    tree(tmp_path, {"low/z.py": "from tests import test_it\n"})  # tests/ is not a node
    assert package_cycle_problems(tmp_path) == []
    assert module_cycle_problems(tmp_path) == []


BROKEN = [
    ("contracts", "adapters.core", "from adapters.core import thing"),
    ("contracts", "kernel", "import kernel.runtime"),
    ("adapters", "routes", "from routes.lanes import ROUTES"),
    ("adapters", "api", "import api.app"),
    ("adapters", "simulators", "from simulators import tax"),
    ("broker", "routes", "from routes.tax_submit import handle"),
    ("routes", "broker", "from broker.rabbit import publish"),
    ("routes", "api", "from api import app"),
    ("kernel", "broker", "import broker.topology"),
    ("kernel", "routes", "from routes import lanes"),
    ("kernel", "api", "import api.app"),
    ("kernel", "adapters", "from adapters.core.client import C"),
    ("kernel", "bootstrap", "from bootstrap.wiring import build_hub"),
]
PACKAGES = ["adapters/core.py", "api/app.py", "broker/rabbit.py", "broker/topology.py",
            "routes/lanes.py", "routes/tax_submit.py", "simulators/tax.py",
            "kernel/runtime.py", "bootstrap/wiring.py", "contracts/errors.py"]


@pytest.mark.parametrize(("source", "target", "line"), BROKEN,
                         ids=[f"{s}-imports-{t}" for s, t, _ in BROKEN])
def test_a_broken_layer_rule_is_reported(tmp_path: Path, source: str, target: str,
                                         line: str) -> None:
    tree(tmp_path, {p: "" for p in PACKAGES})
    tree(tmp_path, {f"{source}/deep/offender.py": f"def late():\n    {line}\n"})
    [rule] = [r for r in RULES if r.source == source]
    [problem] = rule_problems(tmp_path, rule)
    assert problem.startswith(f"{rule}: {source}/deep/offender.py:2: {line} (imports {target}")
    others = [r for r in RULES if r.source != source]
    assert all(rule_problems(tmp_path, r) == [] for r in others)


def test_allowed_imports_are_not_reported(tmp_path: Path) -> None:
    tree(tmp_path, {p: "" for p in PACKAGES})
    tree(tmp_path, {
        "contracts/messages.py": "from contracts import errors\nimport json\nimport pydantic\n",
        "adapters/tax.py": "from contracts.errors import E\nimport httpx\n",
        "broker/dlq.py": "from kernel.runtime import x\nfrom broker import topology\n",
        "routes/ports.py": "from adapters.core import C\nfrom kernel import runtime\n",
        "kernel/deps.py": "from contracts import errors\nfrom kernel import runtime\n",
        "api/app.py": "from routes import lanes\nfrom broker import rabbit\n",
    })
    assert [p for r in RULES for p in rule_problems(tmp_path, r)] == []
    assert simulator_problems(tmp_path) == []


@pytest.mark.parametrize(("files", "shown"), [
    ({"adapters/tax/fake.py": "from simulators.tax import serve\n"},
     "adapters/tax/fake.py:1: from simulators.tax import serve (imports simulators.tax)"),
    ({"adapters/tax/fake.py": "def run():\n    import pyftpdlib.servers\n"},
     "adapters/tax/fake.py:2: import pyftpdlib.servers"),
    ({"adapters/core/fake.py": "import uvicorn\n"}, "adapters/core/fake.py:1: import uvicorn"),
    ({"adapters/core/fake.py": "from fastapi import FastAPI\n"},
     "adapters/core/fake.py:1: from fastapi import FastAPI"),
    ({"adapters/core/fake.py": "from fastapi.applications import FastAPI\n"},
     "adapters/core/fake.py:1: from fastapi.applications import FastAPI"),
    ({"adapters/core/fake.py": "import fastapi as f\napp = f.FastAPI()\n"},
     "adapters/core/fake.py:2: builds a fastapi.FastAPI app"),
    ({"adapters/tax/simulator.py": ""}, "adapters/tax/simulator.py: a file named like"),
    ({"adapters/tax/tax_sim.py": ""}, "adapters/tax/tax_sim.py: a file named like"),
], ids=["simulators", "pyftpdlib", "uvicorn", "FastAPI", "FastAPI-deep", "fastapi.FastAPI",
        "simulator.py", "tax_sim.py"])
def test_a_simulator_under_adapters_is_reported(tmp_path: Path, files: dict[str, str],
                                                shown: str) -> None:
    tree(tmp_path, {"simulators/tax.py": "", "adapters/core/client.py": "import httpx\n"})
    tree(tmp_path, files)
    [problem] = simulator_problems(tmp_path)
    assert problem.startswith(f"a simulator under adapters/: {shown}")


def test_fastapi_parts_other_than_the_app_are_allowed_in_adapters(tmp_path: Path) -> None:
    tree(tmp_path, {
        "adapters/channels/auth.py": "from fastapi import HTTPException\nimport fastapi\n"
                                     "x = fastapi.Request\n",
        "simulators/tax.py": "from fastapi import FastAPI\nimport uvicorn\n",
    })
    assert simulator_problems(tmp_path) == []


def test_a_misplaced_test_is_reported(tmp_path: Path) -> None:
    tree(tmp_path, {
        "adapters/channels/auth.py": "",
        "tests/unit/adapters/channels/test_auth.py": "",
        "tests/integration/faults/test_kill.py": "",
        "tests/unit/test_architecture.py": "",
    })
    assert misplaced_tests(tmp_path, system_suites=SYSTEM_SUITES,
                           cross_cutting=CROSS_CUTTING) == []
    tree(tmp_path, {
        "tests/integration/api/test_redis.py": "",  # no api/ package in this tree
        "tests/unit/adapters/test_loose.py": "",  # fine: adapters/ is a package
        "tests/unit/test_stray.py": "",
    })
    (tmp_path / "tests" / "unit" / "jobs").mkdir()
    (tmp_path / "tests" / "unit" / "jobs" / "test_x.py").write_text("", encoding="utf-8")
    assert misplaced_tests(tmp_path, system_suites=SYSTEM_SUITES,
                           cross_cutting=CROSS_CUTTING) == [
        "tests/unit/jobs/test_x.py: jobs/ is not a project package",
        "tests/unit/test_stray.py: at the top of tests/unit, not under a package",
        "tests/unit/jobs/ has no __init__.py",
        "tests/integration/api/test_redis.py: api/ is not a project package",
    ]
