#!/usr/bin/env bash
# bench-scaling.sh [ROUNDS]: BenchmarkTransitionParallel at -cpu 1 and 2, ROUNDS times (default
# 8), each round between two probes of the machine's mode: scalemodel's Sequence (private work
# and one atomic add shared by both cores) at -cpu 2, about 160 ns/op in this machine's usual
# mode and 200-210 in its slow one, where a cache line passed between cores costs several
# times as much (docs/performance.md, "Scaling with cores").
set -euo pipefail
rounds=${1:-8}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/lifecycle.test" .
go test -c -o "$dir/scalemodel.test" ./scripts/scalemodel
probe() { "$dir/scalemodel.test" -test.run '^$' -test.bench 'Sequence$' -test.cpu 2 -test.benchtime 2000000x | awk '/^Bench/ {print $3}'; }
printf '%-5s %12s %12s %7s %16s %s\n' round 'ns/op cpu 1' 'ns/op cpu 2' ratio 'cpu-ns/op cpu 2' 'probes (ns/op)'
for r in $(seq "$rounds"); do
	before=$(probe)
	"$dir/lifecycle.test" -test.run '^$' -test.bench 'TransitionParallel$' -test.cpu 1,2 -test.benchtime 2s >"$dir/out"
	after=$(probe)
	awk -v r="$r" -v p="$before $after" '/^BenchmarkTransitionParallel/ {ns[++n]=$3; cpu[n]=$5}
		END {printf "%-5s %12.1f %12.1f %6.2fx %16.1f %s\n", r, ns[1], ns[2], ns[1]/ns[2], cpu[2], p}' "$dir/out"
done
