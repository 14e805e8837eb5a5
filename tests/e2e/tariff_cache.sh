#!/bin/sh
# End-to-end tests of --tariff-cache (rate, rerate, check): the outputs
# are byte for byte those of a run without the cache, whether the image
# is written or used, at 1 and 2 threads; an image made stale by an edit
# of subscribers.csv, or damaged, is rebuilt and the outputs follow the
# tariff as it is now; a cache path that is an input, a tariff file,
# another output, a FIFO or a device node is refused before anything is
# read (exit 2); a cache that cannot be written is a warning and the run
# succeeds. The image is written beside the pass: the same bytes whatever
# the thread count or however long the pass waits, and a run killed
# (SIGTERM) mid-pass, its image written but not yet in place, leaves no
# image, no temporary, and an old image as it was.
#
# usage: tests/e2e/tariff_cache.sh BUILD/cdrate
# Ends with the line "N passed, M failed"; exits 1 when anything failed.
set -u
TAG=tcache
. "$(dirname "$0")/lib.sh"

# The demo tariff with 3000 more subscribers (their accounts get fee
# lines), so the image has every shard of the number table in use.
T=$W/tariff
cp -r "$DEMO/tariff" "$T"
awk 'BEGIN { for (i = 0; i < 3000; i++)
	printf "1590000%04d,X%04d,%s,,2026-01-01,\n", i, i % 700,
		i % 2 ? "mobile18" : "mobile38" }' >>"$T/subscribers.csv"
C=$W/cache/t.img
mkdir -p "$W/cache"
IN=$DEMO/cdrs

# run NAME ARGS...: rate into $W/NAME.{csv,rej,item}, stderr in $W/NAME.err
run() {
	name=$1
	shift
	"$BIN" rate --tariff "$T" --period 2026-10 -o "$W/$name.csv" \
		--rejects "$W/$name.rej" --itemize "$W/$name.item" "$@" "$IN" \
		2>"$W/$name.err"
	echo $? >"$W/$name.rc"
}
# same_run A B WHAT: the three outputs of runs A and B identical
same_run() {
	for x in csv rej item; do same "$W/$1.$x" "$W/$2.$x" "$3 ($x)"; done
}
has() { # FILE TEXT WHAT
	if grep -qF -- "$2" "$1"; then ok; else bad "$3: lacks '$2'"; head -5 "$1"; fi
}
rc_is() { # NAME RC WHAT
	if [ "$(cat "$W/$1.rc")" = "$2" ]; then ok; else
		bad "$3: exit $(cat "$W/$1.rc"), wanted $2"; head -5 "$W/$1.err"
	fi
}

# ---- written, then used; 1 and 2 threads
for th in 1 2; do
	run plain$th --threads "$th"
	rc_is plain$th 0 "without a cache, $th threads"
done
same_run plain1 plain2 "the thread count changes nothing"
rm -f "$C"
run w1 --threads 1 --tariff-cache "$C"
rc_is w1 0 "writing the cache"
has "$W/w1.err" "--tariff-cache $C: written" "the summary says it was written"
has "$W/w1.err" "(no image yet)" "and why"
[ -s "$C" ] && ok || bad "no image at $C"
same_run plain1 w1 "the run that writes the image"
for th in 1 2; do
	run u$th --threads "$th" --tariff-cache "$C"
	rc_is u$th 0 "using the cache, $th threads"
	has "$W/u$th.err" "--tariff-cache $C: used" "the image is used ($th threads)"
	same_run plain$th u$th "mapped subscriber tables, $th threads"
done
# written beside a pass of 2 threads: the same image
cp "$C" "$W/w1.img"
rm -f "$C"
run w2 --threads 2 --tariff-cache "$C" --summary-json "$W/w2.json"
rc_is w2 0 "writing the cache, 2 threads"
has "$W/w2.err" ", waiting for the tariff cache " "the summary gives the wait for the write"
# the write's own time is the cache's; the run's wait for it is a stage
if python3 - "$W/w2.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
c = s["tariff"]["cache"]
assert c["written"] is True and c["used"] is False, c
assert isinstance(c["seconds"], float) and c["seconds"] >= 0, c
assert s["seconds"]["cache_wait"] >= 0, s["seconds"]
PY
then ok; else bad "the summary JSON of a run that writes the image"; fi
same_run plain2 w2 "the run that writes the image, 2 threads"
same "$C" "$W/w1.img" "the image written beside 1 and 2 threads"
# the summary's fingerprint is the tariff's either way
grep 'fingerprint' "$W/plain1.err" | head -1 >"$W/fp.want"
grep 'fingerprint' "$W/u1.err" | head -1 >"$W/fp.got"
same "$W/fp.got" "$W/fp.want" "the tariff fingerprint line"
# --summary-json says what became of the cache
"$BIN" rate --tariff "$T" --period 2026-10 -o "$W/j.csv" \
	--summary-json "$W/s.json" --tariff-cache "$C" "$IN" 2>/dev/null
has "$W/s.json" '"cache":{"path":"'"$C"'","used":true,"written":false,"why":null,"seconds":null}' \
	"the summary JSON"

# ---- rerate with a cache per tariff
T2=$W/tariff2
cp -r "$T" "$T2"
sed 's/^mobile18,18$/mobile18,19/' "$T/plans.csv" >"$T2/plans.csv"
rr() { # NAME ARGS...
	name=$1
	shift
	"$BIN" rerate --tariff "$T" --new-tariff "$T2" --period 2026-10 \
		-o "$W/$name.delta" --old-out "$W/$name.old" \
		--new-out "$W/$name.new" --all "$@" "$IN" 2>"$W/$name.err"
	echo $? >"$W/$name.rc"
}
rr rr0
rr rr1 --tariff-cache "$W/cache/old.img" --new-tariff-cache "$W/cache/new.img"
rr rr2 --tariff-cache "$W/cache/old.img" --new-tariff-cache "$W/cache/new.img" --threads 1
rc_is rr2 0 "rerate through two caches"
has "$W/rr1.err" "--new-tariff-cache $W/cache/new.img: written" "rerate writes the new cache"
has "$W/rr2.err" "--tariff-cache $W/cache/old.img: used" "rerate uses the old cache"
has "$W/rr2.err" "--new-tariff-cache $W/cache/new.img: used" "rerate uses the new cache"
for k in 1 2; do
	for x in delta old new; do
		same "$W/rr$k.$x" "$W/rr0.$x" "rerate $x with caches ($k)"
	done
done
rr rr3 --tariff-cache "$W/cache/same.img" --new-tariff-cache "$W/cache/same.img"
rc_is rr3 2 "one cache for both tariffs"

# ---- stale after an edit of subscribers.csv: rebuilt, outputs follow
sed 's/^8613800000001,A1001,/8613800000001,A1009,/' "$T/subscribers.csv" >"$W/s.csv"
cp "$W/s.csv" "$T/subscribers.csv"
run edited
run stale --tariff-cache "$C"
rc_is stale 0 "a stale cache"
has "$W/stale.err" "written" "a stale image is rewritten"
has "$W/stale.err" "stale" "and says why"
same_run edited stale "a stale image is not used"
if cmp -s "$W/edited.csv" "$W/plain1.csv"; then bad "the edit changed nothing"; else ok; fi
run fresh --tariff-cache "$C"
has "$W/fresh.err" ": used" "the rebuilt image is used"
same_run edited fresh "the rebuilt image"

# ---- damaged: cut short, then its checksum broken
size=$(wc -c <"$C")
head -c $((size - 100)) "$C" >"$W/cut" && cat "$W/cut" >"$C"
run cut --tariff-cache "$C"
has "$W/cut.err" "truncated" "a truncated image is rejected"
same_run edited cut "after a truncated image"
printf 'X' | dd of="$C" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
run flip --tariff-cache "$C"
has "$W/flip.err" "corrupt" "a damaged image is rejected"
same_run edited flip "after a damaged image"

# ---- refused before anything is read
expect_rc 2 "cache = an input" "$BIN" rate --tariff "$T" --period 2026-10 \
	-o "$W/x.csv" --tariff-cache "$IN/01-fixed-switch.csv" "$IN"
err_has "is also" "cache = an input"
expect_rc 2 "cache in the tariff" "$BIN" rate --tariff "$T" --period 2026-10 \
	-o "$W/x.csv" --tariff-cache "$T/t.img" "$IN"
err_has "inside the tariff" "cache in the tariff"
[ -e "$T/t.img" ] && bad "an image was written into the tariff" || ok
expect_rc 2 "cache = a tariff file" "$BIN" rate --tariff "$T" --period 2026-10 \
	-o "$W/x.csv" --tariff-cache "$T/subscribers.csv" "$IN"
cmp -s "$T/subscribers.csv" "$W/s.csv" && ok || bad "subscribers.csv was touched"
expect_rc 2 "cache = --subscribers" "$BIN" rate --tariff "$T" --period 2026-10 \
	--subscribers "$W/s.csv" -o "$W/x.csv" --tariff-cache "$W/s.csv" "$IN"
expect_rc 2 "cache = --out" "$BIN" rate --tariff "$T" --period 2026-10 \
	-o "$W/cache/o.csv" --tariff-cache "$W/cache/o.csv" "$IN"
err_has "is also" "cache = --out"
mkfifo "$W/fifo"
expect_rc 2 "cache = a FIFO" "$BIN" rate --tariff "$T" --period 2026-10 \
	-o "$W/x.csv" --tariff-cache "$W/fifo" "$IN"
err_has "not a regular file" "cache = a FIFO"
expect_rc 2 "check: cache = a FIFO" "$BIN" check --tariff "$T" --tariff-cache "$W/fifo"
expect_rc 2 "cache = standard output" "$BIN" rate --tariff "$T" --period 2026-10 \
	-o "$W/x.csv" --tariff-cache - "$IN"
if mknod "$W/null" c 1 3 2>/dev/null; then
	expect_rc 2 "cache = a device node" "$BIN" rate --tariff "$T" \
		--period 2026-10 -o "$W/x.csv" --tariff-cache "$W/null" "$IN"
	err_has "not a regular file" "cache = a device node"
else
	echo "tariff_cache: mknod not permitted, device node case skipped"
fi
expect_rc 2 "cache = a directory" "$BIN" rate --tariff "$T" --period 2026-10 \
	-o "$W/x.csv" --tariff-cache "$W/cache" "$IN"
[ -e "$W/x.csv" ] && bad "a refused run wrote --out" || ok

# ---- a cache that cannot be written: a warning, the run succeeds
run nodir --tariff-cache "$W/no/such/dir/t.img"
rc_is nodir 0 "an unwritable cache"
has "$W/nodir.err" "warning: --tariff-cache $W/no/such/dir/t.img: cannot write the image" \
	"an unwritable cache warns"
has "$W/nodir.err" "not written" "the summary says it was not written"
same_run edited nodir "the run without its cache"
# a cache under a regular file (ENOTDIR, as root too): the warning once,
# before the summary, and the summary JSON says why
: >"$W/afile"
run notdir --tariff-cache "$W/afile/t.img" --summary-json "$W/notdir.json"
rc_is notdir 0 "a cache under a regular file"
has "$W/notdir.err" "warning: --tariff-cache $W/afile/t.img: cannot write the image: " \
	"a cache under a regular file warns"
n=$(grep -c "cannot write the image" "$W/notdir.err")
[ "$n" = 1 ] && ok || bad "the warning is printed $n times"
wl=$(grep -n "cannot write the image" "$W/notdir.err" | cut -d: -f1)
dl=$(grep -n "cdrate: done in" "$W/notdir.err" | cut -d: -f1)
[ "${wl:-0}" -lt "${dl:-0}" ] && ok || bad "the warning comes after the summary"
has "$W/notdir.json" '"written":false,"why":"cannot write: ' "the summary JSON says why"
has "$W/notdir.json" ',"seconds":null}' "and gives no write time"
same_run edited notdir "the run without its cache (under a file)"
[ -e "$W/afile/t.img" ] && bad "an image under a file" || ok
if [ "$(id -u)" != 0 ]; then
	mkdir "$W/ro" && chmod 555 "$W/ro"
	run ro --tariff-cache "$W/ro/t.img"
	rc_is ro 0 "a cache in a read-only directory"
	has "$W/ro.err" "cannot write the image" "a read-only directory warns"
	chmod 755 "$W/ro"
fi

# ---- check compiles the image, and uses it
rm -f "$C"
expect_rc 0 "check writes the cache" "$BIN" check --tariff "$T" --tariff-cache "$C"
err_has "--tariff-cache $C: written" "check writes the cache"
cp "$W/out" "$W/check1"
expect_rc 0 "check uses the cache" "$BIN" check --tariff "$T" --tariff-cache "$C"
err_has "--tariff-cache $C: used" "check uses the cache"
same "$W/out" "$W/check1" "check prints the same through the image"
"$BIN" check --tariff "$T" --list subscribers >"$W/l0" 2>/dev/null
"$BIN" check --tariff "$T" --list subscribers --tariff-cache "$C" >"$W/l1" 2>/dev/null
same "$W/l1" "$W/l0" "check --list subscribers through the image"
run after_check --tariff-cache "$C"
has "$W/after_check.err" ": used" "rate uses the image check wrote"
same_run edited after_check "rate through the image check wrote"
cp "$C" "$W/check.img"

# ---- a pass that waits on its input while the image is written. The
# input is a FIFO the test holds open: the run opens it and blocks in its
# pass, the image's temporary open beside it; the image goes in place
# only at the join after the pass.
K=$W/kill
mkdir "$K"
F=$W/in.fifo
mkfifo "$F"
# holds PID [DIR]: the run holds the FIFO (and a file under DIR: the
# image's temporary) within 10 s; cdrate itself, not the shell forked to
# start it, which has the test's descriptor of the FIFO until its exec
EXE=$(readlink -f "$BIN")
holds() {
	for _ in $(seq 200); do
		fds=
		[ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$EXE" ] &&
			fds=$(ls -l "/proc/$1/fd" 2>/dev/null)
		case $fds in *"$F"*)
			case ${2:-} in "") return 0 ;; esac
			case $fds in *"$2/"*) return 0 ;; esac ;;
		esac
		sleep 0.05
	done
	return 1
}
# fifo_run NAME WHAT KILL DIR ARGS...: rate the FIFO into $W/NAME.*; once
# the run holds it (and a temporary under DIR, when not empty), kill it
# (KILL=1) or feed it the first demo file
fifo_run() {
	name=$1 what=$2 kill=$3 dir=$4
	shift 4
	exec 3<>"$F"
	"$BIN" rate --tariff "$T" --period 2026-10 -o "$W/$name.csv" \
		--rejects "$W/$name.rej" --itemize "$W/$name.item" "$@" "$F" \
		2>"$W/$name.err" 3>&- &
	pid=$!
	if holds $pid "$dir"; then ok; else bad "$what: the run never held its input"; fi
	if [ "$kill" = 1 ]; then
		kill -TERM $pid
	else
		cat "$IN/01-fixed-switch.csv" >&3
	fi
	exec 3>&-
	wait $pid 2>/dev/null
	echo $? >"$W/$name.rc"
}
for th in 1 2; do
	fifo_run fplain$th "a FIFO input, $th threads" 0 "" --threads $th
	rc_is fplain$th 0 "a FIFO input, $th threads"
	rm -f "$K/t.img"
	fifo_run fcache$th "a FIFO input with a cache, $th threads" 0 "$K" \
		--threads $th --tariff-cache "$K/t.img"
	rc_is fcache$th 0 "a FIFO input with a cache, $th threads"
	has "$W/fcache$th.err" "--tariff-cache $K/t.img: written" \
		"the image is written beside a waiting pass ($th threads)"
	same_run fplain$th fcache$th "a waiting pass writing the image, $th threads"
	same "$K/t.img" "$W/check.img" "the image written beside a waiting pass ($th threads)"
	fifo_run fused$th "a FIFO input through the image, $th threads" 0 "" \
		--threads $th --tariff-cache "$K/t.img"
	has "$W/fused$th.err" "--tariff-cache $K/t.img: used" \
		"the image written beside a waiting pass is used ($th threads)"
	same_run fplain$th fused$th "a pass through that image, $th threads"
done
same_run fplain1 fplain2 "a FIFO input at 1 and 2 threads"
# killed while the pass waits: no image, no temporary, no output
rm -f "$K/t.img"
fifo_run killed "a killed run" 1 "$K" --tariff-cache "$K/t.img"
rc_is killed 143 "a run killed by SIGTERM"
left=$(ls -A "$K")
[ -z "$left" ] && ok || bad "a killed run left in the cache's directory: $left"
[ -e "$W/killed.csv" ] && bad "a killed run wrote --out" || ok
# an old image (stale now) is left as it was
cp "$W/w1.img" "$K/t.img"
fifo_run killed2 "a killed run over an old image" 1 "$K" --tariff-cache "$K/t.img"
rc_is killed2 143 "a run over an old image killed by SIGTERM"
same "$K/t.img" "$W/w1.img" "a killed run leaves the old image as it was"
left=$(ls -A "$K")
[ "$left" = t.img ] && ok || bad "a killed run left in the cache's directory: $left"

summary
