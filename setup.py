"""The package list, derived from the folders so that it cannot drift from the code.

Import names map onto folders (DESIGN.md §3): `ledgerflow` is sdk/, `ledgerflow.events`
is events/, and so on. Every folder below them with an `__init__.py` is a package of the
wheel; everything else about the distribution is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "ledgerflow": "sdk",
    "ledgerflow.events": "events",
    "ledgerflow.services": "services",
    "ledgerflow.workers": "workers",
}


def packages() -> list[str]:
    here = Path(__file__).parent
    found = []
    for name, folder in ROOTS.items():
        for init in sorted((here / folder).rglob("__init__.py")):
            parts = init.parent.relative_to(here / folder).parts
            found.append(".".join((name, *parts)))
    return found


setup(package_dir=ROOTS, packages=packages())
