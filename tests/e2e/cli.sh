#!/bin/sh
# End-to-end tests of what an operator sees of a run: the summary and its
# JSON form, --max-rejects and exit 3, the warnings, the progress line,
# `check`, the command-line conventions, diff's change column and
# --exit-code, and the tariff CSV rules (BOM, quoting, one fee a package).
#
# usage: tests/e2e/cli.sh BUILD/cdrate
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=cli
. "$(dirname "$0")/lib.sh"

# err_lacks TEXT WHAT: the last command's stderr does not contain TEXT
err_lacks() {
	if grep -qF -- "$1" "$W/err"; then bad "$2: stderr has '$1'"; else ok; fi
}
HAVE_PY=0
command -v python3 >/dev/null && HAVE_PY=1

# ---- the summary
expect_rc 0 "demo run" rate_demo -o "$W/t.csv" "$DEMO/cdrs"
same "$W/t.csv" "$DEMO/expected/totals.csv" "-o is --out"
err_has "cdrate: done in " "headline: wall time"
err_has "s: tariff " "headline: stages beside it"
err_has "68 records read, 48 rated, 20 rejected, 4 late" "records read, rated, rejected, late"
err_has "cdrate:   after_period             2" "rejected by reason"
err_has "cdrate: 6 accounts written" "accounts written"
err_has "cdrate: files by format: 3 native" "files per format"
err_has "cdrate: files by compression: 3 plain" "files per compression"
# Control totals as printed: the sum of each money column of the file,
# here worked by awk over the golden (all figures have 2 places).
want=$(awk -F, 'NR > 1 { for (i = 8; i <= 14; i++) s[i] += $i * 100 }
	END { printf "voice_charge %.2f, sms_charge %.2f, data_charge %.2f, allowance_credit %.2f, recurring_charge %.2f, outage_credit %.2f, total %.2f",
	      s[8] / 100, s[9] / 100, s[10] / 100, s[11] / 100, s[12] / 100, s[13] / 100, s[14] / 100 }' "$DEMO/expected/totals.csv")
err_has "cdrate: control totals: $want" "control totals equal the file's column sums"
err_has "cdrate: tariff $DEMO/tariff: 9 files, fingerprint xxh3-128:" "tariff fingerprint"
err_has "cdrate: inputs: 3 files, 4349 bytes, fingerprint xxh3-128:" "inputs: names and sizes"
err_has "cdrate: wrote --out $W/t.csv" "output paths"
err_has "20 records rejected; see --rejects FILE" "hint when rejects were not written"
cp "$W/err" "$W/err.first"
# Fingerprints: the same bytes give the same; one changed byte another.
rate_demo -o "$W/t2.csv" "$DEMO/cdrs" 2>"$W/err"
fp() { sed -n "s/^cdrate: $1.*fingerprint xxh3-128:\([0-9a-f]*\)$/\1/p" "$2"; }
[ -n "$(fp tariff "$W/err")" ] && [ "$(fp tariff "$W/err")" = "$(fp tariff "$W/err.first")" ] &&
	[ "$(fp inputs "$W/err")" = "$(fp inputs "$W/err.first")" ] && ok ||
	bad "fingerprints are stable across runs"
cp -r "$DEMO/tariff" "$W/T"
sed -i 's/^fixed25,25$/fixed25,25.00/' "$W/T/plans.csv"
grep -q '^fixed25,25.00$' "$W/T/plans.csv" || bad "test setup: plans.csv edit"
"$BIN" rate --tariff "$W/T" --period 2026-10 -o "$W/t3.csv" "$DEMO/cdrs" 2>"$W/err"
same "$W/t3.csv" "$DEMO/expected/totals.csv" "an equal tariff written otherwise"
[ "$(fp tariff "$W/err")" != "$(fp tariff "$W/err.first")" ] && ok ||
	bad "tariff fingerprint follows the bytes"
rate_demo -o "$W/t4.csv" "$DEMO/cdrs/01-fixed-switch.csv" "$DEMO/cdrs/02-mobile-switch.csv" 2>"$W/err"
[ "$(fp inputs "$W/err")" != "$(fp inputs "$W/err.first")" ] && ok ||
	bad "inputs fingerprint follows the names"
expect_rc 0 "with --rejects" rate_demo -o "$W/t.csv" --rejects "$W/r.csv" "$DEMO/cdrs"
err_lacks "see --rejects" "no hint when rejects were written"
err_has "--rejects $W/r.csv" "rejects path named"

# ---- --summary-json
expect_rc 0 "summary json" rate_demo -o "$W/t.csv" --summary-json "$W/s.json" "$DEMO/cdrs"
if [ $HAVE_PY = 1 ]; then
	python3 - "$W/s.json" "$W/t.csv" >"$W/py" 2>&1 <<'EOF' && ok || { bad "summary json parses and equals the totals"; cat "$W/py"; }
import csv, json, sys
from decimal import Decimal
s = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
for col, v in s["control_totals"].items():
    want = sum(Decimal(r[col]) for r in rows)
    assert Decimal(v) == want and v == "%.2f" % want, (col, v, want)
assert len(s["control_totals"]) == 7
assert s["accounts"] == len(rows)
assert s["records"] == {"read": 68, "rated": 48, "rejected": 20, "unanswered": 0, "late": 4}, s["records"]
assert s["records"]["late"] == sum(int(r["late_records"]) for r in rows)
assert sum(s["rejected_by_reason"].values()) == 20
assert s["rejected_by_reason"]["after_period"] == 2
assert s["files"] == {"by_format": {"native": 3}, "by_compression": {"plain": 3}}
assert s["exit"] == 0 and s["command"] == "rate" and s["period"] == "2026-10"
assert s["tariff"]["files"] == 9 and s["tariff"]["fingerprint"].startswith("xxh3-128:")
assert len(s["inputs"]["files"]) == 3 and s["inputs"]["bytes"] == 4349
assert s["outputs"]["summary_json"] == sys.argv[1] and s["outputs"]["rejects"] is None
assert s["max_rejects"] is None and s["warnings"] == []
for k in ("wall", "tariff", "pass", "duplicates", "totals"):
    assert s["seconds"][k] >= 0
EOF
else
	grep -q '"control_totals":{"voice_charge":"' "$W/s.json" && ok || bad "summary json keys"
fi
# rerate: both tariffs fingerprinted; standard output may take the JSON.
RR=$HERE/rerate
expect_rc 0 "rerate --summary-json -" "$BIN" rerate --tariff "$RR/old" --new-tariff "$RR/new" \
	--period 2026-10 -o "$W/rr.csv" --summary-json - "$RR/cdrs"
same "$W/rr.csv" "$RR/expected/delta.csv" "rerate delta beside its summary json"
if [ $HAVE_PY = 1 ]; then
	python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["command"] == "rerate" and s["outputs"]["summary_json"] == "-"
assert s["tariff"]["path"].endswith("old") and s["new_tariff"]["path"].endswith("new")
assert s["tariff"]["fingerprint"] != s["new_tariff"]["fingerprint"]
assert "control_totals" not in s
' "$W/out" && ok || bad "rerate summary json"
fi
expect_rc 2 "--summary-json on the --out file" rate_demo -o "$W/same" --summary-json "$W/same" "$DEMO/cdrs"
expect_rc 2 "--summary-json on an input" rate_demo -o "$W/t.csv" --summary-json "$DEMO/cdrs/03-resend.csv" "$DEMO/cdrs"
expect_rc 1 "--summary-json uncreatable" rate_demo -o "$W/t5.csv" --summary-json "$W/no/dir/s.json" "$DEMO/cdrs"
err_lacks "records read" "uncreatable --summary-json refused before rating"
[ ! -e "$W/t5.csv" ] && ok || bad "no totals without the summary json"
# A run that fails writes no summary json (all or nothing).
expect_rc 1 "failed run" rate_demo -o "$W/t6.csv" --summary-json "$W/s6.json" "$DEMO/cdrs" "$W/missing"
[ ! -e "$W/s6.json" ] && ok || bad "failed run wrote its summary json"

# ---- --max-rejects: the demo has 20 rejects of 68 (29.41%)
expect_rc 3 "past --max-rejects 19" rate_demo -o "$W/m.csv" --summary-json "$W/m.json" --max-rejects 19 "$DEMO/cdrs"
same "$W/m.csv" "$DEMO/expected/totals.csv" "past the limit, totals still written"
err_has "20 records rejected (29.41% of 68 read, unanswered calls aside), past --max-rejects 19; outputs written, exit 3" "summary says why"
grep -q '"exit":3' "$W/m.json" && grep -q '"exceeded":true' "$W/m.json" && ok || bad "json says exit 3"
expect_rc 0 "at --max-rejects 20" rate_demo -o "$W/m.csv" --max-rejects 20 "$DEMO/cdrs"
expect_rc 3 "past --max-rejects 29.4%" rate_demo -o "$W/m.csv" --max-rejects 29.4% "$DEMO/cdrs"
expect_rc 0 "under --max-rejects 29.42%" rate_demo -o "$W/m.csv" --max-rejects 29.42% "$DEMO/cdrs"
expect_rc 3 "--max-rejects 0" rate_demo -o "$W/m.csv" --max-rejects 0 "$DEMO/cdrs"
for v in abc 1.5 101% -1 '%'; do
	expect_rc 2 "--max-rejects $v" rate_demo -o "$W/m.csv" --max-rejects "$v" "$DEMO/cdrs"
done
err_has "--max-rejects must be a count N or a percentage" "bad --max-rejects named"

# ---- warnings
expect_rc 2 "--period given twice" rate_demo --period 2025-10 "$DEMO/cdrs"
err_has "cdrate: --period given twice" "a repeated option is an error"
"$BIN" rate --tariff "$DEMO/tariff" --period 2025-10 -o "$W/w.csv" "$DEMO/cdrs" 2>"$W/err"
err_has "warning: 56 of 68 records (82%) start after the period 2025-10: is --period right?" "most after the period"
"$BIN" rate --tariff "$DEMO/tariff" --period 2026-11 -o "$W/w.csv" "$DEMO/cdrs" 2>"$W/err"
err_has "rated records" "late warning"
err_has "started before the period 2026-11 and were billed as late: is --period right?" "most late"
printf 'id,subscriber,service,start,destination,duration,volume\n' >"$W/unk.csv"
for i in 1 2 3; do
	printf 'U%s,8619900000000,voice,2026-10-08 09:15:00,057187654321,60,0\n' $i >>"$W/unk.csv"
done
printf 'U4,057188000001,voice,2026-10-08 09:15:00,057187654321,60,0\n' >>"$W/unk.csv"
rate_demo -o "$W/w.csv" "$W/unk.csv" 2>"$W/err"
err_has "warning: 3 of 4 records (75%) were rejected unknown_subscriber" "one reason takes most"
rate_demo -o "$W/w.csv" "$DEMO/cdrs" 2>"$W/err"
err_lacks "warning:" "no warning for the demo month"

# ---- progress: only on a terminal
rate_demo -o "$W/p.csv" "$DEMO/cdrs" 2>"$W/err"
if grep -q "$(printf '\r')" "$W/err"; then bad "progress written to a file"; else ok; fi
err_lacks "loading the tariff" "no progress words off a terminal"
if [ $HAVE_PY = 1 ]; then
	python3 - "$BIN" "$DEMO" "$W" >"$W/py" 2>&1 <<'EOF' && ok || { bad "progress on a terminal"; cat "$W/py"; }
import os, pty, subprocess, sys
b, demo, w = sys.argv[1:4]
master, slave = pty.openpty()
p = subprocess.Popen([b, "rate", "--tariff", demo + "/tariff", "--period", "2026-10",
                      "-o", w + "/pty.csv", demo + "/cdrs"], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
out = b""
while True:
    try:
        d = os.read(master, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
assert p.wait() == 0
t = out.decode()
assert "\rcdrate: loading the tariff...\x1b[K" in t, repr(t)
assert "\rcdrate: making the totals...\x1b[K" in t, repr(t)
assert "\r\x1b[K" in t and "68 records read" in t, repr(t)
# the line is cleared before the summary: no summary line starts mid-line
assert "...\x1b[Kcdrate: done" not in t, repr(t)
EOF
	# While records stream in (a FIFO whose writer pauses), the line
	# counts them: the pause is long next to the ticker's half second.
	python3 - "$BIN" "$DEMO" "$W" >"$W/py" 2>&1 <<'EOF' && ok || { bad "progress counts records"; cat "$W/py"; }
import os, pty, subprocess, sys, threading, time
b, demo, w = sys.argv[1:4]
fifo = w + "/prog.fifo"
os.mkfifo(fifo)
master, slave = pty.openpty()
p = subprocess.Popen([b, "rate", "--tariff", demo + "/tariff", "--period", "2026-10",
                      "-o", w + "/pty2.csv", fifo], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=slave)
os.close(slave)
lines = open(demo + "/cdrs/01-fixed-switch.csv").read().splitlines(True)
def feed():
    with open(fifo, "w") as f:
        f.writelines(lines[:6])
        f.flush()
        time.sleep(2)
        f.writelines(lines[6:])
threading.Thread(target=feed).start()
out = b""
while True:
    try:
        d = os.read(master, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
assert p.wait() == 0
t = out.decode()
assert " read, " in t and " records, " in t and " records/s\x1b[K" in t, repr(t)
EOF
fi

# ---- check
expect_rc 0 "check" "$BIN" check --tariff "$DEMO/tariff"
grep -q "3 plans, 7 zones (14 prefixes), 2 bands, 8 holidays, 21 rates (1 dated), 3 packages (4 allowances)," "$W/out" &&
	grep -q "8 subscribers (10 rows), 7 accounts, 3 outages" "$W/out" && ok || bad "check counts"
grep -q "^  mon     00:00-07:00 idle 07:00-23:00 peak 23:00-24:00 idle$" "$W/out" && ok || bad "check band grid"
grep -q "^  057188000001 2026-10-12 08:00:00 .. 2026-10-15 08:00:00 (259200 s)$" "$W/out" && ok ||
	bad "check outages in local time"
[ "$(wc -l <"$W/out")" -lt 40 ] && ok || bad "check is a summary by default"
tail -1 "$W/out" | grep -q "^tariff OK, with 2 holes" && ok || bad "check ends with the verdict"
err_has "cdrate: warning: plan fixed25 has no sms rate" "check warns about a hole"
expect_rc 0 "check --list zones" "$BIN" check --tariff "$DEMO/tariff" --list zones
[ "$(wc -l <"$W/out")" -eq 15 ] && grep -q "^0571,local$" "$W/out" && grep -q "^=110,emergency$" "$W/out" && ok ||
	bad "check --list zones: every prefix"
expect_rc 0 "check --list rates" "$BIN" check --tariff "$DEMO/tariff" --list rates
[ "$(wc -l <"$W/out")" -eq 22 ] && grep -q ",2026-10-16$" "$W/out" && ok || bad "check --list rates"
expect_rc 0 "check --list subscribers" "$BIN" check --tariff "$DEMO/tariff" --list subscribers
[ "$(wc -l <"$W/out")" -eq 11 ] && grep -q "^8613800000001,A1001,mobile18,data300;idle1g,2022-03-15,$" "$W/out" && ok ||
	bad "check --list subscribers"
expect_rc 2 "check --list bogus" "$BIN" check --tariff "$DEMO/tariff" --list plans
# A zone a plan's subscribers may call with no rate for it: a hole named.
cp -r "$DEMO/tariff" "$W/H"
grep -v '^mobile18,voice,\*,\*' "$W/H/rates.csv" >"$W/H/r" && mv "$W/H/r" "$W/H/rates.csv"
"$BIN" check --tariff "$W/H" >"$W/out" 2>"$W/err"
err_has "cdrate: warning: plan mobile18 has no voice rate for zone local, band peak" "hole: zone, service and band named"
err_lacks "zone international" "no hole where a row covers every band"

# ---- conventions
expect_rc 0 "-V" "$BIN" -V
grep -q "^cdrate [0-9]" "$W/out" && ok || bad "-V prints the version"
expect_rc 0 "rate -V" "$BIN" rate -V
expect_rc 0 "help rate" "$BIN" help rate
grep -q "^usage: cdrate rate" "$W/out" && ok || bad "help rate prints rate's usage"
expect_rc 0 "help diff" "$BIN" help diff
grep -q "exit-code" "$W/out" && ok || bad "help diff"
expect_rc 2 "help nothing" "$BIN" help frobnicate
expect_rc 2 "missing value" "$BIN" rate --tariff --period 2026-10 "$DEMO/cdrs"
err_has "cdrate: --tariff needs a value; the next argument is the option '--period'" "missing value named"
[ "$(wc -l <"$W/err")" -eq 2 ] && ok || bad "usage error is one line and a pointer"
err_has "see 'cdrate rate --help'" "usage error points at --help"
expect_rc 2 "value at the end" "$BIN" rate --tariff
err_has "cdrate: --tariff needs a value" "value missing at the end"
expect_rc 2 "typo" rate_demo --tarif x "$DEMO/cdrs"
err_has "unknown option '--tarif'; did you mean --tariff?" "nearest option suggested"
expect_rc 2 "typo in check" "$BIN" check --tarif x
err_has "did you mean --tariff?" "check suggests too"
expect_rc 0 "help explain" "$BIN" help explain
grep -q "^usage: cdrate explain" "$W/out" && ok || bad "help explain prints explain's usage"
expect_rc 2 "typo in explain" "$BIN" explain --tarif x
err_has "did you mean --tariff?" "explain suggests too"
expect_rc 2 "explain, missing value" "$BIN" explain --tariff --line x
err_has "cdrate: --tariff needs a value; the next argument is the option '--line'" "explain names the missing value"
expect_rc 2 "explain, option twice" "$BIN" explain --tariff "$DEMO/tariff" --line x --line y
err_has "--line given twice" "explain refuses a repeated option"
expect_rc 2 "explain, an input" "$BIN" explain --tariff "$DEMO/tariff" "$DEMO/cdrs"
err_has "explain takes no inputs" "explain refuses inputs"
expect_rc 2 "far from anything" rate_demo --zzzzzzzz "$DEMO/cdrs"
err_lacks "did you mean" "no suggestion when nothing is near"
expect_rc 2 "rerate without --new-tariff" "$BIN" rerate --tariff "$DEMO/tariff" --period 2026-10 "$DEMO/cdrs"
err_has "cdrate: --new-tariff is required" "rerate names the missing option"
expect_rc 2 "-o twice" rate_demo -o "$W/a" --out "$W/b" "$DEMO/cdrs"
err_has "--out given twice" "-o and --out are one option"

# ---- diff: standard input, --exit-code, the change column
RR=$HERE/rerate
expect_rc 0 "diff - NEW" sh -c '"$1" diff - "$2" --all <"$3"' sh "$BIN" "$RR/expected/new.csv" "$RR/expected/old.csv"
same "$W/out" "$RR/expected/delta-all.csv" "diff reads OLD from standard input"
expect_rc 0 "diff OLD -" sh -c '"$1" diff "$2" - <"$3"' sh "$BIN" "$RR/expected/old.csv" "$RR/expected/new.csv"
same "$W/out" "$RR/expected/delta.csv" "diff reads NEW from standard input"
expect_rc 2 "diff - -" "$BIN" diff - -
expect_rc 3 "diff --exit-code, moves" "$BIN" diff --exit-code "$RR/expected/old.csv" "$RR/expected/new.csv"
expect_rc 0 "diff --exit-code, none" "$BIN" diff --exit-code "$RR/expected/old.csv" "$RR/expected/old.csv"
[ "$(cat "$W/out")" = "account,period,old_total,new_total,delta,voice_delta,sms_delta,data_delta,allowance_delta,recurring_delta,outage_delta,records_delta,change" ] &&
	ok || bad "diff of equal files: the header alone"
printf 'account,period\n' >"$W/junk.csv"
expect_rc 1 "diff --exit-code, bad input" "$BIN" diff --exit-code "$RR/expected/old.csv" "$W/junk.csv"
grep -q ',added$' "$RR/expected/delta.csv" && grep -q ',changed$' "$RR/expected/delta.csv" && ok ||
	bad "delta has the change column"
"$BIN" diff "$RR/expected/new.csv" "$RR/expected/old.csv" >"$W/out" 2>"$W/err"
grep -q '^C,.*,removed$' "$W/out" && ok || bad "diff: an account on the old side only is removed"
expect_rc 3 "rerate --exit-code" "$BIN" rerate --exit-code --tariff "$RR/old" --new-tariff "$RR/new" --period 2026-10 -o "$W/rr.csv" "$RR/cdrs"
same "$W/rr.csv" "$RR/expected/delta.csv" "rerate --exit-code still writes the delta"
err_has "4 accounts changed: 3 up, 1 down, 0 with the same total" "rerate report counts level moves"
expect_rc 0 "rerate --exit-code, same tariff" "$BIN" rerate --exit-code --tariff "$RR/old" --new-tariff "$RR/old" --period 2026-10 -o "$W/rr.csv" "$RR/cdrs"

# ---- tariff CSV files
T=$W/C
cp -r "$DEMO/tariff" "$T"
# A spreadsheet's BOM and RFC 4180 quotes read as the plain file.
printf '\357\273\277' >"$T/plans.csv"
printf 'plan,monthly_fee\n"fixed25",25\n"mobile18","18"\nmobile38, "38"\n' >>"$T/plans.csv"
printf '\357\273\277' >"$T/zones.csv"
sed 's/^\([^,]*\),\(.*\)$/"\1","\2"/; 1s/.*/prefix,zone/' "$DEMO/tariff/zones.csv" >>"$T/zones.csv"
expect_rc 0 "BOM and quotes" "$BIN" rate --tariff "$T" --period 2026-10 -o "$W/q.csv" "$DEMO/cdrs"
same "$W/q.csv" "$DEMO/expected/totals.csv" "BOM and quoted fields give the same totals"
printf 'plan,monthly_fee\n"fixed25","2""5"\n' >"$T/plans.csv"
"$BIN" check --tariff "$T" >/dev/null 2>"$W/err"
err_has "plans.csv:2: column monthly_fee: bad amount '2\"5'" "doubled quote is one quote"
printf 'plan,monthly_fee\n"fixed25,25\n' >"$T/plans.csv"
expect_rc 1 "unclosed quote" "$BIN" check --tariff "$T"
err_has "plans.csv:2: a quoted field does not close" "unclosed quote named"
cp "$DEMO/tariff/plans.csv" "$DEMO/tariff/zones.csv" "$T/"
printf 'voice100,6,sms,*,*,50\n' >>"$T/packages.csv"
expect_rc 1 "package fees differ" "$BIN" check --tariff "$T"
err_has "packages.csv:6: column monthly_fee: '6' differs from the fee of package 'voice100' on its first row" "package fee mismatch named"
cp "$DEMO/tariff/packages.csv" "$T/"
printf 'peak,mon-fri,07:00,23:00\n' >"$T/bands.csv.new"
printf 'band,days,from,to\npeak,mon-fri,07:00,23:00\nidle,*,00:00,07:00\nidle,*,23:00,24:00\n' >"$T/bands.csv"
expect_rc 1 "band gap" "$BIN" check --tariff "$T"
err_has "bands.csv: gap in coverage: no row covers sat 07:00-23:00" "band gap names the file, no line"
cp "$DEMO/tariff/bands.csv" "$T/"
printf 'colour = blue\n' >>"$T/tariff.conf"
expect_rc 1 "unknown setting" "$BIN" check --tariff "$T"
err_has "column colour: unknown setting" "unknown tariff.conf key"

summary
