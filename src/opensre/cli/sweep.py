"""`opensre sweep`: what costs money and does no work — ranked, priced, evidenced, read-only."""

from __future__ import annotations

import os

from .args import common, positive_float
from .shared import lake_option, open_reader, say


def add_parser(sub) -> None:
    s = sub.add_parser("sweep", help="idle and forgotten compute: from runs (and AWS), ranked by monthly cost")
    common(s)
    lake_option(s)
    s.add_argument("--aws", action="store_true",
                   help="also sweep the AWS account (boto3's standard environment; only Describe/Get/List calls)")
    s.add_argument("--region", action="append", default=[], metavar="R",
                   help="with --aws: a region to sweep (repeatable; default the environment's region)")
    s.add_argument("--no-store", action="store_true", help="skip execution data (only --aws)")
    s.add_argument("--format", choices=["text", "json"], default="text")
    s.add_argument("--min-monthly-cost", type=positive_float, default=0.0, metavar="USD",
                   help="leave out findings that cost less per month")
    s.add_argument("--prices", metavar="FILE", help="a JSON price table over the bundled one (docs/sweep.md)")
    s.add_argument("--lookback-days", type=int, default=14, metavar="N", help="CloudWatch window (default 14)")


def run(args) -> int:
    from ..sweep import Prices, Thresholds, sweep
    from ..sweep.render import to_json, to_text

    reader, errors = _reader(args)
    aws = None
    if args.aws:
        from ..sweep.aws import ReadOnlyAWS

        aws = ReadOnlyAWS(args.region)
    res = sweep(reader, aws, Prices(args.prices), Thresholds(lookback_days=args.lookback_days),
                min_monthly_cost=args.min_monthly_cost)
    res.errors[:0] = errors
    for e in res.errors:
        say(f"cannot read {e}")
    print(to_json(res) if args.format == "json" else to_text(res), end="" if args.format == "text" else "\n")
    return 1 if res.nothing_read else 0


def _reader(args):
    """The store or lake, or (None, [why]) where --aws can go on without it."""
    from ..errors import OpenSREError

    if args.no_store:
        return None, []
    if args.aws and not args.store and not args.lake and not os.path.exists(_default()):
        return None, []  # no local runs here: an AWS-only sweep
    try:
        return open_reader(args), []
    except OpenSREError as e:
        if not args.aws:
            raise
        return None, [f"store: {e.one_line()}"]


def _default() -> str:
    from .shared import default_store

    return str(default_store())
