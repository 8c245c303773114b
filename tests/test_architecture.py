"""docs/ARCHITECTURE.md stays true, and the layers point one way.

Every module the map names must exist and import; every import in intake/
(at the top of a module or inside a function) must follow the arrows:
views -> services/selectors -> client and models, never back.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "ARCHITECTURE.md"
# A module path in the map: `intake/services/outcomes.py`, in code spans or
# diagrams alike.
MODULE_PATH = re.compile(r"\b((?:intake|sandbox|config)(?:/[A-Za-z_][\w]*)+\.py)\b")


def named_modules() -> list[str]:
    return sorted(set(MODULE_PATH.findall(MAP.read_text(encoding="utf-8"))))


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it, as absolute names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(ROOT).parent.parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            found.add(stem)
            # `from intake import views` imports intake.views.
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def ours(path: str) -> Path:
    return ROOT / path


def test_the_map_names_modules():
    assert len(named_modules()) >= 15, named_modules()


@pytest.mark.parametrize("path", named_modules())
def test_each_module_the_map_names_exists_and_imports(path):
    assert (ROOT / path).is_file(), f"docs/ARCHITECTURE.md names {path}: missing"
    importlib.import_module(module_name(path))


def reaches(importer: str, imported_prefix: str) -> list[str]:
    """The imports of `importer` (a file or folder) under `imported_prefix`."""
    target = ours(importer)
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    hits = []
    for file in files:
        for name in imports_of(file):
            if name == imported_prefix or name.startswith(imported_prefix + "."):
                hits.append(f"{file.relative_to(ROOT)} imports {name}")
    return hits


# (who, must not import, why)
ARROWS = [
    ("intake/models.py", "intake.corti", "models never import the client"),
    ("intake/models.py", "intake.services", "models know no services"),
    ("intake/views.py", "intake.corti", "views reach Corti only through services"),
    ("intake/middleware.py", "intake.forms", "the middleware reads no forms"),
    ("intake/selectors.py", "intake.services", "a selector decides no policy"),
    ("intake/selectors.py", "intake.corti", "a selector reads the database only"),
    ("intake/forms.py", "intake.corti", "forms validate input only"),
    ("intake/forms.py", "intake.services", "forms validate input only"),
    ("intake/corti", "intake.models", "the client knows nothing of the log"),
    ("intake/corti", "intake.services", "the client knows nothing of services"),
    ("intake/corti", "intake.fields", "the client has its own typed request"),
    ("intake", "sandbox", "the product never needs the simulator"),
    ("intake", "yaml", "PyYAML is for the simulator and tests only"),
    ("intake", "jsonschema", "jsonschema is for the simulator and tests only"),
    ("intake", "tests", "the product never imports tests"),
]


@pytest.mark.parametrize(
    ("importer", "forbidden", "why"),
    ARROWS,
    ids=[f"{a} -/-> {b}" for a, b, _ in ARROWS],
)
def test_layers_point_one_way(importer, forbidden, why):
    assert reaches(importer, forbidden) == [], why


@pytest.mark.parametrize(
    "module", ["intake/enums.py", "intake/fields.py", "intake/keys.py"]
)
def test_shared_names_import_nothing_of_ours(module):
    """Every layer may import these, so they import no layer."""
    mine = [
        name
        for name in imports_of(ours(module))
        if name.split(".")[0] in {"intake", "sandbox", "config"}
        and not name.startswith("intake.enums")
    ]
    assert mine == []


def test_the_arrows_check_would_catch_a_wrong_import(tmp_path, monkeypatch):
    """The import scanner sees imports inside functions and relative ones."""
    package = tmp_path / "intake"
    package.mkdir()
    (package / "models.py").write_text(
        "def f():\n    from .corti import client\n    import intake.services.x\n"
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert set(imports_of(package / "models.py")) >= {
        "intake.corti",
        "intake.corti.client",
        "intake.services.x",
    }


def test_the_twelve_details_are_declared_once():
    """The form, the model, the request mapping and the export all follow
    intake.fields: a field added there and missing elsewhere fails here."""
    from intake.exports import COLUMNS
    from intake.fields import DETAIL_NAMES
    from intake.forms import IntakeForm
    from intake.models import Interaction

    assert len(DETAIL_NAMES) == 12
    assert set(IntakeForm.base_fields) - {"submission_key"} == set(DETAIL_NAMES)
    model_fields = {f.name for f in Interaction._meta.get_fields()}
    assert set(DETAIL_NAMES) <= model_fields
    exported = [name for name, _ in COLUMNS if name in DETAIL_NAMES]
    assert exported == list(DETAIL_NAMES)
