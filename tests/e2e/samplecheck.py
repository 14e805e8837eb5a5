#!/usr/bin/env python3
"""samplecheck.py REPORT.html REJECTS.csv - the report's reject sample
lines are the rejects file's (README "The report"): for each reason of
the "Rejects by reason" table, the sample lines are the first three rows
of that reason in the rejects file, in its order (input path, then line),
each line as the file's `record` holds it (cut at 200 bytes). So a line
the rejects file calls `duplicate` is never a sample of the reason it was
first rejected under.
Prints what failed and exits 1, or prints "ok N reasons" and exits 0."""
import csv
import html
import re
import sys

SHOWN, CUT = 3, 200


def unescape(s):
    """The rejects file's \\xHH escapes back to bytes (outputs.c)."""
    return re.sub(rb"\\x([0-9A-Fa-f]{2})",
                  lambda m: bytes([int(m.group(1), 16)]), s.encode())


page = open(sys.argv[1], encoding="utf-8").read()
with open(sys.argv[2], newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))

want = {}
for r in rows:  # the file is in its own order already
    want.setdefault(r["reason"], [])
    if len(want[r["reason"]]) < SHOWN:
        want[r["reason"]].append(unescape(r["record"])[:CUT])

m = re.search(r"<h2>Rejects by reason</h2>\s*<table>(.*?)</table>", page, re.S)
if not m:
    print("no rejects table on the page")
    sys.exit(1)
got = {}
for tr in re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S):
    cells = re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
    if len(cells) < 3:
        continue
    reason = html.unescape(re.sub(r"<[^>]*>", "", cells[0]))
    got[reason] = [html.unescape(c).encode("utf-8", "surrogateescape")
                   for c in re.findall(r"<code>(.*?)</code>", cells[2], re.S)]

fails = []
if sorted(got) != sorted(want):
    fails.append("reasons on the page %s, in the rejects file %s"
                 % (sorted(got), sorted(want)))
for reason in sorted(want):
    if reason in got and got[reason] != want[reason]:
        fails.append("%s: page %r, rejects file %r"
                     % (reason, got[reason], want[reason]))
for f in fails:
    print(f)
if fails:
    sys.exit(1)
print("ok %d reasons" % len(want))
