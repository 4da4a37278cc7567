<?php
header('Content-Type: text/plain');
echo "Hello from ", php_sapi_name(), "\n";
echo "method=", $_SERVER['REQUEST_METHOD'], "\n";
echo "uri=", $_SERVER['REQUEST_URI'], "\n";
echo "script=", $_SERVER['SCRIPT_NAME'], "\n";
echo "path_info=", $_SERVER['PATH_INFO'] ?? '(none)', "\n";
ksort($_GET);
ksort($_POST);
echo "get=", json_encode($_GET), "\n";
echo "post=", json_encode($_POST), "\n";
