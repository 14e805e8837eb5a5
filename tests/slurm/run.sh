#!/bin/sh
# tests/slurm/run.sh CDRATE - the sharded pipeline of contrib/slurm on a
# real single-node Slurm cluster on localhost, against one `cdrate rate`.
#
# Starts munged, slurmctld and slurmd from Debian's packages (munge,
# slurmctld, slurmd, slurm-client; .ci/run installs them) with everything
# under a temporary directory: its own munge key and socket, a minimal
# slurm.conf (no cgroups: proctrack/linuxproc, task/none; no accounting
# database; cred_expire=5 so a requeued task starts again in seconds;
# RequeueExit=75), ports found free. Then:
#  1. runs the pipeline (contrib/slurm/cdrate-slurm --wait) at N=4 shards
#     and M=3 readers over a generated month (bench/gen: duplicates, inactive
#     and unknown numbers) plus a file of duplicates across accounts, late
#     and malformed lines, and a gzip copy of one input, with two fault
#     drills: dedup task 1 fails once before running (exit 75: requeued),
#     rate task 2 once after its parts were written (requeued, rerun over its
#     own parts); checks that both were requeued (their logs show attempt 2)
#     and that totals, rejects and itemize equal the single run's byte for
#     byte;
#  2. runs it again with split task 1 failing for good: the pipeline must
#     fail with exit 4, name the missing part and the failed task, and
#     write no totals;
#  3. submits that run again with --resume and no fault: split tasks 0 and
#     2 (done) are skipped, task 1 runs, the totals equal the single run's.
# Every daemon is stopped by its pid at the end, on failure too (trap);
# processes still carrying this run's mark in their environment (job
# steps) are killed by pid and make the test fail. KEEP=1 keeps the
# directory.
#
# Exit: 0 passed, 1 failed, 77 skipped (Slurm or munge not installed).
# CDRATE is any binary with the `cdrate shard` subcommands of the README.
set -eu
[ $# = 1 ] || { echo "usage: tests/slurm/run.sh CDRATE" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PATH=$PATH:/usr/sbin:/sbin
for c in munged slurmctld slurmd sbatch squeue scontrol sinfo scancel; do
	command -v "$c" >/dev/null || { echo "slurm: $c not installed (apt-get install munge slurmctld slurmd slurm-client); skipped"; exit 77; }
done
if ! "$BIN" shard split --help >/dev/null 2>&1; then
	echo "slurm: FAIL: $BIN has no 'shard' subcommands ('$1 shard split --help' fails)" >&2
	exit 1
fi
T0=$(date +%s)
W=$(mktemp -d "${TMPDIR:-/tmp}/cdrate-slurm-XXXXXX")
MARK=cdrate-slurm-test-$$-$(basename "$W")
ME=$(id -un)
PIDS=
say() { echo "slurm: $*"; }
# bg CMD...: run CMD in the background and wait for it, so that a signal
# to this script runs the cleanup at once (sh defers traps until a
# foreground command ends); its status is CMD's.
BGPID=
bg() {
	"$@" &
	BGPID=$!
	wait $BGPID
}
fail() { echo "slurm: FAIL: $*" >&2; exit 1; }

# stop PID NAME: TERM, then KILL after 10 s.
stop() {
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null || true
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 "$1" 2>/dev/null; then
		echo "slurm: $2 ($1) ignored TERM; KILL" >&2
		kill -KILL "$1" 2>/dev/null || true
	fi
	wait "$1" 2>/dev/null || true
}
# marked: the pids whose environment carries this run's mark.
marked() {
	for p in /proc/[0-9]*; do
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "CDRATE_SLURM_TEST=$MARK" &&
			echo "${p#/proc/}"
	done
	return 0
}
cleanup() {
	rc=$?
	set +e
	[ -n "$BGPID" ] && kill -TERM "$BGPID" 2>/dev/null
	if [ -n "$PIDS" ]; then
		scancel --user="$ME" >/dev/null 2>&1
		i=0
		while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
	fi
	# Reverse order of start: slurmd, slurmctld, munged.
	for pn in $(echo "$PIDS" | tr ' ' '\n' | sed '/^$/d' | sed -n '1!G;h;$p'); do
		stop "${pn%%:*}" "${pn#*:}"
	done
	# A job step's slurmstepd may take a moment to go once slurmd has.
	i=0
	while [ -n "$(marked)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	left=$(marked)
	if [ -n "$left" ]; then
		echo "slurm: processes left after the daemons stopped, killed: $(echo "$left" | tr '\n' ' ')" >&2
		for p in $left; do kill -KILL "$p" 2>/dev/null; done
		[ "$rc" = 0 ] && rc=1
	fi
	if [ "$rc" != 0 ] && [ -d "$W" ]; then
		for f in "$W"/log/*.log "$W"/run*/work/logs/*.log; do
			[ -f "$f" ] && { echo "---- $f"; tail -n 15 "$f"; }
		done >&2
	fi
	if [ "${KEEP:-0}" = 1 ]; then echo "slurm: kept $W"; else rm -rf "$W"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- munge: its own key and socket
mkdir -p "$W/munge" "$W/log" "$W/state" "$W/spool"
chmod 700 "$W/munge"
if command -v mungekey >/dev/null; then
	mungekey --create --keyfile="$W/munge/munge.key" >/dev/null 2>&1 ||
		mungekey -c -k "$W/munge/munge.key"
else
	dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 2>/dev/null
fi
chmod 400 "$W/munge/munge.key"
SOCK=$W/munge/munge.socket.2
env CDRATE_SLURM_TEST="$MARK" munged --foreground --force --socket="$SOCK" \
	--key-file="$W/munge/munge.key" --pid-file="$W/munge/munged.pid" \
	--log-file="$W/log/munged.log" --seed-file="$W/munge/munged.seed" \
	>"$W/log/munged.out" 2>&1 &
PIDS="$PIDS $!:munged"
i=0
until [ -S "$SOCK" ]; do
	[ $i -lt 100 ] || fail "munged did not open $SOCK"
	sleep 0.1; i=$((i + 1))
done

# ---- ports: two free ones
inuse() {
	if command -v ss >/dev/null; then
		ss -Htan 2>/dev/null | awk '{ print $4 }' | grep -q ":$1\$"
	else
		grep -qi ":$(printf '%04X' "$1") " /proc/net/tcp /proc/net/tcp6 2>/dev/null
	fi
}
P=$((20000 + $$ % 20000))
while inuse "$P" || inuse $((P + 1)); do P=$((P + 2)); done
CTLD_PORT=$P
SLURMD_PORT=$((P + 1))

# ---- slurm.conf
HOST=$(uname -n | cut -d. -f1)
export SLURM_CONF="$W/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=cdratetest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$ME
SlurmdUser=$ME
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK,cred_expire=5
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool/slurmd-%n
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd-%n.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
RequeueExit=75
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
NodeName=cdnode NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=4 State=UNKNOWN
PartitionName=test Nodes=cdnode Default=YES MaxTime=INFINITE State=UP
EOF
env CDRATE_SLURM_TEST="$MARK" slurmctld -D -i -f "$SLURM_CONF" >"$W/log/slurmctld.out" 2>&1 &
PIDS="$PIDS $!:slurmctld"
env CDRATE_SLURM_TEST="$MARK" slurmd -D -N cdnode -f "$SLURM_CONF" >"$W/log/slurmd.out" 2>&1 &
PIDS="$PIDS $!:slurmd"
i=0
until sinfo -h -n cdnode -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; do
	[ $i -lt 300 ] || fail "the node did not come up: $(sinfo -h -o '%T %E' 2>&1)"
	for pn in $PIDS; do kill -0 "${pn%%:*}" 2>/dev/null || fail "${pn#*:} exited at start"; done
	sleep 0.1; i=$((i + 1))
done
say "cluster up in $(($(date +%s) - T0)) s: slurmctld :$CTLD_PORT, slurmd :$SLURMD_PORT, $(sinfo --version)"

# ---- data: a generated month and the awkward lines
cc -std=c11 -D_GNU_SOURCE -O2 -o "$W/gen" "$ROOT/bench/gen.c"
"$W/gen" --out "$W/data" --records 20000 --subscribers 2000 --files 3 --dups 300 \
	--month packages --prefixes 200 >/dev/null 2>&1
D=$W/data
# Duplicates across accounts: an id already used, given to a number of
# another account (some sort before the original line, some after), late
# and malformed lines.
awk -F, 'NR == FNR { if (FNR > 1) sub_[n++] = $1; next }
	FNR % 97 == 5 && c < 60 {
		s = sub_[(FNR * 37) % n]
		printf "%s,%s,%s,%s,%s,%d,%s\n", $1, s, $3, $4, $5, $6 + 1, $7
		c++
	}
	END {
		print "L1,18000867826,voice,2026-11-02 10:00:00,13912345678,60,0"
		print "L2,18000867826,sms,2026-09-30 23:59:59,13912345678,0,0"
		print "B1,18000867826,voice,2026-10-02 10:00:00"
		print "B2,1800086782x,voice,2026-10-02 10:00:00,13912345678,60,0"
		print "B3,18000867826,fax,2026-10-02 10:00:00,13912345678,60,0"
	}' "$D/tariff/subscribers.csv" "$D/cdrs/part-001.csv" >"$D/cdrs/part-003-cross.csv"
gzip -c "$D/cdrs/part-002.csv" >"$D/part-002-again.csv.gz"
set -- "$D/cdrs" "$D/part-002-again.csv.gz"
RATEOPTS="--tariff $D/tariff --period 2026-10"

mkdir -p "$W/ref"
# shellcheck disable=SC2086
"$BIN" rate $RATEOPTS --out "$W/ref/totals.csv" --rejects "$W/ref/rejects.csv" \
	--itemize "$W/ref/itemize.csv" --breakdown "$W/ref/breakdown.csv" "$@" 2>"$W/ref/summary.txt" || {
	st=$?; [ $st = 3 ] || { cat "$W/ref/summary.txt" >&2; fail "the single run exited $st"; }
}
say "single run: $(grep -m1 'records read' "$W/ref/summary.txt" | sed 's/^cdrate: //')"

# ---- 1: the pipeline with two transient failures, requeued
R=$W/run1
mkdir -p "$R/out"
T1=$(date +%s)
# shellcheck disable=SC2086
bg env CDRATE_SLURM_TEST="$MARK" CDRATE="$BIN" CDRATE_POLL=0.5 \
	CDRATE_FAIL_ONCE="dedup:1 rate:2:after" \
	sh "$ROOT/contrib/slurm/cdrate-slurm" --dir "$R/work" --shards 4 --readers 3 \
	$RATEOPTS --out "$R/out/totals.csv" --rejects "$R/out/rejects.csv" \
	--itemize "$R/out/itemize.csv" --breakdown "$R/out/breakdown.csv" --wait "$@" >"$R/submit.out" 2>&1 || {
	cat "$R/submit.out" >&2; fail "the pipeline exited $?"
}
JOBS=$(head -n 1 "$R/submit.out")
say "pipeline (jobs $JOBS) done in $(($(date +%s) - T1)) s"
for t in dedup:1 rate:2; do
	st=${t%:*} k=${t#*:}
	[ -e "$R/work/drill/$st-$k" ] || fail "the $st $k drill did not fire"
	log=$(ls "$R"/work/logs/"$st"-*_"$k".log)
	grep -q "attempt 2 " "$log" || fail "$st task $k was not run again after exit 75 ($log)"
	grep -q "done (exit 0)" "$log" || fail "$st task $k did not finish after its requeue ($log)"
done
for f in totals rejects itemize breakdown; do
	cmp "$W/ref/$f.csv" "$R/out/$f.csv" ||
		fail "$f.csv differs from the single run's (diff $W/ref/$f.csv $R/out/$f.csv)"
done
say "requeued once each: dedup 1 (before), rate 2 (after its parts); totals ($(wc -l <"$R/out/totals.csv") lines), rejects ($(wc -l <"$R/out/rejects.csv")), itemize ($(wc -l <"$R/out/itemize.csv")), breakdown ($(wc -l <"$R/out/breakdown.csv")) identical to the single run"

# ---- 2: a task that fails for good fails the pipeline, clearly
R=$W/run2
mkdir -p "$R/out"
T1=$(date +%s)
st=0
# shellcheck disable=SC2086
bg env CDRATE_SLURM_TEST="$MARK" CDRATE="$BIN" CDRATE_POLL=0.5 CDRATE_FAIL="split:1" \
	sh "$ROOT/contrib/slurm/cdrate-slurm" --dir "$R/work" --shards 4 --readers 3 \
	$RATEOPTS --out "$R/out/totals.csv" --wait "$@" >"$R/submit.out" 2>&1 || st=$?
[ "$st" = 4 ] || { cat "$R/submit.out" >&2; fail "a failed split task: the pipeline exited $st, expected 4"; }
grep -q "cause: split part 1/3 exited 1" "$R/submit.out" ||
	{ cat "$R/submit.out" >&2; fail "the pipeline's failure does not name split part 1"; }
grep -q "missing split parts: 1 (of 0..2" "$R"/work/logs/dedup-*_0.log ||
	fail "dedup does not name the missing split part"
[ ! -e "$R/out/totals.csv" ] || fail "totals written by a failed pipeline"
say "a split task failing for good: pipeline exit 4 in $(($(date +%s) - T1)) s, naming the part"

# ---- 3: the cause gone, --resume finishes that run: done tasks skipped
T1=$(date +%s)
# shellcheck disable=SC2086
bg env CDRATE_SLURM_TEST="$MARK" CDRATE="$BIN" CDRATE_POLL=0.5 \
	sh "$ROOT/contrib/slurm/cdrate-slurm" --dir "$R/work" --shards 4 --readers 3 \
	$RATEOPTS --out "$R/out/totals.csv" --resume --wait "$@" >"$R/resume.out" 2>&1 || {
	cat "$R/resume.out" >&2; fail "--resume after the failure exited $?"
}
J=$(head -n 1 "$R/resume.out" | cut -d' ' -f1)
for k in 0 2; do
	grep -q "already done" "$R/work/logs/split-${J}_$k.log" ||
		fail "--resume ran split part $k again ($R/work/logs/split-${J}_$k.log)"
done
grep -q "done (exit 0)" "$R/work/logs/split-${J}_1.log" || fail "--resume did not run split part 1"
cmp "$W/ref/totals.csv" "$R/out/totals.csv" || fail "totals after --resume differ from the single run's"
say "--resume: split parts 0 and 2 skipped, part 1 run, totals identical, in $(($(date +%s) - T1)) s"

say "passed in $(($(date +%s) - T0)) s"
