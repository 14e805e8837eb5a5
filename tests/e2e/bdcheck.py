#!/usr/bin/env python3
"""bdcheck.py BREAKDOWN TOTALS [--itemize F] [--rejects F] [--old] -
check a --breakdown CSV against the run's other outputs, independently of
cdrate's code (README, "Breakdown CSV"):

  * the header, rows sorted bytewise by the key columns and keys unique,
    every money figure with the totals file's decimals;
  * reconciliation: per service, the cells' charge plus that service's
    `rounding` row equals the totals file's <service>_charge column summed
    over accounts; the cells' allowance credit plus `rounding,*` equals
    allowance_credit; `monthly` holds recurring_charge and outage_credit;
    so charge - allowance + recurring - outage over all rows is the sum of
    `total`; records, late records and quantities per service add up to
    the totals' records, late_records, voice_seconds, sms_count, data_bytes;
  * the hour and day tables hold every rated record once;
  * with --itemize: each cell's records, quantity and charge equal the
    itemize rows of its (service, plan, zone, band) (charge: their exact
    micro sum rounded half up once); the hour and day rows equal the
    itemize rows by band and local hour of their start, and by local day;
  * with --rejects: reject_reason and reject_file both count its rows, per
    reason and per file.
--old checks the old_* columns of a rerate breakdown instead.
Prints what failed and exits 1, or prints "ok N rows" and exits 0."""
import csv
import sys
from collections import defaultdict
from decimal import Decimal, ROUND_HALF_UP

KEYS = ["table", "service", "plan", "zone", "band", "key"]
VALS = ["records", "late_records", "quantity", "charge", "allowance_credit",
        "recurring_charge", "outage_credit"]
MONEY = VALS[3:]

args = sys.argv[1:]
old = "--old" in args
args = [a for a in args if a != "--old"]
opt = {}
pos = []
i = 0
while i < len(args):
    if args[i] in ("--itemize", "--rejects"):
        opt[args[i]] = args[i + 1]
        i += 2
    else:
        pos.append(args[i])
        i += 1
bd_path, tot_path = pos
fails = []


def fail(msg):
    fails.append(msg)


def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        head = next(r)
        return head, [dict(zip(head, row)) for row in r]


head, rows = read(bd_path)
thead, tots = read(tot_path)
pre = "old_" if old else ""
want = KEYS + VALS + (["old_" + v for v in VALS] if "old_records" in head else [])
if head != want:
    fail("header %r, wanted %r" % (head, want))

# decimals of the tariff: from the totals file's money columns
dec = None
for t in tots:
    s = t["total"]
    dec = len(s.split(".")[1]) if "." in s else 0
    break
if dec is None:
    dec = 2
for r in rows:
    for m in MONEY:
        for p in ("", "old_") if "old_records" in head else ("",):
            s = r[p + m]
            d = len(s.split(".")[1]) if "." in s else 0
            if d != dec:
                fail("%s %s: %r has %d decimals, the tariff %d" %
                     (",".join(r[k] for k in KEYS), p + m, s, d, dec))

keys = [tuple(r[k] for k in KEYS) for r in rows]
if keys != sorted(keys, key=lambda k: [x.encode() for x in k]):
    fail("rows are not sorted bytewise by their key columns")
if len(set(keys)) != len(keys):
    fail("a key appears twice")


def v(r, c):
    return Decimal(r[pre + c])


def tsum(c):
    return sum((Decimal(t[c]) for t in tots), Decimal(0))


def rsum(table, c, **k):
    return sum((v(r, c) for r in rows if r["table"] == table and
                all(r[a] == b for a, b in k.items())), Decimal(0))


svc_col = {"voice": "voice_charge", "sms": "sms_charge", "data": "data_charge"}
qty_col = {"voice": "voice_seconds", "sms": "sms_count", "data": "data_bytes"}
for s, c in svc_col.items():
    got = rsum("cell", "charge", service=s) + rsum("rounding", "charge", service=s)
    if got != tsum(c):
        fail("%s: cells + rounding = %s, totals %s = %s" % (s, got, c, tsum(c)))
    if rsum("cell", "quantity", service=s) != tsum(qty_col[s]):
        fail("%s quantity %s, totals %s %s" % (s, rsum("cell", "quantity", service=s),
                                               qty_col[s], tsum(qty_col[s])))
got = rsum("cell", "allowance_credit") + rsum("rounding", "allowance_credit", service="*")
if got != tsum("allowance_credit"):
    fail("allowance: cells + rounding = %s, totals %s" % (got, tsum("allowance_credit")))
for c in ("recurring_charge", "outage_credit"):
    if rsum("monthly", c) != tsum(c):
        fail("monthly %s %s, totals %s" % (c, rsum("monthly", c), tsum(c)))
grand = sum((v(r, "charge") - v(r, "allowance_credit") + v(r, "recurring_charge")
             - v(r, "outage_credit") for r in rows
             if r["table"] in ("cell", "rounding", "monthly")), Decimal(0))
if grand != tsum("total"):
    fail("charge - allowance + recurring - outage = %s, totals total %s" % (grand, tsum("total")))
rated = rsum("cell", "records")
if rated != tsum("records"):
    fail("cell records %s, totals records %s" % (rated, tsum("records")))
if rsum("cell", "late_records") != tsum("late_records"):
    fail("late records differ")
for t in ("hour", "day"):
    if rsum(t, "records") != rated:
        fail("%s records %s, rated %s" % (t, rsum(t, "records"), rated))

if "--itemize" in opt:
    ih, items = read(opt["--itemize"])
    agg = defaultdict(lambda: [0, 0, Decimal(0)])
    for it in items:
        a = agg[(it["service"], it["plan"], it["zone"], it["band"])]
        a[0] += 1
        a[1] += int(it["quantity"])
        a[2] += Decimal(it["charge"])
    q = Decimal(1).scaleb(-dec)
    cells = {(r["service"], r["plan"], r["zone"], r["band"]): r
             for r in rows if r["table"] == "cell"}
    for k, (n, qty, chg) in agg.items():
        r = cells.get(k)
        if r is None:
            fail("itemize has %r, the breakdown no cell" % (k,))
            continue
        if int(v(r, "records")) != n or int(v(r, "quantity")) != qty:
            fail("cell %r: %s records %s quantity, itemize %d %d" %
                 (k, r[pre + "records"], r[pre + "quantity"], n, qty))
        if v(r, "charge") != chg.quantize(q, rounding=ROUND_HALF_UP):
            fail("cell %r: charge %s, itemize %s" % (k, r[pre + "charge"], chg))
    for k, r in cells.items():
        if k not in agg and int(v(r, "records")):
            fail("cell %r has records the itemize file lacks" % (k,))
    # hours and days from the itemize rows' local start: records exactly,
    # charge as each row's exact sum rounded once
    period = tots[0]["period"] if tots else None
    hours = defaultdict(lambda: [0, Decimal(0)])
    days = defaultdict(lambda: [0, Decimal(0)])
    for it in items:
        day, hms = it["start"].split(" ")
        hk = (it["band"], hms[:2])
        dk = day if period and day.startswith(period + "-") else "earlier"
        if not it["start"].startswith(period) and day > period:
            dk = "later"
        hours[hk][0] += 1
        hours[hk][1] += Decimal(it["charge"])
        days[dk][0] += 1
        days[dk][1] += Decimal(it["charge"])
    got_h = {(r["band"], r["key"]): (int(v(r, "records")), v(r, "charge"))
             for r in rows if r["table"] == "hour" and int(v(r, "records"))}
    got_d = {r["key"]: (int(v(r, "records")), v(r, "charge"))
             for r in rows if r["table"] == "day" and int(v(r, "records"))}
    want_h = {k: (n, c.quantize(q, rounding=ROUND_HALF_UP)) for k, (n, c) in hours.items()}
    want_d = {k: (n, c.quantize(q, rounding=ROUND_HALF_UP)) for k, (n, c) in days.items()}
    if got_h != want_h:
        fail("hour rows differ from itemize: %r" % sorted(set(got_h.items()) ^ set(want_h.items()))[:5])
    if got_d != want_d:
        fail("day rows differ from itemize: %r" % sorted(set(got_d.items()) ^ set(want_d.items()))[:5])

if "--rejects" in opt:
    rh, rejs = read(opt["--rejects"])
    by_reason = defaultdict(int)
    by_file = defaultdict(int)
    for x in rejs:
        by_reason[x["reason"]] += 1
        by_file[x["file"]] += 1
    got_r = {r["key"]: int(v(r, "records")) for r in rows
             if r["table"] == "reject_reason" and int(v(r, "records"))}
    got_f = {r["key"]: int(v(r, "records")) for r in rows
             if r["table"] == "reject_file" and int(v(r, "records"))}
    if got_r != dict(by_reason):
        fail("reject_reason %r, rejects file %r" % (got_r, dict(by_reason)))
    if got_f != dict(by_file):
        fail("reject_file %r, rejects file %r" % (got_f, dict(by_file)))

for f in fails[:20]:
    print("bdcheck: " + f)
if fails:
    sys.exit(1)
print("ok %d rows" % len(rows))
