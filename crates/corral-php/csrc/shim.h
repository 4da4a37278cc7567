/*
 * corral's SAPI shim: the only C in corral, and the only code that calls PHP
 * APIs which may zend_bailout() (longjmp). Every such call happens inside a
 * zend_try frame in this file, so a longjmp never crosses a Rust frame. Rust
 * is reached only through the leaf callbacks in corral_io, which do plain
 * I/O and return status codes.
 *
 * Keep this header in sync with crates/corral-php/src/ffi.rs.
 */
#ifndef CORRAL_SHIM_H
#define CORRAL_SHIM_H

#include <stddef.h>
#include <sys/types.h>

typedef struct corral_param {
	const char *name; /* NUL-terminated, no interior NUL */
	size_t name_len;
	const char *value; /* NUL-terminated, no interior NUL */
	size_t value_len;
} corral_param;

/* Log levels, in zlog's order. */
enum { CORRAL_LOG_DEBUG = 1, CORRAL_LOG_NOTICE = 2, CORRAL_LOG_WARNING = 3, CORRAL_LOG_ERROR = 4 };

typedef struct corral_io {
	void *ctx;
	/* Fill buf with up to len body bytes; 0 = end of body, -1 = broken. */
	ssize_t (*read_body)(void *ctx, char *buf, size_t len);
	/* Queue response bytes; 0 = ok, -1 = client gone (or request finished). */
	int (*write_out)(void *ctx, const char *buf, size_t len);
	/* Push queued bytes to the web server now; 0 = ok, -1 = broken. */
	int (*flush)(void *ctx);
	/* fastcgi_finish_request(): flush and send FCGI_END_REQUEST now. */
	int (*finish)(void *ctx);
	/* A log line from PHP or the shim. to_fcgi asks for a copy on FCGI_STDERR. */
	void (*log)(void *ctx, int level, const char *msg, size_t len, int to_fcgi);
	/* fpm_get_status(): the pool's status as JSON. Returns its length;
	 * copies it into buf when len is large enough. 0 = unavailable. */
	size_t (*status)(void *ctx, char *buf, size_t len);
} corral_io;

#define CORRAL_OPCACHE_FIELDS 6

typedef struct corral_request {
	const corral_param *params;
	size_t n_params;
	const char *request_method;  /* NULL: not an HTTP request, run nothing */
	const char *query_string;    /* may be NULL */
	const char *request_uri;     /* SCRIPT_NAME after cgi.fix_pathinfo */
	const char *path_translated; /* NULL: 404 "File not found." */
	const char *content_type;    /* "" when absent, as php-fpm */
	long content_length;
	int deny_extension;          /* 1: security.limit_extensions refused it (403) */
	int want_opcache;            /* 1: fill opcache[] after the script */
	corral_io io;

	/* Filled in by corral_php_run. */
	int status;          /* HTTP status sent */
	int recycle;         /* engine state is doubtful: the worker must exit */
	size_t peak_memory;  /* zend_memory_peak_usage(1) */
	int script_ran;      /* php_execute_script was reached */
	/* With want_opcache, what opcache_get_status(false) said: used, free
	 * and wasted memory, hits, misses, cached scripts; opcache_ok = 1 when
	 * it said all of it. */
	int opcache_ok;
	unsigned long long opcache[CORRAL_OPCACHE_FIELDS];
} corral_request;

typedef struct corral_startup {
	const char *ini_path_override; /* -c, or NULL */
	int ini_ignore;                /* -n */
	const char *const *defines;    /* -d arguments, NULL-terminated */
	const char *executable;        /* argv[0] */
	corral_io io;                  /* used outside requests (log only) */
} corral_startup;

int corral_php_startup(const corral_startup *s);
/* php_value / php_admin_value from the pool config, applied once in the
 * prototype the way php-fpm applies them in each child: the master value is
 * replaced and, for admin values, locked against ini_set() and .user.ini. */
int corral_php_apply_pool_ini(const char *name, const char *value, int admin);
/* Called in every forked worker before its first request. */
void corral_php_child_init(void);
int corral_php_run(corral_request *r);
/* -v, -m, -i: print to stdout. */
int corral_php_print_version(void);
int corral_php_print_modules(void);
int corral_php_print_info(void);
/* An INI value as a string, for the Rust side's decisions (fix_pathinfo). */
const char *corral_php_ini_string(const char *name);
/* php-fpm's -e: what is compiled from now on carries extended information
 * (EXT_STMT and friends) for debuggers and profilers. */
void corral_php_extended_info(void);
/* "X-Powered-By: PHP/<version>", the header php_request_startup adds to
 * every response while expose_php is on; NULL when it is off. */
const char *corral_php_powered_by(void);
/* realpath() through PHP's realpath cache (php-fpm's tsrm_realpath). */
int corral_php_path_resolves(const char *path);
void corral_php_shutdown(void);

/* Where a worker keeps what the slow log needs, for a reader in another
 * process (the master, with process_vm_readv). Addresses are this
 * process's; forked workers share them. */
#define CORRAL_TRACE_FIELDS 18
void corral_php_trace_layout(unsigned long long out[CORRAL_TRACE_FIELDS]);

#endif
