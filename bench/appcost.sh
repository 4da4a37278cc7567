#!/usr/bin/env bash
# What one WordPress or DokuWiki request costs in one worker, corral against
# php-fpm 8.2, counted (not timed: counts do not depend on what else the
# machine runs). Both servers run one static worker (www-data) with Debian's
# fpm php.ini and conf.d, behind nginx, as bench/run.sh sets them up.
#
#   sudo bench/appcost.sh strace   [N]        syscalls by type per request
#   sudo bench/appcost.sh callgrind [N1 N2]   user-space instructions per request
#   sudo bench/appcost.sh stats    [N]        OPcache and realpath cache per request
#   sudo bench/appcost.sh trace APP [N]     every syscall of N requests (wp|doku)
#   sudo bench/appcost.sh all
#
# strace: after a warm-up, `strace -c -f` is attached to the worker for N
# requests (default 200); calls are divided by N.
# callgrind: each server under valgrind (CORRAL_SELF_EXE, as in
# bench/callgrind.sh), warm-up, then N1 and, in a second run, N2 requests
# (default 10 and 40 for WordPress, 4x that for DokuWiki); the difference
# divided by N2-N1 is one request with start-up and shutdown cancelled. The
# callgrind files stay in $OUT (default /var/tmp/corral-appcost) and
# `python3 bench/appcost.py` splits them by object and function.
# stats: a probe script in the same worker reads opcache_get_status() and
# realpath_cache_size() before and after N requests.
#
# Starts MariaDB if none answers (and stops it again), writes WordPress's
# config for the host wordpress.bench as bench/run.sh does (database
# corral_bench_wp), nginx on 127.0.0.1:${APPCOST_PORT_BASE:-18180}+1..6.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-all}
OUT=${OUT:-/var/tmp/corral-appcost}
CORRAL=${CORRAL:-$ROOT/target/release/corral}
FPM=/usr/sbin/php-fpm8.2
PHP_INI=/etc/php/8.2/fpm/php.ini
export PHP_INI_SCAN_DIR=/etc/php/8.2/fpm/conf.d
PORT_BASE=${APPCOST_PORT_BASE:-18180}
WP_HOST=wordpress.bench
WP_CONFIG="/etc/wordpress/config-$WP_HOST.php"
WP_DB=corral_bench_wp
WP_USER=corral_bench
DOKU_PAGE=corral_bench

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'appcost.sh: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root"
for b in "$FPM" nginx curl mariadb valgrind strace; do
  command -v "$b" >/dev/null || die "$b missing (apt-get install php8.2-fpm nginx curl mariadb-server valgrind strace wordpress dokuwiki)"
done
[ -x "$CORRAL" ] || cargo build --release -p corral

STARTED=()
cleanup() {
  local p
  for p in "${STARTED[@]+"${STARTED[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${STARTED[@]+"${STARTED[@]}"}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

mkdir -p "$OUT"/{www,run,log}
chmod 755 "$OUT" "$OUT/www" "$OUT/run"
cat >"$OUT/www/probe.php" <<'PHP'
<?php
// bench/appcost.sh: this worker's OPcache and realpath cache numbers.
$s = opcache_get_status(false);
$st = $s['opcache_statistics'];
echo json_encode(['pid' => getmypid(), 'hits' => $st['hits'], 'misses' => $st['misses'],
  'scripts' => $st['num_cached_scripts'], 'realpath_bytes' => realpath_cache_size(),
  'realpath_entries' => count(realpath_cache_get()), 'cwd' => getcwd(),
  'server' => md5(implode(',', array_diff(array_keys($_SERVER), ['REQUEST_TIME', 'REQUEST_TIME_FLOAT']))),
  'server_keys' => count($_SERVER), 'functions' => count(get_defined_functions()['internal']),
  'classes' => count(get_declared_classes()), 'ini' => md5(serialize(ini_get_all(null, false)))]), "\n";
PHP
chmod 644 "$OUT/www/probe.php"

tag() { [ "$1" = php-fpm ] && echo fpm || echo corral; }
port() { # app server
  local i
  case $1 in wp) i=1 ;; doku) i=3 ;; probe) i=5 ;; esac
  [ "$2" = corral ] && i=$((i + 1))
  echo $((PORT_BASE + i))
}
url() { # app server
  case $1 in
    wp) echo "http://127.0.0.1:$(port wp "$2")/" ;;
    doku) echo "http://127.0.0.1:$(port doku "$2")/doku.php?id=$DOKU_PAGE" ;;
    probe) echo "http://127.0.0.1:$(port probe "$2")/probe.php" ;;
  esac
}
# send APP SERVER N: N requests one after another on one kept connection.
send() {
  local u i
  u=$(url "$1" "$2")
  for ((i = 0; i < $3; i++)); do printf 'url = "%s"\noutput = /dev/null\n' "$u"; done >"$OUT/curl.cfg"
  curl -sS --fail -H "Host: $WP_HOST" -K "$OUT/curl.cfg" || die "requests to $u failed"
}

# ------------------------------------------------------------- nginx
nginx_server() { # port root server index
  cat <<EOF
  server {
    listen 127.0.0.1:$1;
    root $2;
    index $4;
    location / { try_files \$uri \$uri/ /index.php?\$args; }
    location ~ \.php\$ {
      try_files \$uri =404;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass unix:$OUT/run/$(tag "$3").sock;
      # Under callgrind the first WordPress request compiles every script.
      fastcgi_read_timeout 600s;
    }
  }
EOF
}
start_nginx() {
  mkdir -p "$OUT/nginx-tmp"
  chown www-data "$OUT/nginx-tmp"
  {
    printf 'user www-data;\nworker_processes 1;\ndaemon off;\npid %s;\nerror_log %s;\n' \
      "$OUT/run/nginx.pid" "$OUT/log/nginx-error.log"
    printf 'events { worker_connections 1024; }\nhttp {\n  include /etc/nginx/mime.types;\n'
    printf '  access_log off;\n  client_body_temp_path %s/b;\n  fastcgi_temp_path %s/f;\n' \
      "$OUT/nginx-tmp" "$OUT/nginx-tmp"
    for s in php-fpm corral; do
      nginx_server "$(port wp $s)" /usr/share/wordpress $s index.php
      nginx_server "$(port doku $s)" /usr/share/dokuwiki $s doku.php
      nginx_server "$(port probe $s)" "$OUT/www" $s index.php
    done
    echo "}"
  } >"$OUT/nginx.conf"
  nginx -c "$OUT/nginx.conf" >"$OUT/log/nginx.out" 2>&1 &
  STARTED+=($!)
  local i
  for ((i = 0; i < 100; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$(port wp corral)") 2>/dev/null && return
    sleep 0.1
  done
  die "nginx did not start: $(cat "$OUT/log/nginx-error.log")"
}

# ------------------------------------------------------------ servers
SERVER_PID=""
# start SERVER [valgrind]: one static worker; sets SERVER_PID (master).
start() {
  local s=$1 t bin
  t=$(tag "$s")
  rm -f "$OUT/run/$t.sock" "$OUT/log/$t-error.log"
  cat >"$OUT/$t.conf" <<EOF
[global]
pid = $OUT/run/$t.pid
error_log = $OUT/log/$t-error.log
daemonize = no
[bench]
user = www-data
group = www-data
listen = $OUT/run/$t.sock
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
pm = static
pm.max_children = 1
pm.max_requests = 0
php_admin_value[memory_limit] = 128M
EOF
  if [ "$s" = corral ]; then bin=$CORRAL; else bin=$FPM; fi
  if [ "${2:-}" = valgrind ]; then
    # CORRAL_SELF_EXE: under valgrind /proc/self/exe is the tool.
    CORRAL_SELF_EXE=$bin valgrind -q --tool=callgrind --trace-children=yes \
      --callgrind-out-file="$OUT/cg/$CGRUN.%p" \
      "$bin" -F -O -y "$OUT/$t.conf" -c "$PHP_INI" >"$OUT/log/$t.out" 2>&1 &
  else
    "$bin" -F -O -y "$OUT/$t.conf" -c "$PHP_INI" >"$OUT/log/$t.out" 2>&1 &
  fi
  SERVER_PID=$!
  STARTED+=("$SERVER_PID")
  local i
  for ((i = 0; i < 600; i++)); do
    [ -S "$OUT/run/$t.sock" ] && worker_pid "$s" >/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "$s exited: $(tail -5 "$OUT/log/$t.out")"
    sleep 0.2
  done
}
# The worker: php-fpm's master's child; corral's prototype's child.
worker_pid() {
  local p
  if [ "$1" = corral ]; then
    # The master's children are prototypes and, with corral.zygote, the
    # zygote, which keeps no children: the worker is a prototype's child.
    for p in $(pgrep -P "$SERVER_PID"); do pgrep -n -P "$p" && return 0; done
    return 1
  else
    pgrep -n -P "$SERVER_PID"
  fi
}
stop() {
  kill -QUIT "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# --------------------------------------------------------------- apps
setup_apps() {
  if ! mariadb -e 'SELECT 1' >/dev/null 2>&1; then
    log "starting mariadbd"
    [ -d /var/lib/mysql/mysql ] || mysql_install_db --user=mysql --datadir=/var/lib/mysql >"$OUT/log/mysql_install_db.log" 2>&1
    install -d -o mysql -g mysql -m 755 /run/mysqld
    mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
      --pid-file=/run/mysqld/corral-appcost.pid --skip-networking --skip-log-bin \
      >"$OUT/log/mariadb.log" 2>&1 &
    STARTED=($! "${STARTED[@]+"${STARTED[@]}"}")
    local i
    for ((i = 0; i < 600; i++)); do mariadb -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  install -o www-data -g root -m 644 bench/fixtures/dokuwiki-page.txt \
    "/var/lib/dokuwiki/data/pages/$DOKU_PAGE.txt"
  if [ -f "$WP_CONFIG" ] && mariadb -e "SELECT 1 FROM $WP_DB.wp_options LIMIT 1" >/dev/null 2>&1; then
    return
  fi
  log "installing WordPress (database $WP_DB, $WP_CONFIG)"
  local pw
  pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  mariadb <<EOF
DROP DATABASE IF EXISTS $WP_DB;
CREATE DATABASE $WP_DB DEFAULT CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$WP_USER'@'localhost' IDENTIFIED BY '$pw';
ALTER USER '$WP_USER'@'localhost' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON $WP_DB.* TO '$WP_USER'@'localhost';
FLUSH PRIVILEGES;
EOF
  install -d /etc/wordpress
  cat >"$WP_CONFIG" <<EOF
<?php
/* Written by corral's bench/appcost.sh for the host "$WP_HOST"; safe to delete. */
define('DB_NAME', '$WP_DB');
define('DB_USER', '$WP_USER');
define('DB_PASSWORD', '$pw');
define('DB_HOST', 'localhost');
define('WP_CONTENT_DIR', '/var/lib/wordpress/wp-content');
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
EOF
  chown root:www-data "$WP_CONFIG"
  chmod 640 "$WP_CONFIG"
  start php-fpm
  curl -sS -o "$OUT/log/wp-install.html" -H "Host: $WP_HOST" \
    --data-urlencode 'weblog_title=corral bench' --data-urlencode 'user_name=admin' \
    --data-urlencode "admin_password=$pw" --data-urlencode "admin_password2=$pw" \
    --data-urlencode 'pw_weak=1' --data-urlencode 'admin_email=admin@example.com' \
    --data-urlencode 'blog_public=0' --data-urlencode 'language=' \
    "http://127.0.0.1:$(port wp php-fpm)/wp-admin/install.php?step=2"
  stop
  grep -q Success "$OUT/log/wp-install.html" || die "WordPress install failed: $OUT/log/wp-install.html"
}

WARM=${APPCOST_WARM:-20}
warm() { # server app
  send "$2" "$1" "$WARM"
  # A response from this worker must be the app's page, not an error.
  curl -sS -H "Host: $WP_HOST" -o "$OUT/check-$2-$(tag "$1").html" -w '%{http_code}' "$(url "$2" "$1")" \
    | grep -q 200 || die "$2 via $1 did not answer 200"
}

# ------------------------------------------------------------- strace
run_strace() {
  local n=${1:-200} s app t sp
  for app in wp doku; do
    for s in php-fpm corral; do
      t=$(tag "$s")
      start "$s"
      warm "$s" "$app"
      strace -c -f -o "$OUT/strace-$app-$t.txt" -p "$(worker_pid "$s")" &
      sp=$!
      sleep 1
      send "$app" "$s" "$n"
      kill -INT "$sp"
      wait "$sp" || true
      stop
      python3 - "$OUT/strace-$app-$t.txt" "$n" "$app" "$s" <<'EOF'
import sys
rows, n = {}, int(sys.argv[2])
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[-1] != "total" and f[0][0].isdigit() and f[3].isdigit():
        rows[f[-1]] = int(f[3])
total = sum(rows.values())
keys = ["newfstatat", "fstat", "stat", "lstat", "statx", "openat", "access", "readlink",
        "getcwd", "chdir", "mmap", "munmap", "brk", "read", "write", "writev", "sendto", "recvfrom", "poll"]
print(f"{sys.argv[3]:5} {sys.argv[4]:8} total {total / n:7.1f} | " +
      " ".join(f"{k} {rows[k] / n:.1f}" for k in keys if k in rows))
print("        all: " + " ".join(f"{k} {v / n:.2f}" for k, v in sorted(rows.items(), key=lambda x: -x[1])))
EOF
    done
  done
}

# trace APP [N]: every syscall of N requests, one file per server, to compare.
run_trace() {
  local app=${1:-wp} n=${2:-5} s t sp
  for s in php-fpm corral; do
    t=$(tag "$s")
    start "$s"
    warm "$s" "$app"
    strace -f -o "$OUT/trace-$app-$t.txt" -p "$(worker_pid "$s")" &
    sp=$!
    sleep 1
    send "$app" "$s" "$n"
    kill -INT "$sp"
    wait "$sp" || true
    stop
    log "$OUT/trace-$app-$t.txt: $(wc -l <"$OUT/trace-$app-$t.txt") lines"
  done
}

# ---------------------------------------------------------- callgrind
run_callgrind() {
  local s app t a b n1 n2 w
  mkdir -p "$OUT/cg"
  chmod 1777 "$OUT/cg"
  for app in wp doku; do
    n1=${1:-10}; n2=${2:-40}
    [ "$app" = doku ] && { n1=$((n1 * 4)); n2=$((n2 * 4)); }
    for s in php-fpm corral; do
      t=$(tag "$s")
      for n in "$n1" "$n2"; do
        CGRUN=$app-$t-$n
        rm -f "$OUT/cg/$CGRUN".*
        start "$s" valgrind
        w=$(worker_pid "$s")
        warm "$s" "$app"
        send "$app" "$s" "$n"
        stop
        echo "$w" >"$OUT/cg/$CGRUN.worker"
      done
      a=$(grep -m1 '^summary:' "$OUT/cg/$app-$t-$n1.$(cat "$OUT/cg/$app-$t-$n1.worker")" | awk '{print $2}')
      b=$(grep -m1 '^summary:' "$OUT/cg/$app-$t-$n2.$(cat "$OUT/cg/$app-$t-$n2.worker")" | awk '{print $2}')
      echo "$app $s: $(((b - a) / (n2 - n1))) instructions per request (worker, user space; N=$n1,$n2)"
    done
  done
}

# -------------------------------------------------------------- stats
probe() { curl -sS "$(url probe "$1")"; }
# proc_counts PID: minflt majflt voluntary involuntary, then how the
# kernel treats the process (seccomp, no_new_privs, nice, cgroups).
proc_counts() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat")
  echo "$(echo "$st" | awk '{print $8, $10}')" \
    "$(awk '/^voluntary_ctxt/ {v=$2} /^nonvoluntary_ctxt/ {i=$2} END {print v, i}' "/proc/$1/status")" \
    "seccomp=$(awk '/^Seccomp:/ {print $2}' "/proc/$1/status")" \
    "nnp=$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$1/status")" \
    "nice=$(echo "$st" | awk '{print $17}')" \
    "cgroups=$(tr '\n' ' ' <"/proc/$1/cgroup" | tr -s ' ' | sed 's/ $//' | tr ' ' ';')"
}
run_stats() {
  local n=${1:-100} s app before after w k1 k2
  for app in wp doku; do
    for s in php-fpm corral; do
      start "$s"
      warm "$s" "$app"
      probe "$s" >/dev/null
      w=$(worker_pid "$s")
      before=$(probe "$s")
      k1=$(proc_counts "$w")
      send "$app" "$s" "$n"
      k2=$(proc_counts "$w")
      after=$(probe "$s")
      stop
      python3 - "$before" "$after" "$n" "$app" "$s" "$k1" "$k2" <<'EOF'
import json, sys
a, b, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
k1, k2 = sys.argv[6].split(), sys.argv[7].split()
d = [(int(y) - int(x)) / n for x, y in zip(k1[:4], k2[:4])]
print(f"{sys.argv[4]:5} {sys.argv[5]:8} per request: minor faults {d[0]:.1f}, major {d[1]:.2f}, "
      f"voluntary context switches {d[2]:.2f}, involuntary {d[3]:.2f}; worker: {' '.join(k2[4:])}")
# One probe request lies between the two readings besides the N requests.
print(f"{sys.argv[4]:5} {sys.argv[5]:8} OPcache hits/request {(b['hits'] - a['hits'] - 1) / n:.1f}, "
      f"misses {(b['misses'] - a['misses']) / n:.2f}, cached scripts {b['scripts']}, "
      f"realpath cache {b['realpath_entries']} entries / {b['realpath_bytes']} bytes "
      f"(before {a['realpath_entries']}), worker cwd {b['cwd']}")
print(f"      $_SERVER keys {b['server_keys']} (md5 {b['server'][:8]}), internal functions {b['functions']}, "
      f"classes {b['classes']}, ini md5 {b['ini'][:8]}")
EOF
    done
  done
}

start_nginx
setup_apps
case $MODE in
  strace) run_strace "${2:-}" ;;
  callgrind) run_callgrind "${2:-}" "${3:-}" ;;
  stats) run_stats "${2:-}" ;;
  trace) run_trace "${2:-}" "${3:-}" ;;
  all) run_stats; run_strace; run_callgrind ;;
  *) die "mode: strace | callgrind | stats | all" ;;
esac
