"""A hand-built maps.npz record (wildcat.eval.maps_record) whose modality measure is known."""

from __future__ import annotations

import numpy as np

from wildcat.eval.maps_record import Example, GalleryImage, MapsRecord, ObjectPeaks, example_objects

CLASSES = ("alfa", "bravo")
OBJECTS_PER_GROUP = 3  # objects of each class and modality


def fake_maps_record(num_maps: int, specialised: bool = True, swap_maps: bool = False,
                     labelled: bool = True) -> MapsRecord:
    """Two classes; 3 objects of each class and modality (single, pair), one per 16 x 16 image;
    2 gallery images. Trained peaks: with ``specialised`` and ``M > 1``, map ``m`` (map ``1 - m``
    with ``swap_maps``) peaks at 2 on the objects of modality ``m`` and every other map at 0, so
    the winning map tells the modality (NMI 1); else every map at 1 on every object (NMI 0).
    Before training: map 0 always wins (NMI 0). ``labelled=False``: no modality names, every
    modality -1."""
    rows = [(c, m) for c in range(len(CLASSES)) for m in (0, 1) for _ in range(OBJECTS_PER_GROUP)]
    label = np.array([c for c, _ in rows])
    modality = np.array([m for _, m in rows])
    count = len(rows)
    trained = np.ones((count, num_maps), np.float32)
    if specialised and num_maps > 1:
        trained[:] = 0
        trained[np.arange(count), 1 - modality if swap_maps else modality] = 2
    untrained = np.zeros((count, num_maps), np.float32)
    untrained[:, 0] = 1
    box = np.tile([4.0, 4.0, 10.0, 12.0], (count, 1))
    if not labelled:
        modality = np.full(count, -1)
    objects = ObjectPeaks(image=np.arange(count), label=label, modality=modality, difficult=np.zeros(count, bool),
                          box=box, trained=trained, untrained=untrained)
    rng = np.random.default_rng(num_maps)
    pixels = rng.integers(0, 256, (count, 16, 16, 3), dtype=np.uint8)
    examples = tuple(
        Example(object=int(row), crop=pixels[row, 1:15, 0:14], window=np.array([0, 1, 14, 15]),
                image_size=np.array([16, 16]), maps=rng.normal(size=(num_maps, 4, 4)).astype(np.float16))
        for row in example_objects(label, modality, objects.difficult))
    segmentation = np.zeros((16, 16), np.uint8)
    segmentation[4:12, 3:10], segmentation[2:4, 11:15] = 1, 2
    truth = segmentation.copy()
    truth[3, 3:10] = 255  # void
    gallery = tuple(
        GalleryImage(index=index, image_id=f"test_{index:06d}", image=pixels[index],
                     box_labels=np.array([0, 1]), boxes=np.array([[4.0, 5.0, 10.0, 12.0], [12.0, 3.0, 15.0, 4.0]]),
                     classes=np.array([0, 1]), maps=rng.normal(size=(2, 4, 4)).astype(np.float16),
                     points=np.array([[6.0, 6.0], [2.0, 14.0]]), hits=np.array([True, False]),
                     seg_argmax=segmentation, seg_crf=segmentation, mask=truth)
        for index in (1, 4))
    return MapsRecord(classes=CLASSES, modality_names=("single", "pair") if labelled else (), num_maps=num_maps,
                      loc_tolerance_px=4.0, seg_background=0.5, gallery=gallery, objects=objects, examples=examples)
