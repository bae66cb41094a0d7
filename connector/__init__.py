"""Jomablue → Salesforce connector: SQS in, Salesforce out."""

__version__ = "0.3.0"
