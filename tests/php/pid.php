<?php
header('Content-Type: text/plain');
usleep(((int)($_GET['sleep_ms'] ?? 0)) * 1000);
echo getmypid();
