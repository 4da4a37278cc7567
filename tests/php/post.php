<?php
header('Content-Type: text/plain');
echo "method=", $_SERVER['REQUEST_METHOD'], "\n";
ksort($_POST);
foreach ($_POST as $k => $v) {
    echo "post[", $k, "]=", is_array($v) ? json_encode($v) : $v, "\n";
}
foreach ($_FILES as $k => $f) {
    echo "file[", $k, "].name=", $f['name'], "\n";
    echo "file[", $k, "].error=", $f['error'], "\n";
    echo "file[", $k, "].size=", $f['size'], "\n";
    echo "file[", $k, "].content=", $f['error'] === 0 ? file_get_contents($f['tmp_name']) : '', "\n";
}
