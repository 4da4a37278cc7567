<?php
// Sleeps ?s= seconds (default 5) in one sleep() call, then says so: the
// request request_terminate_timeout must end.
header('Content-Type: text/plain');
$s = (int)($_GET['s'] ?? 5);
sleep($s);
echo "slept=$s\npid=", getmypid(), "\n";
