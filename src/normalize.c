/*
 * normalize.c - the tariff's normalize.csv: loading, validation, and the
 * longest-prefix rewrite of a subscriber or destination number.
 *
 * Tables are small (a dialling plan's worth of prefixes: international
 * access codes, an outside-line digit, the country code), so a number is
 * matched by a scan of its column's rules, longest prefix first; a tariff
 * without the file costs the hot path one NULL test.
 *
 * Sections: loading - rewriting - describing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "normalize.h"

typedef struct rule {
	char prefix[CDR__NORM_MAX + 1], replace[CDR__NORM_MAX + 1];
	size_t plen, rlen;
	unsigned line;
} rule;

struct cdr__norm {
	rule *r[2]; /* per column, longest prefix first */
	size_t n[2];
};

/* ---- loading --------------------------------------------------------- */

void cdr__norm_free(cdr__norm *n)
{
	if (!n)
		return;
	free(n->r[0]);
	free(n->r[1]);
	free(n);
}

static int cmp_rule(const void *a, const void *b)
{
	const rule *x = a, *y = b;
	if (x->plen != y->plen)
		return x->plen > y->plen ? -1 : 1;
	return (x->line > y->line) - (x->line < y->line);
}

/* Characters of a number as written: digits, '*', '#', a leading '+'. */
static int number_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '*' ||
		      s[i] == '#' || (s[i] == '+' && i == 0)))
			return 0;
	return 1;
}

static int add(cdr__norm *t, int which, const rule *x, char *err,
	       size_t errlen)
{
	for (size_t i = 0; i < t->n[which]; i++)
		if (t->r[which][i].plen == x->plen &&
		    !memcmp(t->r[which][i].prefix, x->prefix, x->plen)) {
			snprintf(err, errlen,
				 "normalize.csv:%u: column prefix: '%s' for "
				 "%s already on line %u",
				 x->line, x->prefix,
				 which ? "destination" : "subscriber",
				 t->r[which][i].line);
			return -EINVAL;
		}
	rule *r = realloc(t->r[which], (t->n[which] + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	r[t->n[which]++] = *x;
	t->r[which] = r;
	return 0;
}

/* One data line (no line end) of normalize.csv. */
static int load_row(cdr__norm *t, char *l, unsigned line, char *err,
		    size_t errlen)
{
	char *f[3];
	int k = 0;
	for (char *s = l;; s++) {
		if (k == 3) {
			snprintf(err, errlen,
				 "normalize.csv:%u: 3 columns wanted", line);
			return -EINVAL;
		}
		f[k++] = s;
		s = strchr(s, ',');
		if (!s)
			break;
		*s = '\0';
	}
	if (k != 3) {
		snprintf(err, errlen, "normalize.csv:%u: 3 columns wanted",
			 line);
		return -EINVAL;
	}
	int sub = !strcmp(f[0], "subscriber") || !strcmp(f[0], "both");
	int dest = !strcmp(f[0], "destination") || !strcmp(f[0], "both");
	if (!sub && !dest) {
		snprintf(err, errlen,
			 "normalize.csv:%u: column applies_to: '%s' is not "
			 "destination, subscriber or both",
			 line, f[0]);
		return -EINVAL;
	}
	rule x = {.line = line};
	x.plen = strlen(f[1]);
	x.rlen = strlen(f[2]);
	if (!x.plen || x.plen > CDR__NORM_MAX || !number_text(f[1], x.plen)) {
		snprintf(err, errlen,
			 "normalize.csv:%u: column prefix: '%s' is not a "
			 "number prefix (1-%d of + 0-9 * #)",
			 line, f[1], CDR__NORM_MAX);
		return -EINVAL;
	}
	if (x.rlen > CDR__NORM_MAX || !number_text(f[2], x.rlen)) {
		snprintf(err, errlen,
			 "normalize.csv:%u: column replace: '%s' is not "
			 "number text (0-%d of + 0-9 * #)",
			 line, f[2], CDR__NORM_MAX);
		return -EINVAL;
	}
	memcpy(x.prefix, f[1], x.plen + 1);
	memcpy(x.replace, f[2], x.rlen + 1);
	int rc = 0;
	if (sub)
		rc = add(t, CDR__NORM_SUB, &x, err, errlen);
	if (!rc && dest)
		rc = add(t, CDR__NORM_DEST, &x, err, errlen);
	return rc;
}

int cdr__norm_load(cdr__norm **out, const char *dir, char *err,
		   size_t errlen)
{
	char path[4096];
	*out = NULL;
	snprintf(path, sizeof(path), "%s/normalize.csv", dir);
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		if (errno == ENOENT)
			return 0; /* optional */
		int e = errno;
		snprintf(err, errlen, "normalize.csv: %s", strerror(e));
		return -e;
	}
	cdr__norm *t = calloc(1, sizeof(*t));
	char *l = NULL;
	size_t cap = 0;
	ssize_t got;
	unsigned line = 0;
	int rc = t ? 0 : -ENOMEM;
	while (!rc && (got = getline(&l, &cap, fp)) >= 0) {
		size_t n = (size_t)got;
		line++;
		while (n && (l[n - 1] == '\n' || l[n - 1] == '\r'))
			l[--n] = '\0';
		if (line == 1) {
			if (strcmp(l, "applies_to,prefix,replace") != 0) {
				snprintf(err, errlen,
					 "normalize.csv:1: header must be "
					 "applies_to,prefix,replace");
				rc = -EINVAL;
			}
			continue;
		}
		if (n)
			rc = load_row(t, l, line, err, errlen);
	}
	if (!rc && line == 0) {
		snprintf(err, errlen, "normalize.csv:1: header must be "
				      "applies_to,prefix,replace");
		rc = -EINVAL;
	}
	free(l);
	fclose(fp);
	if (rc) {
		cdr__norm_free(t);
		return rc;
	}
	for (int w = 0; w < 2; w++)
		if (t->n[w])
			qsort(t->r[w], t->n[w], sizeof(rule), cmp_rule);
	*out = t;
	return 0;
}

/* ---- rewriting ------------------------------------------------------- */

size_t cdr__norm_apply(const cdr__norm *n, int which, const char **s,
		       size_t len, char *buf)
{
	if (!n)
		return len;
	const char *p = *s;
	for (size_t i = 0; i < n->n[which]; i++) {
		const rule *x = &n->r[which][i];
		if (x->plen > len || memcmp(p, x->prefix, x->plen) != 0)
			continue;
		/* Once, by the longest match: the rules are sorted so. */
		memcpy(buf, x->replace, x->rlen);
		memcpy(buf + x->rlen, p + x->plen, len - x->plen);
		*s = buf;
		return x->rlen + len - x->plen;
	}
	return len;
}

int cdr__norm_equal(const cdr__norm *a, const cdr__norm *b)
{
	if (!a || !b)
		return a == b;
	for (int w = 0; w < 2; w++) {
		if (a->n[w] != b->n[w])
			return 0;
		for (size_t i = 0; i < a->n[w]; i++)
			if (strcmp(a->r[w][i].prefix, b->r[w][i].prefix) != 0 ||
			    strcmp(a->r[w][i].replace, b->r[w][i].replace) != 0)
				return 0;
	}
	return 1;
}

/* ---- describing ------------------------------------------------------ */

void cdr__norm_describe(const cdr__norm *n, FILE *o)
{
	static const char *const col[] = {"subscriber", "destination"};
	if (!n) {
		fprintf(o, "normalize: none\n");
		return;
	}
	fprintf(o, "normalize: %zu subscriber, %zu destination rules\n",
		n->n[0], n->n[1]);
	for (int w = 0; w < 2; w++)
		for (size_t i = 0; i < n->n[w]; i++)
			fprintf(o, "  %-11s %s -> %s%s\n", col[w],
				n->r[w][i].prefix, n->r[w][i].replace,
				n->r[w][i].rlen ? "" : "(empty)");
}
