"""Do the ``M`` maps of a class learn its modalities? (paper Section 3.2, Figures 6-7)

WILDCAT's transfer layer gives each class ``M`` maps, averaged by the class-wise pooling; the
paper argues that they specialise to the modalities of the class (e.g. a face and a full body) and
shows examples (Figures 6-7) but no measure. On a dataset whose objects have labelled modalities
(the synthetic set: an emblem alone, ``single``, or a base and a mark, ``pair``;
docs/synthetic.md), ``maps.npz`` (:mod:`wildcat.eval.maps_record`) gives, for every test object,
the peak inside its box of each of the ``M`` maps of its class. From it:

* :func:`specialisation`: per class, the normalised mutual information (NMI, scikit-learn's
  ``normalized_mutual_info_score``) between the object's modality and *which* of the ``M`` maps
  peaks highest on it, over the class's non-difficult objects of known modality: 0 when the
  winning map says nothing of the modality (always with ``M = 1``: one map always wins), 1 when
  each modality has its own map. NaN for a class whose objects show fewer than two modalities.
* :func:`chance_specialisation`: the same with the modalities shuffled, the chance level that
  NMI on finitely many objects does not reach 0 at.
* :func:`modalities_table` (``modalities.md/csv/tex``): for the layout's ``methods``, per dataset
  with modality labels and class (with ``M = 1``, the mean row only), the NMI of the trained
  models, its chance level and the NMI of the same models before training (mean ± sd over
  seeds, and each seed), and, for the lowest seed (0), the mean peak of
  each map on the objects of each modality.
* :func:`modalities_figures` (``modalities_<dataset>.png``): for the first of the layout's
  ``methods`` with ``M > 1``, its lowest seed (0), the ``M`` maps of each class on example objects of each
  modality; on a dataset without modality labels, on two example objects per class (as the
  paper's Figure 6) and no score.

The map order is arbitrary (seed to seed, map 2 of one run is not map 2 of another): only the
NMI is compared over seeds; per-map means are shown for one seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wildcat.eval.maps_record import EXAMPLES_PER_GROUP, Example, MapsRecord
from wildcat.report.compare import welch_verdict
from wildcat.report.figures import _agg_figure, _save_png
from wildcat.report.gallery import box_patch, wrapped
from wildcat.report.layout import ReportLayout
from wildcat.report.load import RunMaps
from wildcat.report.names import DATASETS
from wildcat.report.tables import NO_PAPER_VALUE, display_order, format_ours

__all__ = ["MEAN_ROW", "specialisation", "chance_specialisation", "modalities_table", "modalities_figures"]

#: The ``class`` cell of a method's row of means over its classes.
MEAN_ROW = "mean over classes"
#: Shuffles of the modality labels behind the chance level (:func:`chance_specialisation`).
CHANCE_SHUFFLES = 20
#: The table's note (under it in modalities.md).
NOTE = ("nmi_*: NMI x 100 (0: the map that peaks highest in an object's box says nothing of its modality, "
        "always so with M = 1; 100: each modality has its own map) over the class's non-difficult test objects; "
        "mean ± sample sd over seeds (n seeds), then each seed; nmi_chance: the trained score with the objects' "
        f"modalities shuffled ({CHANCE_SHUFFLES} times; NMI of unrelated labels is above 0 on finitely many objects), "
        "the level a trained score must clear; with M = 1 only the mean row is shown (0 by construction); "
        "before training: the same model as initialised with the run's seed. mean_peaks_<modality>: the mean peak in the box of maps 1..M of the class on its "
        "objects of that modality, for one seed (the map order is arbitrary from seed to seed). "
        "`—` here: undefined (the class's objects show one modality) or not measured.")
_FIXED_COLUMNS = ("dataset", "method", "num_maps", "class", "objects", "nmi_trained", "nmi_trained_seeds",
                  "nmi_chance", "nmi_before_training", "nmi_before_training_seeds")


def specialisation(peaks: np.ndarray, modality: np.ndarray) -> float:
    """NMI between ``modality (O,)`` and the map that peaks highest, ``argmax`` of ``peaks (O, M)``
    (see the module docstring); NaN when ``modality`` holds fewer than two values."""
    from sklearn.metrics import normalized_mutual_info_score

    modality = np.asarray(modality)
    if len(np.unique(modality)) < 2:
        return math.nan
    return float(normalized_mutual_info_score(modality, np.asarray(peaks).argmax(axis=1)))


def _measured(record: MapsRecord) -> np.ndarray:
    """``(O,)`` bool: the objects the measure uses (known modality, not difficult)."""
    return (record.objects.modality >= 0) & ~record.objects.difficult


def class_specialisation(record: MapsRecord, trained: bool = True) -> np.ndarray:
    """``(C,)`` :func:`specialisation` of each class of ``record`` (``trained=False``: the model
    before training)."""
    objects, measured = record.objects, _measured(record)
    peaks = objects.trained if trained else objects.untrained
    return np.asarray([specialisation(peaks[measured & (objects.label == c)], objects.modality[measured & (objects.label == c)])
                       for c in range(len(record.classes))])


def chance_specialisation(record: MapsRecord, shuffles: int = CHANCE_SHUFFLES) -> np.ndarray:
    """``(C,)`` chance level of :func:`class_specialisation` (trained): the mean NMI of each class's
    winning maps against its objects' modalities shuffled ``shuffles`` times (a fixed generator,
    so the report is reproducible). NMI is not 0 for unrelated labels on finitely many objects: a
    trained score means something only above this."""
    objects, measured = record.objects, _measured(record)
    rng = np.random.default_rng(0)
    levels = []
    for c in range(len(record.classes)):
        chosen = measured & (objects.label == c)
        peaks, modality = objects.trained[chosen], objects.modality[chosen]
        levels.append(float(np.mean([specialisation(peaks, rng.permutation(modality)) for _ in range(shuffles)])))
    return np.asarray(levels)


def has_modalities(record: MapsRecord) -> bool:
    """Whether the record's objects have labelled modalities."""
    return bool(record.modality_names) and bool(_measured(record).any())


def _runs_of(maps: RunMaps, config_name: str) -> dict[tuple[str, str], dict[int, MapsRecord]]:
    """``{(dataset, method): {seed: record}}`` of one config."""
    found: dict[tuple[str, str], dict[int, MapsRecord]] = {}
    for (config, dataset, method, seed), record in maps.items():
        if config == config_name:
            found.setdefault((dataset, method), {})[seed] = record
    return found


def _seed_cells(per_seed: Mapping[int, float]) -> tuple[str, str]:
    """``(mean ± sd (n=k), "seed 0: v0, seed 1: v1, ...")`` of NMI values, in percent; a seed whose
    value is NaN (a class without two modalities) is left out, and none gives ``—`` twice."""
    defined = {seed: 100 * value for seed, value in sorted(per_seed.items()) if not math.isnan(value)}
    if not defined:
        return NO_PAPER_VALUE, NO_PAPER_VALUE
    return format_ours(list(defined.values())), ", ".join(f"seed {seed}: {v:.1f}" for seed, v in defined.items())


def _mean_peaks(record: MapsRecord, label: int, modality: int) -> str:
    """The mean peak of each of the ``M`` maps of class ``label`` on its measured objects of
    ``modality``, as ``"1.23 / -0.45 / ..."`` (map 1 first)."""
    objects = record.objects
    chosen = _measured(record) & (objects.label == label) & (objects.modality == modality)
    if not chosen.any():
        return NO_PAPER_VALUE
    return " / ".join(f"{v:.2f}" for v in objects.trained[chosen].mean(axis=0))


def _verdict_sentence(dataset: str, label: str, trained: Mapping[int, float], chance: Mapping[int, float]) -> str:
    """What the mean-over-classes NMI of a method with ``M > 1`` shows against its chance level,
    by the claims table's rule (:func:`~wildcat.report.compare.welch_verdict` over the seeds)."""
    seeds = sorted(seed for seed in trained if not (math.isnan(trained[seed]) or math.isnan(chance[seed])))
    ours, level = [100 * trained[s] for s in seeds], [100 * chance[s] for s in seeds]
    if not seeds:
        return f"{dataset}, {label}: no class with two modalities: no score."
    difference, tolerance, verdict = welch_verdict(level, ours)
    above = sum(o > c for o, c in zip(ours, level))
    if verdict == "inconclusive":
        outcome = "inconclusive (under 2 seeds)"
    elif verdict == "differs":
        outcome = ("the maps specialise beyond chance: the difference clears the seeds' noise" if difference > 0
                   else "below its chance level, beyond the seeds' noise")
    else:
        outcome = "the difference does not clear the seeds' noise: specialisation beyond chance is not shown"
    spread = "" if tolerance is None else f", tolerance ±{tolerance:.1f}"
    return (f"{dataset}, {label}: mean NMI x 100 over the classes {format_ours(ours)} against its chance level "
            f"{format_ours(level)} (above it in {above} of {len(seeds)} seeds): {difference:+.1f}{spread}; {outcome}.")


def modalities_table(maps: RunMaps, config_name: str, layout: ReportLayout) -> pd.DataFrame:
    """The modalities table (see the module docstring) of ``config_name``: per dataset with
    modality labels, per method of ``layout.methods`` with a ``maps.npz``, one row per class and a
    :data:`MEAN_ROW` row (the mean over the classes where the NMI is defined, per seed).

    Columns: ``dataset, method, num_maps, class, objects`` (measured objects per modality),
    ``nmi_trained``, ``nmi_trained_seeds``, ``nmi_before_training``, ``nmi_before_training_seeds``
    (NMI x 100: mean ± sd over seeds, and each seed), then ``mean_peaks_<modality>`` for each
    modality name: the mean peak of maps 1..M on the class's objects of that modality, for the
    lowest seed, as ``"seed 0: 1.23 / -0.45 / ..."``.
    """
    runs = _runs_of(maps, config_name)
    rows: list[dict[str, Any]] = []
    sentences: list[str] = []
    modality_columns: list[str] = []
    for dataset in display_order([d for d, _ in runs], DATASETS):
        for method in layout.methods:
            seeds = runs.get((dataset, method), {})
            if not seeds or not has_modalities(first := seeds[min(seeds)]):
                continue
            names = first.modality_names
            modality_columns += [f"mean_peaks_{name}" for name in names]
            scores = {trained: {seed: class_specialisation(record, trained) for seed, record in seeds.items()}
                      for trained in (True, False)}
            chance = {seed: chance_specialisation(record) for seed, record in seeds.items()}
            base = {"dataset": dataset, "method": layout.label(method), "num_maps": str(first.num_maps)}
            measured = _measured(first)
            # With M = 1 every class scores 0 by construction: its mean row is the sanity check.
            for c, name in enumerate(first.classes if first.num_maps > 1 else ()):
                counts = [int((measured & (first.objects.label == c) & (first.objects.modality == m)).sum())
                          for m in range(len(names))]
                trained_mean, trained_seeds = _seed_cells({s: v[c] for s, v in scores[True].items()})
                before_mean, before_seeds = _seed_cells({s: v[c] for s, v in scores[False].items()})
                rows.append({**base, "class": name, "objects": ", ".join(f"{n} {k}" for n, k in zip(names, counts)),
                             "nmi_trained": trained_mean, "nmi_trained_seeds": trained_seeds,
                             "nmi_chance": _seed_cells({s: v[c] for s, v in chance.items()})[0],
                             "nmi_before_training": before_mean, "nmi_before_training_seeds": before_seeds,
                             **{f"mean_peaks_{n}": f"seed {min(seeds)}: {_mean_peaks(first, c, m)}"
                                for m, n in enumerate(names)}})
            means = {key: {s: float(np.nanmean(v)) if not np.isnan(v).all() else math.nan for s, v in values.items()}
                     for key, values in (("trained", scores[True]), ("before", scores[False]), ("chance", chance))}
            trained_mean, trained_seeds = _seed_cells(means["trained"])
            before_mean, before_seeds = _seed_cells(means["before"])
            if first.num_maps > 1:
                sentences.append(_verdict_sentence(dataset, layout.label(method), means["trained"], means["chance"]))
            rows.append({**base, "class": MEAN_ROW, "objects": f"{int(measured.sum())} in all",
                         "nmi_trained": trained_mean, "nmi_trained_seeds": trained_seeds,
                         "nmi_chance": _seed_cells(means["chance"])[0],
                         "nmi_before_training": before_mean, "nmi_before_training_seeds": before_seeds})
    columns = [*_FIXED_COLUMNS, *dict.fromkeys(modality_columns)]
    frame = pd.DataFrame(rows, columns=columns).fillna(NO_PAPER_VALUE)
    frame.attrs["note"] = "\n\n".join([*sentences, NOTE])
    return frame


# ------------------------------------------------------------------------------------------
# The figure


def _figure_method(runs: Mapping[tuple[str, str], Mapping[int, MapsRecord]], dataset: str,
                   methods: Sequence[str]) -> str | None:
    """The first of ``methods`` with ``M > 1`` and a record of ``dataset`` with examples."""
    for method in methods:
        seeds = runs.get((dataset, method), {})
        if seeds and (record := seeds[min(seeds)]).num_maps > 1 and record.examples:
            return method
    return None


def _example_grid(record: MapsRecord) -> tuple[list[int], list[int], dict[tuple[int, int, int], int]]:
    """The classes (rows), the modalities (column groups: -1 alone without labels) and the example
    of each ``(class, modality, k)``, ``k`` the example's rank in its group."""
    objects = record.objects
    grid: dict[tuple[int, int, int], int] = {}
    for position, example in enumerate(record.examples):
        label, modality = int(objects.label[example.object]), int(objects.modality[example.object])
        k = sum(1 for (c, m, _) in grid if (c, m) == (label, modality))
        grid[(label, modality, k)] = position
    classes = sorted({c for c, _, _ in grid})
    modalities = sorted({m for _, m, _ in grid})
    return classes, modalities, grid


def _example_panels(panels: Sequence[Any], record: MapsRecord, example: Example, title: str, low: float,
                    high: float) -> Any:
    """The crop of one example with its box, then its class's ``M`` maps over the same window (on
    the colour scale ``low..high``), each titled with its peak in the box; returns the last image."""
    x0, y0, x1, y1 = example.window.tolist()
    width, height = example.image_size.tolist()
    peaks = record.objects.trained[example.object]
    panels[0].imshow(example.crop, extent=(x0, x1, y1, y0), interpolation="nearest")
    panels[0].add_patch(box_patch(record.objects.box[example.object], edgecolor="white", linewidth=1.0))
    panels[0].set_title(title, fontsize="small")
    for j, ax in enumerate(panels[1:]):
        image = ax.imshow(example.maps[j].astype(np.float32), extent=(0, width, height, 0), interpolation="nearest",
                          cmap="viridis", vmin=low, vmax=high)
        ax.add_patch(box_patch(record.objects.box[example.object], edgecolor="white", linewidth=0.8, linestyle="--"))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_title(f"map {j + 1}: {peaks[j]:.2f}", fontsize="small",
                     fontweight="bold" if j == int(np.argmax(peaks)) else "normal")
    return image


def modalities_figures(maps: RunMaps, config_name: str, layout: ReportLayout, out: Path) -> list[Path]:
    """``modalities_<dataset>.png`` (see the module docstring) for each dataset where a method of
    ``layout.methods`` with ``M > 1`` has a ``maps.npz`` with example objects; return the paths.

    A block per class, titled with its NMI where the modalities are labelled; in it a row per
    example rank (:data:`~wildcat.eval.maps_record.EXAMPLES_PER_GROUP` per class and modality, the
    first non-difficult objects of the test split) and, per modality, the object's crop with its
    box, then its class's ``M`` maps over the same window on the row's colour scale, each titled
    with its peak in the box (bold: the highest, the map that wins the object for the NMI).
    """
    runs = _runs_of(maps, config_name)
    written = []
    for dataset in display_order([d for d, _ in runs], DATASETS):
        method = _figure_method(runs, dataset, layout.methods)
        if method is None:
            continue
        seed = min(runs[(dataset, method)])
        record = runs[(dataset, method)][seed]
        classes, modalities, grid = _example_grid(record)
        labelled = has_modalities(record)
        scores = {trained: class_specialisation(record, trained) for trained in (True, False)} if labelled else {}
        num_maps, columns = record.num_maps, len(modalities) * (1 + record.num_maps)
        ranks = {c: [k for k in range(EXAMPLES_PER_GROUP) if any((c, m, k) in grid for m in modalities)] for c in classes}
        figure = _agg_figure(1.2 * columns + 0.9, sum(1.3 * len(ranks[c]) + 0.35 for c in classes) + 1.0)
        blocks = np.atleast_1d(figure.subfigures(len(classes), 1, height_ratios=[len(ranks[c]) + 0.3 for c in classes]))
        for block, c in zip(blocks, classes):
            title = record.classes[c]
            if labelled:
                title += (f": NMI x 100 = {100 * scores[True][c]:.0f} (before training: {100 * scores[False][c]:.0f})"
                          if not np.isnan(scores[True][c]) else ": NMI undefined (one modality)")
            block.suptitle(title, fontsize="medium", fontweight="bold")
            axes = block.subplots(len(ranks[c]), columns, squeeze=False)
            for ax in axes.ravel():
                ax.set_xticks([])
                ax.set_yticks([])
            for row, k in enumerate(ranks[c]):
                shown = [record.examples[grid[(c, m, k)]] for m in modalities if (c, m, k) in grid]
                low = min(float(e.maps.min()) for e in shown)
                high = max(float(e.maps.max()) for e in shown)
                for g, m in enumerate(modalities):
                    panels = axes[row][g * (1 + num_maps):(g + 1) * (1 + num_maps)]
                    if (c, m, k) not in grid:
                        for ax in panels:
                            ax.set_axis_off()
                        continue
                    group = record.modality_names[m] if m >= 0 else f"example {k + 1}"
                    image = _example_panels(panels, record, record.examples[grid[(c, m, k)]], group, low, high)
                block.colorbar(image, ax=axes[row][-1], fraction=0.08, pad=0.04)
        lines = [f"{dataset}: the {num_maps} maps of each class before class-wise pooling, {layout.label(method)} "
                 f"seed {seed}, on the first {EXAMPLES_PER_GROUP} non-difficult test objects of each class"
                 + (" and modality" if labelled else " (the dataset labels no modalities)")]
        if labelled:
            lines.append("NMI x 100 between an object's modality and the map that peaks highest in its box, over the "
                         f"class's non-difficult test objects; mean over classes {100 * np.nanmean(scores[True]):.0f} "
                         f"(before training: {100 * np.nanmean(scores[False]):.0f})")
        lines.append("white box: the object; map titles: the map's peak in the box (bold: the highest); "
                     "one colour scale per row")
        figure.suptitle(wrapped(lines, figure.get_figwidth()), fontsize="medium")
        path = out / f"modalities_{dataset}.png"
        _save_png(figure, path)
        written.append(path)
    return written
