"""The package list, derived from the folders so that it cannot drift from the code.

Import names map onto folders (DESIGN.md §3): `ledgerflow` is sdk/, `ledgerflow.events`
is events/, and so on. Every folder below them with an `__init__.py` is a package of the
wheel; everything else about the distribution is in pyproject.toml.

The built web UI (ui/, built into services/ui/static) is package data of
`ledgerflow.services.ui`: building the package builds it first when it is missing.
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
UI_INDEX = HERE / "services" / "ui" / "static" / "index.html"

ROOTS = {
    "ledgerflow": "sdk",
    "ledgerflow.events": "events",
    "ledgerflow.services": "services",
    "ledgerflow.workers": "workers",
}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        for init in sorted((HERE / folder).rglob("__init__.py")):
            parts = init.parent.relative_to(HERE / folder).parts
            found.append(".".join((name, *parts)))
    return found


def build_ui() -> None:
    """Build the web UI into services/ui/static unless it is there (needs npm)."""
    if UI_INDEX.is_file() or not (HERE / "ui" / "package.json").is_file():
        return
    if shutil.which("npm") is None:
        raise SystemExit(
            "error: the web UI (ui/) is not built and npm is missing: install Node.js 20+ "
            "and npm, or run scripts/build-ui.sh where they are, then build again"
        )
    subprocess.run(["bash", str(HERE / "scripts" / "build-ui.sh")], check=True)


class BuildWithUi(build_py):
    def run(self) -> None:
        build_ui()
        super().run()


setup(package_dir=ROOTS, packages=packages(), cmdclass={"build_py": BuildWithUi})
