"""A local Salesforce emulator: the REST API subset the connector uses, over HTTPS.

``Emulator`` serves an in-memory :class:`~connector_devkit.emulator.org.Org` that enforces the
default data model of :mod:`connector.salesforce.schema` with Salesforce's response shapes and error
codes; :class:`~connector_devkit.emulator.faults.Faults` injects outages, row locks and expiry.
"""

from .faults import Faults
from .org import Org, RecordError
from .server import Emulator

__all__ = ["Emulator", "Faults", "Org", "RecordError"]
