<?php
// ?path=/x prints "ok:<content>" or "error:<message>".
header('Content-Type: text/plain');
$c = @file_get_contents($_GET['path'] ?? '');
if ($c === false) {
    $e = error_get_last();
    echo "error:", $e ? $e['message'] : 'unknown';
} else {
    echo "ok:", $c;
}
