<?php
// Writes ?msg= to the worker's own stderr (seen only with catch_workers_output).
header('Content-Type: text/plain');
file_put_contents('php://stderr', ($_GET['msg'] ?? 'hello') . "\n");
echo "written\n";
