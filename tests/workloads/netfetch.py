"""TCP over a veth pair into a network namespace: a server that answers each
connection's request line "N" with N bytes, and clients that fetch from it.

  netfetch.py serve PORT                  the server (run inside the namespace)
  netfetch.py fetch HOST PORT N           one fetch of N bytes; prints {"pid", "local_port", "got"}
  netfetch.py noise HOST PORT SECONDS     for SECONDS: one bulk download that keeps the
                                          namespace's shaped link busy, and a short fetch
                                          every 20 ms; prints {"local_ports": [...]}
"""

import json
import os
import socket
import sys
import threading
import time


def serve(port: int) -> None:
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(64)

    def answer(c: socket.socket) -> None:
        with c:
            n = int(c.makefile().readline())
            buf = b"\0" * 65536
            try:
                while n > 0:
                    n -= c.send(buf[:min(n, len(buf))])
            except OSError:
                pass

    print("ready", flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=answer, args=(c,), daemon=True).start()


def fetch(host: str, port: int, n: int, ports: list | None = None) -> dict:
    with socket.create_connection((host, port)) as c:
        if ports is not None:
            ports.append(c.getsockname()[1])
        c.sendall(b"%d\n" % n)
        got = 0
        while got < n:
            b = c.recv(65536)
            if not b:
                break
            got += len(b)
        return {"pid": os.getpid(), "local_port": c.getsockname()[1], "got": got}


def noise(host: str, port: int, seconds: float) -> None:
    ports: list[int] = []
    threading.Thread(target=fetch, args=(host, port, 1 << 30, ports), daemon=True).start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        fetch(host, port, 2048, ports)
        time.sleep(0.02)
    print(json.dumps({"local_ports": ports}), flush=True)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "serve":
        serve(int(args[0]))
    elif cmd == "fetch":
        print(json.dumps(fetch(args[0], int(args[1]), int(args[2]))), flush=True)
    elif cmd == "noise":
        noise(args[0], int(args[1]), float(args[2]))
