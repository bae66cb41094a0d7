"""The Salesforce edge: auth, one limiter + budget guard for every call, collections, SOQL."""

from connector.salesforce.gateway import SalesforceGateway, UsageGuard
from connector.salesforce.results import RowAction, RowResult, WriteError

__all__ = ["RowAction", "RowResult", "SalesforceGateway", "UsageGuard", "WriteError"]
