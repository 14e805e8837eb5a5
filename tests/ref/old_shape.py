#!/usr/bin/env python3
"""old_shape.py rejects|itemize FILE - a rejects or itemize CSV (header,
quoted and escaped text, see the README) back in the shape the hand-worked
cases of cases/*/expected were written in: `record,reason` and
`id,account,subscriber,service,zone,band,quantity,charge`, text unescaped
to its bytes. The columns this drops are checked by compare.sh against
cdrate."""
import csv
import re
import sys

csv.field_size_limit(sys.maxsize)
COLS = {"rejects": ["record", "reason"],
        "itemize": ["id", "account", "subscriber", "service", "zone", "band",
                    "quantity", "charge"]}


def unescape(s):
    return re.sub(r"\\x([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


kind, path = sys.argv[1], sys.argv[2]
with open(path, newline="", encoding="latin-1") as f:
    rows = csv.reader(f)
    head = next(rows, None) or []
    idx = [head.index(c) for c in COLS[kind]]
    out = sys.stdout.buffer
    for r in rows:
        out.write(",".join(unescape(r[i]) for i in idx).encode("latin-1")
                  + b"\n")
