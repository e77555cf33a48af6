"""Host the c10d rendezvous store of a several-node training job for as long as the job runs.

``python -m wildcat.engine.rendezvous --port P COMMAND...`` starts a TCP store on port ``P`` of this
node, runs ``COMMAND`` (the ``srun ... torchrun --rdzv_conf=is_host=false ...`` that starts one
torchrun per node), and closes the store only once ``COMMAND`` has ended; its exit status is
``COMMAND``'s.

Why: when one of the torchrun agents hosts the store (torchrun's default on the endpoint's
node), that agent exits as soon as its own shutdown is done. An agent on another node that
closes the rendezvous a moment later then finds the store gone and logs "failed to shutdown the
rendezvous ... RendezvousConnectionError" with a C++ stack trace, although the job succeeded
(torch.distributed.elastic: both agents pass the exit barrier, then each closes the rendezvous).
With the store in this process, which outlives every agent, each agent closes it cleanly.
See docs/distributed.md.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta


def host_store(port: int):
    """A TCP store listening on ``port`` of every interface of this node (torch's c10d store,
    shared by the rendezvous of every agent: ``multi_tenant``)."""
    from torch.distributed import TCPStore

    return TCPStore("0.0.0.0", port, is_master=True, multi_tenant=True, wait_for_workers=False,
                    timeout=timedelta(seconds=60))


def run_with_store(port: int, command: Sequence[str]) -> int:
    """Run ``command`` while this process hosts the store; its exit status (128 + N for signal N).

    SIGINT and SIGTERM (a cancelled or timed-out SLURM job) are passed on to ``command``, and the
    store stays up until it has ended.
    """
    store = host_store(port)
    child = subprocess.Popen(list(command))
    previous = {sig: signal.signal(sig, lambda number, _frame: child.send_signal(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        del store
    return 128 - status if status < 0 else status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m wildcat.engine.rendezvous",
        description="Host the c10d rendezvous store on this node while COMMAND (srun ... torchrun "
                    "--rdzv_conf=is_host=false ...) runs; exit with COMMAND's status.",
    )
    parser.add_argument("--port", type=int, required=True, help="the port of the torchruns' --rdzv_endpoint")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND...", help="the command to run")
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("give the command to run (srun ... torchrun ...)")
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port}: give a TCP port in 1..65535")
    try:
        return run_with_store(args.port, args.command)
    except FileNotFoundError as error:
        print(f"python -m wildcat.engine.rendezvous: error: cannot run {args.command[0]!r}: {error.strerror}", file=sys.stderr)
        return 127
    except RuntimeError as error:  # the port is taken (torch's DistNetworkError is a RuntimeError)
        print(f"python -m wildcat.engine.rendezvous: error: cannot host the store on port {args.port}: "
              f"{str(error).splitlines()[0]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
