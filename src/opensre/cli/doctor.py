"""`opensre doctor`: does this kernel support everything (privileges, BTF, each probe family)."""

from __future__ import annotations

from .args import EXIT_ERROR


def add_parser(sub) -> None:
    d = sub.add_parser("doctor", help="check that this kernel supports everything")
    d.add_argument("--verbose", action="store_true", help="show full verifier logs")


def run(args) -> int:
    from ..bpf import families, features

    checks = features.probe_all()
    if all(c.ok for c in checks):
        checks += families.check_all()
    for c in checks:
        mark = "FAIL" if not c.ok else "warn" if c.warn else "ok  "
        print(f"[{mark}] {c.name}: {c.detail}" + (f"\n       {c.warn}" if c.warn else "")
              + (f"\n       fix: {c.fix}" if c.fix and not c.ok else ""))
        if args.verbose and c.log:
            print(c.log)
    return 0 if all(c.ok for c in checks) else EXIT_ERROR
