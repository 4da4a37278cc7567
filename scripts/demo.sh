#!/usr/bin/env bash
# A demo site served by nginx → corral, without systemd:
#
#   sudo scripts/demo.sh          # (re)start it, then check it answers
#   sudo scripts/demo.sh stop     # stop nginx and corral again
#
# Layout under /srv/corral-demo:
#   www/index.php                 the site (prints SAPI, uid, OPcache status)
#   etc/php-fpm.conf              corral's config: pool "demo" as user corral-demo
#   etc/nginx.conf                nginx's own config (127.0.0.1:8080)
#   run/  php.sock, corral.pid, nginx.pid
#   log/  corral.log (corral's stderr), nginx-*.log
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEMO=/srv/corral-demo
PORT=8080
USER_NAME=corral-demo
NGINX_CONF="$DEMO/etc/nginx.conf"
CORRAL_CONF="$DEMO/etc/php-fpm.conf"
export PATH="$HOME/.cargo/bin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root (sudo scripts/demo.sh)" >&2
  exit 1
fi

stop_demo() {
  if [ -f "$DEMO/run/nginx.pid" ]; then
    local npid
    npid="$(cat "$DEMO/run/nginx.pid" 2>/dev/null || true)"
    if [ -n "$npid" ] && kill -0 "$npid" 2>/dev/null; then
      echo "demo.sh: stopping nginx (pid $npid)"
      nginx -c "$NGINX_CONF" -s quit 2>/dev/null || kill "$npid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$npid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$DEMO/run/nginx.pid"
  fi
  if [ -f "$DEMO/run/corral.pid" ]; then
    local cpid
    cpid="$(cat "$DEMO/run/corral.pid" 2>/dev/null || true)"
    # Only the corral this demo started (its command line names our config).
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null \
        && tr '\0' ' ' <"/proc/$cpid/cmdline" 2>/dev/null | grep -qF "$CORRAL_CONF"; then
      echo "demo.sh: stopping corral (pid $cpid)"
      kill -TERM "$cpid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$cpid" 2>/dev/null && kill -KILL "$cpid" 2>/dev/null || true
    fi
    rm -f "$DEMO/run/corral.pid"
  fi
}

if [ "${1:-}" = "stop" ]; then
  stop_demo
  exit 0
fi

"$ROOT/scripts/setup.sh"

echo "demo.sh: building corral (release)"
(cd "$ROOT" && cargo build --release -p corral)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/corral"
[ -x "$BIN" ] || { echo "demo.sh: $BIN was not built" >&2; exit 1; }

stop_demo

if ! id -u "$USER_NAME" >/dev/null 2>&1; then
  echo "demo.sh: creating system user $USER_NAME"
  useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --user-group "$USER_NAME"
fi

mkdir -p "$DEMO"/{www,etc,run,log,nginx-tmp}
chmod 755 "$DEMO" "$DEMO/www" "$DEMO/etc" "$DEMO/run"
chmod 750 "$DEMO/log"
chown www-data "$DEMO/nginx-tmp"

cat > "$DEMO/www/index.php" <<'PHP'
<?php
$status = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
$uid = posix_getuid();
$user = posix_getpwuid($uid)['name'] ?? '?';
header('Content-Type: text/plain');
echo "Hello from corral!\n";
echo "SAPI:    ", php_sapi_name(), "\n";
echo "PHP:     ", PHP_VERSION, "\n";
echo "uid:     ", $uid, " (", $user, ")\n";
echo "pid:     ", getmypid(), "\n";
echo "OPcache: ", ($status && $status['opcache_enabled']) ? "enabled" : "disabled", "\n";
if ($status) {
    echo "cached scripts: ", $status['opcache_statistics']['num_cached_scripts'] ?? 0, "\n";
}
PHP
chmod 644 "$DEMO/www/index.php"

cat > "$CORRAL_CONF" <<CONF
; corral reads php-fpm's config format.
[global]
error_log = $DEMO/log/corral-error.log

[demo]
user = $USER_NAME
group = $USER_NAME
listen = $DEMO/run/php.sock
; nginx's workers run as www-data and connect through this socket.
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
pm = dynamic
pm.max_children = 5
pm.start_servers = 2
pm.min_spare_servers = 1
pm.max_spare_servers = 3
pm.max_requests = 500
ping.path = /ping
catch_workers_output = yes
security.limit_extensions = .php
CONF

cat > "$NGINX_CONF" <<CONF
user www-data;
worker_processes 1;
pid $DEMO/run/nginx.pid;
error_log $DEMO/log/nginx-error.log;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log $DEMO/log/nginx-access.log;
  client_body_temp_path $DEMO/nginx-tmp/body;
  fastcgi_temp_path $DEMO/nginx-tmp/fastcgi;
  proxy_temp_path $DEMO/nginx-tmp/proxy;
  uwsgi_temp_path $DEMO/nginx-tmp/uwsgi;
  scgi_temp_path $DEMO/nginx-tmp/scgi;
  server {
    listen 127.0.0.1:$PORT;
    server_name localhost;
    root $DEMO/www;
    index index.php;
    location / { try_files \$uri \$uri/ =404; }
    location ~ \.php$ {
      try_files \$uri =404;
      fastcgi_pass unix:$DEMO/run/php.sock;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
    }
    location = /ping {
      fastcgi_pass unix:$DEMO/run/php.sock;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME \$document_root/ping;
    }
  }
}
CONF

echo "demo.sh: starting corral"
"$BIN" -t -y "$CORRAL_CONF"
nohup "$BIN" -F -O -y "$CORRAL_CONF" >"$DEMO/log/corral.log" 2>&1 </dev/null &
echo $! > "$DEMO/run/corral.pid"
for _ in $(seq 200); do
  grep -q "ready to handle connections" "$DEMO/log/corral.log" 2>/dev/null && break
  if ! kill -0 "$(cat "$DEMO/run/corral.pid")" 2>/dev/null; then
    echo "demo.sh: corral exited; its log:" >&2
    cat "$DEMO/log/corral.log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! grep -q "ready to handle connections" "$DEMO/log/corral.log"; then
  echo "demo.sh: corral did not become ready; its log:" >&2
  cat "$DEMO/log/corral.log" >&2
  exit 1
fi

echo "demo.sh: starting nginx on 127.0.0.1:$PORT"
nginx -t -q -c "$NGINX_CONF"
nginx -c "$NGINX_CONF"

echo "demo.sh: checking http://127.0.0.1:$PORT/"
page=""
for _ in $(seq 50); do
  if page="$(curl -fsS "http://127.0.0.1:$PORT/")"; then break; fi
  sleep 0.2
done
echo "$page"
if ! grep -q "SAPI:    fpm-fcgi" <<<"$page"; then
  echo "demo.sh: unexpected answer; logs in $DEMO/log" >&2
  exit 1
fi

cat <<EOF2

The demo is running:  http://127.0.0.1:$PORT/
  corral:  pid $(cat "$DEMO/run/corral.pid"), config $CORRAL_CONF, log $DEMO/log/corral.log
  nginx:   config $NGINX_CONF
Stop it with:  sudo scripts/demo.sh stop
EOF2
