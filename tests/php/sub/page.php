<?php
header('Content-Type: text/plain');
echo "sub page ", $_SERVER['SCRIPT_NAME'], "\n";
