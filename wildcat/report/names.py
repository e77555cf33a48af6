"""The ids the report is made of: datasets, metrics and the report's tables, in display order.

Standard library only, and the package's ``__init__`` loads nothing eagerly: the Snakefile
imports :data:`TABLE_NAMES` to name the report rule's outputs without pandas or torch.
"""

from __future__ import annotations

__all__ = ["DATASETS", "METRICS", "TABLE_NAMES"]

#: Dataset ids in display order (docs/contracts.md).
DATASETS = ("synthetic", "voc2007", "voc2012", "voc2012_action", "coco2014", "mit67", "scene15")
#: Metric keys of metrics.json in display order (docs/contracts.md).
METRICS = ("map", "accuracy", "mean_class_accuracy", "loc_map", "seg_miou_argmax", "seg_miou_crf")
#: The tables of a report (:func:`wildcat.report.tables.build_tables`), in writing order.
TABLE_NAMES = (
    "classification",
    "localization",
    "segmentation",
    "order_ablation",
    "m_ablation",
    "alpha_m_ablation",
    "alpha_ablation",
    "per_class",
    "modalities",
    "methods",
    "claims",
)
