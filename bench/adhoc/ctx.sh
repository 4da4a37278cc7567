#!/bin/bash
# Section 9's A/B runs: context switches per request and req/s / p50 / p99 of
# 4 static workers serving hello world over FastCGI (`corral bench`).
#
#   sudo bench/adhoc/ctx.sh fpm|corral          # C=16 by default
#   sudo C=1 K=1 BIN=/path/to/corral bench/adhoc/ctx.sh corral   # c=1 keep-alive, another build
#
# Run both servers alternately, several rounds, on a quiet machine.
set -eu
MODE=$1
. "$(dirname "$0")/common.sh"
start_pool "$MODE" "listen.owner = root"; sleep 3
# php-fpm's workers are its master's children; corral's are its prototype's.
if [ "$MODE" = fpm ]; then W=$(ps -o pid= --ppid $P); else W=$(for c in $(ps -o pid= --ppid $P); do ps -o pid= --ppid $c; done); fi
sum() { for p in $W; do grep -E "^(voluntary|nonvoluntary)_ctxt" /proc/$p/status | awk '{print $2}' | paste -sd' '; done | awk '{v+=$1; n+=$2} END {print v, n}'; }
read v0 n0 < <(sum)
out=$($B bench -t unix:$D/run/s.sock -s $D/www/hello.php -c ${C:-16} -d 5s ${K:+-k} --json)
read v1 n1 < <(sum)
echo "$out" | python3 -c "
import json,sys; d=json.load(sys.stdin); n=d['requests']; l=d['latency_us']
print('$MODE c=${C:-16}${K:+ keep}', 'req/s', round(d['rps']), 'p50', l['p50'], 'p99', l['p99'], 'vol/req %.3f invol/req %.3f' % (($v1-$v0)/max(n,1), ($n1-$n0)/max(n,1)))"
kill $P; wait $P 2>/dev/null || true; rm -rf $D
