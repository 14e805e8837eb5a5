/*
 * format_map.c - column maps (`--format map:FILE`, SPEC 11) and lines read
 * by column index, which is also how a native file whose header names the
 * seven columns in another order is read.
 *
 * A map is loaded once and is immutable; the columns it names by header
 * name are resolved per input against that input's header (format.c), so
 * one map serves every file of a run even when their columns move about.
 *
 * Sections: loading - lines by column.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

/* ---- loading --------------------------------------------------------- */

static const char *const keys[CDR__MC_N] = {
	"id", "subscriber", "service", "start", "destination", "duration",
	"volume", "answered",
};

void cdr_colmap_free(cdr_colmap *m)
{
	if (!m)
		return;
	free(m->path);
	for (int c = 0; c < CDR__MC_N; c++)
		free(m->name[c]);
	free(m->answered_value);
	free(m->start_format);
	free(m);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* A column: all digits is a 1-based number, anything else a header name. */
static int set_col(cdr_colmap *m, int c, const char *v, unsigned line)
{
	m->line[c] = line;
	int digits = *v != '\0';
	for (const char *q = v; *q; q++)
		digits &= *q >= '0' && *q <= '9';
	if (digits) {
		long k = strtol(v, NULL, 10);
		if (k < 1 || k > CDR__MAXF)
			return -1;
		m->num[c] = (int)k - 1;
		return 0;
	}
	return (m->name[c] = strdup(v)) ? 0 : -1;
}

static int bad(char *err, size_t errlen, const cdr_colmap *m, unsigned line,
	       const char *what, const char *v)
{
	snprintf(err, errlen, "%s:%u: %s '%s'", m->path, line, what, v);
	return -EINVAL;
}

/* Check a start_format: only the conversions of SPEC 11, with %Y or %y,
 * %m and %d present. */
static int check_pattern(const char *f)
{
	int y = 0, mo = 0, d = 0;
	for (const char *q = f; *q; q++) {
		if (*q != '%')
			continue;
		q++;
		if (!*q || !strchr("YymdHMS", *q))
			return -1;
		y |= *q == 'Y' || *q == 'y';
		mo |= *q == 'm';
		d |= *q == 'd';
	}
	return y && mo && d ? 0 : -1;
}

static int parse_map(cdr_colmap *m, char *text, char *err, size_t errlen)
{
	unsigned line = 0, seen_line[CDR__MC_N + 3] = {0};
	char *save = NULL;
	int have[CDR__MC_N + 3] = {0}; /* the columns, header, delimiter,
					 start_format */
	for (char *l = text; l; l = save) {
		save = strchr(l, '\n');
		if (save)
			*save++ = '\0';
		line++;
		/* A comment starts the line or follows a space or tab. */
		for (char *h = l; (h = strchr(h, '#')); h++)
			if (h == l || h[-1] == ' ' || h[-1] == '\t') {
				*h = '\0';
				break;
			}
		char *s = trim(l);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq)
			return bad(err, errlen, m, line, "not key = value:", s);
		*eq = '\0';
		char *k = trim(s), *v = trim(eq + 1);
		int c = -1;
		for (int i = 0; i < CDR__MC_N; i++)
			if (!strcmp(k, keys[i]))
				c = i;
		if (c < 0 && !strcmp(k, "header"))
			c = CDR__MC_N;
		if (c < 0 && !strcmp(k, "delimiter"))
			c = CDR__MC_N + 1;
		if (c < 0 && !strcmp(k, "start_format"))
			c = CDR__MC_N + 2;
		if (c < 0)
			return bad(err, errlen, m, line, "unknown key", k);
		if (have[c])
			return bad(err, errlen, m, line, "key given twice:", k);
		have[c] = 1;
		seen_line[c] = line;
		if (!*v)
			return bad(err, errlen, m, line, "empty value for", k);
		if (c == CDR__MC_N) {
			if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
				return bad(err, errlen, m, line,
					   "header must be yes or no, not", v);
			m->header = !strcmp(v, "yes");
		} else if (c == CDR__MC_N + 1) {
			if (!strcmp(v, "\\t") || !strcmp(v, "tab"))
				m->delim = '\t';
			else if (strlen(v) == 1 && strchr(",;|", *v))
				m->delim = *v;
			else
				return bad(err, errlen, m, line,
					   "delimiter must be , ; | or \\t, not",
					   v);
		} else if (c == CDR__MC_N + 2) {
			if (check_pattern(v))
				return bad(err, errlen, m, line,
					   "bad start_format", v);
			if (!(m->start_format = strdup(v)))
				return -ENOMEM;
		} else if (c == CDR__MC_SERVICE &&
			   (!strcmp(v, "voice") || !strcmp(v, "sms") ||
			    !strcmp(v, "data"))) {
			m->service_const = v[0] == 'v'	 ? CDR_VOICE
					   : v[0] == 's' ? CDR_SMS
							 : CDR_DATA;
			m->line[c] = line;
		} else if (c == CDR__MC_ANSWERED) {
			char *e2 = strchr(v, '=');
			if (!e2)
				return bad(err, errlen, m, line,
					   "answered must be column=value, not",
					   v);
			*e2 = '\0';
			char *col = trim(v);
			if (!*col || !(m->answered_value = strdup(e2 + 1)))
				return bad(err, errlen, m, line,
					   "answered must be column=value, not",
					   col);
			if (set_col(m, c, col, line))
				return bad(err, errlen, m, line, "bad column",
					   col);
		} else if (set_col(m, c, v, line)) {
			return bad(err, errlen, m, line, "bad column", v);
		}
	}
	static const int required[] = {CDR__MC_SUB, CDR__MC_DEST,
				       CDR__MC_START, CDR__MC_DURATION,
				       CDR__MC_SERVICE};
	for (size_t i = 0; i < sizeof(required) / sizeof(*required); i++)
		if (!have[required[i]]) {
			snprintf(err, errlen, "%s:%u: missing key '%s'",
				 m->path, line, keys[required[i]]);
			return -EINVAL;
		}
	for (int c = 0; c < CDR__MC_N; c++)
		if (m->name[c] && !m->header)
			return bad(err, errlen, m, seen_line[c],
				   "a column by name needs header = yes:",
				   m->name[c]);
	return 0;
}

int cdr_colmap_load(cdr_colmap **out, const char *path, char *err,
		    size_t errlen)
{
	*out = NULL;
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	char *text = NULL;
	size_t len = 0, cap = 0;
	int c;
	while ((c = fgetc(fp)) != EOF && len < (1u << 20)) {
		if (len + 2 > cap) {
			cap = cap ? cap * 2 : 1024;
			char *t = realloc(text, cap);
			if (!t) {
				free(text);
				fclose(fp);
				return -ENOMEM;
			}
			text = t;
		}
		if (c == '\0') {
			free(text);
			fclose(fp);
			snprintf(err, errlen, "%s: a NUL byte", path);
			return -EINVAL;
		}
		text[len++] = (char)c;
	}
	fclose(fp);
	cdr_colmap *m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path))) {
		free(m);
		free(text);
		return -ENOMEM;
	}
	if (!text && !(text = calloc(1, 1))) {
		cdr_colmap_free(m);
		return -ENOMEM;
	}
	text[len] = '\0';
	m->header = 1;
	m->delim = ',';
	m->service_const = -1;
	for (int k = 0; k < CDR__MC_N; k++)
		m->num[k] = -1;
	int rc = parse_map(m, text, err, errlen);
	free(text);
	if (rc) {
		cdr_colmap_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* ---- lines by column ------------------------------------------------- */

int cdr__parse_bycol(const cdr__fmt *f, const char *p, size_t n,
		     cdr__rec *r, char *scratch)
{
	cdr__field x[CDR__MAXF];
	int nf = cdr__split(p, n, f->delim, x, CDR__MAXF, scratch);
	if (nf < 0 || (f->nfields && nf != f->nfields))
		return CDR_R_COLUMNS;
	for (int c = 0; c < CDR__MC_N; c++)
		if (f->col[c] >= nf)
			return CDR_R_COLUMNS;
	const cdr_colmap *m = f->map;
	if (m && m->answered_value) {
		const cdr__field *a = &x[f->col[CDR__MC_ANSWERED]];
		size_t an = strlen(m->answered_value);
		if (a->n != an || memcmp(a->s, m->answered_value, an) != 0)
			return CDR_R_UNANSWERED;
	}
	static const char *const svc[] = {"voice", "sms", "data"};
	cdr__field nat[7];
	for (int c = 0; c < 7; c++)
		nat[c] = f->col[c] >= 0 ? x[f->col[c]] : (cdr__field){NULL, 0, 0};
	if (m && m->service_const >= 0)
		nat[CDR__MC_SERVICE] = (cdr__field){
			svc[m->service_const],
			(uint32_t)strlen(svc[m->service_const]), 0};
	if (f->col[CDR__MC_VOLUME] < 0)
		nat[CDR__MC_VOLUME] = (cdr__field){"0", 1, 0};
	int rc = cdr__rec_fill(r, nat, m ? m->start_format : NULL, f->norm,
			       CDR__NORM_BUF(scratch, n));
	if (rc != CDR_OK)
		return rc;
	if (f->col[CDR__MC_ID] < 0) { /* duplicates: identical lines */
		r->id = NULL;
		r->key = p;
		r->key_len = (uint32_t)n;
	}
	return CDR_OK;
}
