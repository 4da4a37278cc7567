<?php
require __DIR__ . '/../ini.php';
