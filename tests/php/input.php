<?php
header('Content-Type: text/plain');
$in = file_get_contents('php://input');
echo "method=", $_SERVER['REQUEST_METHOD'], "\n";
echo "length=", strlen($in), "\n";
echo "md5=", md5($in), "\n";
echo "body=", $in;
