<?php
header('Content-Type: text/plain');
echo "part1\n";
flush();
usleep(200000);
echo "part2\n";
