"""Catalog: orgs, service accounts, tokens, pipelines, status history, audit and deletions.

The contract is in `base`; backends are modules of their own (`sqlite`, `memory`), opened by
the composition root (`streamcalc.backends`), so importing this package loads none.
"""

from streamcalc.catalog.base import (
    Account,
    AuditEntry,
    Catalog,
    CatalogUnavailable,
    Deletion,
    PipelineBusy,
    PipelineRecord,
    PipelineStatus,
    StatusChange,
    TokenGrant,
)

__all__ = [
    "Account",
    "AuditEntry",
    "Catalog",
    "CatalogUnavailable",
    "Deletion",
    "PipelineBusy",
    "PipelineRecord",
    "PipelineStatus",
    "StatusChange",
    "TokenGrant",
]
