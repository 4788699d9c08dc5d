"""Pure folds of events into state (`Projection`), shared by the services and replay.

The framework is generic; the domain projections live in their owning service's folder
(``services/<name>/projection.py``) so the service and ``senex replay`` fold the same
code.
"""

from libs.projections.framework import (
    AccountFold,
    Anomaly,
    AppliedIds,
    Handler,
    Handlers,
    PMap,
    Projection,
    with_anomaly,
)

__all__ = [
    "AccountFold",
    "Anomaly",
    "AppliedIds",
    "Handler",
    "Handlers",
    "PMap",
    "Projection",
    "with_anomaly",
]
