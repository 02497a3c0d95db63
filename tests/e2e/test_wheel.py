"""The wheel, as the hosts get it: `make wheel`, then a real `pip install` into a new
venv outside the checkout, used with the checkout and the compiler out of sight.

* the wheel carries every prebuilt object, its source stamp and BUILD-INFO.json; the
  stamps are the hash of bpf/ in this checkout (and of the commit, when bpf/ is clean);
* the installed package finds its objects in site-packages, `doctor` loads them all,
  `opensre run` records a workload, in a mount namespace where the checkout and
  /usr/lib/llvm-* are empty tmpfs and PATH holds no clang;
* its read-only commands work as nobody.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT
from test_nonroot import AS_NOBODY

VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
MACHINE = os.uname().machine
# /bin/sh builtins only: it burns CPU without any other program
BURN = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def source_hashes(sources: list[str], headers: list[str], read) -> dict[str, str]:
    """{x.bpf.o: sha256 of `cat bpf/x.bpf.c bpf/include/*.h`} (the Makefile's stamp), read(relpath) -> bytes."""
    hdrs = b"".join(read(h) for h in sorted(headers))
    return {Path(s).name[:-2] + ".o": hashlib.sha256(read(s) + hdrs).hexdigest() for s in sources}


def worktree_hashes() -> dict[str, str]:
    rel = lambda pat: sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pat))  # noqa: E731
    return source_hashes(rel("bpf/*.bpf.c"), rel("bpf/include/*.h"), lambda p: (ROOT / p).read_bytes())


def committed_hashes(commit: str) -> dict[str, str]:
    files = git("ls-tree", "-r", "--name-only", commit, "--", "bpf").split()
    return source_hashes([f for f in files if re.fullmatch(r"bpf/[^/]+\.bpf\.c", f)],
                         [f for f in files if re.fullmatch(r"bpf/include/[^/]+\.h", f)],
                         lambda p: subprocess.run(["git", "show", f"{commit}:{p}"], cwd=ROOT,
                                                  capture_output=True, check=True).stdout)


@pytest.fixture(scope="module")
def wheel() -> Path:
    """`make wheel` (ALLOW_DIRTY=1 only while bpf/ differs from the commit: BUILD-INFO says so).
    -o: never remake the venv this test runs in."""
    dirty = bool(git("status", "--porcelain", "--untracked-files=all", "--", "bpf"))
    p = subprocess.run(["make", "-o", ".venv/.stamp", "wheel", *(["ALLOW_DIRTY=1"] if dirty else [])],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    (whl,) = (ROOT / "dist").glob("opensre-*.whl")
    assert whl.name == f"opensre-{VERSION}-py3-none-linux_{MACHINE}.whl"
    return whl


@pytest.fixture(scope="module")
def installed(wheel):
    """A new venv in a world-readable temp dir (not the checkout), the wheel pip-installed
    into it from the wheel file, dependencies from the configured index."""
    d = Path(tempfile.mkdtemp(prefix="opensre-wheel-"))
    os.chmod(d, 0o755)
    py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys._base_executable
    try:
        subprocess.run([py, "-m", "venv", str(d / "venv")], cwd="/", check=True, timeout=120)
        p = subprocess.run([str(d / "venv/bin/pip"), "install", "-q", str(wheel)], cwd="/",
                           capture_output=True, text=True, timeout=180)
        assert p.returncode == 0, p.stderr
        yield d
    finally:
        shutil.rmtree(d)


def site_objects(venv: Path) -> Path:
    (objs,) = venv.glob("lib/python3*/site-packages/opensre/bpf/objects")
    return objs


def test_wheel_carries_the_objects_of_this_source(wheel, installed):
    """Every object + stamp + BUILD-INFO.json, nothing from bpf/, Requires-Dist PyYAML, google-re2 and rich;
    the installed stamps and the manifest are the hashes of this checkout's bpf/ and objects."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(f"opensre-{VERSION}.dist-info/METADATA").decode()
        tag = z.read(f"opensre-{VERSION}.dist-info/WHEEL").decode()
    assert f"Tag: py3-none-linux_{MACHINE}" in tag.splitlines()
    assert all(n.startswith(("opensre/", f"opensre-{VERSION}.dist-info/")) for n in names), names
    assert not [n for n in names if n.endswith((".c", ".h"))]
    requires = sorted(re.split(r"[<>=;\s]", r)[0] for r in re.findall(r"^Requires-Dist: (.+)$", meta, re.M)
                      if "extra ==" not in r)
    assert requires == ["PyYAML", "google-re2", "rich"], requires

    objs = site_objects(installed / "venv")
    info = json.loads((objs / "BUILD-INFO.json").read_text())
    want = worktree_hashes()
    assert sorted(info["objects"]) == sorted(want) == sorted(p.name for p in objs.glob("*.bpf.o"))
    for name, src_sha in want.items():
        stamp = (objs / f"{name}.src-sha256").read_text().strip()
        assert stamp == src_sha == info["objects"][name]["source_sha256"], name
        assert hashlib.sha256((objs / name).read_bytes()).hexdigest() == info["objects"][name]["object_sha256"]
        assert f"opensre/bpf/objects/{name}" in names and f"opensre/bpf/objects/{name}.src-sha256" in names
    assert info["commit"] == git("rev-parse", "HEAD").strip() and info["version"] == VERSION
    assert "clang version" in info["clang"]
    assert all(o["producer"] and "clang version" in o["producer"] for o in info["objects"].values())


def test_stamps_are_the_committed_source(installed):
    """The objects provably come from the commit BUILD-INFO names: its bpf/ hashes to the stamps."""
    objs = site_objects(installed / "venv")
    info = json.loads((objs / "BUILD-INFO.json").read_text())
    if info["bpf_sources_dirty"]:  # built with ALLOW_DIRTY=1: recorded, so no claim to check
        assert info["bpf_status"]
        pytest.skip(f"bpf/ differed from {info['commit'][:12]} at build time: {info['bpf_status']}")
    stamps = {p.name[:-len(".src-sha256")]: p.read_text().strip() for p in objs.glob("*.src-sha256")}
    assert committed_hashes(info["commit"]) == stamps


def code_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module that are not docstrings (comments are not tokens)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_installed_code_never_needs_clang_or_sources(installed):
    """grep the installed package: no string in its code names a compiler, bpftool or the bpf/
    sources (that it runs without them is the next test: they are hidden there)."""
    pkg = site_objects(installed / "venv").parents[1]
    words = re.compile(r"\bclang\b|\bllc\b|llvm|bpftool|\.bpf\.c\b|bpf/include|vmlinux\.h")
    hits = [f"{p.relative_to(pkg)}:{i}: {v!r}" for p in pkg.rglob("*.py") for i, v in code_strings(p)
            if words.search(v)]
    assert not hits, hits


def hidden(cmd: list[str], venv: Path, tools: Path, **kw) -> subprocess.CompletedProcess:
    """cmd in a private mount namespace where the checkout and the LLVM tree are empty,
    cwd /, PATH = the venv's bin + a dir holding only sh, no OPENSRE_BPF_DIR/PYTHONPATH."""
    mount = shutil.which("mount")
    hide = [str(ROOT)] + [str(p) for p in Path("/usr/lib").glob("llvm-*")]
    script = "".join(f"{mount} -t tmpfs opensre-hidden '{h}' && " for h in hide) + 'exec "$@"'
    env = {k: v for k, v in os.environ.items() if k not in ("OPENSRE_BPF_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv}/bin:{tools}"
    return subprocess.run([shutil.which("unshare"), "--mount", "--propagation", "private", "/bin/sh", "-c", script,
                           "sh", *cmd], cwd="/", env=env, capture_output=True, text=True, **kw)


def test_installed_wheel_records_a_workload_without_checkout_or_clang(installed):
    venv, store = installed / "venv", installed / "store.sqlite"
    tools = installed / "tools"
    tools.mkdir()
    os.symlink("/bin/sh", tools / "sh")

    p = hidden(["sh", "-c", f"ls -A '{ROOT}'; command -v clang || command -v clang-14 || echo no-clang"], venv, tools)
    assert p.returncode == 0 and p.stdout.strip() == "no-clang", p.stdout + p.stderr

    p = hidden(["python", "-c", "import opensre, sys; from opensre.bpf.loader import object_path; "
                "print(opensre.__file__); print(object_path('proc')); print(sys.path)"], venv, tools)
    assert p.returncode == 0, p.stderr
    mod, obj, path = p.stdout.splitlines()
    site = str(site_objects(venv).parents[1].parent)
    assert mod.startswith(site) and obj == str(site_objects(venv) / "proc.bpf.o")
    assert str(ROOT) not in path

    p = hidden(["opensre", "doctor"], venv, tools, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "missing" not in p.stdout and "make bpf" not in p.stdout, p.stdout
    lines = p.stdout.splitlines()
    assert not [l for l in lines if l.startswith("[FAIL]") and ".bpf.o" in l], p.stdout
    assert [l for l in lines if l.startswith("[ok") and "proc.bpf.o" in l], p.stdout  # loaded and attached

    p = hidden(["opensre", "run", "--store", str(store), "--name", "wheel", "--", "sh", "-c", BURN],
               venv, tools, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    p = hidden(["opensre", "show", "--store", str(store), "wheel"], venv, tools, timeout=60)
    assert p.returncode == 0 and "wheel" in p.stdout, p.stdout + p.stderr
    p = hidden(["opensre", "export", "--store", str(store), "--run", "wheel", "--format", "jsonl",
                "--what", "processes"], venv, tools, timeout=60)
    assert p.returncode == 0, p.stderr
    procs = [json.loads(line) for line in p.stdout.splitlines()]
    (sh,) = [r for r in procs if r["comm"] == "sh" and r["argv"][-1:] == [BURN]]
    assert sh["exit_code"] == 0 and sh["cpu_user_ns"] + sh["cpu_system_ns"] > 0, sh

    # the deployed venv's read-only commands, as nobody, on a copy of the store it owns
    d = installed / "nobody"
    d.mkdir()
    shutil.copy(store, d / "store.sqlite")
    for f in (d, d / "store.sqlite"):
        os.chown(f, 65534, 65534)
    env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}
    out = {}
    for args in (["runs"], ["show", "wheel"], ["tune", "wheel"]):
        p = subprocess.run(AS_NOBODY + [str(venv / "bin/opensre"), *args, "--store", str(d / "store.sqlite")],
                           cwd="/", env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (args, p.stderr)
        out[args[0]] = p.stdout
    assert "wheel" in out["runs"] and "wheel" in out["show"], out


def test_build_info_refuses_stale_orphan_and_uncommitted_objects(tmp_path):
    """What `make wheel` runs before packaging (tools/build_info.py), on a copy of bpf/ and the
    objects in a fresh git repo: fine as built; stale stamp, orphan object, and bpf/ changed
    since the commit each refuse with a line saying so; ALLOW_DIRTY records it."""
    r = tmp_path / "repo"
    shutil.copytree(ROOT / "bpf", r / "bpf")
    objs = r / "objects"
    objs.mkdir()
    for name, sha in worktree_hashes().items():  # objects need not be real here: only hashed
        (objs / name).write_bytes(b"\x7fELF fake, clang version 0")
        (objs / f"{name}.src-sha256").write_text(sha + "\n")
    for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *cmd], cwd=r, check=True, capture_output=True)

    def build_info(*extra):
        return subprocess.run([sys.executable, str(ROOT / "tools/build_info.py"), "--bpf-dir", "bpf",
                               "--objects", "objects", "-o", "info.json", *extra],
                              cwd=r, capture_output=True, text=True)

    p = build_info()
    assert p.returncode == 0, p.stderr
    info = json.loads((r / "info.json").read_text())
    assert info["bpf_sources_dirty"] is False and sorted(info["objects"]) == sorted(worktree_hashes())

    src = sorted((r / "bpf").glob("*.bpf.c"))[0]
    src.write_text(src.read_text() + "\n/* changed */\n")
    p = build_info("--allow-dirty")
    assert p.returncode == 1 and f"objects/{src.name[:-2]}.o is stale" in p.stderr and "make bpf" in p.stderr
    (objs / f"{src.name[:-2]}.o.src-sha256").write_text(
        hashlib.sha256(src.read_bytes() + b"".join(h.read_bytes() for h in sorted((r / "bpf/include").glob("*.h"))))
        .hexdigest())
    p = build_info()
    assert p.returncode == 1 and "bpf/ differs from commit" in p.stderr and "ALLOW_DIRTY=1" in p.stderr
    assert build_info("--allow-dirty").returncode == 0
    assert json.loads((r / "info.json").read_text())["bpf_sources_dirty"] is True

    (objs / "gone.bpf.o").write_bytes(b"")
    p = build_info("--allow-dirty")
    assert p.returncode == 1 and "gone.bpf.o has no source" in p.stderr
