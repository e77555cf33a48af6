"""Why the several-node launcher hosts the c10d store in ``python -m wildcat.engine.rendezvous``: two
torch elastic rendezvous handlers, as two torchrun agents hold them, close the rendezvous one
after the other, in a fixed order (no timing involved).

- The store hosted by the first agent (torchrun's default on the endpoint's node): once that
  agent has closed the rendezvous and exited, the second one cannot close it and reports the
  failure (torchrun logs it as "has failed to shutdown the rendezvous ...").
- The store hosted by ``wildcat.engine.rendezvous.host_store`` in a process that outlives both agents:
  both close it.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import pytest

from wildcat.engine.rendezvous import host_store

from helpers import ROOT, free_port


def _agent(port: int, is_host: bool, go: multiprocessing.Event, results: multiprocessing.Queue, name: str) -> None:
    """A torchrun agent's rendezvous: join (2 nodes), then, once ``go`` is set, close it."""
    from torch.distributed.elastic.rendezvous import RendezvousParameters
    from torch.distributed.elastic.rendezvous.c10d_rendezvous_backend import create_backend
    from torch.distributed.elastic.rendezvous.dynamic_rendezvous import create_handler

    params = RendezvousParameters("c10d", f"127.0.0.1:{port}", "job", 2, 2, is_host=is_host, read_timeout=5,
                                  close_timeout=5, join_timeout=120)
    backend, store = create_backend(params)
    handler = create_handler(store, backend, params)
    handler.next_rendezvous()
    results.put((name, "joined"))
    go.wait(120)
    results.put((name, handler.shutdown()))


def _close_in_order(port: int, first_hosts: bool) -> dict[str, object]:
    """Agents ``a`` and ``b`` join; ``a`` closes and exits; then ``b`` closes. Their results."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    go_a, go_b = context.Event(), context.Event()
    agents = {"a": context.Process(target=_agent, args=(port, first_hosts, go_a, results, "a")),
              "b": context.Process(target=_agent, args=(port, False, go_b, results, "b"))}
    agents["a"].start()
    agents["b"].start()
    try:
        assert sorted(results.get(timeout=120) for _ in agents) == [("a", "joined"), ("b", "joined")]
        go_a.set()
        closed = dict([results.get(timeout=60)])
        agents["a"].join(60)  # the first agent has exited: a store it hosted is gone
        assert agents["a"].exitcode == 0
        go_b.set()
        closed.update([results.get(timeout=60)])
        agents["b"].join(60)
    finally:
        for process in agents.values():
            if process.is_alive():
                process.kill()
    return closed


@pytest.mark.slow
def test_a_store_hosted_by_an_agent_is_gone_when_the_other_agent_closes():
    assert _close_in_order(free_port(), first_hosts=True) == {"a": True, "b": False}


@pytest.mark.slow
def test_a_store_hosted_beside_the_agents_lets_every_agent_close():
    port = free_port()
    store = host_store(port)
    assert _close_in_order(port, first_hosts=False) == {"a": True, "b": True}
    del store


@pytest.mark.slow
def test_the_store_host_runs_the_command_and_exits_with_its_status():
    port = free_port()
    command = [sys.executable, "-m", "wildcat.engine.rendezvous", f"--port={port}", "bash", "-c", "exit 3"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    taken = host_store(port)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)  # the port is taken
    assert result.returncode == 1
    assert result.stderr.startswith(f"python -m wildcat.engine.rendezvous: error: cannot host the store on port {port}: ")
    del taken
