"""Two processes move exactly N bytes over loopback TCP: the parent serves and
receives, a forked child connects and sends, then the parent echoes 1 MiB back.
Prints one JSON line: ports and each side's pid."""

import json
import os
import socket
import sys

N = int(sys.argv[1])
BACK = 1 << 20
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]
pid = os.fork()
if pid == 0:
    srv.close()
    c = socket.create_connection(("127.0.0.1", port))
    buf = b"\0" * (1 << 20)
    left = N
    while left:
        left -= c.send(buf[:min(left, len(buf))])
    c.shutdown(socket.SHUT_WR)
    got = 0
    while got < BACK:
        b = c.recv(1 << 20)
        if not b:
            break
        got += len(b)
    c.close()
    os._exit(0 if got == BACK else 3)
conn, peer = srv.accept()
got = 0
while True:
    b = conn.recv(1 << 20)
    if not b:
        break
    got += len(b)
conn.sendall(b"\1" * BACK)
conn.close()
_, st = os.waitpid(pid, 0)
print(json.dumps({"server": os.getpid(), "client": pid, "port": port, "client_port": peer[1], "received": got}))
sys.exit(0 if got == N and st == 0 else 4)
