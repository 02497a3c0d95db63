"""A workload that reports the kernel's own accounting of itself just before it
exits, as one JSON line written to stdout (a pipe) in a single write(2).

Whatever follows the snapshot is known exactly: the snapshot's own read of
/proc/self/io (rchar += len, syscr += 1) and the report write (wchar += len,
syscw += 1). Nothing else happens before _exit.

usage: truth.py MODE [ARGS]
  cpu SECONDS             burn CPU
  mem MIB                 touch MIB of anonymous memory
  io DIR MIB              write MIB to a file (fsync), read it back twice
  threads N DIR           N threads, each burns CPU and writes 1 MiB
  procs N DIR             multiprocessing: N children doing `io`, each reports too
  kill SIGNAL             report, then kill itself with SIGNAL
  spawn N                 fork+exec /bin/true N times; reports RUSAGE_CHILDREN (CPU, switches)
  mixed MIB SECONDS NETMIB touch MIB, burn SECONDS of CPU, send NETMIB over loopback
                          TCP from a thread to the main thread (reports both counts)
"""

import json
import os
import resource
import sys
import threading
import time


def burn(seconds: float) -> int:
    end = time.thread_time() + seconds  # per thread: threads each burn their share
    x = 0
    while time.thread_time() < end:
        for i in range(10_000):
            x += i * i
    return x


def do_io(d: str, mib: int, tag: str) -> None:
    path = os.path.join(d, f"truth-{tag}-{os.getpid()}.dat")
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    for _ in range(2):
        with open(path, "rb") as f:
            while f.read(1 << 16):
                pass
    os.unlink(path)


def report(extra: dict | None = None, exit_after: bool = True) -> None:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/status") as f:
        status = f.read()
    hwm_kb = int(status.split("VmHWM:")[1].split()[0])
    fd = os.open("/proc/self/io", os.O_RDONLY)
    raw = os.read(fd, 4096)  # the values are from before this read
    os.close(fd)
    io = {k: int(v) for k, v in (line.split(": ") for line in raw.decode().splitlines())}
    rec = {"pid": os.getpid(), "cpu_ns": int((ru.ru_utime + ru.ru_stime) * 1e9), "vmhwm_bytes": hwm_kb * 1024,
           "io": io, "io_len": len(raw), **(extra or {})}
    # pad to a fixed length so the report's own size is known before writing it
    body = json.dumps(rec)
    line = (body + " " * (1000 - len(body)) + "\n").encode()
    assert len(line) == 1001
    rec_len = os.write(1, line)
    assert rec_len == len(line)
    if exit_after:
        os._exit(0)


def loopback_tcp(n: int) -> tuple[int, int]:
    """n bytes from a thread to this thread over loopback TCP: (sent, received)."""
    import socket

    srv = socket.create_server(("127.0.0.1", 0))
    sent = [0]

    def send():
        with socket.create_connection(srv.getsockname()) as c:
            block = b"\0" * (1 << 20)
            while sent[0] < n:
                sent[0] += c.send(block[:min(len(block), n - sent[0])])

    t = threading.Thread(target=send)
    t.start()
    conn, _ = srv.accept()
    got = 0
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        got += len(b)
    t.join()
    conn.close()
    srv.close()
    return sent[0], got


def child(d: str, idx: int) -> None:
    do_io(d, 2 + idx, f"c{idx}")
    burn(0.1)
    report({"role": "child"})


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "cpu":
        burn(float(args[0]))
    elif mode == "mem":
        buf = bytearray(int(args[0]) << 20)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
    elif mode == "io":
        do_io(args[0], int(args[1]), "main")
    elif mode == "threads":
        ts = [threading.Thread(target=lambda i=i: (burn(0.2), do_io(args[1], 1, f"t{i}"))) for i in range(int(args[0]))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    elif mode == "procs":
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        ps = [ctx.Process(target=child, args=(args[1], i)) for i in range(int(args[0]))]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        burn(0.1)
        report({"role": "parent", "children": [p.pid for p in ps]})
    elif mode == "spawn":
        for _ in range(int(args[0])):
            pid = os.fork()
            if pid == 0:
                os.execv("/bin/true", ["/bin/true"])
            os.waitpid(pid, 0)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        report({"children_cpu_ns": int((ru.ru_utime + ru.ru_stime) * 1e9), "children_nvcsw": ru.ru_nvcsw,
                "children_nivcsw": ru.ru_nivcsw})
    elif mode == "mixed":
        buf = bytearray(int(args[0]) << 20)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        burn(float(args[1]))
        sent, received = loopback_tcp(int(args[2]) << 20)
        report({"tcp_sent": sent, "tcp_received": received})
    elif mode == "kill":
        import signal

        report({"role": "victim"}, exit_after=False)
        os.kill(os.getpid(), getattr(signal, args[0]))
        time.sleep(5)
    report()


if __name__ == "__main__":
    main()
