"""`connector demo`: the whole pipeline on embedded SQS (moto) and the bundled Salesforce emulator."""

from connector_devkit.demo.run import run_demo

__all__ = ["run_demo"]
