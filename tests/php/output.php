<?php
// Writes to the worker's own stdout and stderr (logged with
// catch_workers_output). Each w[] is PIPE:COUNT:TEXT[:TAIL], written in one
// write as str_repeat(TEXT, COUNT) . TAIL; TEXT and TAIL are percent-decoded
// by PHP, so %0A is a newline and %00 a NUL byte.
header('Content-Type: text/plain');
foreach ($_GET['w'] ?? [] as $w) {
    $parts = explode(':', $w, 4);
    [$pipe, $count, $text] = $parts;
    file_put_contents("php://$pipe", str_repeat($text, (int) $count) . ($parts[3] ?? ''));
    usleep(2000);
}
echo "written\n";
