#!/usr/bin/env python3
"""csvcols.py FILE COL... - the named columns of a CSV file with a header
(rejects, itemize, totals), one row a line, tab-separated: lets the e2e
scripts compare columns that do not depend on file names or line numbers."""
import csv
import signal
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| grep -q` may stop early
csv.field_size_limit(sys.maxsize)

with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = csv.reader(f)
    head = next(rows, None) or []
    idx = [head.index(c) for c in sys.argv[2:]]
    for r in rows:
        print("\t".join(r[i] for i in idx))
