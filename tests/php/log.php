<?php
// error_log(?msg=) into the pool's error log (with catch_workers_output or
// php_admin_value[error_log]), then a short body; ?code= sets the status.
header('Content-Type: text/plain');
header('X-Corral-Log: logged');
if (isset($_GET['code'])) {
    http_response_code((int)$_GET['code']);
}
error_log($_GET['msg'] ?? 'log.php says hello');
echo "logged\n";
