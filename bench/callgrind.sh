#!/usr/bin/env bash
# Instructions per request in one worker, corral against php-fpm 8.2, counted
# by callgrind (valgrind): repeatable whatever else the machine is doing,
# where timings are not. Each server runs one static worker (www-data) on a
# Unix socket; after a 50-request warm-up, `corral bench` sends N1 and, in a
# second run, N2 hello-world requests at c=1 without keep-alive, and the
# worker's total difference divided by N2-N1 is the cost of one request with
# start-up and shutdown cancelled out.
#
#   sudo bench/callgrind.sh [N1 N2]        (default 200 1200)
#
# Prints one line per server and leaves the callgrind files in
# $CALLGRIND_DIR (default /var/tmp/corral-callgrind) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${1:-200}
N2=${2:-1200}
OUT=${CALLGRIND_DIR:-/var/tmp/corral-callgrind}
CORRAL=${CORRAL:-$PWD/target/release/corral}
FPM=${PHP_FPM:-/usr/sbin/php-fpm8.2}
command -v valgrind >/dev/null || { echo "callgrind.sh: apt-get install valgrind" >&2; exit 1; }
[ -x "$CORRAL" ] || cargo build --release -p corral

# run SERVER N: the worker's instruction count after N requests.
run() {
  local server=$1 n=$2 bin d vp proto worker
  d="$OUT/$server-$n"
  rm -rf "$d"
  mkdir -p "$d/www"
  chmod 1777 "$d"
  chmod 755 "$d/www" "$OUT"
  install -m 644 bench/fixtures/hello.php "$d/www/"
  cat >"$d/fpm.conf" <<CONF
[global]
pid = $d/pid
error_log = $d/error.log
daemonize = no
[hello]
user = www-data
group = www-data
listen = $d/sock
listen.mode = 0666
pm = static
pm.max_children = 1
CONF
  if [ "$server" = corral ]; then bin=$CORRAL; else bin=$FPM; fi
  # CORRAL_SELF_EXE: under valgrind /proc/self/exe is the tool.
  CORRAL_SELF_EXE=$bin valgrind -q --tool=callgrind --trace-children=yes \
    --callgrind-out-file="$d/cg.%p" \
    "$bin" -F -y "$d/fpm.conf" -c /etc/php/8.2/fpm/php.ini >"$d/out.log" 2>&1 &
  vp=$!
  for _ in $(seq 150); do [ -S "$d/sock" ] && break; sleep 0.2; done
  sleep 2
  local req=(-t "$d/sock" -s "$d/www/hello.php" -c 1 --keep-conn=off)
  "$CORRAL" bench "${req[@]}" -n 50 >/dev/null
  # The worker: php-fpm's master's child; corral's prototype's child.
  if [ "$server" = corral ]; then
    # The master's child with a child of its own: the prototype (the
    # zygote, its other child, has none).
    worker=""
    for proto in $(pgrep -P "$vp"); do
      worker=$(pgrep -n -P "$proto") && break
    done
  else
    worker=$(pgrep -n -P "$vp")
  fi
  "$CORRAL" bench "${req[@]}" -n "$n" >"$d/bench.txt"
  kill -QUIT "$vp"
  wait "$vp" || true
  grep -m1 '^summary:' "$d/cg.$worker" | awk '{print $2}'
}

for server in php-fpm corral; do
  a=$(run "$server" "$N1")
  b=$(run "$server" "$N2")
  echo "$server: $(((b - a) / (N2 - N1))) instructions per request (worker, user space)"
done
