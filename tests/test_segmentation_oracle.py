"""Oracle tests of weakly supervised segmentation: class maps that *are* the ground truth must
score 100 mIoU through the real loaders, background tuning, scorer and dense CRF.

Two oracles, both on the stand-in VOC trees of tests/fake_archives.py (installed by
``wildcat.data.download`` from the fake archives, read by ``get_dataset``):

* full resolution, on the trees a user gets: per image, a ``(C, H, W)`` map that is 1 where the
  fake archive's hand-written table puts class ``c`` and 0 elsewhere, into ``class_logits`` ->
  ``best_background`` -> ``SegmentationScorer`` (the functions ``evaluate`` and ``combine`` call).
  The maps come from the writer's tables by class name, not from the loader's masks, so a loader
  that read the masks, their void pixels or the class order wrongly would score below 100. Its
  images are plain colours: the CRF sees no edge there, so only the argmax is checked.
* model path, on *painted* trees (the same lists, XML and masks; every JPEG shows its objects in
  the VOC colour map): ``wildcat evaluate`` and ``wildcat combine`` run end to end with
  :class:`PaintedOracle` in place of the trained network, so the maps go through the eval
  transform, ``forward_batches``, the upsampling to the mask size and the multi-scale average.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from wildcat.data import download as dl
from wildcat.data import get_dataset, sources
from wildcat.data.palette import voc_palette
from wildcat.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from wildcat.engine.config import ExperimentConfig, make_config, save_config
from wildcat.eval import combine as combine_module
from wildcat.eval import evaluate as evaluate_module
from wildcat.eval.combine import combine
from wildcat.eval.evaluate import SegmentationScorer, best_background, evaluate, masked_indices
from wildcat.eval.metrics import UndefinedMetricWarning
from wildcat.eval.segmentation import class_logits

from helpers import fake_archives as fa

pytestmark = pytest.mark.filterwarnings("ignore::wildcat.data.DatasetCountWarning")

TABLES = {"voc2007": fa.VOC2007_IMAGES, "voc2012": fa.VOC2012_IMAGES}
#: (dataset, test split, background-tuning split): the paper config's splits (config/paper.yaml),
#: and VOC 2012's segmentation-val list itself.
SPLITS = [("voc2012", "val", "seg_train"), ("voc2012", "seg_val", "seg_train"), ("voc2007", "test", "trainval")]
GRID_EDGE_WARNING = ("warning: the tuned background 0.2 is at the edge of seg_background_grid "
                     "[0.2, 0.3, 0.4, 0.5, 0.6, 0.7]; the best value may lie outside it")


def install(root: Path, name: str, archives: dict[str, bytes]) -> None:
    """``archives`` of dataset ``name`` downloaded (from ``root``, no network) and extracted into ``root``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sources.SOURCES, name, fa.fake_source(name, fa.closed_port_url(), archives))
        for filename, data in archives.items():
            (root / filename).write_bytes(data)
        dl.download_dataset(name, root, progress=False)


@pytest.fixture(scope="module")
def plain_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plain")
    install(root, "voc2007", fa.voc2007_archives())
    install(root, "voc2012", fa.voc2012_archives())
    return root


@pytest.fixture(scope="module")
def painted_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("painted")
    install(root, "voc2007", fa.voc2007_archives(painted=True))
    install(root, "voc2012", fa.voc2012_archives(painted=True))
    return root


def config_for(root: Path, dataset: str, test_split: str, tune_split: str, **overrides) -> ExperimentConfig:
    """The default settings (background grid 0.2 ... 0.7, CRF of Krähenbühl & Koltun) on the stand-in tree."""
    train_split = "trainval" if dataset == "voc2007" else "train"
    values = dict(dataset=dataset, data_root=str(root), train_split=train_split, test_split=test_split,
                  seg_tune_split=tune_split, backbone="cnn6", weights=None, image_size_px=448, batch_size=2, workers=0,
                  device="cpu")
    return make_config({**values, **overrides})


def label_of(name: str) -> int:
    """The mask id that the fake archives give class ``name`` (their own class table)."""
    return fa.VOC_CLASSES.index(name) + 1


# -- full-resolution oracle maps through the scorer -------------------------------------------

def oracle_logits(dataset, index: int) -> np.ndarray:
    """``class_logits`` of maps that are 1 where the fake archive's table puts each class (0 elsewhere),
    with score +1 for the classes it shows and -1 for the others. Void pixels (255) go to the image's
    class of highest id: a scorer that counted them, or a loader that made them background, would
    score below 100."""
    image_id = dataset.image_id(index)
    labels = fa.voc_mask(image_id, *TABLES[dataset.name][image_id])
    labels[labels == 255] = labels[labels != 255].max()
    maps = torch.stack([torch.from_numpy(labels == label_of(name)).float() for name in dataset.classes])
    scores = maps.flatten(1).amax(dim=1) * 2 - 1
    return class_logits(maps, scores, labels.shape)


@pytest.mark.parametrize(("dataset", "test_split", "tune_split"), SPLITS)
def test_ground_truth_maps_score_100_through_the_loader_and_scorer(plain_root, dataset, test_split, tune_split):
    config = config_for(plain_root, dataset, test_split, tune_split)
    tune_set = get_dataset(dataset, plain_root, tune_split)
    test_set = get_dataset(dataset, plain_root, test_split)
    tune_items = [(oracle_logits(tune_set, i), tune_set.mask_for(i)) for i in masked_indices(tune_set)]
    background = best_background(tune_items, config.seg_background_grid, len(test_set.classes) + 1)
    assert background == 0.2  # every value of the grid scores 100; ties go to the lowest
    scorer = SegmentationScorer(test_set.classes, background, config)
    for i in masked_indices(test_set):
        scorer.add(np.asarray(test_set.load_image(i)), oracle_logits(test_set, i), test_set.mask_for(i))
    result = scorer.result()
    assert result["metrics"]["seg_miou_argmax"] == 100.0
    shown = {"voc2012": {"aeroplane", "bus", "tvmonitor"}, "voc2007": {"train"}}[dataset]
    assert {k: v for k, v in result["per_class"]["seg_miou_argmax"].items() if v is not None} == {
        name: 100.0 for name in ("background", *shown)}


# -- oracle maps through the model path: evaluate and combine ---------------------------------

class PaintedOracle(nn.Module):
    """A stand-in for :class:`wildcat.nn.model.WildcatNet` on painted images: the map of class ``c``
    is 1 at the input pixels whose nearest VOC colour (of background and the 20 classes) is the
    colour the fake archives paint ``c`` with, else 0, at the input resolution (stride 1); its
    score is +0.5 if some pixel has it, else -0.5."""

    def __init__(self, classes: list[str], num_maps: int = 1) -> None:
        super().__init__()
        # As WildcatNet's: the (N, C * M, h, w) maps before class-wise pooling, which evaluate's
        # maps.npz reads (wildcat.eval.map_recorder.TransferOutput); here M copies of each map.
        self.num_maps = num_maps
        self.transfer = nn.Identity()
        palette = torch.tensor(voc_palette(), dtype=torch.float32).reshape(-1, 3)
        self.register_buffer("colours", palette[[0, *map(label_of, classes)]])  # (1 + C, 3), 0: background
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[:, None, None])
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[:, None, None])

    def maps_and_scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        rgb = (x * self.std + self.mean) * 255  # (N, 3, S, S), the eval transform undone
        distances = (rgb[:, None] - self.colours[None, :, :, None, None]).square().sum(dim=2)  # (N, 1 + C, S, S)
        nearest = distances.argmin(dim=1)
        classes = torch.arange(1, len(self.colours), device=x.device)
        maps = (nearest[:, None] == classes[None, :, None, None]).float()
        self.transfer(maps.repeat_interleave(self.num_maps, dim=1))
        return maps, maps.flatten(2).amax(dim=2) - 0.5


def use_oracle(monkeypatch, module) -> None:
    """``module.load_trained`` gives a :class:`PaintedOracle` for the run folder's config."""
    def load_trained(run_dir, config: ExperimentConfig, num_classes: int, device):
        model = PaintedOracle(list(get_dataset(config.dataset, config.data_root, config.test_split).classes),
                              config.num_maps)
        assert len(model.colours) == num_classes + 1
        return model

    monkeypatch.setattr(module, "load_trained", load_trained)


def run_folder(path: Path, config: ExperimentConfig) -> Path:
    path.mkdir()
    save_config(config, path / "config.yaml")
    return path


def check_oracle_metrics(document: dict, dataset: str) -> None:
    """Argmax 100; the dense CRF on the painted images keeps every region (100) as well."""
    assert document["metrics"]["seg_miou_argmax"] == 100.0
    assert document["metrics"]["seg_miou_crf"] == 100.0
    shown = {"voc2012": {"aeroplane", "bus", "tvmonitor"}, "voc2007": {"train"}}[dataset]
    for name in ("seg_miou_argmax", "seg_miou_crf"):
        assert {k: v for k, v in document["per_class"][name].items() if v is not None} == {
            c: 100.0 for c in ("background", *shown)}
    assert document["protocol"]["seg_background"] == 0.2
    assert document["protocol"]["seg_background_at_grid_edge"] is True


def check_warnings(command: str, document: dict, stderr: str, recorded: pytest.WarningsRecorder) -> None:
    """Two warning lines, each once: the background at the edge of its grid, and the classes that
    no test image of the tiny trees shows, named once for both AP and localization AP (no
    UndefinedMetricWarning of its own)."""
    missing = [name for name, value in document["per_class"]["map"].items() if value is None]
    assert missing and [name for name, value in document["per_class"]["loc_map"].items() if value is None] == missing
    assert sorted(stderr.splitlines()) == sorted([  # combine scores the classes first, evaluate the segmentation
        f"wildcat {command}: {GRID_EDGE_WARNING}",
        f"wildcat {command}: warning: {len(missing)} classes have no positive test image (average precision and "
        f"localization AP undefined, left out of the mean): {', '.join(missing)}"])
    assert not [w for w in recorded if issubclass(w.category, UndefinedMetricWarning)]


@pytest.mark.parametrize(("dataset", "test_split", "tune_split"), SPLITS)
def test_oracle_model_scores_100_through_wildcat_evaluate(painted_root, tmp_path, monkeypatch, capsys, recwarn, dataset,
                                                          test_split, tune_split):
    use_oracle(monkeypatch, evaluate_module)
    run = run_folder(tmp_path / "run", config_for(painted_root, dataset, test_split, tune_split))
    document = evaluate(run, tmp_path / "metrics.json", progress=False)
    check_oracle_metrics(document, dataset)
    check_warnings("evaluate", document, capsys.readouterr().err, recwarn)


def test_oracle_scales_score_100_through_wildcat_combine(painted_root, tmp_path, monkeypatch, capsys, recwarn):
    """Two scales (448 and 560 px maps), each upsampled to the mask size, divided by its peak and averaged."""
    use_oracle(monkeypatch, combine_module)
    runs = [run_folder(tmp_path / f"s{size}", config_for(painted_root, "voc2012", "val", "seg_train",
                                                          image_size_px=size))
            for size in (448, 560)]
    document = combine(runs, tmp_path / "metrics.json", progress=False)
    check_oracle_metrics(document, "voc2012")
    check_warnings("combine", document, capsys.readouterr().err, recwarn)


# -- the tuned background at the edge of its grid ---------------------------------------------

@pytest.mark.parametrize(("background", "at_edge"), [(0.2, True), (0.5, False), (0.7, True)])
def test_a_background_at_the_edge_of_the_grid_is_reported(tmp_path, capsys, background, at_edge):
    config = make_config(dict(dataset="voc2012", data_root=str(tmp_path), seg_background_grid=[0.5, 0.2, 0.7]))
    protocol = SegmentationScorer(["cat"], background, config).result()["protocol"]
    assert protocol["seg_background"] == background
    assert protocol["seg_background_at_grid_edge"] is at_edge
    expected = [f"wildcat evaluate: warning: the tuned background {background} is at the edge of seg_background_grid "
                "[0.5, 0.2, 0.7]; the best value may lie outside it"] if at_edge else []
    assert capsys.readouterr().err.splitlines() == expected
