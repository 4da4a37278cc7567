<?php
// Allocates until memory_limit stops it.
header('Content-Type: text/plain');
$a = [];
while (true) {
    $a[] = str_repeat('x', 1 << 20);
}
