<?php
// fpm_get_status() as JSON (false when unavailable).
header('Content-Type: application/json');
echo json_encode(function_exists('fpm_get_status') ? fpm_get_status() : 'no fpm_get_status'), "\n";
