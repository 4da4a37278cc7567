<?php
/*
 * Managed by `corral site` (template "wordpress"), prepended to every
 * request of the pool (php_admin_value[auto_prepend_file]); root's file,
 * read-only to PHP, outside the docroot. See docs/sites.md, "Updates: the
 * lock and the unlock window".
 *
 * The code belongs to the site owner and PHP runs as another user in the
 * owner's group. PHP may write the code only during a window opened with
 * `corral site unlock DOMAIN --for 15m`; `corral site lock DOMAIN` (or the
 * window's end) hands everything back to the owner, read-only for PHP.
 *
 * Unlocked: WordPress writes directly (no FTP form) with group-writable
 * modes, so the owner can still edit and delete what it wrote.
 * Locked: file changes are off (DISALLOW_FILE_MODS: no install, update or
 * editor buttons that would only fail), and Site Health says that updates
 * wait for an unlock window instead of reporting broken updates.
 *
 * This file runs before wp-config.php, so its values are the ones
 * WordPress uses: leave FS_METHOD, FS_CHMOD_* and DISALLOW_FILE_MODS out of
 * wp-config.php (PHP warns when a constant is defined twice).
 */
if (!defined('FS_METHOD')) {
    define('FS_METHOD', 'direct');
}
if (!defined('FS_CHMOD_DIR')) {
    define('FS_CHMOD_DIR', 02770);
}
if (!defined('FS_CHMOD_FILE')) {
    define('FS_CHMOD_FILE', 0660);
}

/*
 * The lock is read from the file system itself, so it is never stale: the
 * site dir is group-writable exactly during a window.
 */
if (!defined('CORRAL_CODE_LOCKED')) {
    $corral_code_dir = getenv('CORRAL_CODE_DIR');
    define(
        'CORRAL_CODE_LOCKED',
        is_string($corral_code_dir) && $corral_code_dir !== '' && !is_writable($corral_code_dir)
    );
    unset($corral_code_dir);
}

if (CORRAL_CODE_LOCKED) {
    if (!defined('DISALLOW_FILE_MODS')) {
        define('DISALLOW_FILE_MODS', true);
    }

    /* Site Health: the background-updates test, replaced while locked. */
    function corral_site_health_updates_locked()
    {
        return array(
            'label' => 'Updates wait for an unlock window',
            'status' => 'recommended',
            'badge' => array('label' => 'Security', 'color' => 'blue'),
            'description' => '<p>The host keeps this site\'s code read-only to PHP. '
                . 'Plugin, theme and core updates run while the site owner or the host '
                . 'opens an unlock window (<code>corral site unlock DOMAIN --for 15m</code>); '
                . 'the window closes by itself.</p>',
            'actions' => '',
            'test' => 'background_updates',
        );
    }

    function corral_site_status_tests($tests)
    {
        unset($tests['async']['background_updates']);
        $tests['direct']['background_updates'] = array(
            'label' => 'Background updates',
            'test' => 'corral_site_health_updates_locked',
        );
        return $tests;
    }

    /* WordPress builds hooks registered before it loads (plugin.php). */
    $GLOBALS['wp_filter']['site_status_tests'][10]['corral_site_status_tests'] = array(
        'function' => 'corral_site_status_tests',
        'accepted_args' => 1,
    );
}
