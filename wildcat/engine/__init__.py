"""Running experiments: the experiment config, training, distributed set-up and the provenance of a run.

``wildcat.engine.config`` uses only the standard library and PyYAML, so that the workflow can
validate a grid without importing torch; nothing here is imported by this ``__init__``.
"""
