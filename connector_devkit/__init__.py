"""The development kit: the Salesforce emulator, the demo and the metadata renderer.

Installed by the `devkit` extra (`pip install '.[devkit]'`); the runtime (`pip install .`)
never imports anything from here, so moto, trustme and Flask stay out of production images.
"""
