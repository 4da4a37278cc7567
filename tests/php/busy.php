<?php
// Burns CPU until max_execution_time stops it.
header('Content-Type: text/plain');
$i = 0;
while (true) {
    $i++;
}
