#!/bin/bash
# Section 9's nginx A/B runs: hello world through nginx + wrk against 4 static
# workers, with or without an upstream keep-alive pool.
#
#   sudo bench/adhoc/ngx.sh fpm|corral                 # c=16, a connection per request
#   sudo KEEP=1 KA=16 C=16 bench/adhoc/ngx.sh corral   # upstream keepalive 16, fastcgi_keep_conn on
set -eu
MODE=$1; B=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/corral}
D=$(mktemp -d /tmp/corral-ngx.XXXXXX); mkdir -p $D/run $D/log $D/www; chmod 755 $D $D/www
echo '<?php echo "hello\n";' > $D/www/hello.php
printf "[global]\nerror_log = $D/log/err.log\npid = $D/run/pid\n[www]\nuser = www-data\ngroup = www-data\nlisten = $D/run/s.sock\nlisten.mode = 0666\npm = static\npm.max_children = 4\n" > $D/conf
if [ "$MODE" = fpm ]; then /usr/sbin/php-fpm8.2 -F -y $D/conf -c /etc/php/8.2/fpm/php.ini >$D/log/out 2>&1 & else $B -F -y $D/conf -c /etc/php/8.2/fpm/php.ini >$D/log/out 2>&1 & fi
P=$!
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
