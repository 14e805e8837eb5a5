#!/usr/bin/env python3
"""ref_rate.py - reference implementation of `cdrate rate` (SPEC sections 3-8).

A test oracle, not a product: written straight from /work/shared/SPEC.md,
step by step, in the SPEC's own order, for clarity and not for speed. Standard
library only; money is integer micro-units and fractions.Fraction, never a
float. Bytes are decoded as latin-1 so that every str here holds exactly the
input's bytes (one char per byte): lengths are byte counts and str comparison
is bytewise comparison.

Usage:
  python3 tests/ref/ref_rate.py --tariff DIR --period YYYY-MM
      [--subscribers FILE] [--out F] [--rejects F] [--itemize F] INPUT...

Readings (what the SPEC leaves open, and the choice made here)
---------------------------------------------------------------
CDR input
 R1  Line ends: a line is split at "\n"; one trailing "\r" is then dropped
     (also on a last line without "\n"). "Line as read" in rejects is the line
     without that line end. A line that is empty after that is skipped; a line
     of blanks is not empty (it is malformed:columns).
 R2  Header: the first non-empty line of each input file (each file of a
     directory, and standard input) is a header when it starts with "id,".
     Only that line; a later "id,..." line is a record. No BOM handling.
 R3  Fields are split at every ","; exactly 7 fields or malformed:columns
     (so a trailing comma is malformed:columns). Fields are never trimmed.
 R4  id: any bytes except "," and line ends, 1..64 bytes. No UTF-8 check.
 R5  subscriber: an optional "+" then one or more ASCII digits; the "+" is
     dropped. No length limit.
 R6  service: exactly "voice", "sms" or "data" (case-sensitive).
 R7  start: (a) one or more ASCII digits = Unix seconds (leading zeros
     allowed); (b) "YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DDTHH:MM:SS" with a real
     calendar date, hour 00-23, minute 00-59, second 00-59 (no leap second,
     no fraction), optionally followed by "Z" (upper case only) or "+HH:MM" /
     "-HH:MM" with HH 00-23 and MM 00-59. Anything else, or an instant
     outside 0..253402300799 (1970-01-01T00:00:00Z..9999-12-31T23:59:59Z),
     is malformed:start. The range is checked on the instant, so a naive
     local 1970-01-01 00:00:00 in Asia/Shanghai is malformed.
 R8  destination: voice/sms need an optional "+" then ONE OR MORE of 0-9 * #
     ("" and "+" alone are malformed); data: anything, including empty.
 R9  duration/volume: one or more ASCII digits (leading zeros allowed, no
     sign), value < 10^12.
 R10 A naive local time in a DST gap is moved forward by the length of the gap
     (the instant is computed with the offset in force before the gap); one in
     a fold takes the earlier instant. The same rule is used for the period
     bounds and outage times.
 R11 "Whole line" for duplicates is the line as read (R1). Identical lines:
     one is kept, the others are duplicates (outputs do not depend on which).
Period, zones, bands, rates
 R12 The period is [local 1st 00:00:00, local 1st of next month 00:00:00) as
     instants; start >= period end is after_period, start < period start is
     late. "Local start date" is the calendar date of the start instant in the
     tariff's timezone (also for starts written with Z or an offset).
 R13 Zone: the destination without "+"; an "=N" row matching exactly wins,
     otherwise the longest plain prefix. data records have zone "*" and never
     take the free-zone path.
 R14 Band: day type = "holiday" if the local start date is in holidays.csv,
     else its weekday; a row matches when its day set holds the day type and
     from <= local time of day (to the second) < to. Day ranges may wrap
     (fri-mon). Seconds inside a minute do not matter: 07:59:59 is before a
     row starting at 08:00.
 R15 band_split = split, voice: the interval [start, start+q) is cut at every
     instant where the local time of day crosses a from/to of any bands row or
     midnight, and at every UTC-offset change; each piece takes the band of its
     first instant. If some piece's band has no rate row (after fallback) the
     record is rejected no_rate. Pieces of equal band are priced separately
     but the sum is exact, so that does not matter. The record's band
     (itemize) is the start band; its buckets are per piece (R21). q = 0
     gives charge 0, no pieces. (This oracle refuses split calls with
     q > 10^8 s rather than walk them.)
 R16 Free zones: a voice/sms record to a free zone takes the account of the
     subscriber row active on its local start date, if any, else "-". It counts
     in records (and late_records when late), adds 0 to voice_seconds /
     sms_count, and is never in an allowance bucket.
Monthly charges
 R17 A row "overlaps the period" when from <= last day and (to empty or to >=
     1st). Only such rows pay recurring fees.
 R18 half_month: the start rule applies only when from lies in the period
     month, the end rule only when to lies in it; the fee is halved if any
     applicable rule says half.
 R19 Plan change: row R has one at its start when another row of the same
     subscriber and the same account has to = R.from - 1 day, at its end
     when such a row has from = R.to + 1 day, wherever these dates fall (a
     number passed to another account is an installation for it); such a row is prorated
     daily (plan and package fees alike) whatever the setting. daily = fee x
     days of the row inside the month / days in the month.
 R20 Each fee (plan, each package) is prorated and rounded half up on its own.
 R21 Allowance amounts are never prorated. Buckets hold the billed quantity
     of the row's non-late, non-free rated records; a zero-price bucket still
     consumes allowance (it is just the cheapest). An allowance zone matches
     a bucket zone when equal or "*", likewise band; data buckets have zone
     "*", so only zone "*" allowances reach them. Price/unit is compared
     exactly (as fractions). A split voice call (R15) adds each piece's
     seconds to the bucket of that piece's band and its band's rate row, so
     pieces of one band under one row add up; the pieces sum to q.
 R22 Outage: from/to converted as naive local times (R10), then cut at the
     period and at each of the number's rows: a row covers [its from day
     00:00 local, the day after its to day 00:00 local) as instants (R10 for
     the conversion), open-ended when to is empty. Each non-empty part
     credits round_half_up(seconds x the row's plan fee / 2592000); seconds
     under no row credit nothing. "from < to" is checked on the wall-clock
     times as written; a from inside a DST gap may then land on or after to,
     which gives 0 seconds, not an error. A row's parts are summed, then
     capped at that row's prorated plan fee for this period (0 when the row
     does not overlap it).
Outputs
 R23 Totals: header always; rows for accounts with a rated record or an
     overlapping row; an account's figures are the sums over its rated records
     and its rows. Each amount column is the micro sum rounded half up once to
     `decimals`; total is computed from the printed columns. Negative totals
     get "-"; zero is never "-0".
 R24 Rejects: header "file,line,reason,detail,record", rows sorted by file
     path (bytewise) then line; line counts every line of the file from 1
     (empty ones and the header too). Itemize: header "id,account,
     subscriber,service,start,destination,zone,band,plan,quantity,charge",
     rows sorted by account, start instant, then the row's bytes; start is
     local time in the tariff's zone, destination the number without "+",
     plan the subscriber row's ("-" for a free call without one), charge 6
     decimals. Text fields: bytes that are not valid UTF-8, controls and
     the backslash become backslash-x-HH, then "," or '"' quote the field
     (record always). The detail words follow the README's table; a duplicate names the line
     kept ("duplicate of FILE:LINE", the first read of identical lines).
Tariff
 R25 Tariff CSVs: "\n" or "\r\n", empty lines skipped, header must be exactly
     the SPEC's column names (rates.csv: 9, or 10 with "from"; rows may then
     have 9 or 10 fields), no trimming. tariff.conf: "key = value" with blanks
     trimmed, "#" starts a comment only at the start of a line; unknown keys
     and any "#" inside a value are errors here. A leading "+" on a
     subscribers.csv / outages.csv number is dropped. Amounts:
     digits[.1-6 digits], < 10^9. Validation is partial; anything this file
     does not understand raises an error (exit 1) rather than guessing.
Inputs and exit
 R26 Input directories: their regular files (symlinks followed, dot files
     included, subdirectories ignored), sorted by name bytewise. Each file's
     records stand alone (a last line without "\n" is still a line).
 R27 Every figure rounded here is >= 0 (prices, fees and quantities cannot
     be negative), so "half up" never meets a negative tie. Exit 0 on
     success, 1 on a bad tariff or unreadable input, 2 on a usage error.
"""

import argparse
import calendar
import os
import sys
from datetime import date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

MICRO = 1_000_000
MAX_INSTANT = 253402300799  # 9999-12-31T23:59:59Z
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DIGITS = "0123456789"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SERVICES = ("voice", "sms", "data")
TOTALS_HEADER = ("account,period,records,late_records,voice_seconds,sms_count,"
                 "data_bytes,voice_charge,sms_charge,data_charge,"
                 "allowance_credit,recurring_charge,outage_credit,total")


class TariffError(Exception):
    pass


# --------------------------------------------------------------------------
# Small helpers: digits, money, rounding, calendar
# --------------------------------------------------------------------------

def is_digits(s):
    """One or more ASCII digits (str.isdigit would accept '²')."""
    return len(s) > 0 and all(c in DIGITS for c in s)


def round_half_up(x):
    """Round a non-negative Fraction (or int) half up to an integer."""
    x = Fraction(x)
    assert x >= 0, x
    return (x.numerator * 2 + x.denominator) // (2 * x.denominator)


def parse_amount(s):
    """Decimal string -> micro-units, or None."""
    if "." in s:
        whole, frac = s.split(".", 1)
        if not is_digits(whole) or not is_digits(frac) or len(frac) > 6:
            return None
    else:
        whole, frac = s, ""
        if not is_digits(whole):
            return None
    if int(whole) >= 10**9:
        return None
    return int(whole) * MICRO + int((frac + "000000")[:6])


def fmt_fixed(units, decimals):
    """An integer count of 10^-decimals units as a plain decimal."""
    sign = "-" if units < 0 else ""
    s = str(abs(units))
    if decimals == 0:
        return sign + s
    s = s.rjust(decimals + 1, "0")
    return sign + s[:-decimals] + "." + s[-decimals:]


def micros_to_units(micros, decimals):
    """Round a non-negative micro amount half up to `decimals` places."""
    return round_half_up(Fraction(micros, 10 ** (6 - decimals)))


def parse_date(s):
    """'YYYY-MM-DD' -> date, or None."""
    if len(s) != 10 or s[4] != "-" or s[7] != "-":
        return None
    y, m, d = s[0:4], s[5:7], s[8:10]
    if not (is_digits(y) and is_digits(m) and is_digits(d)):
        return None
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        return None


def days_in_month(y, m):
    return calendar.monthrange(y, m)[1]


# --------------------------------------------------------------------------
# Time zones: instants are integer Unix seconds
# --------------------------------------------------------------------------

def instant_to_local(tz, t):
    """Instant -> aware local datetime in tz."""
    naive_utc = datetime(1970, 1, 1) + timedelta(seconds=t)
    return tz.fromutc(naive_utc.replace(tzinfo=tz))


def offset_at(tz, t):
    off = instant_to_local(tz, t).utcoffset()
    return int(off.total_seconds())


def local_stamp(tz, t):
    """YYYY-MM-DD HH:MM:SS local; past 9999-12-31 local (an instant near
    the end of time east of UTC) the year has five digits."""
    try:
        return instant_to_local(tz, t).strftime("%Y-%m-%d %H:%M:%S")
    except OverflowError:
        secs = t + offset_at(tz, t - 86400)
        days, sod = divmod(secs, 86400)
        jan1 = date(9999, 12, 31).toordinal() - EPOCH_ORDINAL + 1
        return (f"10000-01-{days - jan1 + 1:02d} {sod // 3600:02d}:"
                f"{sod // 60 % 60:02d}:{sod % 60:02d}")


def local_date_and_sod(tz, t):
    """Instant -> (local date, local seconds of day)."""
    loc = instant_to_local(tz, t)
    return loc.date(), loc.hour * 3600 + loc.minute * 60 + loc.second


def naive_local_to_instant(tz, y, mo, d, h, mi, s):
    """Naive local time -> instant, gap moved forward, fold = first (R10)."""
    local_secs = ((date(y, mo, d).toordinal() - EPOCH_ORDINAL) * 86400
                  + h * 3600 + mi * 60 + s)
    offsets = set()
    for fold in (0, 1):
        off = datetime(y, mo, d, h, mi, s, fold=fold, tzinfo=tz).utcoffset()
        offsets.add(int(off.total_seconds()))
    candidates = [local_secs - off for off in offsets]
    if any(c > MAX_INSTANT or c < -10**6 for c in candidates):
        # Out of range anyway (and maybe beyond what datetime can convert
        # back); no zone has a transition at 0001-01-01 or 9999-12-31.
        return min(candidates)
    valid = [local_secs - off for off in offsets
             if offset_at(tz, local_secs - off) == off]
    if valid:
        return min(valid)  # fold: the first occurrence
    # Gap: the offset rose from off_before to off_after at some instant T and
    # local times [T+off_before, T+off_after) do not exist. Moving the time
    # forward by the gap and reading it with off_after is the instant
    # local_secs - off_before.
    assert len(offsets) == 2, (y, mo, d, h, mi, s)
    off_before, off_after = min(offsets), max(offsets)
    t = local_secs - off_before
    assert offset_at(tz, t) == off_after
    loc = instant_to_local(tz, t)
    loc_secs = ((loc.date().toordinal() - EPOCH_ORDINAL) * 86400
                + loc.hour * 3600 + loc.minute * 60 + loc.second)
    assert loc_secs == local_secs + (off_after - off_before)
    return t


def parse_start(s, tz):
    """CDR start field -> instant, or None when malformed (R7)."""
    if is_digits(s):
        v = int(s)
        return v if v <= MAX_INSTANT else None
    if len(s) < 19:
        return None
    body, suffix = s[:19], s[19:]
    if (body[4] != "-" or body[7] != "-" or body[10] not in " T"
            or body[13] != ":" or body[16] != ":"):
        return None
    parts = [body[0:4], body[5:7], body[8:10], body[11:13], body[14:16],
             body[17:19]]
    if not all(is_digits(p) for p in parts):
        return None
    y, mo, d, h, mi, sec = (int(p) for p in parts)
    if y < 1 or not 1 <= mo <= 12 or not 1 <= d <= days_in_month(y, mo):
        return None
    if h > 23 or mi > 59 or sec > 59:
        return None
    local_secs = ((date(y, mo, d).toordinal() - EPOCH_ORDINAL) * 86400
                  + h * 3600 + mi * 60 + sec)
    if suffix == "":
        t = naive_local_to_instant(tz, y, mo, d, h, mi, sec)
    elif suffix == "Z":
        t = local_secs
    elif (len(suffix) == 6 and suffix[0] in "+-" and suffix[3] == ":"
          and is_digits(suffix[1:3]) and is_digits(suffix[4:6])):
        oh, om = int(suffix[1:3]), int(suffix[4:6])
        if oh > 23 or om > 59:
            return None
        off = oh * 3600 + om * 60
        t = local_secs - off if suffix[0] == "+" else local_secs + off
    else:
        return None
    if t < 0 or t > MAX_INSTANT:
        return None
    return t


def parse_local_time(s, tz):
    """'YYYY-MM-DD HH:MM:SS' local (outages) -> instant, or None."""
    if len(s) != 19 or s[10] != " ":
        return None
    return parse_start(s, tz)


# --------------------------------------------------------------------------
# Tariff loading
# --------------------------------------------------------------------------

class Tariff:
    pass


def read_text_lines(path):
    """(line_number, text) of non-empty lines, line ends removed."""
    with open(path, "rb") as f:
        data = f.read().decode("latin-1")
    out = []
    for i, line in enumerate(data.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if line != "":
            out.append((i, line))
    return out


def read_csv(path, columns, optional_last=False):
    """Rows of a tariff CSV as (line_number, fields). The header must name
    `columns` exactly (or all but the last, when optional_last)."""
    name = os.path.basename(path)
    lines = read_text_lines(path)
    if not lines:
        raise TariffError(f"{name}: empty file, header expected")
    hl, header = lines[0]
    hdr = header.split(",")
    ok = [columns] + ([columns[:-1]] if optional_last else [])
    if hdr not in ok:
        raise TariffError(f"{name}:{hl}: header {header!r} is not "
                          f"{','.join(columns)!r}")
    rows = []
    for ln, line in lines[1:]:
        f = line.split(",")
        if len(f) == len(hdr) or (optional_last and len(hdr) == len(columns)
                                  and len(f) == len(columns) - 1):
            rows.append((ln, f))
        else:
            raise TariffError(f"{name}:{ln}: {len(f)} fields, expected "
                              f"{len(columns)}")
    return rows


def parse_days(s, where):
    """bands.csv days -> set of day types ('mon'..'sun', 'holiday')."""
    out = set()
    for tok in s.split(";"):
        if tok == "*":
            out.update(WEEKDAYS)
            out.add("holiday")
        elif tok == "holiday":
            out.add("holiday")
        elif tok in WEEKDAYS:
            out.add(tok)
        elif "-" in tok and all(p in WEEKDAYS for p in tok.split("-", 1)):
            a, b = (WEEKDAYS.index(p) for p in tok.split("-", 1))
            i = a
            while True:  # ranges may wrap around the week (R14)
                out.add(WEEKDAYS[i])
                if i == b:
                    break
                i = (i + 1) % 7
        else:
            raise TariffError(f"{where}: bad day {tok!r}")
    return out


def parse_hhmm(s, where, allow_24=False):
    """'HH:MM' -> seconds of day."""
    if len(s) != 5 or s[2] != ":" or not is_digits(s[:2]) or not is_digits(
            s[3:]):
        raise TariffError(f"{where}: bad time {s!r}")
    h, m = int(s[:2]), int(s[3:])
    if allow_24 and h == 24 and m == 0:
        return 86400
    if h > 23 or m > 59:
        raise TariffError(f"{where}: bad time {s!r}")
    return h * 3600 + m * 60


def parse_count(s, lo, hi, where):
    if not is_digits(s) or not lo <= int(s) <= hi:
        raise TariffError(f"{where}: bad integer {s!r}")
    return int(s)


def parse_money(s, where):
    v = parse_amount(s)
    if v is None:
        raise TariffError(f"{where}: bad amount {s!r}")
    return v


def strip_plus(s):
    return s[1:] if s.startswith("+") else s


def load_tariff(tdir, subscribers_path=None):
    T = Tariff()
    p = lambda n: os.path.join(tdir, n)  # noqa: E731
    for req in ("tariff.conf", "zones.csv", "bands.csv", "plans.csv",
                "rates.csv"):
        if not os.path.isfile(p(req)):
            raise TariffError(f"{req}: missing")

    # tariff.conf
    conf = {"timezone": "UTC", "currency": "CNY", "decimals": "2",
            "band_split": "start", "proration": "half_month",
            "free_zones": ""}
    seen = set()
    for ln, line in read_text_lines(p("tariff.conf")):
        st = line.strip()
        if st == "" or st.startswith("#"):
            continue
        if "=" not in st:
            raise TariffError(f"tariff.conf:{ln}: no '='")
        k, v = (x.strip() for x in st.split("=", 1))
        if k not in conf:
            raise TariffError(f"tariff.conf:{ln}: unknown key {k!r}")
        if "#" in v:
            raise TariffError(f"tariff.conf:{ln}: '#' inside a value")
        if k in seen:
            raise TariffError(f"tariff.conf:{ln}: duplicate key {k!r}")
        seen.add(k)
        conf[k] = v
    T.tzname = conf["timezone"]
    try:
        T.tz = ZoneInfo(T.tzname)
    except Exception:
        raise TariffError(f"tariff.conf: unknown timezone {T.tzname!r}")
    T.currency = conf["currency"]
    if conf["decimals"] not in [str(i) for i in range(7)]:
        raise TariffError(f"tariff.conf: bad decimals {conf['decimals']!r}")
    T.decimals = int(conf["decimals"])
    if conf["band_split"] not in ("start", "split"):
        raise TariffError("tariff.conf: bad band_split")
    T.band_split = conf["band_split"]
    if conf["proration"] not in ("half_month", "daily", "none"):
        raise TariffError("tariff.conf: bad proration")
    T.proration = conf["proration"]
    T.free_zones = set()
    if conf["free_zones"] != "":
        for z in conf["free_zones"].split(","):
            z = z.strip()
            if z == "":
                raise TariffError("tariff.conf: empty name in free_zones")
            T.free_zones.add(z)

    # zones.csv
    T.zone_exact, T.zone_prefix = {}, {}
    for ln, (prefix, zone) in read_csv(p("zones.csv"), ["prefix", "zone"]):
        w = f"zones.csv:{ln}"
        exact = prefix.startswith("=")
        body = prefix[1:] if exact else prefix
        if body == "" or any(c not in DIGITS + "*#" for c in body):
            raise TariffError(f"{w}: bad prefix {prefix!r}")
        if zone == "" or zone == "*":
            raise TariffError(f"{w}: bad zone {zone!r}")
        table = T.zone_exact if exact else T.zone_prefix
        if body in table:
            raise TariffError(f"{w}: duplicate prefix {prefix!r}")
        table[body] = zone
    T.zone_names = set(T.zone_exact.values()) | set(T.zone_prefix.values())

    # bands.csv
    T.bands = []
    for ln, (band, days, frm, to) in read_csv(p("bands.csv"),
                                              ["band", "days", "from", "to"]):
        w = f"bands.csv:{ln}"
        if band == "" or band == "*":
            raise TariffError(f"{w}: bad band {band!r}")
        f_s = parse_hhmm(frm, w)
        t_s = parse_hhmm(to, w, allow_24=True)
        if not f_s < t_s:
            raise TariffError(f"{w}: from >= to")
        T.bands.append((band, parse_days(days, w), f_s, t_s))
    T.band_names = {b[0] for b in T.bands}
    for daytype in WEEKDAYS + ["holiday"]:
        for minute in range(1440):
            if not any(daytype in ds and f <= minute * 60 < t
                       for (_, ds, f, t) in T.bands):
                raise TariffError(f"bands.csv: {daytype} {minute // 60:02d}:"
                                  f"{minute % 60:02d} not covered")
    T.boundaries = sorted({0, 86400} | {b[2] for b in T.bands}
                          | {b[3] for b in T.bands})

    # holidays.csv
    T.holidays = set()
    if os.path.isfile(p("holidays.csv")):
        for ln, (d, _name) in read_csv(p("holidays.csv"), ["date", "name"]):
            dd = parse_date(d)
            if dd is None or dd in T.holidays:
                raise TariffError(f"holidays.csv:{ln}: bad or duplicate date")
            T.holidays.add(dd)

    # plans.csv
    T.plans = {}
    for ln, (plan, fee) in read_csv(p("plans.csv"), ["plan", "monthly_fee"]):
        if plan == "" or plan in T.plans:
            raise TariffError(f"plans.csv:{ln}: bad or duplicate plan")
        T.plans[plan] = parse_money(fee, f"plans.csv:{ln}")

    # rates.csv
    T.rates = []
    keys = set()
    cols = ["plan", "service", "zone", "band", "connect", "price", "unit",
            "first", "increment", "from"]
    for ln, f in read_csv(p("rates.csv"), cols, optional_last=True):
        w = f"rates.csv:{ln}"
        r = {"line": ln, "plan": f[0], "service": f[1], "zone": f[2],
             "band": f[3]}
        if r["plan"] not in T.plans:
            raise TariffError(f"{w}: unknown plan {r['plan']!r}")
        if r["service"] not in SERVICES:
            raise TariffError(f"{w}: bad service")
        if r["zone"] == "":
            raise TariffError(f"{w}: empty zone")
        if r["band"] == "":
            raise TariffError(f"{w}: empty band")
        r["connect"] = parse_money(f[4], w)
        r["price"] = parse_money(f[5], w)
        r["unit"] = parse_count(f[6], 1, 10**12, w)
        r["first"] = parse_count(f[7], 0, 10**12, w)
        r["increment"] = parse_count(f[8], 1, 10**12, w)
        if r["service"] == "sms" and (r["unit"], r["first"],
                                      r["increment"]) != (1, 1, 1):
            raise TariffError(f"{w}: sms needs unit, first, increment = 1")
        r["from"] = None
        if len(f) == 10 and f[9] != "":
            r["from"] = parse_date(f[9])
            if r["from"] is None:
                raise TariffError(f"{w}: bad from")
        key = (r["plan"], r["service"], r["zone"], r["band"], r["from"])
        if key in keys:
            raise TariffError(f"{w}: duplicate rate key")
        keys.add(key)
        T.rates.append(r)

    # packages.csv
    T.packages = {}
    if os.path.isfile(p("packages.csv")):
        cols = ["package", "monthly_fee", "service", "zone", "band", "amount"]
        for ln, f in read_csv(p("packages.csv"), cols):
            w = f"packages.csv:{ln}"
            name = f[0]
            if name == "":
                raise TariffError(f"{w}: empty package")
            fee = parse_money(f[1], w)
            if f[2] not in SERVICES or f[3] == "" or f[4] == "":
                raise TariffError(f"{w}: bad service/zone/band")
            amount = parse_count(f[5], 0, 10**18, w)
            if name not in T.packages:
                T.packages[name] = {"fee": fee, "allowances": []}
            T.packages[name]["allowances"].append(
                {"service": f[2], "zone": f[3], "band": f[4],
                 "amount": amount})

    # subscribers.csv
    sp = subscribers_path or p("subscribers.csv")
    if not os.path.isfile(sp):
        raise TariffError(f"{sp}: missing")
    T.subs = {}  # number -> [row, ...]
    T.sub_rows = []
    cols = ["subscriber", "account", "plan", "packages", "from", "to"]
    for ln, f in read_csv(sp, cols):
        w = f"subscribers.csv:{ln}"
        num = strip_plus(f[0])
        if not is_digits(num):
            raise TariffError(f"{w}: bad subscriber")
        if f[1] == "":
            raise TariffError(f"{w}: empty account")
        if f[2] not in T.plans:
            raise TariffError(f"{w}: unknown plan {f[2]!r}")
        pk = [] if f[3] == "" else f[3].split(";")
        for x in pk:
            if x not in T.packages:
                raise TariffError(f"{w}: unknown package {x!r}")
        if len(set(pk)) != len(pk):
            raise TariffError(f"{w}: package listed twice")
        frm = parse_date(f[4])
        to = None if f[5] == "" else parse_date(f[5])
        if frm is None or (f[5] != "" and to is None):
            raise TariffError(f"{w}: bad date")
        if to is not None and to < frm:
            raise TariffError(f"{w}: to before from")
        row = {"line": ln, "index": len(T.sub_rows), "number": num,
               "account": f[1], "plan": f[2], "packages": pk, "from": frm,
               "to": to}
        for other in T.subs.get(num, []):
            if row_overlaps(other, row["from"], row["to"]):
                raise TariffError(f"{w}: overlaps line {other['line']}")
        T.subs.setdefault(num, []).append(row)
        T.sub_rows.append(row)

    # outages.csv
    T.outages = []
    if os.path.isfile(p("outages.csv")):
        for ln, (num, frm, to) in read_csv(p("outages.csv"),
                                           ["subscriber", "from", "to"]):
            w = f"outages.csv:{ln}"
            num = strip_plus(num)
            if num not in T.subs:
                raise TariffError(f"{w}: subscriber has no rows")
            a, b = parse_local_time(frm, T.tz), parse_local_time(to, T.tz)
            # from < to as written (wall clock; the fixed format compares
            # as text); a gap can still make the instants meet (R22).
            if a is None or b is None or not frm < to:
                raise TariffError(f"{w}: bad times")
            T.outages.append({"line": ln, "number": num, "from": a, "to": b})
    return T


def row_overlaps(row, first, last):
    """Does subscriber row [from, to] meet the date range [first, last]
    (last None = open)?"""
    if last is not None and row["from"] > last:
        return False
    if row["to"] is not None and row["to"] < first:
        return False
    return True


def active_row(T, number, d):
    for row in T.subs.get(number, []):
        if row["from"] <= d and (row["to"] is None or d <= row["to"]):
            return row
    return None


# --------------------------------------------------------------------------
# Zones, bands, rates (SPEC section 4)
# --------------------------------------------------------------------------

def find_zone(T, dest):
    if dest in T.zone_exact:
        return T.zone_exact[dest]
    best = None
    for prefix, zone in T.zone_prefix.items():
        if dest.startswith(prefix) and (best is None
                                        or len(prefix) > len(best[0])):
            best = (prefix, zone)
    return None if best is None else best[1]


def band_at(T, t):
    d, sod = local_date_and_sod(T.tz, t)
    daytype = "holiday" if d in T.holidays else WEEKDAYS[d.weekday()]
    for band, days, f, to in T.bands:
        if daytype in days and f <= sod < to:
            return band
    raise AssertionError("bands not covering")  # validated at load


def find_rate(T, plan, service, zone, band, local_date):
    for z, b in ((zone, band), (zone, "*"), ("*", band), ("*", "*")):
        best = None
        for r in T.rates:
            if (r["plan"], r["service"], r["zone"], r["band"]) != (
                    plan, service, z, b):
                continue
            if r["from"] is not None and r["from"] > local_date:
                continue
            if best is None or (r["from"] or date.min) > (best["from"]
                                                         or date.min):
                best = r
        if best is not None:
            return best
    return None


def billed_quantity(r, d):
    if d == 0:
        return 0
    if d <= r["first"]:
        return r["first"]
    steps = -(-(d - r["first"]) // r["increment"])  # ceil
    return r["first"] + steps * r["increment"]


def split_pieces(T, start, q):
    """Cut [start, start+q) at band boundaries: [(band, seconds), ...]."""
    if q > 10**8:
        raise NotImplementedError("ref: split of a call longer than 10^8 s")
    pieces = []
    t, end = start, start + q
    while t < end:
        band = band_at(T, t)
        _, sod = local_date_and_sod(T.tz, t)
        nb = min(b for b in T.boundaries if b > sod)
        cand = t + (nb - sod)
        off = offset_at(T.tz, t)
        assert off % 60 == 0
        if offset_at(T.tz, cand) != off:
            lo, hi = t, cand  # offset(lo) == off, offset(hi) != off
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_at(T.tz, mid) == off:
                    lo = mid
                else:
                    hi = mid
            cand = hi
        nxt = min(end, cand)
        pieces.append((band, nxt - t))
        t = nxt
    return pieces


# --------------------------------------------------------------------------
# Reading CDR inputs (SPEC section 3)
# --------------------------------------------------------------------------

def input_files(inputs):
    for inp in inputs:
        if inp == "-":
            yield "-"
        elif os.path.isdir(inp):
            for name in sorted(os.listdir(inp)):
                full = os.path.join(inp, name)
                if os.path.isfile(full):  # regular files (symlinks followed)
                    yield full
        else:
            yield inp


def read_records(inputs):
    """All record lines (line ends removed, headers and empty lines gone),
    as (path, line number, line)."""
    out = []
    for path in input_files(inputs):
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        text = data.decode("latin-1")
        first = True
        for lineno, line in enumerate(text.split("\n"), 1):
            if line.endswith("\r"):
                line = line[:-1]
            if line == "":
                continue
            if first:
                first = False
                if line.startswith("id,"):
                    continue
            out.append((path, lineno, line))
    return out


EXPECT = {
    "id": "expected 1 to 64 bytes",
    "subscriber": "expected digits after an optional +",
    "service": "expected voice, sms or data",
    "start": "expected YYYY-MM-DD HH:MM:SS (or with T, Z, +HH:MM, or Unix "
             "seconds) from 1970 to 9999",
    "destination": "expected 0-9, * or # after an optional +",
    "duration": "expected whole seconds from 0 below 10^12",
    "volume": "expected whole bytes from 0 below 10^12",
}


def bad_field(name, value):
    """(reason, detail) of a field that failed: its value, cut at 64."""
    shown = value[:64] + ("..." if len(value) > 64 else "")
    return None, ("malformed:" + name,
                  f'{name} "{shown}": {EXPECT[name]}')


def parse_record(line, T):
    """-> (dict, None) or (None, (reason, detail)) for step 1."""
    f = line.split(",")
    if len(f) != 7:
        return None, ("malformed:columns",
                      f"{len(f)} field{'' if len(f) == 1 else 's'}, "
                      "expected 7")
    rid, sub0, service, start, dest0, dur, vol = f
    if not 1 <= len(rid) <= 64:
        return bad_field("id", rid)
    sub = strip_plus(sub0)
    if not is_digits(sub):
        return bad_field("subscriber", sub0)
    if service not in SERVICES:
        return bad_field("service", service)
    t = parse_start(start, T.tz)
    if t is None:
        return bad_field("start", start)
    dest = dest0
    if service in ("voice", "sms"):
        dest = strip_plus(dest)
        if dest == "" or any(c not in DIGITS + "*#" for c in dest):
            return bad_field("destination", dest0)
    if not is_digits(dur) or int(dur) >= 10**12:
        return bad_field("duration", dur)
    if not is_digits(vol) or int(vol) >= 10**12:
        return bad_field("volume", vol)
    return {"line": line, "id": rid, "sub": sub, "service": service,
            "t": t, "dest": dest, "duration": int(dur),
            "volume": int(vol)}, None


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def parse_period(s):
    if (len(s) != 7 or s[4] != "-" or not is_digits(s[:4])
            or not is_digits(s[5:])):
        return None
    y, m = int(s[:4]), int(s[5:])
    if y < 1970 or y > 9998 or not 1 <= m <= 12:
        return None
    return y, m


def new_account():
    return {"records": 0, "late": 0, "voice_q": 0, "sms_q": 0, "data_q": 0,
            "voice": 0, "sms": 0, "data": 0, "allow": 0, "recurring": 0,
            "outage": 0}


def rate_all(T, period, lines):
    y, m = period
    p_first = date(y, m, 1)
    p_last = date(y, m, days_in_month(y, m))
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    p_start = naive_local_to_instant(T.tz, y, m, 1, 0, 0, 0)
    p_end = naive_local_to_instant(T.tz, ny, nm, 1, 0, 0, 0)

    rejects = []   # (path, line number, line, reason, detail)
    rated = []     # dict per rated record

    def reject(rec, reason, detail):
        rejects.append((rec["path"], rec["lineno"], rec["line"], reason,
                        detail))

    def local_str(t):
        return local_stamp(T.tz, t)

    # Step 1: parse.
    parsed = []
    for path, lineno, line in lines:
        rec, why = parse_record(line, T)
        if rec is None:
            rejects.append((path, lineno, line) + why)
        else:
            rec["path"], rec["lineno"] = path, lineno
            parsed.append(rec)

    # Step 2: duplicates; the bytewise smallest whole line is kept.
    by_id = {}
    for rec in parsed:
        by_id.setdefault(rec["id"], []).append(rec)
    kept = []
    for rid, recs in by_id.items():
        recs = sorted(recs, key=lambda r: r["line"])
        kept.append(recs[0])
        for r in recs[1:]:
            reject(r, "duplicate",
                   f"duplicate of {recs[0]['path']}:{recs[0]['lineno']}")

    for rec in kept:
        t, service = rec["t"], rec["service"]
        # Step 3: after the period.
        if t >= p_end:
            reject(rec, "after_period",
                   f"starts {local_str(t)} local, after the period "
                   f"{y:04d}-{m:02d}")
            continue
        late = t < p_start
        local_date, _ = local_date_and_sod(T.tz, t)
        # Step 4: zone.
        if service in ("voice", "sms"):
            zone = find_zone(T, rec["dest"])
            if zone is None:
                reject(rec, "no_zone", "no zones.csv prefix matches "
                       f"destination {rec['dest'][:64]}")
                continue
        else:
            zone = "*"
        # Step 5: free zones.
        if service in ("voice", "sms") and zone in T.free_zones:
            row = active_row(T, rec["sub"], local_date)
            rated.append({"rec": rec, "row": row,
                          "account": row["account"] if row else "-",
                          "zone": zone, "band": "*", "q": 0, "charge": 0,
                          "late": late, "rate": None})
            continue
        # Step 6: subscriber row.
        row = active_row(T, rec["sub"], local_date)
        if row is None:
            if rec["sub"] in T.subs:
                reject(rec, "inactive", f"subscriber {rec['sub']} has no "
                       f"row active on {local_date.isoformat()}")
            else:
                reject(rec, "unknown_subscriber", f"subscriber "
                       f"{rec['sub']} is not in subscribers.csv")
            continue
        # Step 7: band of the start instant.
        band = band_at(T, t)
        # Step 8: rate row.
        r = find_rate(T, row["plan"], service, zone, band, local_date)
        if r is None:
            reject(rec, "no_rate", f"no rate for plan {row['plan']}, "
                   f"{service}, zone {zone}, band {band}")
            continue
        # Step 9: billed quantity.
        d = {"voice": rec["duration"], "sms": 1,
             "data": rec["volume"]}[service]
        q = billed_quantity(r, d)
        # Step 10: charge.
        # What goes into allowance buckets: (rate row, band, units).
        pieces = [(r, band, q)]
        if q == 0:
            charge = 0
        elif service == "voice" and T.band_split == "split":
            exact = Fraction(0)
            missing = False
            pieces = []
            for pband, secs in split_pieces(T, t, q):
                pr = find_rate(T, row["plan"], service, zone, pband,
                               local_date)
                if pr is None:
                    missing = True
                    break
                exact += Fraction(pr["price"] * secs, pr["unit"])
                pieces.append((pr, pband, secs))
            if missing:
                reject(rec, "no_rate", "no rate for a band the call "
                       f"crosses (plan {row['plan']}, {service}, zone "
                       f"{zone}, split from band {band})")
                continue
            charge = r["connect"] + round_half_up(exact)
        else:
            charge = r["connect"] + round_half_up(
                Fraction(r["price"] * q, r["unit"]))
        rated.append({"rec": rec, "row": row, "account": row["account"],
                      "zone": zone, "band": band, "q": q, "charge": charge,
                      "late": late, "rate": r, "pieces": pieces})

    # Per-account sums of rated records.
    accounts = {}
    for it in rated:
        a = accounts.setdefault(it["account"], new_account())
        a["records"] += 1
        a["late"] += 1 if it["late"] else 0
        svc = it["rec"]["service"]
        a[svc + "_q"] += it["q"]
        a[svc] += it["charge"]

    # Section 7, per subscriber row.
    dim = days_in_month(y, m)
    row_plan_fee = {}  # row index -> prorated plan fee (micros)
    for row in T.sub_rows:
        if not row_overlaps(row, p_first, p_last):
            continue
        factor = proration_factor(T, row, p_first, p_last, dim)
        a = accounts.setdefault(row["account"], new_account())
        plan_fee = round_half_up(T.plans[row["plan"]] * factor)
        row_plan_fee[row["index"]] = plan_fee
        a["recurring"] += plan_fee
        for pk in row["packages"]:
            a["recurring"] += round_half_up(T.packages[pk]["fee"] * factor)

        # Allowances.
        buckets = {}  # (rate line, service, zone, band) -> quantity
        for it in rated:
            if it["row"] is not row or it["late"] or it["rate"] is None:
                continue
            for pr, pband, units in it["pieces"]:
                key = (pr["line"], it["rec"]["service"], it["zone"], pband)
                buckets[key] = buckets.get(key, 0) + units
        rate_by_line = {r["line"]: r for r in T.rates}
        for pk in row["packages"]:
            for al in T.packages[pk]["allowances"]:
                left = al["amount"]
                match = [k for k in buckets
                         if k[1] == al["service"]
                         and al["zone"] in ("*", k[2])
                         and al["band"] in ("*", k[3])]
                match.sort(key=lambda k: (
                    -Fraction(rate_by_line[k[0]]["price"],
                              rate_by_line[k[0]]["unit"]),
                    k[2], k[3], k[0]))
                for k in match:
                    if left == 0:
                        break
                    take = min(left, buckets[k])
                    if take == 0:
                        continue
                    rr = rate_by_line[k[0]]
                    a["allow"] += round_half_up(
                        Fraction(rr["price"] * take, rr["unit"]))
                    buckets[k] -= take
                    left -= take

    # Outage credits: cut at the period and at the number's rows, each
    # part rounded at its own row's plan fee; per row capped at its
    # prorated plan fee.
    outage_by_row = {}
    for o in T.outages:
        a0, b0 = max(o["from"], p_start), min(o["to"], p_end)
        for row in T.subs[o["number"]]:
            ra = naive_local_to_instant(T.tz, row["from"].year,
                                        row["from"].month, row["from"].day,
                                        0, 0, 0)
            if row["to"] is None:
                rb = b0
            else:
                nd = row["to"] + timedelta(days=1)
                rb = naive_local_to_instant(T.tz, nd.year, nd.month, nd.day,
                                            0, 0, 0)
            secs = min(b0, rb) - max(a0, ra)
            if secs <= 0:
                continue
            credit = round_half_up(Fraction(secs * T.plans[row["plan"]],
                                            30 * 86400))
            outage_by_row[row["index"]] = outage_by_row.get(row["index"],
                                                            0) + credit
    for idx, credit in outage_by_row.items():
        row = T.sub_rows[idx]
        cap = row_plan_fee.get(idx, 0)
        credit = min(credit, cap)
        if credit and row["account"] in accounts:
            accounts[row["account"]]["outage"] += credit
        else:
            assert credit == 0

    return accounts, rated, rejects


def proration_factor(T, row, p_first, p_last, dim):
    subs = T.subs[row["number"]]
    # Only rows of the same number and the same account make a plan change.
    subs = [o for o in subs if o["account"] == row["account"]]
    change_at_start = any(o is not row and o["to"] is not None
                          and o["to"] + timedelta(days=1) == row["from"]
                          for o in subs)
    change_at_end = row["to"] is not None and any(
        o is not row and o["from"] == row["to"] + timedelta(days=1)
        for o in subs)
    mode = "daily" if (change_at_start or change_at_end) else T.proration
    if mode == "none":
        return Fraction(1)
    if mode == "daily":
        first = max(row["from"], p_first)
        last = p_last if row["to"] is None else min(row["to"], p_last)
        return Fraction((last - first).days + 1, dim)
    assert mode == "half_month"
    half = False
    if p_first <= row["from"] <= p_last and row["from"].day >= 16:
        half = True
    if row["to"] is not None and p_first <= row["to"] <= p_last \
            and row["to"].day <= 15:
        half = True
    return Fraction(1, 2) if half else Fraction(1)


def utf8_len(b, i):
    """Length of the valid UTF-8 sequence at b[i] that is no control, or 0
    (the byte is then written \\xHH)."""
    c = b[i]
    if 0x20 <= c < 0x7F:
        return 0 if c == 0x5C else 1
    if c < 0xC2 or c > 0xF4:
        return 0
    k = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
    if i + k > len(b) or any(b[j] & 0xC0 != 0x80 for j in range(i + 1, i + k)):
        return 0
    c1 = b[i + 1]
    if ((c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 > 0x9F)
            or (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 > 0x8F)):
        return 0
    return k


def csv_text(s, quote=False):
    """A CSV field of text (a latin-1 str of bytes): escapes, then quotes."""
    b = s.encode("latin-1")
    out, i = [], 0
    while i < len(b):
        k = utf8_len(b, i)
        if k == 0:
            out.append(f"\\x{b[i]:02X}")
            i += 1
        else:
            out.append(b[i:i + k].decode("latin-1"))
            i += k
    t = "".join(out)
    if quote or "," in t or '"' in t:
        t = '"' + t.replace('"', '""') + '"'
    return t


def write_outputs(T, period_s, accounts, rated, rejects, args):
    dec = T.decimals
    out = [TOTALS_HEADER]
    for acct in sorted(accounts):
        a = accounts[acct]
        cols = [micros_to_units(a[k], dec) for k in
                ("voice", "sms", "data", "allow", "recurring", "outage")]
        v, s, d, al, rc, oc = cols
        total = v + s + d - al + rc - oc
        out.append(",".join([acct, period_s, str(a["records"]),
                             str(a["late"]), str(a["voice_q"]),
                             str(a["sms_q"]), str(a["data_q"])]
                            + [fmt_fixed(c, dec) for c in cols]
                            + [fmt_fixed(total, dec)]))
    totals = ("\n".join(out) + "\n").encode("latin-1")
    if args.out and args.out != "-":
        with open(args.out, "wb") as f:
            f.write(totals)
    else:
        sys.stdout.buffer.write(totals)
    if args.rejects:
        with open(args.rejects, "wb") as f:
            f.write(b"file,line,reason,detail,record\n")
            for path, lineno, line, reason, detail in sorted(
                    rejects, key=lambda j: (j[0].encode(), j[1])):
                f.write(",".join([
                    csv_text(path.encode().decode("latin-1")), str(lineno),
                    reason, csv_text(detail), csv_text(line, True)])
                    .encode("latin-1") + b"\n")
    if args.itemize:
        rows = []
        for it in rated:
            rec = it["rec"]
            row = ",".join([
                csv_text(rec["id"]), csv_text(it["account"]), rec["sub"],
                rec["service"],
                local_stamp(T.tz, rec["t"]),
                csv_text(rec["dest"]), csv_text(it["zone"]),
                csv_text(it["band"]),
                csv_text(it["row"]["plan"] if it["row"] else "-"),
                str(it["q"]), fmt_fixed(it["charge"], 6)])
            rows.append((it["account"], rec["t"], row))
        with open(args.itemize, "wb") as f:
            f.write(b"id,account,subscriber,service,start,destination,zone,"
                    b"band,plan,quantity,charge\n")
            for _, _, row in sorted(rows):
                f.write(row.encode("latin-1") + b"\n")


def main(argv):
    ap = argparse.ArgumentParser(prog="ref_rate.py")
    ap.add_argument("--tariff", required=True)
    ap.add_argument("--period", required=True)
    ap.add_argument("--subscribers")
    ap.add_argument("--out")
    ap.add_argument("--rejects")
    ap.add_argument("--itemize")
    ap.add_argument("inputs", nargs="+")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    period = parse_period(args.period)
    if period is None:
        print("ref_rate: bad --period", file=sys.stderr)
        return 2
    try:
        T = load_tariff(args.tariff, args.subscribers)
    except (TariffError, OSError) as e:
        print(f"ref_rate: tariff: {e}", file=sys.stderr)
        return 1
    try:
        lines = read_records(args.inputs)
    except OSError as e:
        print(f"ref_rate: input: {e}", file=sys.stderr)
        return 1
    accounts, rated, rejects = rate_all(T, period, lines)
    write_outputs(T, args.period, accounts, rated, rejects, args)
    by_reason = {}
    for _, _, _, reason, _ in rejects:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    print(f"ref_rate: read {len(lines)}, rated {len(rated)}, rejected "
          f"{len(rejects)} "
          + " ".join(f"{k}={v}" for k, v in sorted(by_reason.items())),
          file=sys.stderr)
    assert len(lines) == len(rated) + len(rejects)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
