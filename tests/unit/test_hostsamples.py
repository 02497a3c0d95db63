from pathlib import Path

import pytest

from opensre.collect.hostsamples import HostSampler, parse_meminfo, parse_psi, parse_stat_cpu

MEMINFO = """MemTotal:       16000000 kB
MemFree:         2000000 kB
MemAvailable:   12000000 kB
Buffers:          100000 kB
Cached:          5000000 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""
PSI_CPU = "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
PSI_MEM = "some avg10=0.00 avg60=0.00 avg300=0.00 total=777\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=555\n"
PSI_IO = "some avg10=0.00 avg60=0.00 avg300=0.00 total=9000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=8000\n"


def stat(user, nice, system, idle, iowait, irq, softirq, steal, guest=0, guest_nice=0, ncpu=2):
    agg = f"cpu  {user} {nice} {system} {idle} {iowait} {irq} {softirq} {steal} {guest} {guest_nice}\n"
    per = "".join(f"cpu{i} 1 0 1 1 0 0 0 0 0 0\n" for i in range(ncpu))
    return agg + per + "intr 1 2 3\nctxt 100\nbtime 1700000000\nprocesses 10\n"


def make_proc(root: Path, stat_text: str, psi: bool = True) -> Path:
    root.mkdir(exist_ok=True)
    (root / "stat").write_text(stat_text)
    (root / "meminfo").write_text(MEMINFO)
    if psi:
        (root / "pressure").mkdir(exist_ok=True)
        (root / "pressure" / "cpu").write_text(PSI_CPU)
        (root / "pressure" / "memory").write_text(PSI_MEM)
        (root / "pressure" / "io").write_text(PSI_IO)
    return root


def test_two_samples_give_exact_utilisation(tmp_path):
    root = make_proc(tmp_path / "proc", stat(100, 10, 50, 1000, 40, 5, 5, 0, guest=30, ncpu=4))
    s = HostSampler(root)
    first = s.sample(t_ns=1)
    assert first.cpu_util is None and first.t_ns == 1 and first.cpu_count == 4
    # deltas: user +60 (of which guest +20: already in user, must not be added), nice +0,
    # system +20, idle +80, iowait +20, irq +5, softirq +5, steal +10
    # total = 60+0+20+80+20+5+5+10 = 200; busy = 200 - 80 - 20 = 100
    (root / "stat").write_text(stat(160, 10, 70, 1080, 60, 10, 10, 10, guest=50, ncpu=4))
    second = s.sample(t_ns=2)
    assert second.cpu_util == pytest.approx(0.5)
    # a third sample measures against the second
    (root / "stat").write_text(stat(160, 10, 70, 1280, 60, 10, 10, 10, guest=50, ncpu=4))
    assert s.sample().cpu_util == pytest.approx(0.0)


def test_memory_and_psi(tmp_path):
    root = make_proc(tmp_path / "proc", stat(1, 0, 1, 1, 0, 0, 0, 0))
    x = HostSampler(root).sample()
    assert x.mem_total_bytes == 16000000 * 1024
    assert x.mem_used_bytes == (16000000 - 12000000) * 1024
    assert (x.psi_cpu_some_us, x.psi_memory_some_us, x.psi_memory_full_us,
            x.psi_io_some_us, x.psi_io_full_us) == (123456, 777, 555, 9000, 8000)
    assert x.t_ns > 0


def test_missing_pressure_dir(tmp_path):
    root = make_proc(tmp_path / "proc", stat(1, 0, 1, 1, 0, 0, 0, 0), psi=False)
    x = HostSampler(root).sample()
    assert (x.psi_cpu_some_us, x.psi_memory_some_us, x.psi_memory_full_us,
            x.psi_io_some_us, x.psi_io_full_us) == (None,) * 5


def test_unreadable_pressure_files_give_none(tmp_path):
    # psi=0 on the kernel command line: files exist but read() fails with EOPNOTSUPP.
    # A directory in their place makes read_text() raise OSError (IsADirectoryError) too.
    root = make_proc(tmp_path / "proc", stat(1, 0, 1, 1, 0, 0, 0, 0), psi=False)
    for name in ("cpu", "memory", "io"):
        (root / "pressure" / name).mkdir(parents=True)
    x = HostSampler(root).sample()
    assert x.psi_cpu_some_us is None and x.psi_io_full_us is None
    assert x.mem_total_bytes > 0


def test_garbled_pressure_file_gives_none(tmp_path):
    root = make_proc(tmp_path / "proc", stat(1, 0, 1, 1, 0, 0, 0, 0))
    (root / "pressure" / "io").write_text("some total=notanumber\n\n")
    x = HostSampler(root).sample()
    assert x.psi_io_some_us is None and x.psi_io_full_us is None
    assert x.psi_cpu_some_us == 123456


def test_no_tick_elapsed_keeps_baseline(tmp_path):
    root = make_proc(tmp_path / "proc", stat(100, 0, 0, 100, 0, 0, 0, 0))
    s = HostSampler(root)
    s.sample()
    assert s.sample().cpu_util is None  # identical counters: utilisation undefined
    (root / "stat").write_text(stat(150, 0, 0, 150, 0, 0, 0, 0))
    assert s.sample().cpu_util == pytest.approx(0.5)


def test_parsers():
    assert parse_stat_cpu("cpu  1 2 3 4\ncpu0 1 2 3 4\n") == (6, 10, 1)  # old kernel: 4 columns
    assert parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 25 kB\n") \
        == (102400, 60 * 1024)  # no MemAvailable: free + buffers + cached
    assert parse_psi(PSI_MEM) == {"some": 777, "full": 555}
    assert parse_psi("") == {}


def test_real_proc_is_sane():
    if not Path("/proc/stat").exists():
        pytest.skip("no /proc")
    import time

    def psi_now(res):
        try:
            return parse_psi(Path(f"/proc/pressure/{res}").read_text()).get("some")
        except OSError:
            return None

    psi_before = {r: psi_now(r) for r in ("cpu", "memory", "io")}
    s = HostSampler()
    s.sample()
    # wait until the clock ticks have moved: then there must be a utilisation
    x = None
    for _ in range(100):
        sum(range(200000))
        time.sleep(0.01)
        x = s.sample()
        if x.cpu_util is not None:
            break
    assert x is not None and x.cpu_util is not None, "no utilisation after 1 s of ticks"
    assert 0.0 <= x.cpu_util <= 1.0
    # the kernel's own figures, read here independently
    stat = Path("/proc/stat").read_text()
    assert x.cpu_count == sum(1 for l in stat.splitlines() if l.startswith("cpu") and l[3:4].isdigit())
    total_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    assert x.mem_total_bytes == total_kb * 1024
    assert 0 < x.mem_used_bytes <= x.mem_total_bytes
    # PSI: present exactly when the kernel exposes it, and cumulative (never below an earlier reading)
    for res, v in (("cpu", x.psi_cpu_some_us), ("memory", x.psi_memory_some_us), ("io", x.psi_io_some_us)):
        if psi_before[res] is None:
            assert v is None, (res, v)
        else:
            assert v is not None and v >= psi_before[res], (res, v, psi_before[res])
