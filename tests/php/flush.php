<?php
// php.ini's output_buffering = 4096 holds output in PHP's buffer:
// ob_flush() empties it into the SAPI, flush() pushes it to the client.
header('Content-Type: text/plain');
echo "part1\n";
if (ob_get_level()) {
    ob_flush();
}
flush();
usleep(300000);
echo "part2\n";
