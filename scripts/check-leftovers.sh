#!/usr/bin/env bash
# check-leftovers.sh [RUN] — fail if anything a test run started outlived it.
#
#   scripts/check-leftovers.sh            # the run in $HMS_TEST_RUN (set by the Makefile)
#   scripts/check-leftovers.sh RUN.suite  # one suite of it
#
# A run is marked by HMS_TEST_RUN=<id>: the Makefile sets it (exported) for one `make`, and
# each suite runs under <id>.<suite> (e.g. <id>.go), with TMPDIR=${TMPDIR:-/tmp}/hms-test-<id>.<suite>.
# Every process a suite starts inherits the marker; PostgreSQL test clusters
# (store/postgres/pgtest) live in folders named hms-pgtest-<marker>-…, which their server's
# command line, its processes' titles and their reaper's command line carry. RUN matches
# itself and RUN.<anything>, so the run's id covers all its suites. After a suite:
#
#   HMS_TEST_RUN=$(HMS_TEST_RUN).x TMPDIR=… <suite>; s=$$?; scripts/check-leftovers.sh $(HMS_TEST_RUN).x || s=1; exit $$s
#
# Leftovers, polled for up to HMS_LEFTOVER_WAIT seconds (10: reapers stop clusters when
# their creator dies) before they count:
#   - a running process whose environment holds the marker, or whose command line or title
#     names the run's cluster folders (hms-pgtest-RUN…) or temporary folder (hms-test-RUN…);
#   - in ${TMPDIR:-/tmp}: a folder hms-pgtest-RUN…, or anything inside hms-test-RUN…
#     (those temporary folders are removed after the check, listed if not empty).
# Without RUN (no argument, HMS_TEST_RUN unset) every run's leftovers count, including
# those of runs still going on.
#
# Exit status: 0 nothing left, 1 leftovers (listed on stderr), 2 usage.
set -uo pipefail

if [ $# -gt 1 ] || [[ ${1:-} == -* ]]; then
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
fi
run=${1:-${HMS_TEST_RUN:-}}
if [[ ! $run =~ ^[A-Za-z0-9_.-]*$ ]]; then
	echo "check-leftovers: bad run marker: $run" >&2
	exit 2
fi
# The processes this script starts must not carry the marker they look for.
unset HMS_TEST_RUN
tmp=${TMPDIR:-/tmp}
tmp=${tmp%/}
wait_s=${HMS_LEFTOVER_WAIT:-10}
shopt -s nullglob dotglob

# The run's names: the marker, then the end or ".suite" ("-…" after a cluster's).
run_re=${run//./\\.}
if [ -n "$run" ]; then
	name_re="hms-(pgtest-${run_re}[-.]|test-${run_re}([./ ]|$))"
else
	name_re="hms-(pgtest|test)-"
fi

# This script and its ancestors (the recipe's shell carries the marker) are not leftovers.
declare -A mine=()
p=$$
while [ -n "$p" ] && [ "$p" != 0 ] && [ -z "${mine[$p]:-}" ]; do
	mine[$p]=1
	read -r stat 2>/dev/null <"/proc/$p/stat" || break
	stat=${stat##*) }
	set -- $stat
	p=${2:-}
done

# parent PID: the parent of PID, from /proc (builtins only: nothing started while scanning).
parent() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	set -- $stat
	[ "$1" != Z ] || return 1 # a zombie runs nothing
	ppid=$2
}

# ours PID: whether PID descends from this script (its own helpers).
ours() {
	local p=$1 ppid
	while [ -n "$p" ] && [ "$p" -gt 1 ]; do
		[ "$p" = $$ ] && return 0
		parent "$p" || return 1
		p=$ppid
	done
	return 1
}

scan() {
	found=()
	local d pid ppid args env e marked
	for d in /proc/[0-9]*; do
		pid=${d#/proc/}
		[ -z "${mine[$pid]:-}" ] || continue
		parent "$pid" || continue
		args=()
		mapfile -d "" args 2>/dev/null <"$d/cmdline" || continue
		[ ${#args[@]} -gt 0 ] || continue # kernel threads
		marked=
		if [[ "${args[*]}" =~ $name_re ]]; then
			marked=1
		else
			env=()
			mapfile -d "" env 2>/dev/null <"$d/environ"
			for e in "${env[@]}"; do
				if [ -n "$run" ]; then
					[[ $e == "HMS_TEST_RUN=$run" || $e == "HMS_TEST_RUN=$run."* ]] && marked=1 && break
				else
					[[ $e == HMS_TEST_RUN=* ]] && marked=1 && break
				fi
			done
		fi
		[ -n "$marked" ] || continue
		ours "$pid" && continue
		found+=("process $pid (parent $ppid): $(printf '%s ' "${args[@]}" | tr '\n\t' '  ' | cut -c1-200)")
	done
	if [ -n "$run" ]; then
		clusters=("$tmp/hms-pgtest-$run-"* "$tmp/hms-pgtest-$run."*)
		scratch=("$tmp/hms-test-$run" "$tmp/hms-test-$run."*)
	else
		clusters=("$tmp/hms-pgtest-"*)
		scratch=("$tmp/hms-test-"*)
	fi
	for d in "${clusters[@]}"; do
		found+=("cluster folder $d")
	done
	for d in "${scratch[@]}"; do
		[ -d "$d" ] || continue
		for e in "$d"/*; do
			found+=("left in $d: ${e##*/}$( [ -d "$e" ] && echo / )")
		done
	done
}

deadline=$((SECONDS + wait_s))
while scan && [ ${#found[@]} -gt 0 ] && [ $SECONDS -lt $deadline ]; do
	sleep 0.5
done

if [ -n "$run" ]; then # never another run's, which may be going on
	for d in "${scratch[@]}"; do
		[ -d "$d" ] && rm -rf -- "$d"
	done
fi
if [ ${#found[@]} -gt 0 ]; then
	echo "check-leftovers: the test run ${run:-(any)} left behind (after ${wait_s}s):" >&2
	printf '  %s\n' "${found[@]}" >&2
	exit 1
fi
echo "check-leftovers: nothing left behind by the test run ${run:-(any)}"
