"""Catalog: orgs, service accounts, tokens, pipelines, status history and audit."""

from streamcalc.service.catalog.base import (
    Account,
    AuditEntry,
    Catalog,
    PipelineRecord,
    PipelineStatus,
    StatusChange,
    TokenGrant,
)
from streamcalc.service.catalog.sqlite import SqliteCatalog, open_catalog

__all__ = [
    "Account",
    "AuditEntry",
    "Catalog",
    "PipelineRecord",
    "PipelineStatus",
    "SqliteCatalog",
    "StatusChange",
    "TokenGrant",
    "open_catalog",
]
