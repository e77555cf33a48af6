"""Result files for the PASCAL VOC evaluation server (VOC 2012 classification test).

VOC 2012 test labels are not public: the paper's VOC 2012 classification number (Table 2) comes
from the server (http://host.robots.ox.ac.uk:8080/, an account is needed). This module writes what
it expects, in the VOC devkit's layout (``VOCinit.m``: ``VOCopts.clsrespath =
[VOCopts.resdir 'Main/%s_cls_' VOCopts.testset '_%s.txt']`` with ``resdir = results/VOC2012/``)::

    results/VOC2012/Main/<comp>_cls_test_<class>.txt      one per class
        <image id> <confidence>                           one line per test image

packed in one ``.tar.gz`` whose top folder is ``results/`` (the server extracts the archive and
reads ``results/VOC2012/<task>/``; users report failures with other archive formats).

Competition: the devkit defines ``comp1`` (trained on the VOC trainval data only) and ``comp2``
(trained on any data except the VOC test data). WILDCAT starts from an ImageNet-pretrained
ResNet-101, which is outside data: ``comp2`` is the default; ``comp1`` can be asked for.

The test images come from ``VOC2012test.tar`` (download it from the server after registering and
extract it into the data root: it fills ``VOCdevkit/VOC2012`` with ``ImageSets/Main/test.txt`` and
the test JPEGs); ``get_dataset("voc2012", root, "test")`` then iterates over them with unknown
labels (targets all 0, ``labels_known`` False).
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wildcat.errors import WildcatError
from wildcat.io import atomic_path

__all__ = ["SubmissionError", "COMPETITIONS", "SCORE_FORMAT", "classification_result_name",
           "write_voc_classification_submission", "read_voc_classification_submission", "read_voc_test_ids"]

#: The devkit's classification competitions: comp1 = VOC trainval data only; comp2 = any data but VOC test.
COMPETITIONS = ("comp1", "comp2")
#: Format of a confidence in the result files (fixed, so the files are reproducible).
SCORE_FORMAT = "{:.6f}"
#: mtime of the archive members (fixed: the same scores give the same bytes).
_MTIME = 1_325_376_000  # 2012-01-01 UTC

_NAME_RE = re.compile(r"^results/VOC(?P<year>\d{4})/Main/(?P<comp>comp\d+)_cls_test_(?P<cls>[a-z]+)\.txt$")


class SubmissionError(WildcatError, ValueError):
    """Scores, ids or classes that cannot make a valid submission (one-line message)."""


def classification_result_name(cls: str, year: str = "2012", competition: str = "comp2") -> str:
    """``results/VOC<year>/Main/<competition>_cls_test_<cls>.txt`` (the path inside the archive)."""
    return f"results/VOC{year}/Main/{competition}_cls_test_{cls}.txt"


def _check(scores: np.ndarray, image_ids: Sequence[str], classes: Sequence[str], year: str, competition: str,
           expected_ids: Sequence[str] | None) -> np.ndarray:
    from wildcat.data.voc import VOC_CLASSES

    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape != (len(image_ids), len(classes)):
        raise SubmissionError(f"scores must be (N, C) = ({len(image_ids)}, {len(classes)}) for {len(image_ids)} image "
                              f"ids and {len(classes)} classes, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        row, col = np.argwhere(~np.isfinite(scores))[0]
        raise SubmissionError(f"score of image {image_ids[row]} for class {classes[col]} is {scores[row, col]}: "
                              "every confidence must be finite")
    if len(image_ids) == 0:
        raise SubmissionError("no test image: the submission would be empty")
    bad = [i for i in image_ids if not isinstance(i, str) or not i or any(c.isspace() for c in i)]
    if bad:
        raise SubmissionError(f"image id {bad[0]!r} is empty or contains white space")
    if len(set(image_ids)) != len(image_ids):
        duplicate = next(i for i, n in Counter(image_ids).items() if n > 1)
        raise SubmissionError(f"image id {duplicate} appears twice: one line per test image")
    unknown = [c for c in classes if c not in VOC_CLASSES]
    if unknown:
        raise SubmissionError(f"class {unknown[0]!r} is not a VOC class ({', '.join(VOC_CLASSES)})")
    if len(set(classes)) != len(classes):
        raise SubmissionError(f"a class is listed twice: {list(classes)}")
    if competition not in COMPETITIONS:
        raise SubmissionError(f"competition {competition!r} is not a classification competition: choose "
                              f"{' or '.join(COMPETITIONS)} (comp2 when the model saw outside data, e.g. ImageNet)")
    if not re.fullmatch(r"\d{4}", str(year)):
        raise SubmissionError(f"year must be four digits like '2012', got {year!r}")
    if expected_ids is not None:
        missing = sorted(set(expected_ids) - set(image_ids))
        extra = sorted(set(image_ids) - set(expected_ids))
        if missing or extra:
            what = f"{len(missing)} test images have no score (e.g. {missing[0]})" if missing else \
                f"{len(extra)} ids are not test images (e.g. {extra[0]})"
            raise SubmissionError(f"the scores do not cover the test list exactly: {what}")
    return scores


def write_voc_classification_submission(scores: np.ndarray, image_ids: Sequence[str], classes: Sequence[str],
                                        out_path: str | Path, year: str = "2012", competition: str = "comp2",
                                        expected_ids: Sequence[str] | None = None) -> Path:
    """Write the classification result files of a VOC test set as one ``.tar.gz`` (atomically).

    Args:
        scores: ``(N, C)`` confidences (any real values; higher = more confident), row n for
            ``image_ids[n]``, column c for ``classes[c]``.
        image_ids: the N test image ids (``ImageSets/Main/test.txt``), without extension.
        classes: the C VOC class names (usually the 20 of ``VOC_CLASSES``; the devkit allows a
            subset).
        out_path: the archive to write; must end with ``.tar.gz`` or ``.tgz``.
        year: ``"2012"`` (the folder ``results/VOC2012``).
        competition: ``"comp2"`` (default: any training data but VOC test, e.g. ImageNet
            pretraining, as WILDCAT) or ``"comp1"`` (VOC trainval data only).
        expected_ids: if given, the ids must be exactly these (e.g. the whole test list).

    Returns:
        ``out_path``. The archive holds ``results/VOC<year>/Main/<competition>_cls_test_<class>.txt``
        for each class: one line ``<image id> <confidence>`` per image, in ``image_ids`` order, the
        confidence formatted with :data:`SCORE_FORMAT` (6 decimals).

    Raises:
        SubmissionError (a ``ValueError``): wrong shape, non-finite score, duplicate or bad id,
            unknown class or competition, or ids that differ from ``expected_ids``.
    """
    scores = _check(scores, image_ids, classes, str(year), competition, expected_ids)
    out_path = Path(out_path)
    if not out_path.name.endswith((".tar.gz", ".tgz")):
        raise SubmissionError(f"{out_path}: the evaluation server takes a .tar.gz (or .tgz) archive; name it so")
    folders = ["results", f"results/VOC{year}", f"results/VOC{year}/Main"]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _MTIME
            tar.addfile(info)
        for c, cls in enumerate(classes):
            text = "".join(f"{image_id} {SCORE_FORMAT.format(score)}\n" for image_id, score in zip(image_ids, scores[:, c], strict=True))
            data = text.encode("ascii")
            info = tarfile.TarInfo(classification_result_name(cls, str(year), competition))
            info.size, info.mode, info.mtime = len(data), 0o644, _MTIME
            tar.addfile(info, io.BytesIO(data))
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gz:
            gz.write(raw.getvalue())
    return out_path


def read_voc_classification_submission(path: str | Path) -> tuple[np.ndarray, list[str], list[str], str, str]:
    """Read an archive written by :func:`write_voc_classification_submission` (a check before uploading).

    Returns:
        ``(scores (N, C) float64, image_ids, classes, year, competition)``; ``classes`` in the
        devkit's class order, ids in the order of the first class file.

    Raises:
        SubmissionError: a member outside ``results/VOC<year>/Main/<comp>_cls_test_<class>.txt``,
            a malformed line, or files that do not list the same images.
    """
    from wildcat.data.voc import VOC_CLASSES

    per_class: dict[str, dict[str, float]] = {}
    order: list[str] = []
    years, comps = set(), set()
    with tarfile.open(path, mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isdir():
                continue
            match = _NAME_RE.match(member.name)
            if not member.isfile() or match is None:
                raise SubmissionError(f"{path}: unexpected member {member.name!r} (expected "
                                      "results/VOC<year>/Main/<comp>_cls_test_<class>.txt)")
            years.add(match["year"])
            comps.add(match["comp"])
            rows: dict[str, float] = {}
            ids: list[str] = []
            for number, line in enumerate(tar.extractfile(member).read().decode("ascii").splitlines(), start=1):
                fields = line.split()
                if len(fields) != 2:
                    raise SubmissionError(f"{path}:{member.name}:{number}: expected '<id> <confidence>', got {line!r}")
                rows[fields[0]] = float(fields[1])
                ids.append(fields[0])
            per_class[match["cls"]] = rows
            order = order or ids
    if not per_class:
        raise SubmissionError(f"{path}: no result file")
    if len(years) != 1 or len(comps) != 1:
        raise SubmissionError(f"{path}: mixes years {sorted(years)} or competitions {sorted(comps)}")
    classes = [c for c in VOC_CLASSES if c in per_class] + sorted(c for c in per_class if c not in VOC_CLASSES)
    for cls in classes:
        if set(per_class[cls]) != set(order) or len(per_class[cls]) != len(order):
            raise SubmissionError(f"{path}: the file of class {cls} does not list the same images as the others")
    scores = np.array([[per_class[cls][i] for cls in classes] for i in order], dtype=np.float64).reshape(len(order), -1)
    return scores, order, classes, years.pop(), comps.pop()


def read_voc_test_ids(root: str | Path, year: str = "2012") -> list[str]:
    """The ids of ``<root>/VOCdevkit/VOC<year>/ImageSets/Main/test.txt`` (from the test tar).

    Raises:
        DatasetNotFoundError: the list is missing; the message says where the test tar comes from.
    """
    from wildcat.data import DatasetNotFoundError

    path = Path(root) / "VOCdevkit" / f"VOC{year}" / "ImageSets" / "Main" / "test.txt"
    if not path.is_file():
        raise DatasetNotFoundError(f"VOC {year} test list not found at {path}: download VOC{year}test.tar from the "
                                   f"PASCAL evaluation server (http://host.robots.ox.ac.uk:8080/, after registering) "
                                   f"and extract it into {root} (`tar -xf VOC{year}test.tar -C {root}`)")
    with open(path, encoding="utf-8") as handle:
        return [line.split()[0] for line in handle if line.strip()]
