"""The wheel's package list is derived from the folders (setup.py): a folder of modules
without an `__init__.py` would be left out of it silently, so none may exist."""

from __future__ import annotations

from tests.conftest import ROOT

ROOTS = ("sdk", "events", "services", "workers")


def test_every_folder_of_modules_is_a_package_the_wheel_ships() -> None:
    missing = sorted(
        str(folder.relative_to(ROOT))
        for root in ROOTS
        for folder in {f.parent for f in (ROOT / root).rglob("*.py")}
        if "__pycache__" not in folder.parts and not (folder / "__init__.py").is_file()
    )
    assert missing == [], f"add an __init__.py to {missing} (or it is not in the wheel)"


def test_setup_py_maps_the_same_roots_as_the_design() -> None:
    text = (ROOT / "setup.py").read_text()
    for name, folder in (
        ("ledgerflow", "sdk"),
        ("ledgerflow.events", "events"),
        ("ledgerflow.services", "services"),
        ("ledgerflow.workers", "workers"),
    ):
        assert f'"{name}": "{folder}"' in text
