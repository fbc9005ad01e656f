"""Import every package's models so ``Base.metadata`` contains all tables."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from phonestatus.storage.db import Base

# Packages whose models.py defines tables. Add a package here when it gets one.
MODEL_MODULES = (
    "phonestatus.accounts.models",
    "phonestatus.billing.models",
    "phonestatus.batch.models",
)


def target_metadata() -> MetaData:
    for module in MODEL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return Base.metadata
