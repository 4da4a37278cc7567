<?php
// ?mode=status → "Status:" header; ?mode=code → http_response_code(404);
// ?mode=redirect → Location header; ?mode=late → output, then
// http_response_code(500) once the headers have gone.
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
if (($_GET['mode'] ?? '') === 'late') {
    flush(); // the headers go now, whatever output_buffering says
    http_response_code(500);
}
