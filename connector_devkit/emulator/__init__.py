"""A local Salesforce emulator: the REST API subset the connector uses, over HTTPS.

``Emulator`` serves an in-memory :class:`~connector_devkit.emulator.org.Org` that enforces the
default data model of :mod:`connector.salesforce.schema` with Salesforce's response shapes and error
codes; :class:`~connector_devkit.emulator.faults.Faults` injects outages, row locks and expiry.
The org's own life (failing triggers, validation rules, full storage, private records, merges, a
flow adding Campaign statuses, fields removed at run time) is switched on per test through the
``Org`` methods listed in :mod:`.orglife`; ``/composite`` (references, allOrNone, collation) is
in :mod:`.composite`.
"""

from .faults import Faults
from .org import Org, RecordError
from .orglife import TriggerFailure, ValidationRule
from .server import Emulator

__all__ = ["Emulator", "Faults", "Org", "RecordError", "TriggerFailure", "ValidationRule"]
