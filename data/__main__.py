"""Catalog CLI.

    python -m data demo [--out data/demo_catalog.csv] [--products 320] [--seed N]   regenerate the demo catalog
    python -m data validate PATH                                                      check a catalog CSV
"""
from __future__ import annotations

import argparse
import json
import sys

from core.errors import CatalogError
from core.settings import DEMO_CATALOG
from data.catalog import load_catalog
from data.demo import DEFAULT_PRODUCTS, DEFAULT_SEED, write_demo_catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    demo = sub.add_parser("demo", help="write the deterministic demo catalog")
    demo.add_argument("--out", default=str(DEMO_CATALOG))
    demo.add_argument("--products", type=int, default=DEFAULT_PRODUCTS)
    demo.add_argument("--seed", type=int, default=DEFAULT_SEED)
    val = sub.add_parser("validate", help="load a catalog CSV and print its summary")
    val.add_argument("path")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "demo":
            path = write_demo_catalog(args.out, args.products, args.seed)
            catalog = load_catalog(path)
            print(f"wrote {path}: {catalog.n_rows} rows, {len(catalog)} products")
        else:
            print(json.dumps(load_catalog(args.path).summary(), indent=2, ensure_ascii=False))
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for problem in exc.details.get("problems", [])[5:]:
            print(f"  row {problem['row']}, column {problem['column']!r}: {problem['reason']}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
