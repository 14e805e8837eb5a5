#!/bin/sh
# End-to-end tests of the switch formats, column maps and --input-timezone
# (SPEC 11): the demo's records written as Asterisk and FreeSWITCH lines
# (fixtures/switch, see its README) must give the demo's totals byte for
# byte at 1-4 threads, from files and standard input; itemize ids, the
# unanswered count, duplicates of identical lines, maps and their errors.
# Then the real switch files of ../shared/real-cdrs when present.
#
# usage: tests/e2e/formats.sh BUILD/cdrate
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=fmt
. "$(dirname "$0")/lib.sh"
REAL=$ROOT/../shared/real-cdrs

# ---- the demo as switch lines (fixtures/switch/README.md) -------------
for d in asterisk freeswitch; do
	# From the repository, as the goldens were made: rejects name files.
	(cd "$ROOT" && "$BIN" rate --tariff fixtures/demo/tariff --period 2026-10 \
		--out "$W/t.csv" --rejects "$W/r.csv" --itemize "$W/i.csv" \
		"fixtures/switch/$d") 2>"$W/err"
	same "$W/t.csv" "$DEMO/expected/totals.csv" "$d: the demo's totals"
	same "$W/i.csv" "$SW/expected/$d-itemize.csv" "$d: itemize"
	same "$W/r.csv" "$SW/expected/$d-rejects.csv" "$d: rejects"
	err_has "52 records read, 48 rated, 4 rejected" "$d: summary line"
	err_has "3 unanswered (not billable), 1 rejected as errors" "$d: unanswered apart"
	err_has "files by format: 1 native, 1 $d" "$d: files per format"
	for th in 1 2 3 4; do
		rate_demo --threads $th --out "$W/t.$th" --itemize "$W/i.$th" "$SW/$d" 2>/dev/null
		same "$W/t.$th" "$DEMO/expected/totals.csv" "$d: totals at $th threads"
		same "$W/i.$th" "$SW/expected/$d-itemize.csv" "$d: itemize at $th threads"
	done
	# Standard input is detected too, and the native half can follow.
	rate_demo --out "$W/t.in" - "$SW/$d/2-sms-data.csv" \
		<"$SW/$d/1-Master.csv" 2>"$W/err"
	same "$W/t.in" "$DEMO/expected/totals.csv" "$d: from standard input"
	# Named explicitly, for the switch file alone.
	rate_demo --format "$d" --out "$W/t.f" "$SW/$d/1-Master.csv" 2>"$W/err"
	err_has "files by format: 1 $d" "$d: --format $d"
done
# Reversed line order: duplicates are identical lines, so order is moot.
mkdir -p "$W/rev"
tac "$SW/asterisk/1-Master.csv" >"$W/rev/1.csv"
cp "$SW/asterisk/2-sms-data.csv" "$W/rev/2.csv"
rate_demo --threads 3 --out "$W/t.rev" "$W/rev" 2>/dev/null
same "$W/t.rev" "$DEMO/expected/totals.csv" "asterisk reversed: totals"
# The wrong format named: every line a column error, nothing stops.
rate_demo --format freeswitch --out "$W/t.w" "$SW/asterisk/1-Master.csv" 2>"$W/err"
err_has "malformed:columns        31" "asterisk read as freeswitch"

# ---- itemize ids: FILE:LINE, uniqueid-sequence --------------------------
# F001 of the demo (185 s local peak: 240 billed, 0.40) in cdr_csv's
# 16-field layout: no uniqueid, so the id is FILE:LINE, counting every
# line from 1 (the blank first line too). Its exact copy on line 4 is a
# duplicate; the first read is kept.
A16='"","057188000001","057187654321","ctx","clid","SIP/a","SIP/b","Dial","x","2026-10-08 09:15:00","2026-10-08 09:15:00","2026-10-08 09:18:09",189,185,"ANSWERED","DOCUMENTATION"'
printf '\n%s\n"","057188000001","057187654321","ctx","clid","SIP/a","","Dial","x","2026-10-08 09:20:00","","2026-10-08 09:20:10",10,0,"NO ANSWER","3"\n%s\n' \
	"$A16" "$A16" >"$W/a16.csv"
rate_demo --itemize "$W/i16" --rejects "$W/r16" --out "$W/t16" "$W/a16.csv" 2>"$W/err"
printf '%s\n' "id,account,subscriber,service,start,destination,zone,band,plan,quantity,charge" \
	"$W/a16.csv:2,A1001,057188000001,voice,2026-10-08 09:15:00,057187654321,local,peak,fixed25,240,0.400000" >"$W/i16.want"
same "$W/i16" "$W/i16.want" "16 fields: FILE:LINE id of the first copy"
csv_cols "$W/r16" line reason detail >"$W/r16.c"
printf '3\tunanswered\tnot answered (no answer time, or disposition not ANSWERED)\n4\tduplicate\tduplicate of %s:2\n' \
	"$W/a16.csv" >"$W/r16.want"
same "$W/r16.c" "$W/r16.want" "16 fields: unanswered and duplicate rejects, lines and details"
# 21 fields: uniqueid (17) - sequence (21).
printf '%s,"1791.5","","x","y",7\n' "$A16" >"$W/a21.csv"
rate_demo --itemize "$W/i21" --out "$W/t21" "$W/a21.csv" 2>/dev/null
grep -q '^1791.5-7,A1001,' "$W/i21" && ok || bad "21 fields: uniqueid-sequence"
# A path with a comma and a quote: the FILE:LINE id is one quoted field.
cp "$W/a16.csv" "$W/a,\"b.csv"
rate_demo --itemize "$W/iq" --rejects "$W/rq" --out "$W/tq" "$W/a,\"b.csv" 2>/dev/null
csv_cols "$W/iq" id | grep -qxF "$W/a,\"b.csv:2" && grep -qF "\"$W/a,\"\"b.csv:2\"," "$W/iq" &&
	csv_cols "$W/rq" file line | grep -qxF "$W/a,\"b.csv	4" && ok ||
	bad "a path with a comma and a quote: $(cat "$W/iq" "$W/rq")"
# Through a directory the path is DIR/NAME; from standard input, `-`.
mkdir -p "$W/dd"
cp "$W/a16.csv" "$W/dd/x.csv"
rate_demo --itemize "$W/idd" --out "$W/tdd" "$W/dd" 2>/dev/null
grep -q "^$W/dd/x.csv:2," "$W/idd" && ok || bad "FILE:LINE of a directory entry"
rate_demo --itemize "$W/iin" --out "$W/tin" - <"$W/a16.csv" 2>/dev/null
grep -q '^-:2,' "$W/iin" && ok || bad "FILE:LINE of standard input"

# ---- --input-timezone ---------------------------------------------------
# The same call stamped in UTC (usegmtime=yes): 01:15Z is 09:15 in
# Asia/Shanghai, so the itemize line is the one above, id aside.
sed 's/2026-10-08 09:15:00/2026-10-08 01:15:00/g' "$W/a16.csv" >"$W/utc.csv"
rate_demo --input-timezone UTC --itemize "$W/iu" --out "$W/tu" "$W/utc.csv" 2>/dev/null
cut -d, -f2- "$W/iu" >"$W/iu.c"
cut -d, -f2- "$W/i16" >"$W/i16.c"
# (start is local time in the tariff's zone: 09:15 Shanghai either way)
same "$W/iu.c" "$W/i16.c" "--input-timezone UTC: the same record"
same "$W/tu" "$W/t16" "--input-timezone UTC: the same totals"
# Without it, 01:15 local is idle time: another charge.
rate_demo --itemize "$W/il" --out "$W/tl" "$W/utc.csv" 2>/dev/null
cmp -s "$W/il" "$W/iu" && bad "naive stamps ignored the tariff zone" || ok
# DST rules of section 6 for the input zone: Europe/Berlin skips
# 02:00-03:00 on 2026-03-29 (02:30 is shifted forward: 01:30Z) and repeats
# 02:00-03:00 on 2026-10-25 (02:30 is the first, CEST one: 00:30Z). In the
# tariff's Asia/Shanghai (+08:00) those are 09:30 and 08:30. Both days are
# Sundays; a copy of the demo tariff turns Sunday peak at 09:00 Shanghai,
# so the other readings (08:30 for the gap, 09:30 for the fold) would
# show in the band.
cp -R "$DEMO/tariff" "$W/dt"
printf '%s\n' "band,days,from,to" "idle,holiday,00:00,24:00" \
	"peak,mon-fri,07:00,23:00" "idle,mon-fri,00:00,07:00" \
	"idle,mon-fri,23:00,24:00" "idle,sat;sun,00:00,09:00" \
	"peak,sat;sun,09:00,24:00" >"$W/dt/bands.csv"
for c in "2026-03-29 02:30:00|2026-03-29 09:30:00|peak" \
	"2026-10-25 02:30:00|2026-10-25 08:30:00|idle"; do
	berlin=${c%%|*}; rest=${c#*|}; shanghai=${rest%|*}; band=${rest#*|}
	echo "$A16" | sed "s/2026-10-08 09:15:00/$berlin/g" >"$W/dst-b.csv"
	echo "$A16" | sed "s/2026-10-08 09:15:00/$shanghai/g" >"$W/dst-s.csv"
	"$BIN" rate --tariff "$W/dt" --period 2026-10 --input-timezone Europe/Berlin \
		--itemize "$W/ib" --out "$W/tb1" "$W/dst-b.csv" 2>/dev/null
	"$BIN" rate --tariff "$W/dt" --period 2026-10 \
		--itemize "$W/is" --out "$W/ts1" "$W/dst-s.csv" 2>/dev/null
	cut -d, -f2- "$W/ib" >"$W/ib.c"
	cut -d, -f2- "$W/is" >"$W/is.c"
	grep -q ",$shanghai,057187654321,local,$band,fixed25,240,0.400000\$" "$W/ib.c" && ok ||
		bad "Europe/Berlin $berlin: band $band wanted: $(cat "$W/ib.c")"
	same "$W/ib.c" "$W/is.c" "--input-timezone Europe/Berlin $berlin is $shanghai Shanghai"
	same "$W/tb1" "$W/ts1" "--input-timezone Europe/Berlin $berlin: totals"
done
expect_rc 2 "unknown --input-timezone" rate_demo --input-timezone Mars/Base \
	--out "$W/tx" "$W/utc.csv"
err_has "Mars/Base" "unknown zone named"
[ ! -e "$W/tx" ] && ok || bad "an unknown zone wrote totals"

# ---- column maps --------------------------------------------------------
# The demo's F001 and an sms as a semicolon export with D/M/YYYY stamps.
cat >"$W/m.map" <<'EOF'
# a PBX export
header = yes
delimiter = ;
id = Call ID
subscriber = From
destination = To
start = Answered At
start_format = %d/%m/%Y %H:%M:%S
duration = Talk
service = Kind
answered = Result=OK
EOF
cat >"$W/m.csv" <<'EOF'
Call ID;Kind;From;To;Answered At;Talk;Result
c1;voice;057188000001;057187654321;8/10/2026 9:15:00;185;OK
c2;voice;057188000001;057187654321;8/10/2026 9:16:00;0;NOANSWER
c1;voice;057188000001;057187654321;8/10/2026 9:15:00;186;OK
c3;sms;"+8613800000001";13912345678;10/10/2026 12:00:00;0;OK
EOF
rate_demo --format "map:$W/m.map" --itemize "$W/im" --rejects "$W/rm" \
	--out "$W/tm" "$W/m.csv" 2>"$W/err"
err_has "4 records read, 2 rated, 2 rejected" "map: summary"
err_has "files by format: 1 map" "map: files per format"
# c1 twice: duplicates by id, the bytewise smaller line (185) kept;
# c3 is M008 of the demo (sms mobile idle, 0.10).
printf '%s\n' "c1,A1001,057188000001,voice,local,peak,240,0.400000" \
	"c3,A1001,8613800000001,sms,mobile,idle,1,0.100000" >"$W/im.want"
item_old "$W/im" >"$W/im.c"
same "$W/im.c" "$W/im.want" "map: itemize"
rej_old "$W/rm" >"$W/rm.c"
grep -q '^c1;.*;186;OK,duplicate$' "$W/rm.c" && grep -q 'NOANSWER,unanswered$' "$W/rm.c" &&
	ok || bad "map: duplicate by id and unanswered"
csv_cols "$W/rm" line detail | grep -qx "4	duplicate of $W/m.csv:2" && ok ||
	bad "map: the duplicate names the line kept: $(cat "$W/rm")"
# A bad map is a usage error naming the map's file and line.
printf 'subscriber = From\ncolour = blue\n' >"$W/bad.map"
expect_rc 2 "bad map" rate_demo --format "map:$W/bad.map" --out "$W/tb" "$W/m.csv"
err_has "bad.map:2: unknown key 'colour'" "bad map: file and line"
[ ! -e "$W/tb" ] && ok || bad "a bad map wrote totals"
expect_rc 2 "unknown format" rate_demo --format cisco --out "$W/tb" "$W/m.csv"
# A map column the file's header lacks stops the run (exit 1).
sed '1s/Talk/Duration/' "$W/m.csv" >"$W/m2.csv"
expect_rc 1 "map column missing in the header" rate_demo \
	--format "map:$W/m.map" --out "$W/tb" "$W/m2.csv"
err_has "m2.csv: header has no column 'Talk'" "missing map column named"
# rerate reads the same formats.
"$BIN" rerate --tariff "$DEMO/tariff" --new-tariff "$DEMO/tariff" \
	--period 2026-10 --new-out "$W/tr" "$SW/freeswitch" >"$W/dr" 2>"$W/err"
same "$W/tr" "$DEMO/expected/totals.csv" "rerate: freeswitch totals"
# A file auto cannot place is read as native and named.
printf 'a;b;c\n' >"$W/odd.txt"
rate_demo --out "$W/to" "$W/odd.txt" 2>"$W/err"
err_has "odd.txt: format not recognised, read as native" "unplaced file named"

# ---- normalize.csv ------------------------------------------------------
# Longest prefix replaced once, then '+' dropped; every format; itemize
# shows the rewritten numbers, rejects the line as read.
cp -R "$DEMO/tariff" "$W/nt"
printf '%s\n' "applies_to,prefix,replace" "destination,9," "destination,900,00" \
	"destination,05,99" "subscriber,0086,+86" >"$W/nt/normalize.csv"
cat >"$W/n.csv" <<'EOF'
n1,057188000001,voice,2026-10-08 09:15:00,9057187654321,185,0
n2,057188000001,voice,2026-10-16 21:05:00,90014155550123,200,0
n3,008613800000001,sms,2026-10-10 12:00:00,13912345678,0,0
n4,057188000001,voice,2026-10-08 09:15:00,95x,1,0
EOF
# n1: 9 dropped (and not then 05 -> 99: once), F001's call: local peak
# 0.40; n2: 900 -> 00 beats 9, F004's call: international 10.10; n3:
# 0086 -> +86, the '+' dropped: M008's sms; n4: 95x -> 5x is no number.
printf '%s\n' "n1,A1001,057188000001,voice,local,peak,240,0.400000" \
	"n3,A1001,8613800000001,sms,mobile,idle,1,0.100000" \
	"n2,A1001,057188000001,voice,international,peak,240,10.100000" >"$W/in.want"
"$BIN" rate --tariff "$W/nt" --period 2026-10 --itemize "$W/in" \
	--rejects "$W/rn" --out "$W/tn" "$W/n.csv" 2>"$W/err"
item_old "$W/in" >"$W/in.c"
same "$W/in.c" "$W/in.want" "normalize: itemize with rewritten numbers"
csv_cols "$W/in" id destination | grep -qx 'n1	057187654321' && ok ||
	bad "normalize: itemize destination rewritten"
echo "n4,057188000001,voice,2026-10-08 09:15:00,95x,1,0,malformed:destination" >"$W/rn.want"
rej_old "$W/rn" >"$W/rn.c"
same "$W/rn.c" "$W/rn.want" "normalize: rejects the line as read"
csv_cols "$W/rn" detail | grep -qF 'destination "95x": expected 0-9, * or # after an optional + (after normalize.csv)' &&
	ok || bad "normalize: reject detail: $(cat "$W/rn")"
echo "$A16" | sed 's/"057187654321"/"9057187654321"/' >"$W/na.csv"
"$BIN" rate --tariff "$W/nt" --period 2026-10 --itemize "$W/ina" \
	--out "$W/tna" "$W/na.csv" 2>/dev/null
item_old "$W/ina" | grep -q ',A1001,057188000001,voice,local,peak,240,0.400000$' && ok ||
	bad "normalize: applies to asterisk lines"
"$BIN" check --tariff "$W/nt" >"$W/chk" 2>&1
grep -q "normalize: 1 subscriber, 3 destination rules" "$W/chk" &&
	grep -q "destination 900 -> 00" "$W/chk" && ok || bad "check lists normalize.csv"
echo "callee,1,2" >>"$W/nt/normalize.csv"
expect_rc 1 "bad normalize.csv" "$BIN" check --tariff "$W/nt"
err_has "normalize.csv:6: column applies_to" "bad normalize.csv named"
sed -i '$d' "$W/nt/normalize.csv"

# ---- rerate across two normalize.csv ------------------------------------
# Each side rewrites numbers with its own tariff's normalize.csv, so each
# side's totals are what `rate` prints with that tariff alone, and the
# rejects and itemize are those of the new tariff alone. Duplicates are
# decided on the line as read (the id, or a switch record's whole line),
# but only among the lines that parse on that side: a line one side
# rejects is no duplicate there. Old: 9 dropped, 0086 -> +86. New: 9 ->
# 00, 18 dropped, 0086 dropped. The lines (worked by hand):
#   r1 9057187654321: old local 0571..., new international 00057...
#   r2 sms from 008613800000001: old M008 (8613800000001), new
#      13800000001, unknown_subscriber
#   r3 to 9: old empty, malformed:destination; new 00, international
#   r4 to 18: old mobile; new empty, malformed:destination
#   d1 twice: "...,9,60,0" is the smaller line; old rejects it, so the
#      other (to 90571: local) is rated and no duplicate; new rates it
#      (00) and the other is the duplicate
#   d3 twice: "...,18,30,0" is the smaller; old rates it (mobile), the
#      other (180000, mobile) is the duplicate; new rejects it and rates
#      the other (0000: international, by its 00)
#   d2 twice, the same line: a duplicate on each side
#   an Asterisk record twice (its key is the line): a duplicate on each
#      side, local on the old, international on the new
cp -R "$DEMO/tariff" "$W/no"; cp -R "$DEMO/tariff" "$W/nn"
printf '%s\n' "applies_to,prefix,replace" "destination,9," "subscriber,0086,+86" \
	>"$W/no/normalize.csv"
printf '%s\n' "applies_to,prefix,replace" "destination,9,00" "destination,18," \
	"subscriber,0086," >"$W/nn/normalize.csv"
mkdir "$W/nin"
printf '%s\n' "r1,057188000001,voice,2026-10-08 09:15:00,9057187654321,185,0" \
	"r2,008613800000001,sms,2026-10-10 12:00:00,13912345678,0,0" \
	"r3,057188000001,voice,2026-10-09 10:00:00,9,60,0" \
	"d1,057188000001,voice,2026-10-10 10:00:00,90571,60,0" \
	"d3,057188000001,voice,2026-10-11 10:00:00,18,30,0" \
	"d2,057188000001,voice,2026-10-12 10:00:00,057187654321,40,0" >"$W/nin/1.csv"
printf '%s\n' "d2,057188000001,voice,2026-10-12 10:00:00,057187654321,40,0" \
	"r4,057188000001,voice,2026-10-09 11:00:00,18,30,0" \
	"d3,057188000001,voice,2026-10-11 10:00:00,180000,30,0" \
	"d1,057188000001,voice,2026-10-10 10:00:00,9,60,0" >"$W/nin/2.csv"
echo "$A16" | sed 's/"057187654321"/"9057187654321"/' >"$W/na2"
cat "$W/na2" "$W/na2" >"$W/nin/3.csv"
cp "$DEMO"/cdrs/* "$W/nin/"
"$BIN" rate --tariff "$W/no" --period 2026-10 --out "$W/n2.old" \
	--rejects "$W/n2.rold" "$W/nin" 2>/dev/null
"$BIN" rate --tariff "$W/nn" --period 2026-10 --out "$W/n2.new" \
	--rejects "$W/n2.rnew" --itemize "$W/n2.inew" "$W/nin" 2>/dev/null
sort "$W/n2.rnew" >"$W/n2.rnew.s"; sort "$W/n2.inew" >"$W/n2.inew.s"
# The hand-worked lines below name records and reasons, itemize rows in
# their first columns.
rej_old "$W/n2.rold" >"$W/n2.rold.o"; rej_old "$W/n2.rnew" >"$W/n2.rnew.o"
item_old "$W/n2.inew" >"$W/n2.inew.o"
"$BIN" diff "$W/n2.old" "$W/n2.new" --all --out "$W/n2.diff" 2>/dev/null
# The hand-worked lines, so the comparisons below cannot pass vacuously.
cmp -s "$W/n2.old" "$W/n2.new" && bad "the two normalisations give the same totals" || ok
for l in "r3,057188000001,voice,2026-10-09 10:00:00,9,60,0,malformed:destination" \
	"d1,057188000001,voice,2026-10-10 10:00:00,9,60,0,malformed:destination" \
	"d3,057188000001,voice,2026-10-11 10:00:00,180000,30,0,duplicate" \
	"d2,057188000001,voice,2026-10-12 10:00:00,057187654321,40,0,duplicate"; do
	grep -qxF "$l" "$W/n2.rold.o" && ok || bad "rate, old normalisation: lacks $l"
done
for l in "r2,008613800000001,sms,2026-10-10 12:00:00,13912345678,0,0,unknown_subscriber" \
	"r4,057188000001,voice,2026-10-09 11:00:00,18,30,0,malformed:destination" \
	"d3,057188000001,voice,2026-10-11 10:00:00,18,30,0,malformed:destination" \
	"d1,057188000001,voice,2026-10-10 10:00:00,90571,60,0,duplicate" \
	"d2,057188000001,voice,2026-10-12 10:00:00,057187654321,40,0,duplicate"; do
	grep -qxF "$l" "$W/n2.rnew.o" && ok || bad "rate, new normalisation: lacks $l"
done
[ "$(grep -c ',duplicate$' "$W/n2.rold.o")" = "$(grep -c ',duplicate$' "$W/n2.rnew.o")" ] && ok ||
	bad "both sides have as many duplicates (d3 on one, d1 on the other)"
grep -q '^d1,A1001,057188000001,voice,international,' "$W/n2.inew.o" &&
	grep -q '^d3,A1001,057188000001,voice,international,idle,60,' "$W/n2.inew.o" &&
	grep -q '^r1,A1001,057188000001,voice,international,' "$W/n2.inew.o" &&
	grep -q '/nin/3.csv:1,A1001,057188000001,voice,international,' "$W/n2.inew.o" && ok ||
	bad "itemize, new normalisation: rewritten numbers"
# n2_rerate TAG OPTS... INPUT...: rerate, then each side against rate alone.
n2_rerate() {
	tag=$1; shift
	"$BIN" rerate --tariff "$W/no" --new-tariff "$W/nn" --period 2026-10 --all \
		--old-out "$W/n2.$tag.old" --new-out "$W/n2.$tag.new" --out "$W/n2.$tag.d" \
		--rejects "$W/n2.$tag.r" --itemize "$W/n2.$tag.i" "$@" 2>"$W/err"
	st=$?
	[ $st -eq 0 ] && ok || { bad "rerate across normalisations, $tag: exit $st"; head -3 "$W/err"; }
	same "$W/n2.$tag.old" "$W/n2.old" "rerate across normalisations, $tag: old side is rate alone"
	same "$W/n2.$tag.new" "$W/n2.new" "rerate across normalisations, $tag: new side is rate alone"
	same "$W/n2.$tag.d" "$W/n2.diff" "rerate across normalisations, $tag: delta is diff of the two"
	rej_same "$W/n2.$tag.r" "$W/n2.rnew" "rerate across normalisations, $tag: rejects of the new side"
}
for th in 1 3; do
	n2_rerate "t$th" --threads $th "$W/nin"
	sorted_same "$W/n2.t$th.r" "$W/n2.rnew.s" "rerate across normalisations, t$th: rejects file of the new side"
	sorted_same "$W/n2.t$th.i" "$W/n2.inew.s" "rerate across normalisations, t$th: itemize of the new side"
done
# Read back by decoding again and from the spool: a native file gzipped,
# the Asterisk file on standard input.
if command -v gzip >/dev/null; then
	mkdir "$W/ninz"
	cp "$W/nin"/0*.csv "$W/nin/2.csv" "$W/ninz/"
	gzip -c "$W/nin/1.csv" >"$W/ninz/1.csv"
	n2_rerate z --threads 2 "$W/ninz" - <"$W/nin/3.csv"
fi

# ---- real switch files (../shared/real-cdrs, not in the repository) ----
# Each is rated with the demo tariff; every line must be accounted for
# (rated + rejected = read = its rows) and the reason counts are those
# its README predicts, worked out in fixtures/switch/README.md.
if [ -d "$REAL" ]; then
	# real FILE FORMAT ROWS EXPECT...: EXPECT are stderr fragments
	real() {
		f=$1; fm=$2; rows=$3; shift 3
		rate_demo --format "$fm" --out "$W/rt" --rejects "$W/rr" \
			--itemize "$W/ri" "$REAL/$f" 2>"$W/err"
		got=$(($(rows "$W/rr") + $(rows "$W/ri")))
		[ "$got" -eq "$rows" ] && ok || bad "$f: $got lines accounted for, $rows rows"
		err_has "$rows records read" "$f: records read"
		for e in "$@"; do err_has "$e" "$f"; done
	}
	real asterisk-bugadm-18col.csv auto 105 "files by format: 1 asterisk" \
		"11 unanswered" "malformed:subscriber     5" \
		"malformed:destination    10"
	real asterisk-kelysaina-custom19.csv auto 14 "files by format: 1 asterisk-custom" \
		"3 unanswered" "malformed:subscriber     11"
	real freeswitch-amitsrepo-15col.csv auto 333 "files by format: 1 freeswitch" \
		"277 unanswered" "malformed:destination    1"
	real asterisk-g9telecom-16col-header.csv "map:$SW/maps/asterisk-cdr-table.map" 100 \
		"files by format: 1 map" "12 unanswered"
	real freeswitch-kxing-15col-spreadsheet.csv "map:$SW/maps/freeswitch-spreadsheet.map" 10 \
		"files by format: 1 map" "3 unanswered" "malformed:destination    7"
	# auto cannot place these two; it says so and rejects each line.
	rate_demo --out "$W/rt" "$REAL/freeswitch-kxing-15col-spreadsheet.csv" 2>"$W/err"
	err_has "freeswitch-kxing-15col-spreadsheet.csv: format not recognised" "spreadsheet file unplaced"
else
	echo "formats: $REAL absent, real switch files skipped"
fi

summary
