"""The Salesforce edge: auth, one limiter + budget guard for every call, collections, SOQL."""

from connector.salesforce.gateway import RowResult, SalesforceGateway, UsageGuard

__all__ = ["RowResult", "SalesforceGateway", "UsageGuard"]
