#!/bin/sh
# End-to-end tests of the cdrate command: byte-exact goldens, invariance
# under threads / input order / I/O path / standard input, exit codes,
# tariff errors, and outputs that never appear half-written.
#
# usage: tests/e2e/run.sh BUILD/cdrate
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=e2e
. "$(dirname "$0")/lib.sh"

# ---- the demo golden (figures worked by hand in fixtures/demo/WORKED.md)
# Run from the repository with its relative paths, as the golden was: the
# rejects name the files as given. Both files are sorted (README), so they
# are compared byte for byte.
(cd "$ROOT" && "$BIN" rate --tariff fixtures/demo/tariff --period 2026-10 \
	--out "$W/t.csv" --rejects "$W/r.csv" --itemize "$W/i.csv" \
	fixtures/demo/cdrs) 2>"$W/err"
same "$W/t.csv" "$DEMO/expected/totals.csv" "demo totals"
same "$W/r.csv" "$DEMO/expected/rejects.csv" "demo rejects"
same "$W/i.csv" "$DEMO/expected/itemize.csv" "demo itemize"
grep -q "68 records read, 48 rated, 20 rejected" "$W/err" && ok || bad "demo summary line"
[ "$(rows "$W/r.csv")" -eq 20 ] && [ "$(rows "$W/i.csv")" -eq 48 ] && ok ||
	bad "every line rated or rejected once"
head -1 "$W/r.csv" | grep -qx 'file,line,reason,detail,record' && ok || bad "rejects header"
head -1 "$W/i.csv" | grep -qx 'id,account,subscriber,service,start,destination,zone,band,plan,quantity,charge' &&
	ok || bad "itemize header"
# Every reject names the line it came from: line N of its file is the record.
tail -n +2 "$W/r.csv" | while IFS=, read -r f l _; do
	rec=$(cd "$ROOT" && sed -n "${l}p" "$f" | tr -d '\r')
	csv_cols "$W/r.csv" file line record | grep -qxF "$f	$l	$rec" || echo "$f:$l"
done >"$W/r.lines"
[ ! -s "$W/r.lines" ] && ok || bad "rejects whose line is not the record: $(head -3 "$W/r.lines")"

# ---- invariance: threads x I/O path, file order, record order, stdin
for io in uring read; do
	for th in 1 2 3 4; do
		rate_demo --threads $th --io $io --out "$W/t.$io.$th" \
			--itemize "$W/i.$io.$th" "$DEMO/cdrs" 2>/dev/null
		same "$W/t.$io.$th" "$DEMO/expected/totals.csv" "totals, $th threads, io $io"
		same "$W/i.$io.$th" "$DEMO/expected/itemize.csv" "itemize, $th threads, io $io"
	done
done
set -- "$DEMO"/cdrs/*
rev=""
for f in "$@"; do rev="$f $rev"; done
# shellcheck disable=SC2086
rate_demo --out "$W/t.rev" $rev 2>/dev/null
same "$W/t.rev" "$DEMO/expected/totals.csv" "totals, files in reverse order"

# All records in one headerless file, shuffled by a seeded shuffle.
for f in "$DEMO"/cdrs/*; do awk 'NR > 1 || !/^id,/' "$f"; done >"$W/all.csv"
for seed in 1 2 3 4 5 6; do
	awk -v s=$seed 'BEGIN { srand(s) } { printf "%.8f\t%s\n", rand(), $0 }' "$W/all.csv" |
		sort -k1,1 | cut -f2- >"$W/shuf$seed.csv"
	th=$((seed % 4 + 1))
	rate_demo --threads $th --out "$W/t.shuf" --rejects "$W/r.shuf" \
		--itemize "$W/i.shuf" "$W/shuf$seed.csv" 2>/dev/null
	same "$W/t.shuf" "$DEMO/expected/totals.csv" "totals, shuffle seed $seed, $th threads"
	rej_same "$W/r.shuf" "$DEMO/expected/rejects.csv" "rejects, shuffle seed $seed"
	same "$W/i.shuf" "$DEMO/expected/itemize.csv" "itemize byte-identical, shuffle seed $seed"
	# Rejects are in line order, and line N of the input is the record.
	csv_cols "$W/r.shuf" line >"$W/r.shuf.l"
	sort -n "$W/r.shuf.l" | cmp -s - "$W/r.shuf.l" && ok || bad "rejects not in line order, seed $seed"
	csv_cols "$W/r.shuf" line record | while IFS='	' read -r l rec; do
		[ "$(sed -n "${l}p" "$W/shuf$seed.csv" | tr -d '\r')" = "$rec" ] || echo "$l"
	done >"$W/r.shuf.bad"
	[ ! -s "$W/r.shuf.bad" ] && ok || bad "shuffle seed $seed: reject lines $(head -3 "$W/r.shuf.bad")"
done
rate_demo --out "$W/t.stdin" - <"$W/shuf1.csv" 2>/dev/null
same "$W/t.stdin" "$DEMO/expected/totals.csv" "totals from standard input"
cat "$W/shuf2.csv" | rate_demo --out "$W/t.pipe" --rejects "$W/r.pipe" - 2>/dev/null
same "$W/t.pipe" "$DEMO/expected/totals.csv" "totals from a pipe"
rej_same "$W/r.pipe" "$DEMO/expected/rejects.csv" "rejects from a pipe (duplicates read back)"
# The duplicate's line and the line it duplicates, counted from the spool.
csv_cols "$W/r.pipe" line detail record | grep '	duplicate of' | while IFS='	' read -r l d rec; do
	wl=${d##*:}
	[ "$(sed -n "${l}p" "$W/shuf2.csv" | tr -d '\r')" = "$rec" ] &&
		[ "$(sed -n "${wl}p" "$W/shuf2.csv" | cut -d, -f1)" = "${rec%%,*}" ] || echo "$l $d"
done >"$W/r.pipe.bad"
[ ! -s "$W/r.pipe.bad" ] && grep -q 'duplicate of -:' "$W/r.pipe" && ok ||
	bad "duplicates from a pipe: $(head -3 "$W/r.pipe.bad")"

# A FIFO is read as a stream; its duplicates are resolved from the spool.
if mkfifo "$W/in.fifo" 2>/dev/null; then
	cat "$W/shuf3.csv" >"$W/in.fifo" &
	rate_demo --out "$W/t.fifo" --rejects "$W/r.fifo" "$W/in.fifo" 2>/dev/null
	wait
	same "$W/t.fifo" "$DEMO/expected/totals.csv" "totals from a FIFO"
	rej_same "$W/r.fifo" "$DEMO/expected/rejects.csv" "rejects from a FIFO"
fi

# ---- hand-worked cases: tests/e2e/cases/NAME/{tariff,cdrs,args,expected}
for c in "$HERE"/cases/*/; do
	[ -d "$c" ] || continue
	name=$(basename "$c")
	# shellcheck disable=SC2046
	"$BIN" rate --tariff "$c/tariff" $(cat "$c/args") --out "$W/c.t" \
		--rejects "$W/c.r" --itemize "$W/c.i" "$c/cdrs" 2>"$W/c.err"
	same "$W/c.t" "$c/expected/totals.csv" "case $name: totals"
	[ -f "$c/expected/rejects.csv" ] && rej_same "$W/c.r" "$c/expected/rejects.csv" "case $name: rejects"
	[ -f "$c/expected/itemize.csv" ] && same "$W/c.i" "$c/expected/itemize.csv" "case $name: itemize"
done

# ---- re-rating (tests/e2e/rerate: worked by hand in its README.md)
RR=$HERE/rerate
"$BIN" rerate --tariff "$RR/old" --new-tariff "$RR/new" --period 2026-10 --all \
	--old-out "$W/rr.old" --new-out "$W/rr.new" "$RR/cdrs" >"$W/rr.all" 2>"$W/rr.err"
same "$W/rr.all" "$RR/expected/delta-all.csv" "rerate --all delta"
same "$W/rr.old" "$RR/expected/old.csv" "rerate --old-out"
same "$W/rr.new" "$RR/expected/new.csv" "rerate --new-out"
grep -q "4 accounts changed: 3 up, 1 down" "$W/rr.err" && grep -q "total old 29.40, new 69.45" "$W/rr.err" &&
	grep -q "  D -0.05" "$W/rr.err" && ok || bad "rerate report on stderr"
"$BIN" rerate --tariff "$RR/old" --new-tariff "$RR/new" --period 2026-10 \
	--out "$W/rr.d" "$RR/cdrs" 2>/dev/null
same "$W/rr.d" "$RR/expected/delta.csv" "rerate delta lists changed accounts only"
for side in old new; do
	"$BIN" rate --tariff "$RR/$side" --period 2026-10 --out "$W/rr.rate.$side" "$RR/cdrs" 2>/dev/null
	same "$W/rr.rate.$side" "$RR/expected/$side.csv" "rate $side equals the rerate side"
done
"$BIN" diff "$RR/expected/old.csv" "$RR/expected/new.csv" --all >"$W/rr.diff" 2>/dev/null
same "$W/rr.diff" "$RR/expected/delta-all.csv" "diff of saved totals"
sed 's/2026-10/2026-09/' "$RR/expected/new.csv" >"$W/rr.sep"
expect_rc 1 "diff of different periods" "$BIN" diff "$RR/expected/old.csv" "$W/rr.sep"
err_has "periods differ" "diff names the period mismatch"
printf 'account,period\nA,2026-10\n' >"$W/rr.bad"
expect_rc 1 "diff of a malformed file" "$BIN" diff "$RR/expected/old.csv" "$W/rr.bad"
err_has "rr.bad:1:" "diff names the malformed file and line"
expect_rc 2 "rerate without --new-tariff" "$BIN" rerate --tariff "$RR/old" --period 2026-10 "$RR/cdrs"

# Property: for seeded variations of the demo tariff, each side of rerate
# is what rate prints alone, and diff of those is rerate's delta.
for seed in 1 2 3 4 5; do
	V=$W/var$seed
	rm -rf "$V"
	cp -r "$DEMO/tariff" "$V"
	awk -F, -v OFS=, -v s=$seed 'BEGIN { srand(s) }
		NR > 1 && rand() < 0.5 { $6 = sprintf("%.6f", $6 * (0.5 + rand())) } { print }' \
		"$DEMO/tariff/rates.csv" >"$V/rates.csv"
	awk -F, -v OFS=, -v s=$seed 'BEGIN { srand(s + 100) }
		NR > 1 && rand() < 0.5 { $2 = sprintf("%.2f", $2 + 5 * rand()) } { print }' \
		"$DEMO/tariff/plans.csv" >"$V/plans.csv"
	"$BIN" rerate --tariff "$DEMO/tariff" --new-tariff "$V" --period 2026-10 --all \
		--threads $((seed % 3 + 1)) --old-out "$W/p.old" --new-out "$W/p.new" \
		--out "$W/p.delta" "$DEMO/cdrs" 2>/dev/null
	rate_demo --out "$W/p.rate.old" "$DEMO/cdrs" 2>/dev/null
	"$BIN" rate --tariff "$V" --period 2026-10 --out "$W/p.rate.new" "$DEMO/cdrs" 2>/dev/null
	same "$W/p.old" "$W/p.rate.old" "property seed $seed: old side equals rate"
	same "$W/p.new" "$W/p.rate.new" "property seed $seed: new side equals rate"
	"$BIN" diff "$W/p.rate.old" "$W/p.rate.new" --all >"$W/p.diff" 2>/dev/null
	same "$W/p.diff" "$W/p.delta" "property seed $seed: diff equals rerate delta"
	cmp -s "$W/p.old" "$W/p.new" && bad "property seed $seed: the variation changed nothing" || ok
done

# ---- hostile input: every line read ends rated or rejected, no crash
mkdir -p "$W/hostile"
if command -v python3 >/dev/null; then
	python3 "$HERE/hostile.py" "$W/hostile" >"$W/hostile.list"
	while read -r name want; do
		f=$W/hostile/$name.csv
		for th in 1 3; do
			rate_demo --threads $th --out "$W/h.t" --rejects "$W/h.r" --itemize "$W/h.i" "$f" 2>"$W/h.err"
			st=$?
			read_n=$(sed -n 's/^cdrate: \([0-9]*\) records read, \([0-9]*\) rated, \([0-9]*\) rejected.*/\1 \2 \3/p' "$W/h.err")
			set -- $read_n
			if [ $st -eq 0 ] && [ "${1:-x}" = "$want" ] && [ $(($2 + $3)) -eq "$want" ] &&
				[ "$(rows "$W/h.r")" -eq "$3" ] && [ "$(rows "$W/h.i")" -eq "$2" ] &&
				csv_cols "$W/h.r" record >/dev/null && csv_cols "$W/h.i" id >/dev/null; then ok; else
				bad "hostile $name ($th threads): exit $st, read/rated/rejected '$read_n', want $want lines"
				head -3 "$W/h.err"
			fi
		done
	done <"$W/hostile.list"
	# The 20 MB line is cut to its first 64 KiB in the rejects file.
	rate_demo --rejects "$W/h.r" --out "$W/h.t" "$W/hostile/long_line.csv" 2>/dev/null
	n=$(csv_cols "$W/h.r" reason | grep -c '^malformed:line_too_long$')
	longest=$(csv_cols "$W/h.r" record | awk '{ if (length($0) > m) m = length($0) } END { print m }')
	[ "$n" -eq 2 ] && [ "$longest" -eq 65536 ] && ok ||
		bad "long lines: $n line_too_long rejects, longest $longest bytes"
else
	echo "hostile inputs skipped: python3 not installed"
fi

# The header is the first non-empty line, even past the first 4 MiB read.
awk 'BEGIN { for (i = 0; i < 5 * 1024 * 1024; i++) printf "\n";
	print "id,subscriber,service,start,destination,duration,volume";
	print "x1,057188000001,voice,2026-10-08 09:15:00,057187654321,185,0" }' >"$W/blank.csv"
rate_demo --out "$W/blank.t" "$W/blank.csv" 2>"$W/err"
grep -q "1 records read, 1 rated, 0 rejected" "$W/err" && ok ||
	bad "header after 5 MiB of blank lines: $(head -1 "$W/err")"
rm -f "$W/blank.csv" "$W/blank.t"

# A record line of the demo tariff: id, then duration.
cdr_line() { printf '%s,057188000001,voice,2026-10-08 09:15:00,057187654321,%s,0\n' "$1" "$2"; }
# A file whose line ends are bare CR is one "line": it was skipped whole
# as a header (0 read, exit 0). It stops the run, small or past 64 KiB.
H=id,subscriber,service,start,destination,duration,volume
{ printf '%s\r' "$H"; cdr_line x1 60 | tr '\n' '\r'; } >"$W/cr.csv"
awk 'BEGIN { for (i = 0; i < 2000; i++)
	printf "c%d,057188000001,voice,2026-10-08 09:15:00,057187654321,60,0\r", i }' >"$W/crlong.csv"
for f in cr crlong; do
	expect_rc 1 "bare CR file $f.csv" rate_demo --out "$W/cr.t" "$W/$f.csv"
	err_has "$f.csv: line ends are bare CR (\r); cdrate reads \n or \r\n" "bare CR named ($f.csv)"
	[ ! -e "$W/cr.t" ] && ok || bad "bare CR file $f.csv: totals written"
done
expect_rc 1 "bare CR on standard input" rate_demo --out "$W/cr.t" - <"$W/cr.csv"
err_has "standard input: line ends are bare CR" "bare CR on standard input named"
# SPEC 11: a header must name the seven columns; one that does not stops
# the run naming the missing column. Another order is not read yet: it
# stops too, rather than being rated as if in the native order.
{ echo "id,subscriber,service,start,destination,duration"; cdr_line x1 60; } >"$W/h6.csv"
expect_rc 1 "header without volume" rate_demo --out "$W/cr.t" "$W/h6.csv"
err_has "h6.csv: header has no column 'volume'" "missing header column named"
# A header naming the seven columns in another order, or among others, is
# read by name (SPEC 11): the same record must rate as the native line.
{ echo "$H"; cdr_line x1 60; } >"$W/hcan.csv"
rate_demo --out "$W/hcan.t" --itemize "$W/hcan.i" "$W/hcan.csv" 2>/dev/null
{ echo "service,note,volume,duration,destination,start,subscriber,id"
  echo "voice,\"a, b\",0,60,057187654321,2026-10-08 09:15:00,057188000001,x1"; } >"$W/hord.csv"
rate_demo --out "$W/cr.t" --itemize "$W/hord.i" "$W/hord.csv" 2>"$W/err"
grep -q "1 records read, 1 rated, 0 rejected" "$W/err" && ok || bad "reordered header read by name: $(head -1 "$W/err")"
same "$W/cr.t" "$W/hcan.t" "reordered header: totals as the native order"
same "$W/hord.i" "$W/hcan.i" "reordered header: itemize as the native order"
# Read by name, duplicates are still by id (the bytewise smaller line kept).
{ echo "service,note,volume,duration,destination,start,subscriber,id"
  echo "voice,b,0,60,057187654321,2026-10-08 09:15:00,057188000001,x1"
  echo "voice,a,0,60,057187654321,2026-10-08 09:15:00,057188000001,x1"; } >"$W/hdup.csv"
rate_demo --out "$W/cr.t" --rejects "$W/hdup.r" "$W/hdup.csv" 2>"$W/err"
grep -q "2 records read, 1 rated, 1 rejected" "$W/err" &&
	csv_cols "$W/hdup.r" reason record | grep -q '^duplicate	voice,b,.*,x1$' && ok ||
	bad "reordered header: duplicates by id: $(cat "$W/hdup.r")"
rm -f "$W/cr.t"
# A BOM, blank lines (\n and \r\n) and a CRLF header are still fine.
{ printf '\357\273\277\r\n\n%s\r\n' "$H"; cdr_line x1 60; } >"$W/hok.csv"
rate_demo --out "$W/cr.t" "$W/hok.csv" 2>"$W/err"
grep -q "1 records read, 1 rated, 0 rejected" "$W/err" && ok || bad "BOM, blank lines, CRLF header: $(head -1 "$W/err")"
rm -f "$W"/cr*.csv "$W"/h*.csv "$W/cr.t"

# ---- inputs read back for the duplicate check
# A file replaced while the run still reads another input (a FIFO gates
# it): reading its duplicates back would take out of the sums lines that
# were never added. The run stops instead, naming the file.
if mkfifo "$W/gate.fifo" 2>/dev/null; then
	for r in 60 61; do for i in 1 2 3 4 5; do cdr_line d$i $r; done; done >"$W/chg.csv"
	sed 's/,6\([01]\),0$/,9\1,0/' "$W/chg.csv" >"$W/chg.new"
	rate_demo --out "$W/chg.t" "$W/chg.csv" "$W/gate.fifo" 2>"$W/err" &
	pid=$!
	timeout 10 sh -c 'exec 3>"$1"; mv "$2" "$3"' sh "$W/gate.fifo" "$W/chg.new" "$W/chg.csv"
	wait $pid
	st=$?
	[ $st -eq 1 ] && [ ! -e "$W/chg.t" ] && ok || bad "input replaced during the run: exit $st"
	err_has "chg.csv: changed while being rated" "replaced input named"
	rm -f "$W/gate.fifo" "$W/chg.csv" "$W/chg.t"
fi
# 1100 inputs with duplicates across files, with 256 descriptors: files
# are read back one at a time. Id m(i+1) is in files i and i+1.
mkdir "$W/many"
awk -v d="$W/many" 'BEGIN { for (i = 0; i < 1100; i++) {
	f = sprintf("%s/%04d.csv", d, i)
	for (k = i; k <= i + 1; k++)
		printf "m%d,057188000001,voice,2026-10-08 09:15:00,057187654321,60,0\n", k >f
	close(f) } }'
(ulimit -n 256 && rate_demo --out "$W/many.t" --rejects "$W/many.r" "$W/many") 2>"$W/err"
st=$?
n=$(csv_cols "$W/many.r" reason | grep -c '^duplicate$')
[ $st -eq 0 ] && [ "$n" = 1099 ] && ok || bad "1100 inputs under ulimit -n 256: exit $st, $n duplicates"
rm -rf "$W/many" "$W/many.t" "$W/many.r"
# 300 FIFOs with duplicates across them, with 256 descriptors: streams
# share one spool, and read back from it give what the same bytes give as
# files (every third ends without its last newline, where one stream's
# spooled bytes meet the next's).
if mkfifo "$W/probe.fifo" 2>/dev/null; then
	rm -f "$W/probe.fifo"
	mkdir "$W/fifos" "$W/fifo-src"
	awk -v d="$W/fifo-src" 'BEGIN { for (i = 0; i < 300; i++) {
		f = sprintf("%s/%03d.csv", d, i)
		printf "p%d,057188000001,voice,2026-10-08 09:15:00,057187654321,%d,0\n", i, 60 + i % 7 >f
		printf "p%d,057188000001,voice,2026-10-08 09:15:00,057187654321,%d,0", i + 1, 60 + i % 5 >f
		if (i % 3) printf "\n" >f
		close(f) } }'
	set --
	for f in "$W"/fifo-src/*.csv; do
		p=$W/fifos/$(basename "$f")
		mkfifo "$p"
		set -- "$@" "$p"
	done
	for f in "$W"/fifo-src/*.csv; do timeout 30 cp "$f" "$W/fifos/$(basename "$f")" & done
	(ulimit -n 256 && rate_demo --out "$W/fifo.t" --rejects "$W/fifo.r" "$@") 2>"$W/err"
	st=$?
	wait
	rate_demo --out "$W/file.t" --rejects "$W/file.r" "$W/fifo-src" 2>/dev/null
	[ $st -eq 0 ] && ok || { bad "300 FIFOs under ulimit -n 256: exit $st"; head -3 "$W/err"; }
	same "$W/fifo.t" "$W/file.t" "300 FIFOs: totals as from the files"
	rej_same "$W/fifo.r" "$W/file.r" "300 FIFOs: rejects as from the files"
	# Lines counted in the spool where one stream's bytes meet the next's.
	csv_cols "$W/fifo.r" file line >"$W/fifo.fl"
	csv_cols "$W/file.r" file line | sed "s|$W/fifo-src/|$W/fifos/|" | cmp -s - "$W/fifo.fl" && ok ||
		bad "300 FIFOs: rejects' files and lines as from the files"
	rm -rf "$W/fifos" "$W/fifo-src" "$W"/fifo.* "$W"/file.*
fi
# 20k copies of one id: lines read back take their own size, not a 64 KiB
# block each (that was 1.26 GB). Sanitizers reserve more address space
# than any limit here allows; they skip the limit.
awk 'BEGIN { for (i = 0; i < 20000; i++)
	printf "same,057188000001,voice,2026-10-08 09:15:00,057187654321,%d,0\n", i % 997 }' >"$W/same.csv"
if grep -qa '__[at]san_init' "$BIN"; then lim=unlimited; else lim=600000; fi
(ulimit -v $lim && rate_demo --out "$W/same.t" "$W/same.csv") 2>"$W/err"
st=$?
[ $st -eq 0 ] && grep -q "20000 records read, 1 rated, 19999 rejected" "$W/err" && ok ||
	bad "20k copies of one id in 600 MB of address space: exit $st, $(head -1 "$W/err")"
rm -f "$W/same.csv" "$W/same.t"
# An endless line (/dev/zero, here a pipe of it or a device node made for
# the test) is skipped past its first 64 KiB without being spooled: under
# an 8 MiB file size limit the spool never reaches it (it once grew at
# 400 MB/s until SIGXFSZ). Outputs go to a directory of their own, so a
# run killed by the limit leaves its temporaries there.
mkdir "$W/z"
head -c 50000000 /dev/zero | (ulimit -f 8192 && rate_demo --out "$W/z/t" --rejects "$W/z/r" -) 2>"$W/err"
st=$?
[ $st -eq 0 ] && grep -q "1 records read, 0 rated, 1 rejected" "$W/err" && ok ||
	bad "50 MB line from a pipe under ulimit -f 8192: exit $st, $(head -1 "$W/err")"
if mknod "$W/zero" c 1 5 2>/dev/null; then
	(ulimit -f 8192 && timeout 2 "$BIN" rate --tariff "$DEMO/tariff" --period 2026-10 \
		--out "$W/z/t" "$W/zero") 2>"$W/err"
	st=$?
	[ $st -eq 124 ] && ok || bad "endless device input under ulimit -f 8192: exit $st, wanted the timeout's 124"
	rm -f "$W/zero"
fi
# Lines after a skipped long line keep their places in the spool: their
# duplicates are read back from past the hole.
{ head -c 1000000 /dev/zero; echo; cdr_line z1 61; cdr_line z1 60; } |
	rate_demo --out "$W/z/t" --rejects "$W/z/r" - 2>"$W/err"
grep -q "3 records read, 1 rated, 2 rejected" "$W/err" &&
	csv_cols "$W/z/r" line reason detail record | grep -qx '2	duplicate	duplicate of -:3	z1,.*,61,0' &&
	csv_cols "$W/z/r" line reason | grep -qx '1	malformed:line_too_long' && ok ||
	bad "duplicates after a long line from a pipe: $(head -1 "$W/err")"
rm -rf "$W/z"

# ---- command line and exit codes
expect_rc 2 "no command" "$BIN"
expect_rc 2 "unknown command" "$BIN" frobnicate
expect_rc 0 "--help" "$BIN" --help
expect_rc 0 "rate --help" "$BIN" rate --help
grep -q "usage: cdrate rate" "$W/out" && ok || bad "rate --help prints usage"
expect_rc 0 "--version" "$BIN" --version
grep -q "^cdrate [0-9]" "$W/out" && ok || bad "--version prints the version"
expect_rc 2 "unknown option" rate_demo --frob "$DEMO/cdrs"
err_has "unknown option '--frob'" "unknown option named"
expect_rc 2 "missing --period" "$BIN" rate --tariff "$DEMO/tariff" "$DEMO/cdrs"
expect_rc 2 "bad --period" "$BIN" rate --tariff "$DEMO/tariff" --period 2026-13 "$DEMO/cdrs"
expect_rc 2 "no INPUT" rate_demo
expect_rc 2 "bad --threads" rate_demo --threads 0 "$DEMO/cdrs"
expect_rc 2 "bad --io" rate_demo --io mmap "$DEMO/cdrs"
expect_rc 1 "missing input" rate_demo --out "$W/never.csv" "$W/no-such-file"
err_has "no-such-file" "missing input named"
[ ! -e "$W/never.csv" ] && ok || bad "failed run wrote totals"
expect_rc 0 "check" "$BIN" check --tariff "$DEMO/tariff"
grep -q "tariff OK" "$W/out" && grep -q "from 2026-10-16" "$W/out" && ok ||
	bad "check describes the tariff and its dated rows"

# ---- outputs appear whole or not at all
expect_rc 1 "unwritable --out" rate_demo --out "$W/no/such/dir/t.csv" \
	--rejects "$W/r2.csv" --itemize "$W/i2.csv" "$DEMO/cdrs"
[ ! -e "$W/r2.csv" ] && [ ! -e "$W/i2.csv" ] && ok || bad "rejects/itemize committed though totals failed"
[ -z "$(ls "$W" | grep '\.tmp\.')" ] && ok || bad "temporary files left behind"
# A run killed by SIGTERM mid-way leaves no file at a final name.
awk 'BEGIN { for (i = 0; i < 3000000; i++)
	printf "k%d,8613800000001,voice,2026-10-05 08:00:00,13912345678,60,0\n", i }' >"$W/big.csv"
# SIGTERM and SIGINT: no output at a final name and no temporaries.
# SIGKILL cannot be caught: a temporary may remain, a final name never.
for sig in TERM INT KILL; do
	"$BIN" rate --tariff "$DEMO/tariff" --period 2026-10 --threads 1 \
		--out "$W/k.t" --itemize "$W/k.i" "$W/big.csv" 2>/dev/null &
	pid=$!
	sleep 0.3
	kill -$sig $pid 2>/dev/null
	wait $pid 2>/dev/null
	st=$?
	if [ $st -ne 0 ]; then
		[ ! -e "$W/k.t" ] && [ ! -e "$W/k.i" ] && ok || bad "SIG$sig left an output at its final name"
		if [ $sig != KILL ]; then
			[ -z "$(ls "$W" | grep '\.tmp\.')" ] && ok || bad "SIG$sig left a temporary"
		fi
	else
		ok # finished before the signal: nothing to check
	fi
	rm -f "$W"/k.*
done
rm -f "$W/big.csv"

# ---- outputs never destroy anything (issue 10, part 1)
# Everything here works on copies in $W/o: a broken build must not be
# able to overwrite the fixtures.
O=$W/o
mkdir -p "$O"
cp -r "$DEMO/tariff" "$O/T"
cp -r "$DEMO/cdrs" "$O/cdrs"
cp "$O/cdrs/01-fixed-switch.csv" "$O/a.csv"
sums() { cksum "$O/T"/* "$O/cdrs"/* "$O/a.csv"; }
sums >"$W/sums.before"
rate_o() { "$BIN" rate --tariff "$O/T" --period 2026-10 "$@"; }
# refused OPTIONS...: exit 2 before anything is read, inputs intact
refused() {
	what=$1; shift
	expect_rc 2 "$what" rate_o "$@"
	err_has "is also" "$what: says what it collides with"
	grep -q "records read" "$W/err" && bad "$what: refused only after reading"
	sums | cmp -s - "$W/sums.before" && ok || bad "$what: an input or tariff file changed"
}
refused "--out naming an input" --out "$O/a.csv" "$O/a.csv"
refused "--rejects naming a file of an input directory" --rejects "$O/cdrs/02-mobile-switch.csv" "$O/cdrs"
refused "--itemize new file inside an input directory" --itemize "$O/cdrs/new.csv" "$O/cdrs"
refused "--out naming a tariff file" --out "$O/T/plans.csv" "$O/a.csv"
refused "--out new file inside the tariff directory" --out "$O/T/x.csv" "$O/a.csv"
refused "--out and --rejects the same file" --out "$O/x.csv" --rejects "$O/x.csv" "$O/a.csv"
refused "the same new file by two spellings" --out "$O/x.csv" --itemize "$O/T/../x.csv" "$O/a.csv"
ln -s a.csv "$O/a.link"
refused "a symlink to an input" --out "$O/a.link" "$O/a.csv"
ln "$O/a.csv" "$O/a.hard"
refused "a hard link of an input" --rejects "$O/a.hard" "$O/a.csv"
refused "--rejects - with totals on standard output" --rejects - "$O/a.csv"
refused "two outputs on -" --out - --itemize - --rejects "$O/r.csv" "$O/a.csv"
expect_rc 2 "refused before the tariff is read" "$BIN" rate --tariff "$O/no-tariff" \
	--period 2026-10 --out "$O/a.csv" "$O/a.csv"
expect_rc 2 "--subscribers file as --out" rate_o --subscribers "$O/a.csv" --out "$O/a.csv" "$O/cdrs"
expect_rc 2 "rerate: --new-out inside the new tariff" "$BIN" rerate --tariff "$O/T" \
	--new-tariff "$O/T" --period 2026-10 --new-out "$O/T/t.csv" "$O/a.csv"
expect_rc 2 "rerate: --old-out and --new-out the same" "$BIN" rerate --tariff "$O/T" \
	--new-tariff "$O/T" --period 2026-10 --old-out "$O/t.csv" --new-out "$O/t.csv" "$O/a.csv"
rate_o --out "$O/t1.csv" "$O/cdrs" 2>/dev/null
cp "$O/t1.csv" "$O/t2.csv"
cksum "$O/t1.csv" >"$W/t1.sum"
expect_rc 2 "diff: --out naming its input" "$BIN" diff "$O/t1.csv" "$O/t2.csv" --out "$O/t1.csv"
cksum "$O/t1.csv" | cmp -s - "$W/t1.sum" && ok || bad "diff replaced its input"
sums | cmp -s - "$W/sums.before" && ok || bad "an input or tariff file changed"
# Fresh copies, so that a failure above does not hide the ones below.
rm -rf "$O/T" "$O/cdrs"
cp -r "$DEMO/tariff" "$O/T"
cp -r "$DEMO/cdrs" "$O/cdrs"

# Devices and FIFOs are written to, never replaced. (A node of our own:
# never the machine's /dev/null.)
if mknod "$O/null" c 1 3 2>/dev/null; then
	expect_rc 0 "--out and --rejects on a null device" rate_o --out "$O/null" \
		--rejects "$O/null" "$O/cdrs"
	[ -c "$O/null" ] && ok || bad "the device node was replaced"
	# Standard output on the same device (a cron job's >/dev/null).
	rate_o --rejects "$O/null" "$O/cdrs" >"$O/null" 2>"$W/err"
	st=$?
	[ $st -eq 0 ] && [ -c "$O/null" ] && ok || bad "--rejects on the null device that is standard output: exit $st"
	[ -z "$(ls "$O" | grep '\.tmp\.')" ] && ok || bad "temporary left next to a device"
fi
mkfifo "$O/fifo"
timeout 10 cat "$O/fifo" >"$O/fifo.got" &
catpid=$!
expect_rc 0 "--rejects on a FIFO" rate_o --out "$O/t3.csv" --rejects "$O/fifo" "$O/cdrs"
wait $catpid
[ -p "$O/fifo" ] && ok || bad "the FIFO was replaced"
rej_same "$O/fifo.got" "$DEMO/expected/rejects.csv" "rejects read from the FIFO"
back=$(pwd)
cd "$O" || exit 1
expect_rc 0 "--rejects -" rate_o --out "$O/t4.csv" --rejects - "$O/cdrs"
cd "$back" || exit 1
rej_same "$W/out" "$DEMO/expected/rejects.csv" "--rejects - on standard output"
[ ! -e "$O/-" ] && ok || bad "--rejects - made a file named -"

# A symlink's target is replaced, the link kept; an existing file keeps
# its mode.
echo old >"$O/real.csv"
ln -s real.csv "$O/link.csv"
ln -s dangling.csv "$O/dlink.csv"
rate_o --out "$O/link.csv" --itemize "$O/dlink.csv" "$O/cdrs" 2>/dev/null
[ -L "$O/link.csv" ] && [ -L "$O/dlink.csv" ] && ok || bad "a symlink output was replaced by a file"
same "$O/real.csv" "$DEMO/expected/totals.csv" "the link's target holds the totals"
same "$O/dangling.csv" "$DEMO/expected/itemize.csv" "a dangling link's target was created"
echo old >"$O/m.csv"
chmod 600 "$O/m.csv"
rate_o --out "$O/m.csv" "$O/cdrs" 2>/dev/null
[ "$(stat -c %a "$O/m.csv")" = 600 ] && ok || bad "mode 0600 became $(stat -c %a "$O/m.csv")"
same "$O/m.csv" "$DEMO/expected/totals.csv" "the mode-0600 file was replaced"

# Run as root, a replaced file keeps its owner too.
if [ "$(id -u)" = 0 ]; then
	echo old >"$O/own.csv"
	chown 65534:65534 "$O/own.csv"
	rate_o --out "$O/own.csv" "$O/cdrs" 2>/dev/null
	[ "$(stat -c %u:%g "$O/own.csv")" = 65534:65534 ] && ok || bad "owner not kept: $(stat -c %u:%g "$O/own.csv")"
fi
# A link to what standard output is (as /dev/stdout is) writes to it.
ln -s /proc/self/fd/1 "$O/so"
rate_o --out "$O/t9.csv" --rejects "$O/so" "$O/cdrs" 2>"$W/err" | cat >"$O/so.got"
[ -L "$O/so" ] && ok || bad "a link to standard output was replaced"
rej_same "$O/so.got" "$DEMO/expected/rejects.csv" "rejects through a link to standard output"

# Every output is created before anything is rated; the message names the
# option and the path as given.
expect_rc 1 "uncreatable --rejects" rate_o --out "$O/t5.csv" --rejects "$O/no/r.csv" "$O/cdrs"
err_has "cdrate: --rejects $O/no/r.csv: cannot create: No such file or directory" "uncreatable --rejects named"
grep -q "records read" "$W/err" && bad "uncreatable --rejects found only after rating" || ok
[ ! -e "$O/t5.csv" ] && ok || bad "totals committed though --rejects could not be created"

# A rename that fails half-way through the commit (onto an immutable
# file) takes back the renames before it: all outputs old, or all new.
echo old-t >"$O/c.t"
echo old-r >"$O/c.r"
echo old-i >"$O/c.i"
if chattr +i "$O/c.r" 2>/dev/null; then
	expect_rc 1 "a commit whose second rename fails" rate_o --out "$O/c.t" \
		--rejects "$O/c.r" --itemize "$O/c.i" "$O/cdrs"
	chattr -i "$O/c.r"
	err_has "--rejects $O/c.r: cannot rename into place" "the failing rename named"
	[ "$(cat "$O/c.t" "$O/c.r" "$O/c.i")" = "$(printf 'old-t\nold-r\nold-i')" ] && ok ||
		bad "a failed commit replaced some outputs"
	[ -z "$(ls "$O" | grep '\.tmp\.')" ] && ok || bad "a failed commit left a temporary"
fi

# Someone else's file at our temporary name is neither used nor removed.
echo old >"$O/e.csv"
expect_rc 0 "a foreign file at the temporary name" sh -c \
	'for i in 0 1 2 3; do echo mine >"$0.tmp.$$.$i"; done; exec "$@"' "$O/e.csv" \
	"$BIN" rate --tariff "$O/T" --period 2026-10 --out "$O/e.csv" "$O/cdrs"
same "$O/e.csv" "$DEMO/expected/totals.csv" "totals written past a foreign temporary"
[ "$(cat "$O"/e.csv.tmp.* | sort -u)" = mine ] && [ "$(ls "$O" | grep -c 'e\.csv\.tmp\.')" -eq 4 ] &&
	ok || bad "a foreign file at the temporary name was removed or changed"
rm -f "$O"/e.csv.tmp.*

# Standard output closed or broken: a message and exit 1, and nothing of
# the run lands in a file that took descriptor 1.
rate_o --itemize "$O/i6.csv" "$O/cdrs" >&- 2>"$W/err"
st=$?
[ $st -eq 1 ] && ok || bad "closed standard output: exit $st, wanted 1"
err_has "standard output: Bad file descriptor" "closed standard output named"
[ ! -e "$O/i6.csv" ] && ok || bad "closed standard output: itemize committed"
(trap - PIPE; { sleep 0.3; rate_o --rejects "$O/r7.csv" "$O/cdrs" 2>"$W/err"; echo $? >"$W/rc"; } | true)
[ "$(cat "$W/rc")" = 1 ] && ok || bad "broken pipe: exit $(cat "$W/rc"), wanted 1"
err_has "standard output: Broken pipe" "broken pipe named"
[ ! -e "$O/r7.csv" ] && ok || bad "broken pipe: rejects committed"
(trap - PIPE; { sleep 0.3; "$BIN" check --tariff "$O/T" 2>"$W/err"; echo $? >"$W/rc"; } | true)
[ "$(cat "$W/rc")" = 1 ] && ok || bad "check into a broken pipe: exit $(cat "$W/rc"), wanted 1"
err_has "standard output: Broken pipe" "check into a broken pipe named"
# A file size limit: an error, not a core dump, and no temporary.
(ulimit -f 1; rate_o --out "$O/t8.csv" --itemize "$O/i8.csv" "$O/cdrs" 2>"$W/err"; echo $? >"$W/rc")
[ "$(cat "$W/rc")" = 1 ] && ok || bad "file size limit: exit $(cat "$W/rc"), wanted 1"
err_has "--itemize $O/i8.csv: cannot write: File too large" "file size limit named"
[ ! -e "$O/t8.csv" ] && [ ! -e "$O/i8.csv" ] && ok || bad "file size limit: output committed"
[ -z "$(ls "$O" | grep '\.tmp\.')" ] && ok || bad "file size limit: temporary left"

# Signals: cleanup on every catchable one, nothing at all after SIGKILL
# (the temporaries have no name), and a signal the caller ignores stays
# ignored.
awk 'BEGIN { for (i = 0; i < 3000000; i++)
	printf "k%d,8613800000001,voice,2026-10-05 08:00:00,13912345678,60,0\n", i }' >"$O/big.csv"
# A file size limit hit mid-run (itemize past a worker's 1 MiB buffer).
(ulimit -f 512; "$BIN" rate --tariff "$O/T" --period 2026-10 --out "$O/k.t" \
	--itemize "$O/k.i" "$O/big.csv" 2>"$W/err"; echo $? >"$W/rc")
[ "$(cat "$W/rc")" = 1 ] && ok || bad "file size limit mid-run: exit $(cat "$W/rc"), wanted 1"
err_has "--itemize $O/k.i: cannot write: File too large" "file size limit mid-run named"
[ ! -e "$O/k.t" ] && [ ! -e "$O/k.i" ] && [ -z "$(ls "$O" | grep '\.tmp\.')" ] && ok ||
	bad "file size limit mid-run: output or temporary left"
for sig in INT TERM HUP PIPE XFSZ ALRM USR1 USR2 KILL; do
	env --default-signal "$BIN" rate --tariff "$O/T" --period 2026-10 --threads 1 \
		--out "$O/k.t" --rejects "$O/k.r" --itemize "$O/k.i" "$O/big.csv" 2>/dev/null &
	pid=$!
	sleep 0.3
	kill -$sig $pid 2>/dev/null
	wait $pid 2>/dev/null
	st=$?
	if [ $st -ne 0 ]; then
		[ ! -e "$O/k.t" ] && [ ! -e "$O/k.r" ] && [ ! -e "$O/k.i" ] && ok ||
			bad "SIG$sig left an output at its final name"
		[ -z "$(ls "$O" | grep '\.tmp\.')" ] && ok || bad "SIG$sig left a temporary"
	else
		ok # finished before the signal: nothing to check
	fi
	rm -f "$O"/k.* "$O"/*.tmp.*
done
sh -c "trap '' INT; exec \"\$@\"" sh "$BIN" rate --tariff "$O/T" --period 2026-10 \
	--threads 1 --out "$O/k.t" "$O/big.csv" 2>/dev/null &
pid=$!
sleep 0.3
kill -INT $pid 2>/dev/null
wait $pid
st=$?
[ $st -eq 0 ] && [ -s "$O/k.t" ] && ok || bad "trap '' INT overridden: exit $st"
rm -rf "$O"

# ---- tariff errors: exit 1, message names file, line and column, no output
T=$W/tariff
break_tariff() { # break_tariff FILE SED-SCRIPT EXPECTED-MESSAGE
	rm -rf "$T" "$W/e.csv"
	cp -r "$DEMO/tariff" "$T"
	if [ "$2" = DELETE ]; then rm "$T/$1"; else sed -i "$2" "$T/$1"; fi
	"$BIN" rate --tariff "$T" --period 2026-10 --out "$W/e.csv" "$DEMO/cdrs" >/dev/null 2>"$W/err"
	st=$?
	if [ $st -eq 1 ] && grep -qF -- "$3" "$W/err" && [ ! -e "$W/e.csv" ]; then ok; else
		bad "broken $1 ($2): exit $st, wanted 1 and '$3'"
		head -3 "$W/err"
	fi
	"$BIN" check --tariff "$T" >/dev/null 2>&1
	[ $? -eq 1 ] && ok || bad "check accepted broken $1 ($2)"
}
for f in tariff.conf zones.csv bands.csv plans.csv rates.csv subscribers.csv; do
	break_tariff $f DELETE "$f"
done
break_tariff tariff.conf 's/^timezone.*/timezone = Mars\/Olympus/' "tariff.conf:3: column timezone: unknown time zone"
break_tariff tariff.conf '$a decimals = 7' "column decimals"
break_tariff tariff.conf '$a colour = blue' "unknown setting"
break_tariff zones.csv '$a 0571,national' "duplicate prefix '0571'"
break_tariff zones.csv '$a 01x,national' "column prefix"
break_tariff bands.csv '/idle/d' "gap in coverage"
break_tariff bands.csv '3s/mon-fri/mon-fry/' "bands.csv:3: column days"
break_tariff plans.csv '2s/,.*/,1.2.3/' "plans.csv:2: column monthly_fee: bad amount '1.2.3'"
break_tariff plans.csv '$a fixed25,30' "duplicate plan"
break_tariff rates.csv '2s/^[^,]*,/nosuchplan,/' "rates.csv:2: column plan: unknown plan 'nosuchplan'"
break_tariff rates.csv '2s/^\([^,]*\),[^,]*,[^,]*,/\1,voice,atlantis,/' "rates.csv:2: column zone: unknown zone 'atlantis'"
break_tariff rates.csv '2p' "duplicate key"
break_tariff rates.csv '2s/,[^,]*,[^,]*,[^,]*,[^,]*$/,0,1,1,x/' "rates.csv:2: column"
break_tariff subscribers.csv '2p' "overlap"
break_tariff subscribers.csv '2s/^\([^,]*,[^,]*\),[^,]*,/\1,gold,/' "column plan: unknown plan 'gold'"
break_tariff subscribers.csv '2s/^\([^,]*,[^,]*,[^,]*\),[^,]*,/\1,nopkg,/' "column packages: unknown package 'nopkg'"
break_tariff subscribers.csv '2s/,[0-9-]*,\([0-9-]*\)$/,2026-99-01,\1/' "column from"
break_tariff outages.csv '$a 19999999999,2026-10-01 00:00:00,2026-10-02 00:00:00' "column subscriber"
break_tariff packages.csv '2s/,data,/,fax,/' "packages.csv:2: column service: unknown service 'fax'"
break_tariff packages.csv '3s/,idle,/,dusk,/' "packages.csv:3: column band: unknown band 'dusk'"
break_tariff zones.csv '$a 123456789012345678901234567890123,national' "column prefix: longer than 32 characters"
break_tariff plans.csv '2s/,/,1\x00/' "plans.csv:2: NUL byte in the line"
break_tariff rates.csv '2s/^[^,]*,[^,]*,[^,]*,/fixed25,voice,\x1b[2J,/' "column zone: unknown zone '\\x1b[2J'"

# ---- tariff limits from the command line: the path once, the line named
# (a directory of its own: the standard output expect_rc captures lies in
# $W, and an output inside a tariff path is refused before anything else)
mkdir -p "$W/subsdir"
expect_rc 1 "--subscribers a directory" rate_demo --subscribers "$W/subsdir/" "$DEMO/cdrs"
err_has "$W/subsdir/: is a directory" "--subscribers a directory says so"
[ "$(grep -o "$W" "$W/err" | wc -l)" -eq 1 ] && ok || bad "--subscribers a directory: the path repeated: $(cat "$W/err")"
expect_rc 1 "--subscribers /dev/zero" rate_demo --subscribers /dev/zero "$DEMO/cdrs"
err_has "/dev/zero:1: NUL byte in the line" "--subscribers /dev/zero stops at its first line"

# ---- compressed inputs (gzip, zstd)
. "$HERE/compressed.sh"

# ---- explain (README "Explaining a price"; F002 worked there by hand)
( cd "$ROOT" && "$BIN" explain --tariff fixtures/demo/tariff --subscriber 057188000001 \
	--destination 01062345678 --start '2026-10-09T22:50:00' --duration 1230 ) >"$W/x.out" 2>"$W/err"
same "$W/x.out" "$HERE/explain/F002.txt" "explain F002: split call, every step"
( cd "$ROOT" && "$BIN" explain --tariff fixtures/demo/tariff --period 2026-10 --line \
	'"","8613900000003","110","from-internal","""Caller"" <8613900000003>","SIP/a","SIP/b","Dial","x","2026-10-12 18:00:00","2026-10-12 18:00:00","2026-10-12 18:01:00",60,55,"ANSWERED","DOCUMENTATION","1791.M031",""' \
	) >"$W/x.out" 2>"$W/err"
same "$W/x.out" "$HERE/explain/emergency-asterisk.txt" "explain an Asterisk line: =110 exact, free from an inactive number"
# Every demo record explained alone ends as the run rated or rejected it:
# the same account, quantity and charge, or the same reason and detail
# (duplicates need the whole run and are left out).
(cd "$ROOT" && "$BIN" rate --tariff fixtures/demo/tariff --period 2026-10 --out "$W/x.t" \
	--rejects "$W/x.r" --itemize "$W/x.i" fixtures/demo/cdrs) 2>/dev/null
csv_cols "$W/x.i" id account quantity charge | awk -F'\t' '{ print $1 "\trated, account " $2 ", quantity " $3 ", charge " $4 }' >"$W/x.want"
csv_cols "$W/x.r" record reason detail | awk -F'\t' '$2 != "duplicate" { print $1 "\trejected " $2 ": " $3 }' >>"$W/x.want"
for f in "$DEMO"/cdrs/*; do awk 'NR > 1 || !/^id,/' "$f" | tr -d '\r' | grep -v '^$'; done |
	while IFS= read -r line; do
		res=$("$BIN" explain --tariff "$DEMO/tariff" --period 2026-10 --line "$line" | sed -n 's/^result: //p')
		case $res in rated*) id=${line%%,*}; printf '%s\t%s\n' "$id" "$res" | sed 's/rated (late)/rated/' ;;
		*) printf '%s\t%s\n' "$line" "$res" ;; esac
	done >"$W/x.got"
sort "$W/x.want" >"$W/x.want.s"
sort -u "$W/x.got" | grep -v '^M006	\|^M010	' >"$W/x.got.s"
grep -v '^M006	\|^M010	' "$W/x.want.s" >"$W/x.want.t"
same "$W/x.got.s" "$W/x.want.t" "explain agrees with rate on every demo record"
expect_rc 2 "explain without a record" "$BIN" explain --tariff "$DEMO/tariff"
err_has "explain needs --line, or --subscriber, --destination and --start" "explain: missing record named"
expect_rc 2 "explain: --line and fields" "$BIN" explain --tariff "$DEMO/tariff" --line x --subscriber 1
expect_rc 0 "explain: a malformed line is explained, not an error" "$BIN" explain \
	--tariff "$DEMO/tariff" --line 'x1,057188000001,voice,2026-10-32 10:00:00,057187654321,60,0'
grep -qxF 'result: rejected malformed:start: start "2026-10-32 10:00:00": expected YYYY-MM-DD HH:MM:SS (or with T, Z, +HH:MM, or Unix seconds) from 1970 to 9999' "$W/out" &&
	ok || bad "explain: malformed start: $(tail -1 "$W/out")"
expect_rc 0 "explain: a record after the period" "$BIN" explain --tariff "$DEMO/tariff" --period 2026-10 \
	--subscriber 8613700000004 --service sms --destination 13812345678 --start 2026-10-31T16:30:00Z
grep -qxF 'result: rejected after_period: starts 2026-11-01 00:30:00 local, after the period 2026-10' "$W/out" &&
	ok || bad "explain: after the period: $(tail -1 "$W/out")"

summary
