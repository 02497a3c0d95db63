"""`opensre import SPILL.jsonl`: load a spill file (records a full disk kept out of the store)."""

from __future__ import annotations

import sys

from .args import common
from .shared import open_store


def add_parser(sub) -> None:
    im = sub.add_parser("import", help="load a spill file (records a full disk kept out of the store) into a store")
    common(im)
    im.add_argument("spill", metavar="SPILL.jsonl", help="the file named in the collector's message")


def run(args) -> int:
    from ..store.spill import import_spill

    store = open_store(args)
    n = import_spill(store, args.spill)
    print(f"opensre: imported {', '.join(f'{v} {k}s' for k, v in n.items() if v) or 'nothing'} from {args.spill} "
          f"into {store.path}", file=sys.stderr)
    return 0
