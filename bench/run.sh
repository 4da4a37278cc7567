#!/usr/bin/env bash
# corral vs php-fpm 8.2, one command:
#
#   sudo bench/run.sh                 # full run (~35 min on 2 CPUs; 10 of them idle)
#   sudo BENCH_QUICK=1 bench/run.sh   # smoke run (~3 min)
#   sudo BENCH_ONLY=noisy bench/run.sh # only section 7, noisy neighbour (~2-3 min)
#   sudo BENCH_ONLY=apps bench/run.sh  # only section 3, the applications (~3-4 min)
#
# Installs what it needs (apt-get), builds corral (release), starts php-fpm8.2
# and corral with the same pool settings, nginx in front of both, MariaDB for
# WordPress, a copy of the browser tests' Laravel app (file session and
# cache, no database), measures both servers alternately over several rounds
# and writes BENCHMARKS.md (top level) and bench/results/*.png.
#
# Environment (defaults for the full run; BENCH_QUICK=1 shortens them):
#   BENCH_ROUNDS=3        rounds (medians are taken over rounds)
#   BENCH_DURATION=5s     one throughput measurement
#   BENCH_APP_DURATION=15s one DokuWiki / WordPress / Laravel measurement
#   BENCH_WORKERS=4       pm = static, pm.max_children
#   BENCH_POOLS=1000      ondemand pools in the density test
#   BENCH_RELOADS=20      reloads in the reload-under-load test
#   BENCH_LATER=600       seconds idle before the "first request after a long
#                         idle" (section 5; the run waits that long once)
#   BENCH_PORT_BASE=18080 nginx listens on BASE+1 .. BASE+12 (127.0.0.1)
#   BENCH_KEEP=1          keep the temp dir (configs, logs, raw outputs)
#   BENCH_BIN=PATH        use this corral binary instead of building one
#                         (the report's git revision is still the checkout's)
#   BENCH_NOISY_DURATION=8s  one victim measurement in the noisy-neighbour test
#   BENCH_NOTE="..."      a line printed in section 7 (e.g. what was merged)
#   BENCH_ONLY=noisy      run only the noisy-neighbour test; BENCHMARKS.md is
#                         rewritten with the other sections' last results
#                         (bench/results/results.jsonl) and the new section 7
#   BENCH_ONLY=apps       run only section 3 (DokuWiki, WordPress, Laravel);
#                         its rows in bench/results/results.jsonl are
#                         replaced, the other sections are rewritten from the
#                         earlier run's results, and section 3 says when it ran
#
# Every process it starts (php-fpm, corral, nginx, wrk, mariadbd if it was not
# already running) is stopped on exit, also on error or Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
RESULTS_DIR="$BENCH/results"
PY="$BENCH/bench.py"
export PATH="$HOME/.cargo/bin:/root/.cargo/bin:$PATH"

QUICK="${BENCH_QUICK:-0}"
if [ "$QUICK" = 1 ]; then
  ROUNDS="${BENCH_ROUNDS:-1}"; DUR="${BENCH_DURATION:-1s}"; WARM=300ms
  APP_DUR="${BENCH_APP_DURATION:-2s}"; POOLS="${BENCH_POOLS:-100}"
  RELOAD_GAP=0.25; MEM_LOAD=1s; COLD_N=3; LATER_S="${BENCH_LATER:-30}"
else
  ROUNDS="${BENCH_ROUNDS:-3}"; DUR="${BENCH_DURATION:-5s}"; WARM=1s
  APP_DUR="${BENCH_APP_DURATION:-15s}"; POOLS="${BENCH_POOLS:-1000}"
  RELOAD_GAP=0.5; MEM_LOAD=3s; COLD_N=5; LATER_S="${BENCH_LATER:-600}"
fi
ONLY="${BENCH_ONLY:-}"
case "$ONLY" in ""|noisy|apps) ;; *) echo "bench/run.sh: BENCH_ONLY must be empty, 'noisy' or 'apps'" >&2; exit 64 ;; esac
if [ "$QUICK" = 1 ]; then NOISY_DUR="${BENCH_NOISY_DURATION:-4s}"; else NOISY_DUR="${BENCH_NOISY_DURATION:-8s}"; fi
WORKERS="${BENCH_WORKERS:-4}"
RELOADS="${BENCH_RELOADS:-20}"
PORT_BASE="${BENCH_PORT_BASE:-18080}"
CONCURRENCY=(1 4 16 64)
NGINX_CONCURRENCY=(4 16 64)
APP_C=8
RATE_C=16
RELOAD_C=16

FPM_BIN=/usr/sbin/php-fpm8.2
PHP_INI=/etc/php/8.2/fpm/php.ini
PHP_SCAN_DIR=/etc/php/8.2/fpm/conf.d
WP_HOST=wordpress.bench
WP_CONFIG="/etc/wordpress/config-$WP_HOST.php"
WP_DB=corral_bench_wp
WP_USER=corral_bench
DOKU_PAGE=corral_bench
# The Laravel app of the browser tests (crates/corral/tests/browser_sites.rs),
# copied into the temp dir; /page is its controller behind the stock
# middleware, with file session and cache (no database).
LV_SRC="$ROOT/crates/corral/tests/browser/laravel-app"
LV_PATH=/page
LV_SESSION_COOKIE=corral_session

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'bench/run.sh: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo bench/run.sh): php-fpm and corral switch to www-data"
[ -x /usr/bin/apt-get ] || die "needs Debian 12 (apt-get)"

# ------------------------------------------------------------------ cleanup
W=""            # temp dir
STARTED=()      # pids we started (servers, nginx, mariadbd, wrk)
MARIADB_PID=""

descendants() { # pid -> all descendant pids
  local p kids
  kids=$(pgrep -P "$1" 2>/dev/null || true)
  for p in $kids; do echo "$p"; descendants "$p"; done
}

stop_pid() { # pid [timeout-s]: TERM, wait, KILL; also leftovers of its tree
  local pid=$1 t=${2:-10} tree i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  tree=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for i in $tree; do kill -KILL "$i" 2>/dev/null || true; done
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  if [ ${#STARTED[@]} -gt 0 ]; then
    for ((p = ${#STARTED[@]} - 1; p >= 0; p--)); do stop_pid "${STARTED[$p]}" 5; done
  fi
  if [ -n "$W" ] && [ -d "$W" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
      log "temp dir kept: $W"
    else
      rm -rf "$W"
    fi
  fi
  [ $rc -ne 0 ] && log "FAILED (exit $rc); no process left running by this script"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() { # pid: drop from STARTED after we stopped it
  local keep=() p
  for p in "${STARTED[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  STARTED=("${keep[@]+"${keep[@]}"}")
}

# ------------------------------------------------------------- dependencies
PKGS=(php8.2-fpm php8.2-cli php8.2-opcache php8.2-mysql libphp8.2-embed nginx wrk dokuwiki
      wordpress php-laravel-framework mariadb-server mariadb-client python3-matplotlib curl
      procps acl gcc)
[ "$ONLY" = noisy ] && PKGS=(php8.2-fpm php8.2-cli php8.2-opcache libphp8.2-embed procps acl gcc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ -x "$ROOT/scripts/setup.sh" ]; then
  log "running scripts/setup.sh (build dependencies)"
  "$ROOT/scripts/setup.sh" >/dev/null || die "scripts/setup.sh failed"
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq || die "apt-get update failed"
  # policy-rc.d may forbid starting services; that is fine, we start nothing via init.
  apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
# Debian's python3 (with python3-matplotlib), not whatever python3 is first in PATH.
PYTHON=/usr/bin/python3
python3() { "$PYTHON" "$@"; }
if [ "$ONLY" = noisy ]; then
  for b in "$FPM_BIN" gcc setfacl "$PYTHON"; do
    command -v "$b" >/dev/null || die "$b not found after installing packages"
  done
else
  "$PYTHON" -c 'import matplotlib' 2>/dev/null \
    || "$PYTHON" -m pip install --break-system-packages matplotlib >/dev/null \
    || die "matplotlib is missing for $PYTHON (apt-get install python3-matplotlib)"
  for b in "$FPM_BIN" php8.2 runuser nginx wrk curl mariadbd mariadb gcc setfacl "$PYTHON"; do
    command -v "$b" >/dev/null || die "$b not found after installing packages"
  done
fi

if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$BENCH_BIN"
  [ -x "$BIN" ] || die "BENCH_BIN=$BIN is not an executable"
  log "using $BIN (BENCH_BIN; not building)"
else
  log "building corral (cargo build --release -p corral)"
  command -v cargo >/dev/null || die "cargo not found (install rustup's toolchain)"
  (cd "$ROOT" && cargo build --release -p corral 2>&1 | tail -2) || die "cargo build failed"
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/corral"
  [ -x "$BIN" ] || die "$BIN was not built"
fi

git_rev() {
  local rev
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    rev="$rev + uncommitted changes in crates/"
  fi
  echo "$rev"
}

# --------------------------------------------------- 7. noisy neighbour
# Two sites made by `corral site add` (users cbn{a,v}-PID, sandbox under
# /var/lib), the victim measured alone and under attack, on corral and then
# on php-fpm; bench.py removes users, processes and files itself.
run_noisy() { # OUT_DIR
  log "7. noisy neighbour: the victim alone and while the attacker burns CPU, hogs memory, forks ($NOISY_DUR each; corral, then php-fpm)"
  BENCH_REV="$(git_rev)" python3 "$PY" noisy "$BIN" "$ROOT" "$1" "$NOISY_DUR" || die "the noisy-neighbour test failed"
}
if [ "$ONLY" = apps ]; then
  [ -s "$RESULTS_DIR/results.jsonl" ] && [ -s "$RESULTS_DIR/meta.json" ] \
    || die "BENCH_ONLY=apps needs an earlier full run's $RESULTS_DIR/results.jsonl and meta.json"
fi
# report_section WHAT START END: a BENCH_ONLY run rewrites BENCHMARKS.md from
# bench/results/ and prints the section it re-ran (START up to END).
report_section() {
  python3 "$PY" report "$RESULTS_DIR" "$ROOT/BENCHMARKS.md" || die "writing BENCHMARKS.md failed"
  log "done: $ROOT/BENCHMARKS.md ($1 are new)"
  python3 - "$ROOT/BENCHMARKS.md" "$2" "$3" <<'EOF'
import sys
t = open(sys.argv[1]).read()
print(t[t.index(sys.argv[2]):t.index(sys.argv[3])])
EOF
}
if [ "$ONLY" = noisy ]; then
  [ -s "$RESULTS_DIR/results.jsonl" ] || die "BENCH_ONLY=noisy needs an earlier full run's $RESULTS_DIR/results.jsonl"
  run_noisy "$RESULTS_DIR"
  report_section "section 7 and the headline's noisy rows" "## 7." "## Exact commands"
  exit 0
fi

# ------------------------------------------------------------------ layout
W=$(mktemp -d /tmp/corral-bench.XXXXXX)
chmod 755 "$W"
mkdir -p "$W"/{www,run,log,out,conf,nginx-tmp}
chmod 755 "$W/www" "$W/run" "$W/conf"
chown www-data "$W/nginx-tmp"
install -m 644 "$BENCH/fixtures/hello.php" "$BENCH/fixtures/info.php" "$W/www/"
export BENCH_RESULTS="$W/results.jsonl"
: >"$BENCH_RESULTS"
COMMANDS="$W/commands.txt"
: >"$COMMANDS"
ROUND=1
cmdlog() { [ "$ROUND" = 1 ] && printf '%s\n' "$*" >>"$COMMANDS"; return 0; }
HELLO="$W/www/hello.php"

for i in 1 2 3 4 5 6 7 8 9 10; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$((PORT_BASE + i))") 2>/dev/null; then
    die "port $((PORT_BASE + i)) is in use; set BENCH_PORT_BASE"
  fi
done

# server name -> short tag used in file names
tag() { [ "$1" = php-fpm ] && echo fpm || echo corral; }

# static_conf NAME FILE [memory_limit]: the one pool both servers run
static_conf() {
  local t; t=$(tag "$1")
  cat >"$2" <<EOF
; generated by bench/run.sh: identical for php-fpm and corral except paths
[global]
pid = $W/run/$t.pid
error_log = $W/log/$t-error.log
log_level = notice

[bench]
user = www-data
group = www-data
listen = $W/run/$t.sock
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
listen.backlog = 511
pm = static
pm.max_children = $WORKERS
pm.max_requests = 0
php_admin_value[memory_limit] = ${3:-128M}
EOF
}

# density_conf NAME FILE: POOLS ondemand pools
density_conf() {
  local t i; t=$(tag "$1")
  {
    printf '[global]\npid = %s\nerror_log = %s\nlog_level = notice\n' \
      "$W/run/d-$t.pid" "$W/log/d-$t-error.log"
    for ((i = 1; i <= POOLS; i++)); do
      printf '\n[p%d]\nuser = www-data\ngroup = www-data\nlisten = %s\n' "$i" "$W/run/d-$t-$i.sock"
      printf 'listen.owner = www-data\nlisten.group = www-data\nlisten.mode = 0660\n'
      printf 'pm = ondemand\npm.max_children = 2\npm.process_idle_timeout = 10s\n'
    done
  } >"$2"
}

SERVER_PID=""
# start_server NAME CONF LOGBASE: starts, waits for "ready to handle connections"
launch_server() {
  local name=$1 conf=$2 out=$3
  if [ "$name" = php-fpm ]; then
    cmdlog "PHP_INI_SCAN_DIR=$PHP_SCAN_DIR $FPM_BIN -F -O -c $PHP_INI -y $conf"
    PHP_INI_SCAN_DIR=$PHP_SCAN_DIR "$FPM_BIN" -F -O -c "$PHP_INI" -y "$conf" >"$out" 2>&1 &
  else
    cmdlog "PHP_INI_SCAN_DIR=$PHP_SCAN_DIR $BIN -F -O -c $PHP_INI -y $conf --control-socket $W/run/control.sock"
    PHP_INI_SCAN_DIR=$PHP_SCAN_DIR "$BIN" -F -O -c "$PHP_INI" -y "$conf" \
      --control-socket "$W/run/control.sock" >"$out" 2>&1 &
  fi
  SERVER_PID=$!
  STARTED+=("$SERVER_PID")
}
ready_count() { cat "$@" 2>/dev/null | grep -c 'ready to handle connections' || true; }
wait_ready() { # NAME PID OUT ERRLOG [timeout]
  local i
  for ((i = 0; i < ${5:-60} * 20; i++)); do
    [ "$(ready_count "$3" "$4")" -ge 1 ] && return 0
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" "$4" >&2 2>/dev/null; die "$1 exited during start-up"; }
    sleep 0.05
  done
  tail -20 "$3" "$4" >&2 2>/dev/null
  die "$1 did not report 'ready to handle connections' within ${5:-60}s"
}
start_static() { # NAME -> sets FPM_PID / CORRAL_PID
  local name=$1 t; t=$(tag "$1")
  static_conf "$name" "$W/conf/$t.conf"
  rm -f "$W/log/$t-error.log"
  launch_server "$name" "$W/conf/$t.conf" "$W/log/$t.out"
  wait_ready "$name" "$SERVER_PID" "$W/log/$t.out" "$W/log/$t-error.log"
  if [ "$name" = php-fpm ]; then FPM_PID=$SERVER_PID; else CORRAL_PID=$SERVER_PID; fi
}
stop_server() { # PID
  stop_pid "$1" 15
  forget "$1"
}
server_pid() { [ "$1" = php-fpm ] && echo "$FPM_PID" || echo "$CORRAL_PID"; }
order() { # round -> the two servers, alternating who goes first
  if (( $1 % 2 == 1 )); then echo "php-fpm corral"; else echo "corral php-fpm"; fi
}

# ------------------------------------------------------------------ nginx
PORT_HELLO_FPM=$((PORT_BASE + 1)); PORT_HELLO_CORRAL=$((PORT_BASE + 2))
PORT_DOKU_FPM=$((PORT_BASE + 3)); PORT_DOKU_CORRAL=$((PORT_BASE + 4))
PORT_WP_FPM=$((PORT_BASE + 5)); PORT_WP_CORRAL=$((PORT_BASE + 6))
# Hello world through an upstream keep-alive pool (fastcgi_keep_conn on).
PORT_HELLOKA_FPM=$((PORT_BASE + 7)); PORT_HELLOKA_CORRAL=$((PORT_BASE + 8))
PORT_LV_FPM=$((PORT_BASE + 9)); PORT_LV_CORRAL=$((PORT_BASE + 10))
# The same with a keep-alive pool 4 times the workers.
PORT_HELLOKX_FPM=$((PORT_BASE + 11)); PORT_HELLOKX_CORRAL=$((PORT_BASE + 12))
LV="$W/laravel"
port() { # app server
  local v="PORT_${1^^}_$( [ "$2" = php-fpm ] && echo FPM || echo CORRAL )"
  echo "${!v}"
}
nginx_server() { # port root sock index [upstream name: keep-alive]
  local pass="unix:$3" keep=""
  if [ -n "${5:-}" ]; then pass="$5"; keep="fastcgi_keep_conn on;"; fi
  cat <<EOF
  server {
    listen 127.0.0.1:$1;
    server_name _;
    root $2;
    index $4;
    location / { try_files \$uri \$uri/ /index.php?\$args; }
    location ~ \.php\$ {
      try_files \$uri =404;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_pass $pass;
      $keep
    }
  }
EOF
}
# Keep-alive pools: one no larger than the workers (a php-fpm worker is
# tied to one kept connection, so more leave requests waiting in the
# listen queue behind idle kept connections), and one 4 times as large,
# which shows that (a corral worker waits on its kept connections and the
# pool's socket at once).
nginx_upstream() { # name sock keepalive
  printf '  upstream %s {\n    server unix:%s;\n    keepalive %s;\n  }\n' "$1" "$2" "$3"
}
NGINX_CONF="$W/conf/nginx.conf"
{
  cat <<EOF
user www-data;
worker_processes 1;
daemon off;
pid $W/run/nginx.pid;
error_log $W/log/nginx-error.log;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $W/nginx-tmp/body;
  fastcgi_temp_path $W/nginx-tmp/fastcgi;
  proxy_temp_path $W/nginx-tmp/proxy;
  uwsgi_temp_path $W/nginx-tmp/uwsgi;
  scgi_temp_path $W/nginx-tmp/scgi;
EOF
  nginx_server "$PORT_HELLO_FPM" "$W/www" "$W/run/fpm.sock" index.php
  nginx_server "$PORT_HELLO_CORRAL" "$W/www" "$W/run/corral.sock" index.php
  nginx_server "$PORT_DOKU_FPM" /usr/share/dokuwiki "$W/run/fpm.sock" doku.php
  nginx_server "$PORT_DOKU_CORRAL" /usr/share/dokuwiki "$W/run/corral.sock" doku.php
  nginx_server "$PORT_WP_FPM" /usr/share/wordpress "$W/run/fpm.sock" index.php
  nginx_server "$PORT_WP_CORRAL" /usr/share/wordpress "$W/run/corral.sock" index.php
  nginx_server "$PORT_LV_FPM" "$LV/public" "$W/run/fpm.sock" index.php
  nginx_server "$PORT_LV_CORRAL" "$LV/public" "$W/run/corral.sock" index.php
  nginx_upstream fpm_keep "$W/run/fpm.sock" "$WORKERS"
  nginx_upstream corral_keep "$W/run/corral.sock" "$WORKERS"
  nginx_upstream fpm_keep4x "$W/run/fpm.sock" $((4 * WORKERS))
  nginx_upstream corral_keep4x "$W/run/corral.sock" $((4 * WORKERS))
  nginx_server "$PORT_HELLOKA_FPM" "$W/www" "$W/run/fpm.sock" index.php fpm_keep
  nginx_server "$PORT_HELLOKA_CORRAL" "$W/www" "$W/run/corral.sock" index.php corral_keep
  nginx_server "$PORT_HELLOKX_FPM" "$W/www" "$W/run/fpm.sock" index.php fpm_keep4x
  nginx_server "$PORT_HELLOKX_CORRAL" "$W/www" "$W/run/corral.sock" index.php corral_keep4x
  echo "}"
} >"$NGINX_CONF"
nginx -t -c "$NGINX_CONF" >"$W/log/nginx-t.log" 2>&1 || { cat "$W/log/nginx-t.log" >&2; die "nginx config test failed"; }

# ---------------------------------------------------------------- MariaDB
start_mariadb() {
  if mariadb -e 'SELECT 1' >/dev/null 2>&1; then
    log "MariaDB already running; using it (and leaving it running)"
    return
  fi
  log "starting mariadbd (no systemd)"
  if [ ! -d /var/lib/mysql/mysql ]; then
    mysql_install_db --user=mysql --datadir=/var/lib/mysql >"$W/log/mysql_install_db.log" 2>&1 \
      || die "mysql_install_db failed; see $W/log/mysql_install_db.log"
  fi
  install -d -o mysql -g mysql -m 755 /run/mysqld
  mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
    --pid-file=/run/mysqld/corral-bench.pid --skip-networking --skip-log-bin \
    >"$W/log/mariadb.log" 2>&1 &
  MARIADB_PID=$!
  STARTED+=("$MARIADB_PID")
  local i
  for ((i = 0; i < 600; i++)); do
    mariadb -e 'SELECT 1' >/dev/null 2>&1 && return
    kill -0 "$MARIADB_PID" 2>/dev/null || { tail -20 "$W/log/mariadb.log" >&2; die "mariadbd exited"; }
    sleep 0.1
  done
  die "mariadbd did not accept connections within 60s"
}

setup_wordpress() {
  local pw
  pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  mariadb <<EOF || die "creating the WordPress database failed"
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
/* Written by corral's bench/run.sh for the host "$WP_HOST"; safe to delete. */
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
  local code
  code=$(curl -sS -o "$W/out/wp-install.html" -w '%{http_code}' -H "Host: $WP_HOST" \
    --data-urlencode 'weblog_title=corral bench' --data-urlencode 'user_name=admin' \
    --data-urlencode "admin_password=$pw" --data-urlencode "admin_password2=$pw" \
    --data-urlencode 'pw_weak=1' --data-urlencode 'admin_email=admin@example.com' \
    --data-urlencode 'blog_public=0' --data-urlencode 'language=' \
    "http://127.0.0.1:$PORT_WP_FPM/wp-admin/install.php?step=2") || die "WordPress install request failed"
  [ "$code" = 200 ] && grep -q 'Success' "$W/out/wp-install.html" \
    || die "WordPress install returned HTTP $code; see $W/out/wp-install.html"
}

setup_dokuwiki() {
  install -o www-data -g root -m 644 "$BENCH/fixtures/dokuwiki-page.txt" \
    "/var/lib/dokuwiki/data/pages/$DOKU_PAGE.txt"
}

# setup_laravel: the browser tests' app in $LV, the same directory for both
# servers: a .env with a key made for this run and debug off, storage/ and
# bootstrap/cache/ writable by www-data, config, routes and Blade views
# cached by artisan (as www-data, so the cache files are the workers').
LV_CACHED=(config:cache route:cache view:cache)
setup_laravel() {
  [ -f /usr/share/php/Illuminate/autoload.php ] || die "php-laravel-framework is not installed"
  [ -f "$LV_SRC/public/index.php" ] || die "the Laravel app is missing: $LV_SRC"
  cp -r "$LV_SRC" "$LV"
  mkdir -p "$LV"/storage/{app,logs,framework/{cache/data,sessions,views}} "$LV/bootstrap/cache"
  chown -R root:root "$LV"
  chmod -R u=rwX,go=rX "$LV"
  {
    echo "APP_ENV=production"
    echo "APP_DEBUG=false"
    echo "APP_KEY=base64:$(head -c 32 /dev/urandom | base64)"
    echo "SESSION_DRIVER=file"
    echo "CACHE_DRIVER=file"
  } >"$LV/.env"
  chown root:www-data "$LV/.env"
  chmod 640 "$LV/.env"
  chown -R www-data:www-data "$LV/storage" "$LV/bootstrap/cache"
  local c
  for c in "${LV_CACHED[@]}"; do
    cmdlog "runuser -u www-data -- php8.2 $LV/artisan $c"
    runuser -u www-data -- php8.2 "$LV/artisan" "$c" >>"$W/log/laravel-artisan.log" 2>&1 \
      || { cat "$W/log/laravel-artisan.log" >&2; die "artisan $c failed"; }
  done
  [ -s "$LV/bootstrap/cache/config.php" ] && ls "$LV"/bootstrap/cache/routes-*.php >/dev/null 2>&1 \
    || die "artisan did not write the config and route caches in $LV/bootstrap/cache"
}

# laravel_session: one session for the whole run, made by a first request
# through php-fpm; wrk sends its cookie on every connection, so each
# request reads and writes that one session file (without a cookie every
# request would leave a new file behind, and the session directory, which
# Laravel's garbage collector lists, would grow during the measurement).
LV_COOKIE=""
laravel_session() {
  local jar="$W/out/laravel-cookies.txt" code
  code=$(curl -sS -c "$jar" -o "$W/out/laravel-first.html" -w '%{http_code}' \
    "http://127.0.0.1:$PORT_LV_FPM$LV_PATH") || die "curl to Laravel failed"
  [ "$code" = 200 ] || die "Laravel's $LV_PATH via php-fpm returned HTTP $code (body: $W/out/laravel-first.html)"
  LV_COOKIE=$(awk -v n="$LV_SESSION_COOKIE" '$6 == n { print $7 }' "$jar")
  [ -n "$LV_COOKIE" ] || die "Laravel set no $LV_SESSION_COOKIE cookie (see $jar)"
}

# check_laravel SERVER: the page, and a visit count read back from the
# session file (so the session, the cache and the view all ran).
check_laravel() {
  local f="$W/out/check-lv-$(tag "$1").html" n
  grep -q '<h1 id="greeting">Hello from corral-laravel</h1>' "$f" \
    || die "Laravel's $LV_PATH via $1 lacks the greeting (body: $f)"
  grep -q '<td>Item 20</td>' "$f" || die "Laravel's $LV_PATH via $1 lacks the cached items (body: $f)"
  n=$(sed -n 's|.*<p id="visits">\([0-9]*\)</p>.*|\1|p' "$f")
  [ -n "$n" ] && (( n > 1 )) || die "Laravel's $LV_PATH via $1 did not read its session back (visits '$n'; body: $f)"
}

app_url() { # app server
  case $1 in
    hello) echo "http://127.0.0.1:$(port hello "$2")/hello.php" ;;
    helloka) echo "http://127.0.0.1:$(port helloka "$2")/hello.php" ;;
    hellokx) echo "http://127.0.0.1:$(port hellokx "$2")/hello.php" ;;
    doku) echo "http://127.0.0.1:$(port doku "$2")/doku.php?id=$DOKU_PAGE" ;;
    wp) echo "http://127.0.0.1:$(port wp "$2")/" ;;
    lv) echo "http://127.0.0.1:$(port lv "$2")$LV_PATH" ;;
  esac
}
app_hdr() {
  case $1 in
    wp) echo "Host: $WP_HOST" ;;
    lv) echo "Cookie: $LV_SESSION_COOKIE=$LV_COOKIE" ;;
    *) echo "X-Bench: 1" ;;
  esac
}
# The header as the command list shows it (the cookie is the run's own).
app_hdr_shown() {
  [ "$1" = lv ] && echo "Cookie: $LV_SESSION_COOKIE=<the run's session>" || app_hdr "$1"
}
app_name() {
  case $1 in doku) echo dokuwiki ;; wp) echo wordpress ;; lv) echo laravel ;; esac
}

check_url() { # app server: must answer 200 with a body
  local url code f
  url=$(app_url "$1" "$2"); f="$W/out/check-$1-$(tag "$2").html"
  code=$(curl -sS -o "$f" -w '%{http_code}' -H "$(app_hdr "$1")" "$url") || die "curl $url failed"
  [ "$code" = 200 ] || die "$url via $2 returned HTTP $code (body: $f)"
  [ -s "$f" ] || die "$url via $2 returned an empty body"
}

# ------------------------------------------------------------ measurement
# fcgi_bench SERVER CASE OUTFILE ARGS...
fcgi_bench() {
  local s=$1 c=$2 f=$3; shift 3
  local sock="$W/run/$(tag "$s").sock"
  cmdlog "$BIN bench -t unix:$sock -s $HELLO $* --json"
  "$BIN" bench -t "unix:$sock" -s "$HELLO" "$@" --json >"$f" || die "corral bench failed against $s"
}
wrk_run() { # OUT THREADS CONN DUR APP SERVER
  local url; url=$(app_url "$5" "$6")
  cmdlog "wrk -t$2 -c$3 -d$4 --latency -H '$(app_hdr_shown "$5")' '$url'"
  wrk -t"$2" -c"$3" -d"$4" --latency -H "$(app_hdr "$5")" "$url" >"$1" 2>&1 \
    || die "wrk failed against $6 ($url): $(tail -3 "$1")"
}
threads_for() { (( $1 < 2 )) && echo 1 || echo 2; }
secs() { local d=$1; d=${d%s}; echo "$d"; }

# ====================================================================== run
log "work dir $W; rounds=$ROUNDS duration=$DUR workers=$WORKERS pools=$POOLS quick=$QUICK"
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
start_mariadb
setup_dokuwiki
log "setting up Laravel in $LV (artisan ${LV_CACHED[*]})"
setup_laravel

FPM_PID=""; CORRAL_PID=""
start_static php-fpm
start_static corral
cmdlog "nginx -c $NGINX_CONF   # daemon off, in the background"
nginx -c "$NGINX_CONF" >"$W/log/nginx.out" 2>&1 &
NGINX_PID=$!
STARTED+=("$NGINX_PID")
for ((i = 0; i < 100; i++)); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT_HELLO_CORRAL") 2>/dev/null && break
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$W/log/nginx.out" "$W/log/nginx-error.log" >&2; die "nginx exited"; }
  sleep 0.1
done

log "setting up WordPress (database $WP_DB, $WP_CONFIG)"
setup_wordpress
laravel_session
for a in hello doku wp lv; do for s in php-fpm corral; do check_url "$a" "$s"; done; done
grep -q 'Hello world' "$W/out/check-wp-corral.html" || die "WordPress front page via corral lacks the default post"
for s in php-fpm corral; do check_laravel "$s"; done

# Same PHP on both sides?
SANITY=""
for s in php-fpm corral; do
  SANITY+="--- info.php via $s"$'\n'
  SANITY+="$(curl -sS "http://127.0.0.1:$(port hello "$s")/info.php")"$'\n'
done
printf '%s' "$SANITY" >"$W/out/sanity.txt"
a=$(curl -sS "http://127.0.0.1:$(port hello php-fpm)/info.php" | grep -v '^pid\|^extensions')
b=$(curl -sS "http://127.0.0.1:$(port hello corral)/info.php" | grep -v '^pid\|^extensions')
[ "$a" = "$b" ] || { printf '%s' "$SANITY" >&2; die "php-fpm and corral do not run PHP with the same settings (above)"; }

# ------------------------------------------------- 3. apps (the function)
# Called after section 2, or alone with BENCH_ONLY=apps.
run_apps() {
  log "3. DokuWiki, WordPress and Laravel through nginx (wrk)"
  local app name s f
  for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
    for app in doku wp lv; do
      name=$(app_name "$app")
      for s in $(order $ROUND); do
        wrk_run "$W/out/warm.txt" 2 "$APP_C" "$([ "$QUICK" = 1 ] && echo 1s || echo 2s)" "$app" "$s"
        f="$W/out/app-$app-$(tag $s)-r$ROUND.txt"
        wrk_run "$f" 2 "$APP_C" "$APP_DUR" "$app" "$s"
        python3 "$PY" emit apps "$name" "$s" "$ROUND" wrk "$f"
      done
    done
    log "  round $ROUND/$ROUNDS done"
  done
}

# What section 3 ran with; the full run puts the same keys in meta.json.
apps_meta() { # OUT.json
  META_LOADAVG="$LOADAVG" META_REV="$(git_rev)" META_COMMANDS="$(cat "$COMMANDS")" \
    META_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" python3 - "$1" <<EOF
import json, os, subprocess, sys
def ver(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=\${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() or "?"
json.dump({
  "date": os.environ["META_DATE"], "quick": "$QUICK" == "1", "rounds": $ROUNDS,
  "corral_rev": os.environ["META_REV"], "loadavg": os.environ["META_LOADAVG"],
  "app_dur": "$APP_DUR", "app_c": $APP_C, "doku_url": "/doku.php?id=$DOKU_PAGE",
  "dokuwiki": ver("dokuwiki"), "wordpress": ver("wordpress"),
  "laravel": ver("php-laravel-framework"), "laravel_url": "$LV_PATH",
  "laravel_cached": "${LV_CACHED[*]}".split(), "workdir": "$W",
  "commands": os.environ["META_COMMANDS"],
}, open(sys.argv[1], "w"), indent=1)
EOF
}

if [ "$ONLY" = apps ]; then
  run_apps
  apps_meta "$W/apps-meta.json"
  # The new section 3 rows replace the old ones; the rest stays.
  python3 - "$RESULTS_DIR/results.jsonl" "$W/results.jsonl" <<'EOF' || die "merging results.jsonl failed"
import json, sys
old = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
new = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
rows = [r for r in old if r["section"] != "apps"] + [r for r in new if r["section"] == "apps"]
with open(sys.argv[1], "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
EOF
  cp "$W/apps-meta.json" "$RESULTS_DIR/"
  report_section "section 3 and the headline's application rows" "## 3." "## 4."
  exit 0
fi

# ------------------------------------------------------------- 1. FastCGI
log "1. hello world over FastCGI directly"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for c in "${CONCURRENCY[@]}"; do
    for keep in off on; do
      [ $keep = on ] && (( c > WORKERS )) && continue
      kflag=--no-keep-conn; [ $keep = on ] && kflag=--keep-conn
      for s in $(order $ROUND); do
        f="$W/out/fcgi-$(tag $s)-c$c-$keep-r$ROUND.json"
        fcgi_bench "$s" "c=$c keep=$keep" "$f" -c "$c" -d "$DUR" -w "$WARM" "$kflag"
        python3 "$PY" emit fcgi "c=$c keep=$keep" "$s" "$ROUND" cb "$f" c="$c" keep=$keep
      done
    done
  done
  log "  round $ROUND/$ROUNDS done"
done
cmdlog "$BIN bench --self-test -c 4 -d $DUR --json"
"$BIN" bench --self-test -c 4 -d "$DUR" --json >"$W/out/selftest.json" || die "corral bench --self-test failed"
python3 "$PY" emit selftest "c=4" generator 1 cb "$W/out/selftest.json"
PEAK=$(python3 "$PY" peak fcgi php-fpm)
(( PEAK > 0 )) || die "could not determine php-fpm's peak throughput"
log "   php-fpm peak (keep-conn off): $PEAK req/s; fixed-rate runs at 50% and 90%"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for pct in 50 90; do
    rate=$((PEAK * pct / 100))
    for s in $(order $ROUND); do
      f="$W/out/rate-$(tag $s)-$pct-r$ROUND.json"
      fcgi_bench "$s" "rate" "$f" -c "$RATE_C" -r "$rate" -d "$DUR" -w "$WARM" --no-keep-conn
      python3 "$PY" emit rate "$pct% of peak ($rate/s)" "$s" "$ROUND" cb "$f" rate="$rate" pct="$pct"
    done
  done
done

# nginx's kept upstream connections go when its worker is replaced.
release_kept_connections() {
  local old; old=$(pgrep -P "$NGINX_PID" | tr '\n' ' ')
  kill -HUP "$NGINX_PID"
  local i
  for ((i = 0; i < 100; i++)); do
    local alive=0 p
    for p in $old; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return
    sleep 0.1
  done
  die "nginx's old worker did not exit after a reload"
}

# --------------------------------------------------------------- 2. nginx
log "2. hello world through nginx (wrk)"
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for c in "${NGINX_CONCURRENCY[@]}"; do
    for s in $(order $ROUND); do
      wrk_run "$W/out/warm.txt" "$(threads_for $c)" "$c" 1s hello "$s"
      f="$W/out/nginx-$(tag $s)-c$c-r$ROUND.txt"
      wrk_run "$f" "$(threads_for $c)" "$c" "$DUR" hello "$s"
      python3 "$PY" emit nginx "c=$c" "$s" "$ROUND" wrk "$f" c="$c"
    done
  done
  # The same with nginx's upstream keep-alive (fastcgi_keep_conn on):
  # keepalive = pm.max_children at c=4 and c=16, and 4 x pm.max_children at
  # c=16. Afterwards idle kept connections hold every php-fpm worker (each
  # serves one connection at a time), so nothing else could reach them:
  # nginx is reloaded, and its old worker closes them.
  for ka in "helloka 4 c=4 upstream keepalive" "helloka 16 c=16 upstream keepalive" \
            "hellokx 16 c=16 upstream keepalive 4x workers"; do
    read -r app c name <<<"$ka"
    for s in $(order $ROUND); do
      wrk_run "$W/out/warm.txt" "$(threads_for $c)" "$c" 1s "$app" "$s"
      f="$W/out/nginx-$app-$(tag $s)-c$c-r$ROUND.txt"
      wrk_run "$f" "$(threads_for $c)" "$c" "$DUR" "$app" "$s"
      python3 "$PY" emit nginx "$name" "$s" "$ROUND" wrk "$f" c="$c"
      release_kept_connections
    done
  done
  log "  round $ROUND/$ROUNDS done"
done

# ---------------------------------------------------------------- 3. apps
run_apps

# ------------------------------------------------------------- 6. reload
log "6. reload under load ($RELOADS reloads)"
reload_once() { # server variant i
  local s=$1 t; t=$(tag "$1")
  if [ "$2" = changed ]; then
    local ml=128M; (( $3 % 2 == 1 )) && ml=129M
    static_conf "$s" "$W/conf/$t.conf" "$ml"
  fi
  if [ "$s" = php-fpm ]; then
    local before i
    before=$(ready_count "$W/log/fpm.out" "$W/log/fpm-error.log")
    [ "$3" = 1 ] && cmdlog "kill -USR2 $FPM_PID   # php-fpm reload, then wait for 'ready to handle connections'"
    kill -USR2 "$FPM_PID"
    for ((i = 0; i < 200; i++)); do
      [ "$(ready_count "$W/log/fpm.out" "$W/log/fpm-error.log")" -gt "$before" ] && return 0
      sleep 0.05
    done
    return 1
  else
    [ "$3" = 1 ] && cmdlog "$BIN reload --control-socket $W/run/control.sock"
    "$BIN" reload --control-socket "$W/run/control.sock" >>"$W/log/reload.out" 2>&1
  fi
}
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for variant in changed unchanged; do
    for s in $(order $ROUND); do
      f="$W/out/reload-$variant-$(tag $s)-r$ROUND.txt"
      url=$(app_url hello "$s")
      cmdlog "wrk -t2 -c$RELOAD_C -d120s --latency '$url'   # stopped with SIGINT after the reloads"
      wrk -t2 -c"$RELOAD_C" -d120s --latency "$url" >"$f" 2>&1 &
      WRK_PID=$!
      STARTED+=("$WRK_PID")
      sleep 1
      done_n=0
      for ((i = 1; i <= RELOADS; i++)); do
        if reload_once "$s" "$variant" "$i"; then done_n=$((done_n + 1)); else log "  $s: reload $i did not complete"; fi
        sleep "$RELOAD_GAP"
      done
      sleep 1
      kill -INT "$WRK_PID" 2>/dev/null || true
      wait "$WRK_PID" 2>/dev/null || true
      forget "$WRK_PID"
      python3 "$PY" emit reload "$variant" "$s" "$ROUND" wrk "$f" reloads_done="$done_n"
      # A php-fpm reload re-executes the master; its pid stays the same.
      kill -0 "$(server_pid "$s")" 2>/dev/null || die "$s died during the reload test"
    done
  done
  log "  round $ROUND/$ROUNDS done"
done

# ------------------------------------------------------------- 4. memory
log "4. memory (each server alone)"
stop_server "$FPM_PID"; stop_server "$CORRAL_PID"; FPM_PID=""; CORRAL_PID=""
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for s in $(order $ROUND); do
    t=$(tag "$s")
    start_static "$s"
    pid=$(server_pid "$s")
    sleep 2
    cmdlog "python3 bench/bench.py mem $pid   # sums /proc/PID/smaps_rollup over the tree"
    python3 "$PY" mem "$pid" >"$W/out/mem-idle-$t-r$ROUND.json"
    python3 "$PY" memsummary "$s" "$W/out/mem-idle-$t-r$ROUND.json" >"$W/out/m1.json"
    for app in hello doku wp; do
      wrk_run "$W/out/memload.txt" 2 8 "$MEM_LOAD" "$app" "$s"
    done
    sleep 1
    python3 "$PY" mem "$pid" >"$W/out/mem-busy-$t-r$ROUND.json"
    python3 "$PY" memsummary "$s" "$W/out/mem-busy-$t-r$ROUND.json" >"$W/out/m2.json"
    python3 - "$W/out/m1.json" "$W/out/m2.json" >"$W/out/mem-$t-r$ROUND.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
print(json.dumps({
    "master_pss": a["master_pss"], "master_rss": a["master_rss"],
    "proto_pss": a["proto_pss"], "proto_rss": a["proto_rss"],
    "idle_worker_pss": a["worker_pss"], "idle_worker_rss": a["worker_rss"],
    "busy_worker_pss": b["worker_pss"], "busy_worker_rss": b["worker_rss"],
    "busy_master_pss": b["master_pss"], "busy_proto_pss": b["proto_pss"],
    "idle_total_pss": a["total_pss"], "idle_total_rss": a["total_rss"],
    "busy_total_pss": b["total_pss"], "busy_total_rss": b["total_rss"],
    "idle_procs": a["procs"], "busy_procs": b["procs"], "workers": a["workers"]}))
EOF
    python3 "$PY" emit memory static "$s" "$ROUND" json "$W/out/mem-$t-r$ROUND.json"
    stop_server "$pid"
    if [ "$s" = php-fpm ]; then FPM_PID=""; else CORRAL_PID=""; fi
  done
done

# ------------------------------------------------------------ 5. density
log "5. density: $POOLS ondemand pools (each server alone)"
listening() { awk -v p="$1" 'NR > 1 && $4 == "00010000" && index($8, p) == 1 { n++ } END { print n + 0 }' /proc/net/unix; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
for s in php-fpm corral; do density_conf "$s" "$W/conf/d-$(tag $s).conf"; done
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for s in $(order $ROUND); do
    t=$(tag "$s")
    rm -f "$W/log/d-$t-error.log" "$W/run/d-$t-"*.sock
    t0=$(now_ms)
    launch_server "$s" "$W/conf/d-$t.conf" "$W/log/d-$t.out"
    pid=$SERVER_PID
    t_sock=""; t_ready=""
    for ((i = 0; i < 6000; i++)); do
      [ -z "$t_sock" ] && [ "$(listening "$W/run/d-$t-")" -ge "$POOLS" ] && t_sock=$(now_ms)
      [ -z "$t_ready" ] && [ "$(ready_count "$W/log/d-$t.out" "$W/log/d-$t-error.log")" -ge 1 ] && t_ready=$(now_ms)
      [ -n "$t_sock" ] && [ -n "$t_ready" ] && break
      kill -0 "$pid" 2>/dev/null || { tail -20 "$W/log/d-$t.out" "$W/log/d-$t-error.log" >&2; die "$s exited with $POOLS pools"; }
      sleep 0.01
    done
    [ -n "$t_sock" ] && [ -n "$t_ready" ] || die "$s: $POOLS pools not listening within 60s"
    sleep 3
    python3 "$PY" mem "$pid" >"$W/out/dens-$t-r$ROUND.json"
    python3 "$PY" memsummary php-fpm "$W/out/dens-$t-r$ROUND.json" >"$W/out/d1.json"
    cold=()
    for ((k = 0; k < COLD_N; k++)); do
      idx=$(( 1 + (POOLS - 1) * k / (COLD_N > 1 ? COLD_N - 1 : 1) ))
      cf="$W/out/cold-$t-$k-r$ROUND.json"
      [ $k = 0 ] && cmdlog "$BIN bench -t unix:$W/run/d-$t-$idx.sock -s $HELLO -n 1 -c 1 --json   # cold: first request to that pool"
      "$BIN" bench -t "unix:$W/run/d-$t-$idx.sock" -s "$HELLO" -n 1 -c 1 --timeout 30s --json >"$cf" \
        || die "cold request to pool $idx of $s failed"
      cold+=("$cf")
    done
    python3 "$PY" cold "${cold[@]}" >"$W/out/d2.json"
    procs_after=$(( $(descendants "$pid" | wc -l) + 1 ))
    # The same pools 15 s later: their workers are gone (idle timeout
    # 10 s); php-fpm forks from its master, corral from the pool's warm
    # prototype (it stays corral.prototype_idle_timeout, default 100 s).
    sleep 15
    warm=()
    for ((k = 0; k < COLD_N; k++)); do
      idx=$(( 1 + (POOLS - 1) * k / (COLD_N > 1 ? COLD_N - 1 : 1) ))
      cf="$W/out/warm-$t-$k-r$ROUND.json"
      "$BIN" bench -t "unix:$W/run/d-$t-$idx.sock" -s "$HELLO" -n 1 -c 1 --timeout 30s --json >"$cf" \
        || die "request to pool $idx of $s after 15 s failed"
      warm+=("$cf")
    done
    python3 "$PY" cold "${warm[@]}" | sed 's/"cold_/"after15_/g' >"$W/out/d3.json"
    python3 - "$W/out/d1.json" "$W/out/d2.json" "$W/out/d3.json" >"$W/out/dens-sum-$t-r$ROUND.json" <<EOF
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
b.update(json.load(open(sys.argv[3])))
out = {"startup_s": ($t_sock - $t0) / 1000.0, "ready_s": ($t_ready - $t0) / 1000.0,
       "master_pss": a["master_pss"], "master_rss": a["master_rss"],
       "total_pss": a["total_pss"], "total_rss": a["total_rss"], "procs": a["procs"],
       "procs_after": $procs_after}
out.update(b)
print(json.dumps(out))
EOF
    python3 "$PY" emit density pools "$s" "$ROUND" json "$W/out/dens-sum-$t-r$ROUND.json" pools="$POOLS"
    stop_server "$pid"
  done
done

# ------------------------------------- 5b. the first request after a long idle
# Three ondemand pools per case, both servers running at once (they only
# idle in between): the first request to each pool, then, LATER_S seconds
# later, the next. With corral's defaults the prototype has gone dormant by
# then (corral.prototype_idle_timeout, 100 s), with 15m it is still warm.
later_conf() { # NAME FILE
  local t i v; t=$(tag "$1")
  {
    printf '[global]\npid = %s\nerror_log = %s\nlog_level = notice\n' \
      "$W/run/l-$t.pid" "$W/log/l-$t-error.log"
    for v in d k; do
      [ "$1" = php-fpm ] && [ $v = k ] && continue
      for ((i = 1; i <= 3; i++)); do
        printf '\n[%s%d]\nuser = www-data\ngroup = www-data\nlisten = %s\n' $v "$i" "$W/run/l-$t-$v$i.sock"
        printf 'listen.owner = www-data\nlisten.group = www-data\nlisten.mode = 0660\n'
        printf 'pm = ondemand\npm.max_children = 2\npm.process_idle_timeout = 10s\n'
        [ $v = k ] && printf 'corral.prototype_idle_timeout = 15m\n'
      done
    done
  } >"$2"
}
later_requests() { # SERVER VARIANT WHEN: one request to each of its 3 pools
  local t i f out=(); t=$(tag "$1")
  for ((i = 1; i <= 3; i++)); do
    f="$W/out/later-$t-$2$i-$3.json"
    "$BIN" bench -t "unix:$W/run/l-$t-$2$i.sock" -s "$HELLO" -n 1 -c 1 --timeout 30s --json >"$f" \
      || die "request to pool $2$i of $1 ($3) failed"
    out+=("$f")
    sleep 0.2
  done
  python3 "$PY" cold "${out[@]}"
}
later_variants() { [ "$1" = php-fpm ] && echo d || echo "d k"; }
run_later() {
  log "5b. the first request after ${LATER_S} s idle (both servers at once)"
  local s t v pid pids=()
  for s in php-fpm corral; do
    t=$(tag "$s")
    later_conf "$s" "$W/conf/l-$t.conf"
    launch_server "$s" "$W/conf/l-$t.conf" "$W/log/l-$t.out"
    pids+=("$SERVER_PID")
  done
  sleep 3
  for s in php-fpm corral; do
    for v in $(later_variants "$s"); do
      later_requests "$s" $v first >"$W/out/later-$(tag $s)-$v-first.json"
    done
  done
  sleep "$LATER_S"
  for s in php-fpm corral; do
    t=$(tag "$s")
    for v in $(later_variants "$s"); do
      later_requests "$s" $v after >"$W/out/later-$t-$v-after.json"
      python3 - "$W/out/later-$t-$v-first.json" "$W/out/later-$t-$v-after.json" "$LATER_S" \
        >"$W/out/later-$t-$v.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
print(json.dumps({"first_ms_median": a["cold_ms_median"], "after_ms_median": b["cold_ms_median"],
                  "after_s": int(sys.argv[3])}))
EOF
      case=$([ $v = k ] && echo "prototype_idle_timeout=15m" || echo "defaults")
      python3 "$PY" emit later "$case" "$s" 1 json "$W/out/later-$t-$v.json"
    done
  done
  for pid in "${pids[@]}"; do stop_server "$pid"; done
}
run_later

stop_pid "$NGINX_PID" 10; forget "$NGINX_PID"
if [ -n "$MARIADB_PID" ]; then stop_pid "$MARIADB_PID" 30; forget "$MARIADB_PID"; fi

run_noisy "$W/noisy"

# ------------------------------------------------------------- report
log "writing BENCHMARKS.md and charts"
rev=$(git_rev)
FULL_COMMANDS="$(cat "$COMMANDS")"
export META_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" META_REV="$rev" META_LOADAVG="$LOADAVG" \
  META_SANITY="$SANITY" META_COMMANDS="$FULL_COMMANDS" META_PEAK="$PEAK"
python3 - "$W/meta.json" <<EOF
import json, os, platform, subprocess, sys
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip() \
            or subprocess.run(c, shell=True, capture_output=True, text=True).stderr.strip()
    except Exception:
        return "?"
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() or platform.processor()
ram = sh("awk '/MemTotal/ {printf \"%.1f GiB\", \$2/1048576}' /proc/meminfo")
meta = {
  "date": os.environ["META_DATE"], "quick": "$QUICK" == "1", "rounds": $ROUNDS,
  "cpu": cpu, "nproc": int(sh("nproc")), "ram": ram, "kernel": platform.release(),
  "os": sh(". /etc/os-release && echo \$PRETTY_NAME"),
  "php_fpm": sh("$FPM_BIN -v | head -1"), "corral_rev": os.environ["META_REV"],
  "nginx": sh("nginx -v 2>&1").replace("nginx version: ", ""),
  "wrk": sh("wrk -v 2>&1 | head -1").split(" [")[0],
  "mariadb": sh("mariadbd --version").split(" for ")[0].replace("mariadbd  Ver ", ""),
  "dokuwiki": sh("dpkg-query -W -f='\${Version}' dokuwiki"),
  "wordpress": sh("dpkg-query -W -f='\${Version}' wordpress"),
  "laravel": sh("dpkg-query -W -f='\${Version}' php-laravel-framework"),
  "laravel_url": "$LV_PATH", "laravel_cached": "${LV_CACHED[*]}".split(),
  "loadavg": os.environ["META_LOADAVG"], "workers": $WORKERS, "pools": $POOLS,
  "dur": "$DUR", "warm": "$WARM", "app_dur": "$APP_DUR", "app_c": $APP_C, "rate_c": $RATE_C,
  "reload_c": $RELOAD_C, "reloads": $RELOADS, "reload_gap": $RELOAD_GAP, "cold_n": $COLD_N,
  "peak": int(os.environ["META_PEAK"]), "hello": "$HELLO",
  "doku_url": "/doku.php?id=$DOKU_PAGE", "workdir": "$W",
  "sanity": os.environ["META_SANITY"], "commands": os.environ["META_COMMANDS"],
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
mkdir -p "$RESULTS_DIR/configs"
rm -f "$RESULTS_DIR"/*.png "$RESULTS_DIR/configs"/*
cp "$W/results.jsonl" "$W/meta.json" "$W/noisy/noisy.jsonl" "$W/noisy/noisy-meta.json" "$RESULTS_DIR/"
# Section 3 is this run's now, not an earlier BENCH_ONLY=apps run's.
rm -f "$RESULTS_DIR/apps-meta.json"
cp "$W/conf/fpm.conf" "$W/conf/corral.conf" "$W/conf/nginx.conf" "$RESULTS_DIR/configs/"
head -40 "$W/conf/d-fpm.conf" >"$RESULTS_DIR/configs/density-first-pools.conf"
python3 "$PY" report "$RESULTS_DIR" "$ROOT/BENCHMARKS.md" || die "writing BENCHMARKS.md failed"
python3 "$BENCH/plot.py" "$RESULTS_DIR" || die "plotting failed"
log "done: $ROOT/BENCHMARKS.md, $RESULTS_DIR/*.png"
python3 - "$ROOT/BENCHMARKS.md" <<'EOF'
import sys
t = open(sys.argv[1]).read()
s = t.index("## Headline"); e = t.index("## 1.")
print(t[s:e])
EOF
