#!/bin/bash
# Section 9's nginx A/B runs: hello world through nginx + wrk against 4 static
# workers, with or without an upstream keep-alive pool.
#
#   sudo bench/adhoc/ngx.sh fpm|corral                 # c=16, a connection per request
#   sudo KEEP=1 KA=16 C=16 bench/adhoc/ngx.sh corral   # upstream keepalive 16, fastcgi_keep_conn on
set -eu
MODE=$1
. "$(dirname "$0")/common.sh"
start_pool "$MODE" "listen.mode = 0666"
if [ "${KEEP:-0}" = 1 ]; then UP="upstream php { server unix:$D/run/s.sock; keepalive ${KA:-4}; }"; KC="fastcgi_keep_conn on;"; else UP="upstream php { server unix:$D/run/s.sock; }"; KC=""; fi
PORT=${PORT:-18199}
cat > $D/nginx.conf <<NG
worker_processes 1; daemon off; pid $D/run/nginx.pid; error_log $D/log/nginx.err;
events { worker_connections 1024; }
http { access_log off; $UP
 server { listen 127.0.0.1:$PORT; root $D/www;
  location ~ \.php\$ { include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name; fastcgi_pass php; $KC } } }
NG
sleep 2; nginx -c $D/nginx.conf & N=$!; sleep 1
wrk -t2 -c ${C:-16} -d 1s http://127.0.0.1:$PORT/hello.php >/dev/null
wrk -t2 -c ${C:-16} -d 5s --latency http://127.0.0.1:$PORT/hello.php > $D/wrk.txt
echo "$MODE c=${C:-16} keep=${KEEP:-0} $(grep 'Requests/sec' $D/wrk.txt) p99 $(grep ' 99%' $D/wrk.txt | awk '{print $2}') $(grep -E 'Non-2xx|Socket errors' $D/wrk.txt | tr '\n' ' ')"
kill $N $P; wait 2>/dev/null || true; rm -rf $D
