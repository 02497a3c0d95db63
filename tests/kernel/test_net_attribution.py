"""Network attribution under interrupts: a connection belongs to the process
that opened it (or first moved bytes through it), never to whoever the CPU was
running when a packet arrived.

An untracked client downloads from a server in a network namespace behind a
shaped veth link while the run's processes keep both CPUs busy: the shaper's
timer releases the server's SYN-ACKs and data in softirq on whichever CPU it
fires, mostly inside the run's burners. Before the fix the connect()'s
ESTABLISHED transition (processed there) gave the untracked connections to a
burner."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from conftest import WORKLOADS

FETCH = str(WORKLOADS / "netfetch.py")
PORT = 18080


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture
def shaped_netns():
    """(server address) of a netns behind a veth pair whose server-to-host
    direction is rate-limited, so the server's packets leave on a timer."""
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = f"osre-{tag}", f"osh{tag}", f"osn{tag}"
    sh("ip", "netns", "add", ns)
    server = None
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", "10.213.7.1/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "-n", ns, "addr", "add", "10.213.7.2/30", "dev", ns_if)
        sh("ip", "-n", ns, "link", "set", ns_if, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("tc", "-n", ns, "qdisc", "add", "dev", ns_if, "root", "tbf", "rate", "24mbit", "burst", "16kb",
           "latency", "300ms")
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, FETCH, "serve", str(PORT)],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        yield "10.213.7.2"
    finally:
        if server:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


BURN = "import time\nt=time.monotonic()\nwhile time.monotonic()-t<{s}: pass"


@pytest.mark.guest  # 6.1 counts bytes at fexit/inet_*msg: the same attribution there
def test_untracked_traffic_never_lands_on_a_busy_tracked_process(observe, shaped_netns):
    addr = shaped_netns
    noise = subprocess.Popen([sys.executable, FETCH, "noise", addr, str(PORT), "5"],
                             stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # the bulk download fills the shaper's queue first
        burn = f'{sys.executable} -c "{BURN.format(s=3)}"'
        obs = observe(["bash", "-c", f"{burn} & {burn} & sleep 1; "
                       f"{sys.executable} {FETCH} fetch {addr} {PORT} 524288; wait"], check_status=0)
        untracked = set(json.loads(noise.communicate(timeout=30)[0])["local_ports"])
    finally:
        noise.kill()
    assert len(untracked) > 20  # the noise really ran beside the run
    mine = json.loads(obs.stdout.strip().splitlines()[-1])
    recs = obs.export()
    conns = [e for e in obs.export("events") if e["kind"] == "tcp_connection"]
    stray = [e for e in conns if e["local_port"] in untracked]
    assert not stray, stray
    # the run's own fetch is whole and its own
    (own,) = [e for e in conns if e["local_port"] == mine["local_port"]]
    assert own["pid"] == mine["pid"] and own["direction"] == "outbound"
    assert own["bytes_received"] >= mine["got"] == 524288
    client = next(r for r in recs if r["pid"] == mine["pid"])
    assert abs(client["net_rx_bytes"] - 524288) <= 0.01 * 524288, client["net_rx_bytes"]
    burners = [r for r in recs if r["comm"].startswith("python") and r["pid"] != mine["pid"]]
    assert len(burners) == 2
    assert all(r["net_rx_bytes"] == 0 and r["net_tx_bytes"] == 0 for r in burners), burners
