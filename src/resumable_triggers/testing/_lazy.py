"""Lazy re-exports (PEP 562) for the testing packages, so that importing one piece imports only it.

``resumable_triggers.testing`` re-exports the emulator and the clocks; ``testing.airflow`` re-exports
its harness. Importing either package itself costs next to nothing: a name's module is imported the
first time the name is read. This matters where nobody reads them: every Airflow process of a
deployment imports the harness's hostname callable, and ``testing.airflow`` never needs the emulator.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(
    namespace: MutableMapping[str, Any], homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for ``homes`` (public name -> relative module).

    ``namespace`` is the package's ``globals()``: a name read once becomes a plain attribute there.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__
