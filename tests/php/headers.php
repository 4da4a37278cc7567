<?php
// ?mode=status → "Status:" header; ?mode=code → http_response_code(404);
// ?mode=redirect → Location header.
header('X-Corral-Test: yes');
header('Content-Type: text/plain; charset=us-ascii');
switch ($_GET['mode'] ?? '') {
    case 'status':
        header('Status: 404 Not Found');
        break;
    case 'code':
        http_response_code(404);
        break;
    case 'redirect':
        header('Location: /elsewhere', true, 302);
        break;
}
echo "code=", http_response_code(), "\n";
