#!/usr/bin/env python3
"""reportcheck.py DOM BREAKDOWN TOTALS CURRENCY - the figures a browser
shows on a --report page equal the --breakdown CSV's.

DOM is the page as the browser built it (chromium --dump-dom). The page's
hooks (src/report.c): an element with data-bd (a row's key columns joined
by '|') and data-col shows that CSV cell, exactly; one with data-agg
("TABLE:COLUMN", or just TABLE) and data-name shows the sum of data-col
over the rows of TABLE whose COLUMN is data-name (all rows of TABLE when
there is no column), money followed by the currency; data-fig=total shows
the totals file's total column summed, with the currency. Every cell,
rounding and monthly row of the CSV must be on the page. Prints what
differs and exits 1, or "ok N figures" and exits 0."""
import csv
import sys
from decimal import Decimal
from html.parser import HTMLParser

dom_path, bd_path, tot_path, cur = sys.argv[1:5]
KEYS = ["table", "service", "plan", "zone", "band", "key"]


class Hooks(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.found = []  # (attrs, text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        hooked = any(k in a for k in ("data-bd", "data-agg", "data-fig"))
        self.stack.append([tag, a if hooked else None, []])

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        while self.stack:
            t, a, text = self.stack.pop()
            if a is not None:
                self.found.append((a, "".join(text).strip()))
            if self.stack:
                self.stack[-1][2].extend(text)
            if t == tag:
                break

    def handle_data(self, data):
        if self.stack:
            self.stack[-1][2].append(data)


with open(dom_path, encoding="utf-8") as f:
    p = Hooks()
    p.feed(f.read())
with open(bd_path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
with open(tot_path, newline="", encoding="utf-8") as f:
    tots = list(csv.DictReader(f))
by_key = {"|".join(r[k] for k in KEYS): r for r in rows}
fails = []
seen = set()
dec = None
for t in tots:
    dec = len(t["total"].split(".")[1]) if "." in t["total"] else 0
    break


def money(v):
    q = Decimal(1).scaleb(-dec) if dec else Decimal(1)
    return str(v.quantize(q))


n = 0
for a, text in p.found:
    n += 1
    col = a.get("data-col")
    if "data-bd" in a:
        r = by_key.get(a["data-bd"])
        if r is None:
            fails.append("page row %r is not in the CSV" % a["data-bd"])
        elif r.get(col) != text:
            fails.append("%s %s: page %r, CSV %r" % (a["data-bd"], col, text, r.get(col)))
        else:
            seen.add((a["data-bd"], col))
    elif "data-agg" in a:
        table, _, kcol = a["data-agg"].partition(":")
        name = a.get("data-name", "")
        s = sum((Decimal(r[col]) for r in rows if r["table"] == table and
                 (not kcol or r[kcol] == name)), Decimal(0))
        is_money = col not in ("records", "late_records", "quantity")
        want = (money(s) + " " + cur) if is_money else str(s)
        if text != want:
            fails.append("%s %r %s: page %r, CSV sum %r" % (a["data-agg"], name, col, text, want))
    elif a.get("data-fig") == "total":
        want = money(sum((Decimal(t["total"]) for t in tots), Decimal(0))) + " " + cur
        if text != want:
            fails.append("total: page %r, totals file %r" % (text, want))
for r in rows:
    if r["table"] in ("cell", "rounding", "monthly"):
        k = "|".join(r[c] for c in KEYS)
        if (k, "charge") not in seen:
            fails.append("CSV row %s is not on the page" % k)
if n < 20:
    fails.append("only %d figures with hooks on the page" % n)
for f in fails[:20]:
    print("reportcheck: " + f)
if fails:
    sys.exit(1)
print("ok %d figures" % n)
