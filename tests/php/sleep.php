<?php
// Sleeps ?ms= milliseconds of wall time even when signals interrupt
// usleep() (as a graceful stop's SIGQUIT does), then prints the pid.
header('Content-Type: text/plain');
$ms = (int)($_GET['ms'] ?? 1000);
$end = microtime(true) + $ms / 1000;
while (($left = $end - microtime(true)) > 0) {
    usleep((int)min($left * 1e6, 100000));
}
echo "slept=", $ms, "\npid=", getmypid(), "\n";
