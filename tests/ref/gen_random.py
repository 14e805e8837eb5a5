#!/usr/bin/env python3
"""gen_random.py - random but valid cdrate inputs for differential tests.

  python3 tests/ref/gen_random.py --seed N --out DIR [--period YYYY-MM]

writes DIR/tariff/ (a valid tariff directory), DIR/cdrs/ (2-4 CDR files of
200-2000 records each) and DIR/period (the period, one line). The output
depends on the seed and period only (one random.Random(seed), no sets
iterated, no clock).

The CDRs mix valid records with every reject reason, duplicates (exact
copies and same-id variants, across files), late records, starts in every
accepted form (naive " " and "T", Z, +-HH:MM, Unix seconds), times near DST
transitions, band boundaries and period boundaries, "+" prefixes, "\r\n"
files, empty lines and headers.

The generator stays away from points where ref_rate.py's Readings are a
choice the C program might make differently (leading zeros in numbers, a
header after empty lines, "+" in subscribers.csv, split calls longer than
10^8 s, voice no_rate under band_split = split). Its outputs are inputs, not
expectations: the oracle decides.

SPEC 7 is exercised on purpose: split tariffs nearly always carry a voice
package (some of it for one band only, like an idle-time bundle), so split
calls across band boundaries fill several buckets; numbers change plan
within an account and also pass to another account the next day; and
outages are laid across row ends, row changes, gaps and disconnections.
"""

import argparse
import os
import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

TIMEZONES = ["UTC", "Asia/Shanghai", "Europe/Berlin", "America/New_York"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

# (prefix as written in zones.csv, zone). Overlapping prefixes on purpose.
ZONE_POOL = [
    ("86", "china"), ("8610", "beijing"), ("8621", "shanghai"),
    ("861", "china_mobile"), ("1", "nanp"), ("1212", "nyc"),
    ("1800", "tollfree"), ("44", "uk"), ("447", "uk_mobile"),
    ("49", "de"), ("4930", "berlin"), ("4915", "de_mobile"),
    ("*100", "svc"), ("#", "hash"), ("00", "intl"),
]
EMERGENCY = ["110", "119", "120", "122"]


class Gen:
    def __init__(self, seed, period):
        self.r = random.Random(seed)
        self.seed = seed
        y, m = (int(x) for x in period.split("-"))
        self.py, self.pm = y, m
        self.p_first = date(y, m, 1)
        nxt = date(y + 1, 1, 1) if m == 12 else date(y, m + 1, 1)
        self.p_next = nxt
        self.p_last = nxt - timedelta(days=1)
        self.period = period

    # ------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------
    def amount(self, lo_cents=0, hi_cents=10000, fine=False):
        """A decimal string; `fine` allows up to 6 decimals."""
        r = self.r
        if fine and r.random() < 0.4:
            micros = r.randint(0, 2_000_000)
            s = f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
            return s.rstrip("0").rstrip(".") if r.random() < 0.7 else s
        cents = r.randint(lo_cents, hi_cents)
        s = f"{cents // 100}.{cents % 100:02d}"
        if r.random() < 0.5:
            s = s.rstrip("0").rstrip(".")
        return s

    def rdate(self, lo, hi):
        return lo + timedelta(days=self.r.randint(0, (hi - lo).days))

    def local_naive(self, d, secs):
        h, rem = divmod(secs, 3600)
        return datetime(d.year, d.month, d.day, h, rem // 60, rem % 60)

    def to_instant(self, naive):
        """Naive local -> Unix seconds (fold 0: gap forward, fold first)."""
        off = naive.replace(tzinfo=self.tz, fold=0).utcoffset()
        return int((naive - off - datetime(1970, 1, 1)).total_seconds())

    def fmt_start(self, naive, style=None):
        """Write the naive local time in one of the accepted forms."""
        r = self.r
        if style is None:
            style = r.choices(["space", "T", "Z", "offset", "unix"],
                              [50, 15, 12, 13, 10])[0]
        if style == "space":
            return naive.strftime("%Y-%m-%d %H:%M:%S")
        if style == "T":
            return naive.strftime("%Y-%m-%dT%H:%M:%S")
        t = self.to_instant(naive)
        if style == "unix":
            return str(t)
        if style == "Z":
            u = datetime(1970, 1, 1) + timedelta(seconds=t)
            return u.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
        # an explicit offset, any plausible one
        off_min = r.choice([-600, -300, -240, -210, 0, 60, 120, 330, 480,
                            525, 765, 840])
        u = datetime(1970, 1, 1) + timedelta(seconds=t + off_min * 60)
        sign = "+" if off_min >= 0 else "-"
        a = abs(off_min)
        sep = r.choice([" ", "T"])
        return (u.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
                + f"{sign}{a // 60:02d}:{a % 60:02d}")

    # ------------------------------------------------------------------
    # tariff
    # ------------------------------------------------------------------
    def make_tariff(self):
        r = self.r
        self.decimals = r.choices(range(7), [8, 3, 40, 6, 8, 3, 8])[0]
        self.band_split = r.choice(["start", "split"])
        self.proration = r.choice(["half_month", "daily", "none"])
        self.free = r.random() < 0.85

        # zones: a handful from the pool, parents kept so prefixes overlap
        pool = ZONE_POOL[:]
        r.shuffle(pool)
        chosen = pool[: r.randint(5, 9)]
        names = {z for _, z in chosen}
        for pfx, z in ZONE_POOL:  # make sure some parent prefixes exist
            if z in ("china", "nanp", "de") and z not in names \
                    and r.random() < 0.7:
                chosen.append((pfx, z))
                names.add(z)
        self.zones = chosen
        # exact numbers: emergency ones, plus a number inside a prefix
        self.exact = [("=" + e, "emergency") for e in EMERGENCY
                      if r.random() < 0.8]
        if not self.exact:
            self.exact = [("=110", "emergency")]
        if r.random() < 0.6:
            pfx, _ = r.choice(self.zones)
            self.exact.append(("=" + pfx + "999", "special"))
        self.zone_names = sorted({z for _, z in self.zones + self.exact})

        self.make_bands()
        self.make_holidays()

        # plans
        plan_names = ["basic", "Gold", "plus_2", "ünlimited", "silver"]
        r.shuffle(plan_names)
        self.plans = [(p, self.amount(0, 9999, fine=True))
                      for p in plan_names[: r.randint(2, 3)]]
        self.make_rates()
        self.make_packages()
        self.make_subscribers()
        self.make_outages()

    def make_bands(self):
        r = self.r
        hm = lambda m: f"{m // 60:02d}:{m % 60:02d}"  # noqa: E731
        # boundary minutes, some around the DST hours 01:00-03:30
        a = r.choice([150, 120, 180, 420, 450, 480, 510])
        b = r.choice([1080, 1140, 1185, 1200, 1320])
        kind = r.randint(0, 4)
        rows = []
        if kind == 0:
            rows = [("peak", "mon-fri", hm(a), hm(b)),
                    ("offpeak", "*", "00:00", "24:00")]
        elif kind == 1:
            rows = [("holiday", "holiday", "00:00", "24:00"),
                    ("peak", "mon-fri", hm(a), hm(b)),
                    ("offpeak", "*", "00:00", "24:00")]
        elif kind == 4:
            rows = [("weekend", "sat-sun;holiday", "00:00", "24:00"),
                    ("peak", "mon-fri", hm(a), hm(b)),
                    ("offpeak", "mon;tue-fri", "00:00", "24:00")]
        elif kind == 2:
            rows = [("night", "*", "00:00", hm(a)),
                    ("day", "*", hm(a), hm(b)),
                    ("night", "*", hm(b), "24:00")]
        else:
            rows = [("peak", "mon;tue;wed-fri", hm(a), hm(b)),
                    ("evening", "mon-fri;holiday", hm(b), "24:00"),
                    ("night", "*", "00:00", "24:00")]
        self.bands = rows
        self.band_names = []
        for name, *_ in rows:
            if name not in self.band_names:
                self.band_names.append(name)
        self.boundary_minutes = sorted({a, b})

    def make_holidays(self):
        r = self.r
        n = r.randint(1, 2)
        cand = [self.rdate(self.p_first - timedelta(days=20), self.p_last)
                for _ in range(n)]
        self.holidays = sorted(set(cand))

    def make_rates(self):
        r = self.r
        rows = []
        keys = set()

        def add(plan, svc, zone, band, frm=""):
            key = (plan, svc, zone, band, frm)
            if key in keys:
                return
            keys.add(key)
            if svc == "sms":
                unit, first, inc = 1, 1, 1
            elif svc == "voice":
                unit = r.choice([1, 60, 60, 60, 30])
                first = r.choice([0, 1, 30, 60, 60])
                inc = r.choice([1, 6, 30, 60, 60])
            else:
                unit = r.choice([1, 1000, 1024, 1000000, 1048576, 1048576,
                                 1000000])
                first = r.choice([0, 1, 1024, 10240])
                inc = r.choice([1, 512, 1024, 1024])
            connect = "0" if r.random() < 0.6 else self.amount(0, 50,
                                                               fine=True)
            price = self.amount(0, 200, fine=True)
            rows.append([plan, svc, zone, band, connect, price, str(unit),
                         str(first), str(inc), frm])

        def rdated():
            d = self.rdate(self.p_first - timedelta(days=40), self.p_last)
            return d.isoformat()

        zones_plus = self.zone_names + ["*"]
        bands_plus = self.band_names + ["*"]
        for plan, _fee in self.plans:
            # voice
            has_voice = r.random() < 0.85 or self.band_split == "split"
            if has_voice:
                if self.band_split == "split" or r.random() < 0.8:
                    add(plan, "voice", "*", "*")
                for _ in range(r.randint(1, 6)):
                    add(plan, "voice", r.choice(zones_plus),
                        r.choice(bands_plus),
                        rdated() if r.random() < 0.3 else "")
            # sms
            if r.random() < 0.9:
                if r.random() < 0.7:
                    add(plan, "sms", "*", "*")
                for _ in range(r.randint(0, 3)):
                    add(plan, "sms", r.choice(zones_plus),
                        r.choice(bands_plus),
                        rdated() if r.random() < 0.3 else "")
            # data (zone is always *)
            if r.random() < 0.9:
                if r.random() < 0.6:
                    add(plan, "data", "*", "*")
                for _ in range(r.randint(0, 3)):
                    add(plan, "data", "*", r.choice(bands_plus),
                        rdated() if r.random() < 0.3 else "")
        r.shuffle(rows)
        self.rates = rows

    def make_packages(self):
        r = self.r
        self.packages = []  # (name, [rows])
        # A split tariff nearly always gets a voice package, so that split
        # calls' pieces meet allowances (SPEC 7): at least one package, and
        # its first row voice, often for one band only.
        split_voice = self.band_split == "split" and r.random() < 0.9
        n = r.randint(1 if split_voice else 0, 2)
        for name in ["talk100", "data_xl", "sms_pack"][:n]:
            fee = self.amount(0, 3000, fine=True)
            allow = []
            for _ in range(r.randint(1, 3)):
                svc = r.choice(["voice", "sms", "data"])
                zone = "*" if svc == "data" or r.random() < 0.5 else \
                    r.choice(self.zone_names)
                band = "*" if r.random() < 0.5 else r.choice(self.band_names)
                amount = {"voice": r.randint(1, 120) * 60,
                          "sms": r.randint(1, 40),
                          "data": r.randint(1, 2000) * 1000000}[svc]
                allow.append([name, fee, svc, zone, band, str(amount)])
            if split_voice and not self.packages:
                band = "*" if r.random() < 0.4 else r.choice(self.band_names)
                allow.insert(0, [name, fee, "voice", "*", band,
                                 str(r.randint(1, 600) * 60)])
            self.packages.append((name, allow))

    def make_subscribers(self):
        r = self.r
        pf, pl = self.p_first, self.p_last
        n_accounts = r.randint(2, 10)
        acct_pool = ["acc01", "Acme", "acme", "beta", "B2B", "zz_top",
                     "ünicode", "acc10", "acc2", "Z9", "x.y", "acc_03"]
        r.shuffle(acct_pool)
        accounts = acct_pool[:n_accounts]
        pkg_names = [p for p, _ in self.packages]
        plans = [p for p, _ in self.plans]
        self.sub_rows = []  # [number, account, plan, pkgs, from, to|None]
        target = r.randint(5, 30)
        used = set()
        long_ago = pf - timedelta(days=400)

        def pkgs():
            k = r.randint(0, len(pkg_names))
            chosen = r.sample(pkg_names, k)
            return ";".join(chosen)

        while len(self.sub_rows) < target:
            while True:
                number = r.choice(["86138", "4915", "1212", "447"]) + "".join(
                    r.choice("0123456789") for _ in range(7))
                if number not in used:
                    used.add(number)
                    break
            acct = r.choice(accounts)
            kind = r.choices(["plain", "install", "disconnect", "change",
                              "ended", "future", "short", "gap",
                              "reassign"],
                             [30, 12, 10, 15, 6, 4, 6, 8, 12])[0]
            k = r.randint(1, (pl - pf).days + 1)  # a day of the month
            kday = pf + timedelta(days=k - 1)
            rows = []
            if kind == "plain":
                rows.append((long_ago, None if r.random() < 0.8 else
                             pl + timedelta(days=r.randint(0, 60))))
            elif kind == "install":
                rows.append((kday, None))
            elif kind == "disconnect":
                rows.append((long_ago, kday))
            elif kind == "change":
                if kday == pl:
                    kday = pl - timedelta(days=1)
                rows.append((long_ago, kday))
                rows.append((kday + timedelta(days=1), None))
            elif kind == "ended":
                rows.append((long_ago, pf - timedelta(days=r.randint(1, 20))))
            elif kind == "future":
                rows.append((pl + timedelta(days=r.randint(1, 20)), None))
            elif kind == "short":
                end = min(pl, kday + timedelta(days=r.randint(0, 10)))
                rows.append((kday, end))
            elif kind == "reassign":
                # passed to another account the next day: an installation
                # for the new one, not a plan change (SPEC 7); sometimes
                # before the period, sometimes back to the first account.
                if r.random() < 0.2:
                    kday = pf - timedelta(days=r.randint(1, 5))
                elif kday == pl:
                    kday = pl - timedelta(days=1)
                rows.append((long_ago, kday))
                rows.append((kday + timedelta(days=1),
                             None if r.random() < 0.7 else
                             kday + timedelta(days=r.randint(2, 12))))
                if rows[-1][1] is not None and r.random() < 0.5:
                    rows.append((rows[-1][1] + timedelta(days=1), None))
            else:  # gap: disconnect, then reconnect a few days later
                end = min(kday, pl - timedelta(days=4))
                rows.append((long_ago, end))
                rows.append((end + timedelta(days=r.randint(2, 3)), None))
            owners = [acct]
            if kind == "reassign" and len(accounts) > 1:
                others = [a for a in accounts if a != acct]
                owners = [acct, r.choice(others), acct]
            for i, (frm, to) in enumerate(rows):
                self.sub_rows.append([number, owners[i % len(owners)],
                                      r.choice(plans), pkgs(), frm, to])
        # Unrelated row order in the file.
        r.shuffle(self.sub_rows)
        self.numbers = sorted({row[0] for row in self.sub_rows})

    def rows_active(self, number, d):
        return [row for row in self.sub_rows if row[0] == number
                and row[4] <= d and (row[5] is None or d <= row[5])]

    def make_outages(self):
        r = self.r
        self.outages = []
        cands = [row for row in self.sub_rows
                 if row[4] <= self.p_last
                 and (row[5] is None or row[5] >= self.p_first)]
        for _ in range(r.randint(0, 3)):
            if not cands:
                break
            row = r.choice(cands)
            lo = max(row[4], self.p_first - timedelta(days=5))
            hi = self.p_last if row[5] is None else min(row[5], self.p_last)
            d = self.rdate(lo, hi)
            secs = r.randint(0, 86399)
            start = self.local_naive(d, secs)
            if r.random() < 0.2 and self.transitions:
                # an outage starting in a DST gap or fold
                tr = r.choice(self.transitions)
                start = tr["local_before"] + timedelta(minutes=r.randint(
                    0, 59))
                if not self.rows_active_naive(row[0], start):
                    start = self.local_naive(d, secs)
            length = r.choice([600, 3600, 86400, 5 * 86400, 40 * 86400,
                               r.randint(1, 200000)])
            if start.hour in (0, 1, 2, 3):
                # keep clear of a gap swallowing the whole outage (R22)
                length = max(length, 7200)
            end = start + timedelta(seconds=length)
            self.outages.append([row[0], start.strftime("%Y-%m-%d %H:%M:%S"),
                                 end.strftime("%Y-%m-%d %H:%M:%S")])
        self.make_outages_across_rows()

    def make_outages_across_rows(self):
        """Outages over a row's end: into the next row (plan change, new
        account), into a gap, past a disconnection, from a row that ended
        before the period into one inside it, or from before a number's
        first row. SPEC 7 cuts them at the rows."""
        r = self.r
        by_num = {}
        for row in self.sub_rows:
            by_num.setdefault(row[0], []).append(row)
        # boundaries (last day before the cut) near the period
        cuts = []
        for num in sorted(by_num):
            for row in by_num[num]:
                for day in ([row[5]] if row[5] is not None else []) + \
                        [row[4] - timedelta(days=1)]:
                    if self.p_first - timedelta(days=10) <= day <= \
                            self.p_last + timedelta(days=1):
                        cuts.append((num, day))
        for _ in range(r.randint(1, 4) if cuts else 0):
            num, day = r.choice(cuts)
            # the cut is local midnight after `day`; no zone used here has
            # a gap or fold at midnight, and both ends stay clear of it
            cut = datetime(day.year, day.month, day.day) + timedelta(days=1)
            start = cut - timedelta(seconds=r.choice(
                [1, 3600, 86400, r.randint(1, 6 * 86400)]))
            end = cut + timedelta(seconds=r.choice(
                [1, 7200, 86400, r.randint(1, 40 * 86400)]))
            self.outages.append([num, start.strftime("%Y-%m-%d %H:%M:%S"),
                                 end.strftime("%Y-%m-%d %H:%M:%S")])

    def rows_active_naive(self, number, naive):
        # the local date of the instant (a gap time may move past midnight
        # in theory; not in the zones used here)
        return self.rows_active(number, naive.date())

    def find_transitions(self):
        """DST changes within [period - 45 days, period end + 15 days]."""
        self.transitions = []
        if self.tzname == "UTC":
            return
        lo = datetime(self.p_first.year, self.p_first.month, 1) - timedelta(
            days=45)
        t0 = int((lo - datetime(1970, 1, 1)).total_seconds())
        prev = None
        for h in range(0, (90 + 45) * 24):
            t = t0 + h * 3600
            u = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(
                seconds=t)
            off = u.astimezone(self.tz).utcoffset()
            if prev is not None and off != prev:
                # transition in (t - 3600, t]: find the exact second
                a, b = t - 3600, t
                while b - a > 1:
                    m = (a + b) // 2
                    um = datetime(1970, 1, 1, tzinfo=timezone.utc) + \
                        timedelta(seconds=m)
                    if um.astimezone(self.tz).utcoffset() == prev:
                        a = m
                    else:
                        b = m
                ub = datetime(1970, 1, 1) + timedelta(seconds=b)
                local_before = ub + prev  # local wall clock where it happens
                self.transitions.append({"t": b, "local_before": local_before,
                                         "before": prev, "after": off})
            prev = off

    # ------------------------------------------------------------------
    # writing the tariff
    # ------------------------------------------------------------------
    def write_tariff(self, tdir):
        r = self.r
        os.makedirs(tdir, exist_ok=True)

        def w(name, header, rows):
            with open(os.path.join(tdir, name), "wb") as f:
                f.write((header + "\n").encode())
                for row in rows:
                    f.write((",".join(row) + "\n").encode())

        conf = [f"# random tariff, seed {self.seed}",
                f"timezone = {self.tzname}",
                f"currency = {r.choice(['CNY', 'EUR', 'USD'])}",
                f"decimals = {self.decimals}",
                f"band_split = {self.band_split}",
                "",
                f"proration = {self.proration}"]
        if self.free:
            conf.append("free_zones = emergency")
        with open(os.path.join(tdir, "tariff.conf"), "wb") as f:
            f.write(("\n".join(conf) + "\n").encode())
        zrows = [list(z) for z in self.zones + self.exact]
        r.shuffle(zrows)
        w("zones.csv", "prefix,zone", zrows)
        w("bands.csv", "band,days,from,to", [list(b) for b in self.bands])
        w("holidays.csv", "date,name",
          [[d.isoformat(), f"holiday {i}"] for i, d in
           enumerate(self.holidays)])
        w("plans.csv", "plan,monthly_fee", [list(p) for p in self.plans])
        w("rates.csv",
          "plan,service,zone,band,connect,price,unit,first,increment,from",
          self.rates)
        if self.packages or r.random() < 0.5:
            w("packages.csv", "package,monthly_fee,service,zone,band,amount",
              [row for _, rows in self.packages for row in rows])
        w("subscribers.csv", "subscriber,account,plan,packages,from,to",
          [[n, a, p, k, f.isoformat(), "" if t is None else t.isoformat()]
           for n, a, p, k, f, t in self.sub_rows])
        if self.outages or r.random() < 0.5:
            w("outages.csv", "subscriber,from,to", self.outages)

    # ------------------------------------------------------------------
    # CDRs
    # ------------------------------------------------------------------
    def destination(self, service):
        r = self.r
        if service == "data":
            return r.choice(["", "internet", "apn.example.com", "ims",
                             "wap gprs", "x;y=z"])
        kind = r.choices(["zone", "exact", "nozone", "emergency"],
                         [80, 4, 6, 10])[0]
        if kind == "zone":
            pfx, _ = r.choice(self.zones)
            d = pfx + "".join(r.choice("0123456789")
                              for _ in range(r.randint(0, 9)))
        elif kind == "exact":
            d = r.choice(self.exact)[0][1:]
        elif kind == "nozone":
            d = r.choice(["5", "9", "3", "*", "#*", "0"]) + "".join(
                r.choice("0123456789") for _ in range(r.randint(0, 8)))
        else:
            d = r.choice(EMERGENCY + ["1100", "11", "1190"])
        if r.random() < 0.1:
            d = "+" + d
        return d

    def quantities(self, service):
        r = self.r
        dur = vol = 0
        if service == "voice":
            dur = r.choices(
                [0, r.randint(1, 10), r.randint(1, 180), r.choice([59, 60, 61,
                                                                   119, 120,
                                                                   121]),
                 r.randint(180, 7200), r.randint(7200, 200000)],
                [5, 15, 35, 15, 25, 5])[0]
            if self.band_split == "start" and r.random() < 0.01:
                dur = r.choice([10**12 - 1, 123456789012])
        elif service == "data":
            vol = r.choices([0, r.randint(1, 2048), r.randint(1, 10**7),
                             r.randint(10**7, 10**10)], [5, 20, 55, 20])[0]
            if r.random() < 0.01:
                vol = 10**12 - 1
        else:
            # ignored for sms, but still has to be an integer
            dur = r.choice([0, 0, 0, 5, 999])
        if service != "voice" and r.random() < 0.1:
            dur = r.randint(0, 99999)
        if service != "data" and r.random() < 0.1:
            vol = r.randint(0, 99999)
        return str(dur), str(vol)

    def pick_time(self, kind, number):
        """A naive local datetime for a record of the given kind."""
        r = self.r
        pf, pl = self.p_first, self.p_last
        if kind == "late":
            d = self.rdate(pf - timedelta(days=r.choice([3, 20, 60])),
                           pf - timedelta(days=1))
            return self.local_naive(d, r.randint(0, 86399))
        if kind == "after":
            d = self.rdate(self.p_next, self.p_next + timedelta(days=40))
            return self.local_naive(d, r.randint(0, 86399))
        if kind == "pedge":
            c = r.choice([
                (pf, 0), (pf, 1), (pf - timedelta(days=1), 86399),
                (pl, 86399), (pl, 86398), (self.p_next, 0), (self.p_next, 1)])
            return self.local_naive(*c)
        if kind == "dst" and self.transitions:
            tr = r.choice(self.transitions)
            return tr["local_before"] + timedelta(
                seconds=r.choice([-3600, -1, 0, 1, 60, 1799, 1800, 3599, 3600,
                                  3601, 5400, r.randint(-7200, 7200)]))
        if kind == "band":
            d = self.rdate(pf, pl)
            m = r.choice(self.boundary_minutes + [0, 1440])
            s = max(0, min(86399, m * 60 + r.choice([-61, -60, -1, 0, 1,
                                                     59, 60])))
            return self.local_naive(d, s)
        # a time when the subscriber has an active row, if any
        rows = [row for row in self.sub_rows if row[0] == number]
        r.shuffle(rows)
        for row in rows:
            lo = max(row[4], pf)
            hi = pl if row[5] is None else min(row[5], pl)
            if lo <= hi:
                return self.local_naive(self.rdate(lo, hi),
                                        r.randint(0, 86399))
        return self.local_naive(self.rdate(pf, pl), r.randint(0, 86399))

    def valid_fields(self, rid, kind):
        r = self.r
        service = r.choices(["voice", "sms", "data"], [55, 20, 25])[0]
        if kind == "unknown":
            number = "".join(r.choice("0123456789") for _ in range(11))
            while number in self.numbers:
                number = "9" + number
        else:
            number = r.choice(self.numbers)
        if kind == "inactive":
            # a time outside the subscriber's rows, if there is one
            ok = False
            for _ in range(20):
                d = self.rdate(self.p_first - timedelta(days=10), self.p_last)
                if not self.rows_active(number, d):
                    ok = True
                    break
            naive = self.local_naive(d, r.randint(0, 86399)) if ok else \
                self.pick_time("valid", number)
        else:
            naive = self.pick_time(kind, number)
        sub = ("+" + number) if r.random() < 0.1 else number
        dur, vol = self.quantities(service)
        return [rid, sub, service, self.fmt_start(naive),
                self.destination(service), dur, vol]

    def malform(self, fields):
        """Break one column (or the column count) of a valid record."""
        r = self.r
        col = r.choice(["columns", "id", "subscriber", "service", "start",
                        "destination", "duration", "volume"])
        f = fields[:]
        if col == "columns":
            if r.random() < 0.5:
                del f[r.randrange(7)]
            else:
                f.insert(r.randrange(8), r.choice(["", "x", "0"]))
            return f
        i = ["id", "subscriber", "service", "start", "destination",
             "duration", "volume"].index(col)
        if col == "id":
            f[0] = r.choice(["", "i" * 65, "é" * 33])
        elif col == "subscriber":
            f[1] = r.choice(["", "+", "12a34", "++8613", " 8613", "-8613",
                             "8613 ", "1.5"])
        elif col == "service":
            f[2] = r.choice(["Voice", "SMS", "fax", "", "data ", "voic"])
        elif col == "start":
            f[3] = r.choice([
                "2026-02-30 10:00:00", "2026-10-05 24:00:00",
                "2026-10-05 10:60:00", "2026-10-05 10:00:60",
                "2026/10/05 10:00:00", "2026-10-05 10:00",
                "2026-10-05 10:00:00.5", "2026-10-05 10:00:00+0800",
                "2026-10-05 10:00:00z", "-1", "253402300800",
                "1969-12-31 23:59:59Z", "", "yesterday",
                "2026-10-05  10:00:00", "2026-10-05 10:00:00+99:00",
                "2026-10-05 10:00:00+05:75", "2026-13-01 00:00:00",
                "26-10-05 10:00:00", "1e9", "2026-10-05_10:00:00",
                "2026-10-05 10:00:00 ", "99999999999999999999"])
        elif col == "destination":
            if f[2] == "data":
                f[2] = r.choice(["voice", "sms"])  # data text is always ok
            f[4] = r.choice(["", "+", "12a3", "12-34", "+ 123", "++1",
                             "1 2", "x"])
        elif col in ("duration", "volume"):
            f[i] = r.choice(["", "-1", "1.5", "1e3", "1000000000000", " 5",
                             "+5", "0x10", "five"])
        # the first bad field decides, so some get a later field broken too
        if r.random() < 0.2 and i < 6:
            j = r.randint(i + 1, 6)
            if j in (5, 6):
                f[j] = "-7"
        return f

    def make_cdrs(self, cdir):
        r = self.r
        os.makedirs(cdir, exist_ok=True)
        nfiles = r.randint(2, 4)
        files = []
        serial = 0
        all_records = []
        for fi in range(nfiles):
            recs = []
            for _ in range(r.randint(200, 2000)):
                serial += 1
                rid = f"c{fi}-{serial:05d}"
                x = r.random()
                if x < 0.02:
                    rid = "é" + rid  # multi-byte ids
                elif x < 0.03:
                    rid = (rid + "-" + "p" * 64)[:64]  # exactly 64 bytes
                kind = r.choices(
                    ["valid", "late", "after", "pedge", "dst", "band",
                     "unknown", "inactive", "malformed", "dup_exact",
                     "dup_variant"],
                    [55, 5, 3, 3, 6, 6, 3, 3, 8, 4, 4])[0]
                if kind in ("dup_exact", "dup_variant") and all_records:
                    src = r.choice(all_records)
                    if kind == "dup_exact":
                        recs.append(src[:])
                    else:
                        v = self.valid_fields(src[0], "valid")
                        recs.append(v)
                    continue
                if kind in ("dup_exact", "dup_variant"):
                    kind = "valid"
                base_kind = "valid" if kind == "malformed" else kind
                fields = self.valid_fields(rid, base_kind)
                if kind == "malformed":
                    fields = self.malform(fields)
                recs.append(fields)
                if kind != "malformed":
                    all_records.append(fields)
            files.append(recs)
        # some deliberate range edges
        files[0].append(["edge-1", self.numbers[0], "sms",
                         "1970-01-01 00:00:00", "86", "0", "0"])
        files[0].append(["edge-2", self.numbers[0], "sms",
                         "9999-12-31 23:59:59", "86", "0", "0"])
        files[0].append(["edge-3", self.numbers[0], "sms", "0", "86", "0",
                         "0"])
        files[0].append(["edge-4", self.numbers[0], "sms", "253402300799",
                         "86", "0", "0"])
        files[0].append(["edge-5", self.numbers[0], "sms",
                         "9999-12-31T23:59:59Z", "86", "0", "0"])

        for fi, recs in enumerate(files):
            r.shuffle(recs)
            crlf = r.random() < 0.3
            nl = "\r\n" if crlf else "\n"
            out = []
            if r.random() < 0.6:
                out.append("id,subscriber,service,start,destination,"
                           "duration,volume")
            for fields in recs:
                out.append(",".join(fields))
                if r.random() < 0.01:
                    out.append("")
            text = nl.join(out)
            if r.random() < 0.8:
                text += nl
            with open(os.path.join(cdir, f"cdr_{fi:02d}.csv"), "wb") as f:
                f.write(text.encode("utf-8"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--period", default="2026-10")
    a = ap.parse_args()
    g = Gen(a.seed, a.period)
    # The time zone is drawn first so its DST transitions are known before
    # the outages and CDRs that aim at them are made.
    g.tzname = g.r.choice(TIMEZONES)
    g.tz = ZoneInfo(g.tzname)
    g.find_transitions()
    g.make_tariff()
    os.makedirs(a.out, exist_ok=True)
    g.write_tariff(os.path.join(a.out, "tariff"))
    g.make_cdrs(os.path.join(a.out, "cdrs"))
    with open(os.path.join(a.out, "period"), "w") as f:
        f.write(a.period + "\n")


if __name__ == "__main__":
    main()
