/*
 * corral's SAPI: PHP embedded through libphp8.2 with php-fpm's face.
 *
 * Rules this file keeps (see shim.h):
 *  - every PHP call that can zend_bailout() runs inside zend_try here;
 *  - Rust is called only through corral_io leaf callbacks;
 *  - SG(server_context) is NULL outside requests and every callback copes.
 */
#define _GNU_SOURCE
#include "shim.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>

#include "php.h"
#include "SAPI.h"
#include "php_main.h"
#include "php_variables.h"
#include "php_ini.h"
#include "php_ini_builder.h"
#include "ext/standard/info.h"
#include "ext/standard/head.h"
#include "ext/standard/dl.h"
#include "zend_smart_str.h"
#include "zend_ini_scanner.h"
#include "ext/json/php_json.h"
#include "ext/standard/url.h"
#include "main/http_status_codes.h"
#include "zend_ini.h"
#include "zend_modules.h"
#include "zend_extensions.h"
#include "zend_exceptions.h"

/* The request being served, or NULL. This is SG(server_context) typed. */
#define REQ() ((corral_request *) SG(server_context))

/* Per-process state of the "cgi-fcgi" module, as php-fpm keeps it. */
static struct {
	bool rfc2616_headers;
	bool nph;
	bool fix_pathinfo;
	bool discard_path;
	bool fcgi_logging;
	bool force_redirect;        /* ini_get() only, as in php-fpm */
	char *redirect_status_env;  /* ini_get() only, as in php-fpm */
	char *error_header;
	char *fpm_config;
	HashTable user_config_cache;
	bool finished;       /* fastcgi_finish_request() ran for this request */
} cgi;

static corral_io startup_io;
static void (*php_php_import_environment_variables)(zval *array_ptr);

static void shim_log(int level, int to_fcgi, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0) {
		return;
	}
	if ((size_t) n >= sizeof(buf)) {
		n = sizeof(buf) - 1;
	}
	corral_request *r = REQ();
	corral_io *io = r ? &r->io : &startup_io;
	if (io->log) {
		io->log(io->ctx, level, buf, (size_t) n, to_fcgi && r && cgi.fcgi_logging);
	}
}

static const char *param(corral_request *r, const char *name, size_t len)
{
	if (!r) {
		return NULL;
	}
	for (size_t i = 0; i < r->n_params; i++) {
		if (r->params[i].name_len == len && memcmp(r->params[i].name, name, len) == 0) {
			return r->params[i].value;
		}
	}
	return NULL;
}

/* ---- SAPI callbacks --------------------------------------------------- */

static size_t sapi_corral_ub_write(const char *str, size_t len)
{
	corral_request *r = REQ();
	if (!r) {
		/* Outside a request (-v, -m, -i, preload): plain stdout. */
		size_t done = 0;
		while (done < len) {
			ssize_t n = write(STDOUT_FILENO, str + done, len - done);
			if (n < 0 && errno == EINTR) {
				continue;
			}
			if (n <= 0) {
				break;
			}
			done += (size_t) n;
		}
		return done;
	}
	if (r->io.write_out(r->io.ctx, str, len) != 0) {
		php_handle_aborted_connection();
		return 0;
	}
	return len;
}

static void sapi_corral_flush(void *server_context)
{
	corral_request *r = (corral_request *) server_context;
	if (!r) {
		return;
	}
	sapi_send_headers();
	if (r->io.flush(r->io.ctx) != 0) {
		php_handle_aborted_connection();
	}
}

static char *sapi_corral_getenv(const char *name, size_t name_len)
{
	return (char *) param(REQ(), name, name_len);
}

static char *sapi_corral_read_cookies(void)
{
	return (char *) param(REQ(), "HTTP_COOKIE", sizeof("HTTP_COOKIE") - 1);
}

static size_t sapi_corral_read_post(char *buf, size_t count)
{
	corral_request *r = REQ();
	if (!r || SG(request_info).content_length <= SG(read_post_bytes)) {
		return 0;
	}
	size_t remaining = (size_t) (SG(request_info).content_length - SG(read_post_bytes));
	if (remaining < count) {
		count = remaining;
	}
	/* PHP takes a short read for the end of the body: fill the buffer. */
	size_t got = 0;
	while (got < count) {
		ssize_t n = r->io.read_body(r->io.ctx, buf + got, count - got);
		if (n <= 0) {
			break;
		}
		got += (size_t) n;
	}
	return got;
}

static int sapi_corral_send_headers(sapi_headers_struct *sapi_headers)
{
	char buf[1024];
	int len;
	sapi_header_struct *h;
	zend_llist_position pos;
	bool status_written = false;
	int response_status = SG(sapi_headers).http_response_code;

	if (SG(request_info).no_headers == 1) {
		return SAPI_HEADER_SENT_SUCCESSFULLY;
	}

	if (cgi.nph || response_status != 200) {
		bool script_has_status = false;
		const char *line = SG(sapi_headers).http_status_line;
		const char *sp = line ? strchr(line, ' ') : NULL;

		len = -1;
		if (cgi.rfc2616_headers && line) {
			len = snprintf(buf, sizeof(buf), "%s", line);
			if (sp) {
				response_status = atoi(sp + 1);
			}
		} else if (sp && sp - line >= 5 && strncasecmp(line, "HTTP/", 5) == 0) {
			len = snprintf(buf, sizeof(buf), "Status:%s", sp);
			response_status = atoi(sp + 1);
		} else {
			h = (sapi_header_struct *) zend_llist_get_first_ex(&sapi_headers->headers, &pos);
			while (h) {
				if (h->header_len > sizeof("Status:") - 1 &&
					strncasecmp(h->header, "Status:", sizeof("Status:") - 1) == 0) {
					script_has_status = true;
					break;
				}
				h = (sapi_header_struct *) zend_llist_get_next_ex(&sapi_headers->headers, &pos);
			}
			if (!script_has_status) {
				const http_response_status_code_pair *p = http_status_map;
				while (p->code != 0 && p->code != response_status) {
					p++;
				}
				if (p->str) {
					len = snprintf(buf, sizeof(buf), "Status: %d %s", response_status, p->str);
				} else {
					len = snprintf(buf, sizeof(buf), "Status: %d", response_status);
				}
			}
		}
		if (len >= 0) {
			if ((size_t) len >= sizeof(buf)) {
				len = sizeof(buf) - 1;
			}
			PHPWRITE_H(buf, len);
			PHPWRITE_H("\r\n", 2);
			status_written = true;
		}
	}

	h = (sapi_header_struct *) zend_llist_get_first_ex(&sapi_headers->headers, &pos);
	while (h) {
		if (h->header_len) {
			if (h->header_len > sizeof("Status:") - 1 &&
				strncasecmp(h->header, "Status:", sizeof("Status:") - 1) == 0) {
				/* The first Status: wins; a script's header() counts. */
				if (!status_written) {
					status_written = true;
					PHPWRITE_H(h->header, h->header_len);
					PHPWRITE_H("\r\n", 2);
					const char *v = h->header + sizeof("Status:") - 1;
					while (*v == ' ') v++;
					if (atoi(v) > 0) response_status = atoi(v);
				}
			} else if (response_status == 304 && h->header_len > sizeof("Content-Type:") - 1 &&
				strncasecmp(h->header, "Content-Type:", sizeof("Content-Type:") - 1) == 0) {
				/* no body, no type */
			} else {
				PHPWRITE_H(h->header, h->header_len);
				PHPWRITE_H("\r\n", 2);
			}
		}
		h = (sapi_header_struct *) zend_llist_get_next_ex(&sapi_headers->headers, &pos);
	}
	PHPWRITE_H("\r\n", 2);
	return SAPI_HEADER_SENT_SUCCESSFULLY;
}

static void register_param(const char *name, const char *val, size_t val_len, zval *track, bool filter)
{
	char *v = (char *) val;
	size_t new_len = val_len;
	if (!filter || sapi_module.input_filter(PARSE_SERVER, name, &v, val_len, &new_len)) {
		php_register_variable_safe(name, v, new_len, track);
	}
}

/* $_SERVER as php-fpm builds it: process environment, every FastCGI param
 * (through the input filter, so filter_input(INPUT_SERVER) works), PHP_SELF. */
static void sapi_corral_register_variables(zval *track)
{
	corral_request *r = REQ();
	php_import_environment_variables(track);
	if (!r) {
		return;
	}
	const char *script_name = r->request_uri;
	if (cgi.fix_pathinfo) {
		const char *path_info = param(r, "PATH_INFO", sizeof("PATH_INFO") - 1);
		size_t sl = script_name ? strlen(script_name) : 0;
		size_t pl = path_info ? strlen(path_info) : 0;
		char *self = emalloc(sl + pl + 1);
		if (sl) memcpy(self, script_name, sl);
		if (pl) memcpy(self + sl, path_info, pl);
		self[sl + pl] = 0;
		register_param("PHP_SELF", self, sl + pl, track, true);
		efree(self);
	} else {
		const char *self = script_name ? script_name : "";
		register_param("PHP_SELF", self, strlen(self), track, true);
	}
}

static void import_params(zval *track, bool filter)
{
	corral_request *r = REQ();
	if (!r) {
		return;
	}
	for (size_t i = 0; i < r->n_params; i++) {
		register_param(r->params[i].name, r->params[i].value, r->params[i].value_len, track, filter);
	}
}

static void corral_import_environment_variables(zval *track)
{
	/* Reuse an already-built $_ENV or $_SERVER, as php-fpm does. */
	if (Z_TYPE(PG(http_globals)[TRACK_VARS_ENV]) == IS_ARRAY &&
		Z_ARR_P(track) != Z_ARR(PG(http_globals)[TRACK_VARS_ENV]) &&
		zend_hash_num_elements(Z_ARRVAL(PG(http_globals)[TRACK_VARS_ENV])) > 0) {
		zend_array_destroy(Z_ARR_P(track));
		Z_ARR_P(track) = zend_array_dup(Z_ARR(PG(http_globals)[TRACK_VARS_ENV]));
		return;
	}
	if (Z_TYPE(PG(http_globals)[TRACK_VARS_SERVER]) == IS_ARRAY &&
		Z_ARR_P(track) != Z_ARR(PG(http_globals)[TRACK_VARS_SERVER]) &&
		zend_hash_num_elements(Z_ARRVAL(PG(http_globals)[TRACK_VARS_SERVER])) > 0) {
		zend_array_destroy(Z_ARR_P(track));
		Z_ARR_P(track) = zend_array_dup(Z_ARR(PG(http_globals)[TRACK_VARS_SERVER]));
		return;
	}
	php_php_import_environment_variables(track);
	import_params(track, true);
}

static void corral_load_environment_variables(zval *track)
{
	php_php_import_environment_variables(track);
	import_params(track, false);
}

static void sapi_corral_log_message(const char *message, int syslog_type)
{
	(void) syslog_type;
	shim_log(CORRAL_LOG_NOTICE, 1, "PHP message: %s", message);
}

/* ---- .user.ini, per-dir and per-host sections ------------------------ */

typedef struct {
	HashTable *config;
	time_t expires;
} user_ini_entry;

static void user_ini_entry_dtor(zval *el)
{
	user_ini_entry *e = Z_PTR_P(el);
	zend_hash_destroy(e->config);
	free(e->config);
	free(e);
}

static void user_ini_value_dtor(zval *zv)
{
	zend_string_release_ex(Z_STR_P(zv), 1);
}

static void activate_user_ini(char *dir, size_t dir_len, const char *doc_root, size_t doc_root_len)
{
	time_t now = sapi_get_request_time();
	user_ini_entry *e = zend_hash_str_find_ptr(&cgi.user_config_cache, dir, dir_len);
	if (!e) {
		e = malloc(sizeof(*e));
		e->config = malloc(sizeof(HashTable));
		if (!e || !e->config) {
			return;
		}
		e->expires = 0;
		zend_hash_init(e->config, 8, NULL, user_ini_value_dtor, 1);
		zend_hash_str_update_ptr(&cgi.user_config_cache, dir, dir_len, e);
	}
	if (now > e->expires) {
		zend_hash_clean(e->config);
		/* Inside the document root every level from the root down is read,
		 * deeper files overriding; elsewhere only the script's directory. */
		if (doc_root_len <= dir_len && strncmp(dir, doc_root, doc_root_len) == 0) {
			char *p = dir + doc_root_len;
			while ((p = strchr(p, '/')) != NULL) {
				*p = 0;
				php_parse_user_ini_file(dir, PG(user_ini_filename), e->config);
				*p = '/';
				p++;
			}
		} else {
			php_parse_user_ini_file(dir, PG(user_ini_filename), e->config);
		}
		e->expires = now + PG(user_ini_cache_ttl);
	}
	php_ini_activate_config(e->config, PHP_INI_PERDIR, PHP_INI_STAGE_HTACCESS);
}

/* Per-request PHP_VALUE / PHP_ADMIN_VALUE. Unlike php-fpm they go through
 * zend_alter_ini_entry_ex, so they are undone at request end and PHP_VALUE
 * cannot unlock a php_admin_value. */
static void ini_param_cb(zval *arg1, zval *arg2, zval *arg3, int type, void *arg)
{
	int mode = *(int *) arg;
	(void) arg3;
	if (type != ZEND_INI_PARSER_ENTRY) {
		shim_log(CORRAL_LOG_ERROR, 1, "Passing INI directive through FastCGI: only classic entries are allowed");
		return;
	}
	if (!arg1 || Z_STRLEN_P(arg1) == 0) {
		shim_log(CORRAL_LOG_ERROR, 1, "Passing INI directive through FastCGI: empty key");
		return;
	}
	if (!arg2) {
		shim_log(CORRAL_LOG_ERROR, 1, "Passing INI directive through FastCGI: empty value for key '%s'", Z_STRVAL_P(arg1));
		return;
	}
	int modify = mode == ZEND_INI_SYSTEM ? ZEND_INI_SYSTEM : (ZEND_INI_USER | ZEND_INI_PERDIR);
	if (zend_alter_ini_entry_ex(Z_STR_P(arg1), Z_STR_P(arg2), modify, PHP_INI_STAGE_ACTIVATE, 0) != SUCCESS) {
		shim_log(CORRAL_LOG_ERROR, 1, "Passing INI directive through FastCGI: unable to set '%s'", Z_STRVAL_P(arg1));
	}
}

static void apply_ini_param(const char *text, int mode)
{
	if (!text) {
		return;
	}
	char *tmp;
	spprintf(&tmp, 0, "%s\n", text);
	zend_parse_ini_string(tmp, 1, ZEND_INI_SCANNER_NORMAL, (zend_ini_parser_cb_t) ini_param_cb, &mode);
	efree(tmp);
}

static int sapi_corral_activate(void)
{
	corral_request *r = REQ();
	if (!r || !SG(request_info).path_translated) {
		return SUCCESS;
	}
	apply_ini_param(param(r, "PHP_VALUE", sizeof("PHP_VALUE") - 1), ZEND_INI_USER);
	apply_ini_param(param(r, "PHP_ADMIN_VALUE", sizeof("PHP_ADMIN_VALUE") - 1), ZEND_INI_SYSTEM);

	if (php_ini_has_per_host_config()) {
		const char *server_name = param(r, "SERVER_NAME", sizeof("SERVER_NAME") - 1);
		if (server_name) {
			size_t l = strlen(server_name);
			char *lower = estrndup(server_name, l);
			zend_str_tolower(lower, l);
			php_ini_activate_per_host_config(lower, l);
			efree(lower);
		}
	}
	if (php_ini_has_per_dir_config() || (PG(user_ini_filename) && *PG(user_ini_filename))) {
		size_t l = strlen(SG(request_info).path_translated);
		char *dir = estrndup(SG(request_info).path_translated, l);
		size_t dl = zend_dirname(dir, l);
		dir[dl] = 0;
		php_ini_activate_per_dir_config(dir, dl);
		if (PG(user_ini_filename) && *PG(user_ini_filename)) {
			const char *doc_root = param(r, "DOCUMENT_ROOT", sizeof("DOCUMENT_ROOT") - 1);
			if (doc_root) {
				size_t drl = strlen(doc_root);
				if (drl > 0 && doc_root[drl - 1] == '/') {
					drl--;
				}
				/* activate_user_ini wants the directory with a trailing slash. */
				char *d = emalloc(dl + 2);
				memcpy(d, dir, dl);
				d[dl] = '/';
				d[dl + 1] = 0;
				activate_user_ini(d, dl + 1, doc_root, drl);
				efree(d);
			}
		}
		efree(dir);
	}
	return SUCCESS;
}

/* ---- the "cgi-fcgi" module: php-fpm's INI entries and functions ------- */

static ZEND_INI_MH(on_update_bool_field)
{
	bool *p = (bool *) mh_arg1;
	*p = zend_ini_parse_bool(new_value);
	return SUCCESS;
}

static ZEND_INI_MH(on_update_str_field)
{
	char **p = (char **) mh_arg1;
	*p = new_value ? ZSTR_VAL(new_value) : NULL;
	return SUCCESS;
}

PHP_INI_BEGIN()
	ZEND_INI_ENTRY1("cgi.rfc2616_headers", "0", PHP_INI_ALL, on_update_bool_field, &cgi.rfc2616_headers)
	ZEND_INI_ENTRY1("cgi.nph", "0", PHP_INI_ALL, on_update_bool_field, &cgi.nph)
	ZEND_INI_ENTRY1("cgi.fix_pathinfo", "1", PHP_INI_SYSTEM, on_update_bool_field, &cgi.fix_pathinfo)
	/* php-fpm keeps php-cgi's two redirect settings in its INI table
	 * although its SAPI never reads them; ini_get() sees them there. */
	ZEND_INI_ENTRY1("cgi.force_redirect", "1", PHP_INI_SYSTEM, on_update_bool_field, &cgi.force_redirect)
	ZEND_INI_ENTRY1("cgi.redirect_status_env", NULL, PHP_INI_SYSTEM, on_update_str_field, &cgi.redirect_status_env)
	ZEND_INI_ENTRY1("cgi.discard_path", "0", PHP_INI_SYSTEM, on_update_bool_field, &cgi.discard_path)
	ZEND_INI_ENTRY1("fastcgi.logging", "1", PHP_INI_SYSTEM, on_update_bool_field, &cgi.fcgi_logging)
	ZEND_INI_ENTRY1("fastcgi.error_header", NULL, PHP_INI_SYSTEM, on_update_str_field, &cgi.error_header)
	ZEND_INI_ENTRY1("fpm.config", NULL, PHP_INI_SYSTEM, on_update_str_field, &cgi.fpm_config)
PHP_INI_END()

static PHP_MINIT_FUNCTION(cgi)
{
	zend_hash_init(&cgi.user_config_cache, 8, NULL, user_ini_entry_dtor, 1);
	REGISTER_INI_ENTRIES();
	return SUCCESS;
}

static PHP_MSHUTDOWN_FUNCTION(cgi)
{
	zend_hash_destroy(&cgi.user_config_cache);
	UNREGISTER_INI_ENTRIES();
	return SUCCESS;
}

static PHP_MINFO_FUNCTION(cgi)
{
	php_info_print_table_start();
	php_info_print_table_row(2, "php-fpm", "active");
	php_info_print_table_end();
	DISPLAY_INI_ENTRIES();
}

PHP_FUNCTION(fastcgi_finish_request)
{
	corral_request *r = REQ();
	ZEND_PARSE_PARAMETERS_NONE();
	if (!r || cgi.finished) {
		RETURN_FALSE;
	}
	php_output_end_all();
	php_header();
	cgi.finished = true;
	r->io.finish(r->io.ctx);
	RETURN_TRUE;
}

static bool same_name(const corral_param *a, const corral_param *b)
{
	return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

/* Whether params[i] is the first of its name. */
static bool first_of_name(corral_request *r, size_t i)
{
	for (size_t k = 0; k < i; k++) {
		if (same_name(&r->params[k], &r->params[i])) {
			return false;
		}
	}
	return true;
}

/* The last param named as params[i]: a repeated param's value wins. */
static const corral_param *last_of_name(corral_request *r, size_t i)
{
	const corral_param *last = &r->params[i];
	for (size_t k = i + 1; k < r->n_params; k++) {
		if (same_name(&r->params[k], &r->params[i])) {
			last = &r->params[k];
		}
	}
	return last;
}

/* In php-fpm's order: fcgi_loadenv() walks its params hash, whose list
 * fcgi_hash_set() prepends to, so the param that arrived last comes first;
 * a repeated name keeps the place where it first arrived, with its last
 * value. */
PHP_FUNCTION(apache_request_headers)
{
	corral_request *r = REQ();
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	if (!r) {
		return;
	}
	for (size_t i = r->n_params; i-- > 0;) {
		if (!first_of_name(r, i)) {
			continue;
		}
		const corral_param *p = last_of_name(r, i);
		sapi_add_request_header(p->name, (unsigned int) p->name_len,
			(char *) p->value, (unsigned int) p->value_len, return_value);
	}
}

PHP_FUNCTION(fpm_get_status)
{
	corral_request *r = REQ();
	ZEND_PARSE_PARAMETERS_NONE();
	if (!r || !r->io.status) {
		RETURN_FALSE;
	}
	size_t n = r->io.status(r->io.ctx, NULL, 0);
	if (n == 0 || n > 64 * 1024 * 1024) {
		RETURN_FALSE;
	}
	char *json = emalloc(n + 1);
	if (r->io.status(r->io.ctx, json, n + 1) != n) {
		efree(json);
		RETURN_FALSE;
	}
	json[n] = 0;
	if (php_json_decode_ex(return_value, json, n, PHP_JSON_OBJECT_AS_ARRAY, 512) != SUCCESS) {
		efree(json);
		RETURN_FALSE;
	}
	efree(json);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_bool_none, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_array_none, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_MASK_EX(arginfo_status, 0, 0, MAY_BE_ARRAY | MAY_BE_FALSE)
ZEND_END_ARG_INFO()

static const zend_function_entry cgi_functions[] = {
	ZEND_FE(fastcgi_finish_request, arginfo_bool_none)
	ZEND_FE(apache_request_headers, arginfo_array_none)
	ZEND_FALIAS(getallheaders, apache_request_headers, arginfo_array_none)
	ZEND_FE(fpm_get_status, arginfo_status)
	ZEND_FE_END
};

static zend_module_entry cgi_module_entry = {
	STANDARD_MODULE_HEADER,
	"cgi-fcgi",
	cgi_functions,
	PHP_MINIT(cgi),
	PHP_MSHUTDOWN(cgi),
	NULL,
	NULL,
	PHP_MINFO(cgi),
	PHP_VERSION,
	STANDARD_MODULE_PROPERTIES
};

static int sapi_corral_startup(sapi_module_struct *m)
{
	return php_module_startup(m, &cgi_module_entry);
}

static sapi_module_struct corral_sapi = {
	"fpm-fcgi",                       /* php_sapi_name(): what apps see under php-fpm */
	"FPM/FastCGI",
	sapi_corral_startup,
	php_module_shutdown_wrapper,
	sapi_corral_activate,
	NULL,                             /* deactivate: Rust ends the request */
	sapi_corral_ub_write,
	sapi_corral_flush,
	NULL,
	sapi_corral_getenv,
	php_error,
	NULL,
	sapi_corral_send_headers,
	NULL,
	sapi_corral_read_post,
	sapi_corral_read_cookies,
	sapi_corral_register_variables,
	sapi_corral_log_message,
	NULL,
	NULL,
	STANDARD_SAPI_MODULE_PROPERTIES
};

/* php-fpm has no pcntl; Debian's embed library has it compiled in. Remove
 * its functions so function_exists('pcntl_fork') answers as under php-fpm
 * and no tenant can fork or re-arm signals behind the worker's back. */
static void disable_pcntl(void)
{
	zend_module_entry *m = zend_hash_str_find_ptr(&module_registry, "pcntl", sizeof("pcntl") - 1);
	if (!m || !m->functions) {
		return;
	}
	smart_str list = {0};
	for (const zend_function_entry *f = m->functions; f->fname; f++) {
		if (list.s) smart_str_appendc(&list, ',');
		smart_str_appends(&list, f->fname);
	}
	smart_str_0(&list);
	if (list.s) {
		zend_disable_functions(ZSTR_VAL(list.s));
		smart_str_free(&list);
	}
}

/* ext/standard compiles chroot() only into the CLI, CGI and embed SAPIs,
 * so php-fpm has none and Debian's libphp has it. A tenant must not be
 * able to change the worker's root (a pool may run as root with -R), and
 * function_exists('chroot') must answer as under php-fpm. */
static void disable_chroot(void)
{
	if (zend_hash_str_exists(CG(function_table), "chroot", sizeof("chroot") - 1)) {
		zend_disable_functions("chroot");
	}
}

int corral_php_startup(const corral_startup *s)
{
	struct php_ini_builder ini;
	int rc = -1;

	startup_io = s->io;
	zend_signal_startup();
	sapi_startup(&corral_sapi);
	corral_sapi.php_ini_ignore_cwd = 1;
	corral_sapi.php_ini_ignore = s->ini_ignore;
	corral_sapi.php_ini_path_override = s->ini_path_override ? strdup(s->ini_path_override) : NULL;
	corral_sapi.executable_location = (char *) s->executable;
	php_ini_builder_init(&ini);
	for (const char *const *d = s->defines; d && *d; d++) {
		php_ini_builder_define(&ini, *d);
	}
	/* sapi_startup() cleared ini_entries: set them only now. */
	corral_sapi.ini_entries = php_ini_builder_finish(&ini);

	zend_first_try {
		if (corral_sapi.startup(&corral_sapi) == SUCCESS) {
			disable_pcntl();
			disable_chroot();
			php_php_import_environment_variables = php_import_environment_variables;
			php_import_environment_variables = corral_import_environment_variables;
			php_load_environment_variables = corral_load_environment_variables;
			rc = 0;
		}
	} zend_catch {
		rc = -1;
	} zend_end_try();
	/* The caller's log context lives only for this call. */
	startup_io.ctx = NULL;
	return rc;
}

int corral_php_apply_pool_ini(const char *name, const char *value, int admin)
{
	int rc = -1;
	size_t name_len = strlen(name);
	zend_try {
		if (strcmp(name, "extension") == 0) {
			zval ok;
			ZVAL_FALSE(&ok);
			if (*value) {
				php_dl(value, MODULE_PERSISTENT, &ok, 1);
			}
			if (Z_TYPE(ok) == IS_TRUE) {
				zend_collect_module_handlers();
				rc = 0;
			}
		} else {
			zend_ini_entry *e = zend_hash_str_find_ptr(EG(ini_directives), name, name_len);
			if (e) {
				zend_string *v = zend_string_init(value, strlen(value), 1);
				if (!e->on_modify || e->on_modify(e, v, e->mh_arg1, e->mh_arg2, e->mh_arg3, ZEND_INI_STAGE_ACTIVATE) == SUCCESS) {
					e->value = v;
					if (admin) {
						e->modifiable = ZEND_INI_SYSTEM;
					}
					rc = 0;
				} else {
					zend_string_release_ex(v, 1);
				}
				if (rc == 0 && strcmp(name, "disable_functions") == 0 && *value) {
					zend_disable_functions(value);
				} else if (rc == 0 && strcmp(name, "disable_classes") == 0 && *value) {
					char *list = strdup(value), *save = NULL;
					for (char *c = strtok_r(list, ", ", &save); c; c = strtok_r(NULL, ", ", &save)) {
						zend_disable_class(c, strlen(c));
					}
					free(list);
				}
			}
		}
	} zend_catch {
		rc = -1;
	} zend_end_try();
	return rc;
}

void corral_php_child_init(void)
{
	/* Zend snapshots signal dispositions at startup and replays them from
	 * the second request on; take the snapshot again in this process. */
	zend_signal_startup();
}

static void reset_request_info(void)
{
	SG(request_info).path_translated = NULL;
	SG(request_info).request_method = NULL;
	SG(request_info).query_string = NULL;
	SG(request_info).request_uri = NULL;
	SG(request_info).content_type = NULL;
	SG(request_info).content_length = 0;
	SG(request_info).proto_num = 1000;
}

/* php-fpm's fpm_stdio_flush_child(), called from fpm_request_end(): ends
 * the line the master is assembling from this worker's output
 * (catch_workers_output), so output a request leaves without a newline is
 * logged then and never joined to the next request's. The marker is
 * FPM_STDIO_CMD_FLUSH with its NUL; without capture, stderr is /dev/null. */
static void flush_worker_output(void)
{
	static const char marker[] = "\0fscf";
	ssize_t written = write(STDERR_FILENO, marker, sizeof(marker));
	(void) written;
}

/* A non-negative number from an array of opcache_get_status(), 0 if absent. */
static unsigned long long opcache_number(zval *array, const char *key)
{
	zval *v;
	if (!array || Z_TYPE_P(array) != IS_ARRAY) {
		return 0;
	}
	v = zend_hash_str_find(Z_ARRVAL_P(array), key, strlen(key));
	if (!v) {
		return 0;
	}
	if (Z_TYPE_P(v) == IS_LONG) {
		return Z_LVAL_P(v) > 0 ? (unsigned long long) Z_LVAL_P(v) : 0;
	}
	if (Z_TYPE_P(v) == IS_DOUBLE) {
		return Z_DVAL_P(v) > 0 && Z_DVAL_P(v) < 1.8e19 ? (unsigned long long) Z_DVAL_P(v) : 0;
	}
	return 0;
}

/* The pool's OPcache, shared by every worker of the prototype, as
 * opcache_get_status(false) reports it. Called inside the request, after
 * the script, with errors silenced and through zend_call_function (which
 * fails quietly, where zend_call_known_function raises a fatal error):
 * nothing of it reaches the client or the log. Skipped when OPcache is
 * not loaded, disabled, or restricted to some scripts by
 * opcache.restrict_api (it would warn), after a fatal error or with an
 * exception pending, when the executor must not run more code, and
 * within 1 MiB of memory_limit. */
static void read_opcache(corral_request *r)
{
	zend_function *fn;
	zval retval, arg;
	const char *restrict_api;
	int saved_reporting = EG(error_reporting);

	r->opcache_ok = 0;
	if (!EG(active) || EG(exception) || EG(exit_status) == 255) {
		return;
	}
	/* The answer is a small array: never let it be what exhausts a
	 * script's memory_limit. */
	if (PG(memory_limit) > 0 && zend_memory_usage(0) + (1 << 20) > (size_t) PG(memory_limit)) {
		return;
	}
	restrict_api = zend_ini_string("opcache.restrict_api", sizeof("opcache.restrict_api") - 1, 0);
	if (restrict_api && *restrict_api) {
		return;
	}
	fn = zend_hash_str_find_ptr(CG(function_table), "opcache_get_status", sizeof("opcache_get_status") - 1);
	if (!fn || fn->type != ZEND_INTERNAL_FUNCTION) {
		return;
	}
	ZVAL_UNDEF(&retval);
	ZVAL_FALSE(&arg);
	EG(error_reporting) = 0;
	zend_try {
		zend_fcall_info fci = {0};
		zend_fcall_info_cache fcc = {0};
		fci.size = sizeof(fci);
		ZVAL_UNDEF(&fci.function_name);
		fci.retval = &retval;
		fci.params = &arg;
		fci.param_count = 1;
		fcc.function_handler = fn;
		if (zend_call_function(&fci, &fcc) == SUCCESS && Z_TYPE(retval) == IS_ARRAY) {
			HashTable *ht = Z_ARRVAL(retval);
			zval *enabled = zend_hash_str_find(ht, "opcache_enabled", sizeof("opcache_enabled") - 1);
			zval *mem = zend_hash_str_find(ht, "memory_usage", sizeof("memory_usage") - 1);
			zval *stats = zend_hash_str_find(ht, "opcache_statistics", sizeof("opcache_statistics") - 1);
			if (enabled && Z_TYPE_P(enabled) == IS_TRUE && mem && Z_TYPE_P(mem) == IS_ARRAY
					&& stats && Z_TYPE_P(stats) == IS_ARRAY) {
				r->opcache[0] = opcache_number(mem, "used_memory");
				r->opcache[1] = opcache_number(mem, "free_memory");
				r->opcache[2] = opcache_number(mem, "wasted_memory");
				r->opcache[3] = opcache_number(stats, "hits");
				r->opcache[4] = opcache_number(stats, "misses");
				r->opcache[5] = opcache_number(stats, "num_cached_scripts");
				r->opcache_ok = 1;
			}
		}
	} zend_catch {
		/* Something bailed out of OPcache's function: the engine is in
		 * doubt, as after any bailout outside the script. */
		r->recycle = 1;
	} zend_end_try();
	zval_ptr_dtor(&retval);
	if (EG(exception)) {
		zend_clear_exception();
	}
	EG(error_reporting) = saved_reporting;
}

int corral_php_run(corral_request *r)
{
	zend_file_handle fh;
	bool started = false;
	char *primary = NULL;

	r->status = 200;
	r->recycle = 0;
	r->script_ran = 0;
	r->opcache_ok = 0;
	cgi.finished = false;

	SG(server_context) = r;
	SG(sapi_headers).http_response_code = 200;
	SG(request_info).request_method = r->request_method;
	SG(request_info).query_string = (char *) r->query_string;
	SG(request_info).request_uri = (char *) r->request_uri;
	SG(request_info).content_type = r->content_type ? r->content_type : "";
	SG(request_info).content_length = r->content_length;
	SG(request_info).path_translated = NULL;
	SG(request_info).proto_num = 1000;

	zend_first_try {
		if (r->path_translated) {
			SG(request_info).path_translated = estrdup(r->path_translated);
		}
		php_handle_auth_data(param(r, "HTTP_AUTHORIZATION", sizeof("HTTP_AUTHORIZATION") - 1));
		if (php_request_startup() == FAILURE) {
			r->recycle = 1;
		} else {
			started = true;
		}
	} zend_catch {
		r->recycle = 1;
	} zend_end_try();

	if (!started) {
		SG(server_context) = NULL;
		reset_request_info();
		return -1;
	}

	zend_first_try {
		if (!SG(request_info).request_method) {
			/* not an HTTP request: nothing to run */
		} else if (!SG(request_info).path_translated) {
			shim_log(CORRAL_LOG_DEBUG, 1, "Primary script unknown");
			SG(sapi_headers).http_response_code = 404;
			PUTS("File not found.\n");
		} else if (r->deny_extension) {
			SG(sapi_headers).http_response_code = 403;
			PUTS("Access denied.\n");
		} else {
			primary = estrdup(SG(request_info).path_translated);
			zend_stream_init_filename(&fh, primary);
			if (php_fopen_primary_script(&fh) == FAILURE) {
				int e = errno;
				shim_log(CORRAL_LOG_ERROR, 1, "Unable to open primary script: %s (%s)", primary, strerror(e));
				if (e == EACCES) {
					SG(sapi_headers).http_response_code = 403;
					PUTS("Access denied.\n");
				} else {
					SG(sapi_headers).http_response_code = 404;
					PUTS("No input file specified.\n");
				}
			} else {
				EG(exit_status) = 0;
				r->script_ran = 1;
				php_execute_script(&fh);
			}
			if (!fh.in_list) {
				zend_destroy_file_handle(&fh);
			}
		}
		if (EG(exit_status) == 255 && cgi.error_header && *cgi.error_header && !SG(headers_sent)) {
			sapi_header_line ctr = {0};
			ctr.line = cgi.error_header;
			ctr.line_len = strlen(cgi.error_header);
			sapi_header_op(SAPI_HEADER_REPLACE, &ctr);
		}
	} zend_catch {
		r->recycle = 1;
	} zend_end_try();
	/* Where php-fpm's fpm_request_end() does it: after the script, before
	 * shutdown functions and php_request_shutdown(). */
	flush_worker_output();
	if (r->want_opcache && r->script_ran) {
		read_opcache(r);
	}

	if (primary) {
		efree(primary);
	}
	r->peak_memory = zend_memory_peak_usage(1);
	if (SG(request_info).path_translated) {
		efree(SG(request_info).path_translated);
		SG(request_info).path_translated = NULL;
	}
	/* The access log's %s, as php-fpm's fpm_log_write() reads it at this
	 * point: the response code PHP holds now, even one a script set after
	 * its output had sent the headers (http_response_code(500) after echo
	 * logs 500), and not a "Status:" header line, which PHP never parses
	 * into it (php-fpm logs 200 then, and so does corral). */
	r->status = SG(sapi_headers).http_response_code;
	zend_first_try {
		php_request_shutdown(NULL);
	} zend_catch {
		r->recycle = 1;
	} zend_end_try();

	SG(server_context) = NULL;
	reset_request_info();
	return 0;
}

/* Run fn inside a minimal request with output to stdout. */
static int with_cli_request(void (*fn)(void))
{
	int rc = -1;
	SG(server_context) = NULL;
	zend_first_try {
		SG(options) |= SAPI_OPTION_NO_CHDIR;
		if (php_request_startup() == SUCCESS) {
			SG(headers_sent) = 1;
			SG(request_info).no_headers = 1;
			fn();
			php_request_shutdown(NULL);
			rc = 0;
		}
	} zend_catch {
		rc = -1;
	} zend_end_try();
	fflush(stdout);
	return rc;
}

static void print_version(void)
{
	php_printf("PHP %s (%s) (built: %s %s) (%s)\nCopyright (c) The PHP Group\n%s\n",
		PHP_VERSION, sapi_module.name, __DATE__, __TIME__,
#ifdef ZTS
		"ZTS",
#else
		"NTS",
#endif
		get_zend_version());
}

static int module_name_cmp(Bucket *f, Bucket *s)
{
	return strcasecmp(((zend_module_entry *) Z_PTR(f->val))->name, ((zend_module_entry *) Z_PTR(s->val))->name);
}

static void print_module_name(zend_module_entry *m)
{
	php_printf("%s\n", m->name);
}

static void print_extension_name(zend_extension *e)
{
	php_printf("%s\n", e->name);
}

static int extension_name_cmp(const zend_llist_element **f, const zend_llist_element **s)
{
	return strcmp(((zend_extension *) (*f)->data)->name, ((zend_extension *) (*s)->data)->name);
}

static void print_modules(void)
{
	HashTable sorted;
	zend_module_entry *m;
	zend_llist exts;

	php_printf("[PHP Modules]\n");
	zend_hash_init(&sorted, 50, NULL, NULL, 0);
	zend_hash_copy(&sorted, &module_registry, NULL);
	zend_hash_sort(&sorted, module_name_cmp, 0);
	ZEND_HASH_MAP_FOREACH_PTR(&sorted, m) {
		print_module_name(m);
	} ZEND_HASH_FOREACH_END();
	zend_hash_destroy(&sorted);

	php_printf("\n[Zend Modules]\n");
	zend_llist_copy(&exts, &zend_extensions);
	exts.dtor = NULL;
	zend_llist_sort(&exts, extension_name_cmp);
	zend_llist_apply(&exts, (llist_apply_func_t) print_extension_name);
	zend_llist_destroy(&exts);
	php_printf("\n");
}

static void print_info(void)
{
	php_print_info(PHP_INFO_ALL);
}

int corral_php_print_version(void) { return with_cli_request(print_version); }
int corral_php_print_modules(void) { return with_cli_request(print_modules); }
int corral_php_print_info(void)
{
	sapi_module.phpinfo_as_text = 1;
	return with_cli_request(print_info);
}

int corral_php_path_resolves(const char *path)
{
	char *real = tsrm_realpath(path, NULL);
	if (!real) {
		return 0;
	}
	efree(real);
	return 1;
}

const char *corral_php_ini_string(const char *name)
{
	return zend_ini_string_ex((char *) name, strlen(name), 0, NULL);
}

void corral_php_extended_info(void)
{
	CG(compiler_options) |= ZEND_COMPILE_EXTENDED_INFO;
}

const char *corral_php_powered_by(void)
{
	return PG(expose_php) ? SAPI_PHP_VERSION_HEADER : NULL;
}

void corral_php_shutdown(void)
{
	zend_try {
		php_module_shutdown();
	} zend_end_try();
	sapi_shutdown();
}

void corral_php_trace_layout(unsigned long long out[CORRAL_TRACE_FIELDS])
{
	int i = 0;
	out[i++] = (unsigned long long) (uintptr_t) &executor_globals;
	out[i++] = (unsigned long long) (uintptr_t) &sapi_globals;
	out[i++] = offsetof(zend_executor_globals, current_execute_data);
	out[i++] = offsetof(sapi_globals_struct, request_info) + offsetof(sapi_request_info, path_translated);
	out[i++] = offsetof(zend_execute_data, opline);
	out[i++] = offsetof(zend_execute_data, func);
	out[i++] = offsetof(zend_execute_data, This) + offsetof(zval, u1.type_info);
	out[i++] = offsetof(zend_execute_data, prev_execute_data);
	out[i++] = offsetof(zend_function, type);
	out[i++] = offsetof(zend_function, common.function_name);
	out[i++] = offsetof(zend_op_array, filename);
	out[i++] = offsetof(zend_op, lineno);
	out[i++] = offsetof(zend_string, len);
	out[i++] = offsetof(zend_string, val);
	out[i++] = ZEND_CALL_CODE | ZEND_CALL_TOP;
	out[i++] = ZEND_CALL_TOP_CODE;
	out[i++] = ZEND_CALL_NESTED_CODE;
	out[i++] = 1; /* layout version */
}
