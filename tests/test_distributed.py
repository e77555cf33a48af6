"""Data-parallel training and evaluation (wildcat.engine.distributed) on the CPU with gloo.

Two processes with per-process batch B must end with the weights of one process with batch 2B:
DDP averages the gradients of the two half-batch means, which is the mean over the whole batch,
and :class:`wildcat.engine.train.EpochSampler` gives the two ranks the two halves of the one-process
batch. BatchNorm is run with ``batchnorm = "frozen"`` (running statistics, affine weights
trained): with batch statistics a half batch normalises differently from the whole batch, and
SyncBatchNorm has no CPU kernel. The remaining difference is float summation order (the
gradient all-reduce adds two halves), hence the tolerance below.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch
import torch.multiprocessing as mp

from wildcat.engine import distributed
from wildcat.engine.train import CHECKPOINT, FINAL_WEIGHTS, EpochSampler, train
from wildcat.eval.evaluate import evaluate

from helpers import free_port, tiny_config

#: Final weights of 2 x B against 1 x 2B after 30 SGD steps (float32 summation order only).
RTOL, ATOL = 1e-4, 1e-6


def _config(data_root, **overrides):
    values = dict(optimizer="sgd", lr=0.05, momentum=0.9, schedule="constant", epochs=2, batch_size=16)
    values.update(overrides)
    return tiny_config(data_root, batchnorm="frozen", **values)


def _worker(rank: int, world_size: int, port: int, jobs: list) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world_size),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    with distributed.session("cpu"):
        for kind, *args in jobs:
            if kind == "train":
                train(*args, progress=False)
            elif kind == "evaluate":
                evaluate(*args, progress=False)
            elif kind == "unfinish":  # as if killed after the last checkpoint: model.pt not yet written
                if distributed.is_main():
                    (args[0] / FINAL_WEIGHTS).unlink()
                distributed.barrier()


def _assert_same_weights(a, b, exact: bool = False) -> None:
    a, b = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        if exact:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], rtol=RTOL, atol=ATOL, msg=key)


def test_sampler_splits_the_one_process_order_over_ranks():
    one = EpochSampler(10, seed=3)
    ranks = [EpochSampler(10, seed=3, rank=r, world_size=2) for r in range(2)]
    for sampler in (one, *ranks):
        sampler.set_epoch(5)
    order = one.order()
    assert ranks[0].order() == order[0::2] and ranks[1].order() == order[1::2]
    three = [EpochSampler(10, seed=3, rank=r, world_size=3) for r in range(3)]
    for sampler in three:
        sampler.set_epoch(5)
    assert [len(s) for s in three] == [4, 4, 4]  # padded by wrapping around, as DistributedSampler
    assert sorted(i for s in three for i in s.order()) == sorted(order + order[:2])


@pytest.mark.slow
def test_two_processes_match_one_process_with_double_batch(tiny_data_root, tmp_path):
    single = tmp_path / "single"
    config = _config(tiny_data_root, batch_size=16)
    train(config, single, progress=False)  # 240 images: 15 steps of 16 per epoch
    evaluate(single, tmp_path / "single.json", progress=False)

    half = _config(tiny_data_root, batch_size=8)
    one_epoch = dataclasses.replace(half, epochs=1)
    jobs = [
        ("train", half, tmp_path / "ddp"),
        ("evaluate", single, tmp_path / "ddp_eval.json"),
        ("train", one_epoch, tmp_path / "resumed"),
        ("unfinish", tmp_path / "resumed"),
        ("train", half, tmp_path / "resumed"),
    ]
    mp.spawn(_worker, args=(2, free_port(), jobs), nprocs=2, join=True)

    # 2 x 8 == 1 x 16 (to float summation order), and the log records the global batch's loss.
    _assert_same_weights(single / FINAL_WEIGHTS, tmp_path / "ddp" / FINAL_WEIGHTS)
    log_single = (single / "train_log.csv").read_text().splitlines()
    log_ddp = (tmp_path / "ddp" / "train_log.csv").read_text().splitlines()
    for row_single, row_ddp in zip(log_single[1:], log_ddp[1:]):
        assert float(row_single.split(",")[1]) == pytest.approx(float(row_ddp.split(",")[1]), rel=1e-5)
    # A distributed run resumed from its checkpoint (every rank loads it) ends exactly as a straight one.
    assert torch.load(tmp_path / "resumed" / CHECKPOINT, weights_only=False)["epoch"] == 2
    _assert_same_weights(tmp_path / "ddp" / FINAL_WEIGHTS, tmp_path / "resumed" / FINAL_WEIGHTS, exact=True)

    # A distributed evaluation equals a single-process one: the same metrics from the gathered scores and points.
    import json

    single_doc = json.loads((tmp_path / "single.json").read_text())
    ddp_doc = json.loads((tmp_path / "ddp_eval.json").read_text())
    provenances = ddp_doc.pop("provenance"), single_doc.pop("provenance")  # the process counts and times differ
    assert ddp_doc == single_doc
    assert [p["evaluation"]["device"]["count"] for p in provenances] == [2, 1]
    assert provenances[0]["config"] == provenances[1]["config"]
