/*
 * format_native.c - the native CSV line (SPEC 3), and the field checks every
 * other format reuses.
 *
 * The parser never allocates and never copies: the record points into the
 * caller's buffer. It checks the field count first and then the fields from
 * left to right, so the first bad field decides the reason, as the contract
 * requires (malformed:columns, then malformed:id ... malformed:volume).
 * cdr__rec_fill is that left-to-right check on fields already split, which
 * is how a switch record or a mapped line is held to section 3 with the
 * native column names.
 *
 * Sections: start time forms - start_format patterns - the fields - the
 * native line.
 */
#include <string.h>

#include "format.h"

#define NCOLS 7
#define ID_MAX 64
#define NUMBER_MAX 32 /* digits of a subscriber number */
#define QTY_LIMIT 999999999999ULL /* duration and volume are < 10^12 */
#define UNIX_MAX 253402300799LL	  /* 9999-12-31T23:59:59Z */

/* ---- start time forms ------------------------------------------------ */

static int two(const char *s, unsigned *v)
{
	unsigned a = (unsigned)(s[0] - '0'), b = (unsigned)(s[1] - '0');
	if (a > 9 || b > 9)
		return -1;
	*v = a * 10 + b;
	return 0;
}

/*
 * `YYYY-MM-DD HH:MM:SS` or with 'T', optionally ending in 'Z' or +-HH:MM
 * (then the instant is absolute), or integer Unix seconds.
 */
static inline __attribute__((always_inline)) int
parse_start(const char *s, size_t n, cdr__rec *r)
{
	int64_t secs;

	if (n >= 19 && s[4] == '-') {
		if (cdr__parse_datetime(s, 19, &secs))
			return -1;
		if (n == 19) {
			r->start_kind = CDR_START_LOCAL;
			r->start = secs;
			return 0;
		}
		if (n == 20 && s[19] == 'Z') {
			/* UTC already */
		} else if (n == 25 && (s[19] == '+' || s[19] == '-') &&
			   s[22] == ':') {
			unsigned hh, mm;
			if (two(s + 20, &hh) || two(s + 23, &mm) || hh > 23 ||
			    mm > 59)
				return -1;
			int64_t off = (int64_t)hh * 3600 + (int64_t)mm * 60;
			secs -= s[19] == '+' ? off : -off;
		} else {
			return -1;
		}
		if (secs < 0 || secs > UNIX_MAX)
			return -1;
		r->start_kind = CDR_START_UTC;
		r->start = secs;
		return 0;
	}
	uint64_t u;
	if (cdr__parse_u64(s, n, UNIX_MAX, &u))
		return -1;
	r->start_kind = CDR_START_UTC;
	r->start = (int64_t)u;
	return 0;
}

/* ---- start_format patterns ------------------------------------------- */

/* 1..max digits of a pattern field, at most `width` (0: 1 or 2). */
static int pat_num(const char **sp, const char *end, int width, unsigned *v)
{
	const char *s = *sp;
	int lo = width ? width : 1, hi = width ? width : 2, k = 0;
	*v = 0;
	while (k < hi && s < end && *s >= '0' && *s <= '9') {
		*v = *v * 10 + (unsigned)(*s - '0');
		s++, k++;
	}
	*sp = s;
	return k >= lo ? 0 : -1;
}

/*
 * A map's start_format (SPEC 11): %Y 4 digits, %y 2 digits (20yy), %m %d
 * %H %M %S 1 or 2 digits, anything else literal; no %S means 0 seconds.
 * The result is a naive local time, like the native form without offset.
 */
static int parse_pattern(const char *fmt, const char *s, size_t n,
			 cdr__rec *r)
{
	const char *end = s + n;
	unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, v;
	int have_y = 0, have_m = 0, have_d = 0;
	for (const char *q = fmt; *q; q++) {
		if (*q != '%' || !q[1]) {
			if (s == end || *s != *q)
				return -1;
			s++;
			continue;
		}
		q++;
		int w = *q == 'Y' ? 4 : *q == 'y' ? 2 : 0;
		if (!strchr("YymdHMS", *q) || pat_num(&s, end, w, &v))
			return -1;
		switch (*q) {
		case 'Y': y = v, have_y = 1; break;
		case 'y': y = 2000 + v, have_y = 1; break;
		case 'm': mo = v, have_m = 1; break;
		case 'd': d = v, have_d = 1; break;
		case 'H': h = v; break;
		case 'M': mi = v; break;
		default: se = v; break;
		}
	}
	if (s != end || !have_y || !have_m || !have_d || h > 23 || mi > 59 ||
	    se > 59)
		return -1;
	/* Rebuild the native form and let the one date parser decide what
	 * a valid day is. */
	char buf[20];
	buf[0] = (char)('0' + y / 1000 % 10);
	buf[1] = (char)('0' + y / 100 % 10);
	buf[2] = (char)('0' + y / 10 % 10);
	buf[3] = (char)('0' + y % 10);
	buf[4] = '-';
	buf[5] = (char)('0' + mo / 10 % 10);
	buf[6] = (char)('0' + mo % 10);
	buf[7] = '-';
	buf[8] = (char)('0' + d / 10 % 10);
	buf[9] = (char)('0' + d % 10);
	buf[10] = ' ';
	buf[11] = (char)('0' + h / 10);
	buf[12] = (char)('0' + h % 10);
	buf[13] = ':';
	buf[14] = (char)('0' + mi / 10);
	buf[15] = (char)('0' + mi % 10);
	buf[16] = ':';
	buf[17] = (char)('0' + se / 10);
	buf[18] = (char)('0' + se % 10);
	if (y < 1000 || y > 9999 || mo > 12 || d > 31)
		return -1;
	int64_t secs;
	if (cdr__parse_datetime(buf, 19, &secs))
		return -1;
	r->start_kind = CDR_START_LOCAL;
	r->start = secs;
	return 0;
}

int cdr__is_stamp(const char *s, size_t n)
{
	int64_t secs;
	return n == 19 && s[4] == '-' && !cdr__parse_datetime(s, 19, &secs);
}

/* ---- the fields ------------------------------------------------------ */

static int is_number(const char *s, size_t n, int allow_star_hash)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9')
			continue;
		if (allow_star_hash && (c == '*' || c == '#'))
			continue;
		return 0;
	}
	return 1;
}

/*
 * The seven fields in native order; an absent id (f[0].s NULL) is skipped,
 * as switch records have none to check. The key defaults to the id.
 * Inlined into the native parser, where a call per record measured 2% of
 * a native run's instructions.
 */
static inline __attribute__((always_inline)) int
fill(cdr__rec *r, const cdr__field *f, const char *start_format,
     const cdr__norm *norm, char *nbuf)
{
	if (f[0].s) {
		if (f[0].n == 0 || f[0].n > ID_MAX)
			return CDR_R_ID;
		r->id = f[0].s;
		r->id_len = f[0].n;
		r->key = f[0].s;
		r->key_len = f[0].n;
	}

	const char *sub = f[1].s;
	size_t sn = f[1].n;
	/* normalize.csv rewrites the number as written, then the '+' that
	 * is left goes as in section 3. */
	if (norm)
		sn = cdr__norm_apply(norm, CDR__NORM_SUB, &sub, sn, nbuf);
	if (sn && sub[0] == '+')
		sub++, sn--;
	if (sn > NUMBER_MAX || !is_number(sub, sn, 0))
		return CDR_R_SUBSCRIBER;
	r->sub = sub;
	r->sub_len = (uint32_t)sn;

	if (f[2].n == 5 && !memcmp(f[2].s, "voice", 5))
		r->service = CDR_VOICE;
	else if (f[2].n == 3 && !memcmp(f[2].s, "sms", 3))
		r->service = CDR_SMS;
	else if (f[2].n == 4 && !memcmp(f[2].s, "data", 4))
		r->service = CDR_DATA;
	else
		return CDR_R_SERVICE;

	if (start_format ? parse_pattern(start_format, f[3].s, f[3].n, r)
			 : parse_start(f[3].s, f[3].n, r))
		return CDR_R_START;

	const char *d = f[4].s;
	size_t dn = f[4].n;
	if (r->service != CDR_DATA) {
		if (norm) /* a data destination is an APN, not a number */
			dn = cdr__norm_apply(norm, CDR__NORM_DEST, &d, dn,
					     nbuf + f[1].n + CDR__NORM_MAX);
		if (dn && d[0] == '+')
			d++, dn--;
		if (!is_number(d, dn, 1))
			return CDR_R_DESTINATION;
	}
	r->dest = d;
	r->dest_len = (uint32_t)dn;

	if (cdr__parse_u64(f[5].s, f[5].n, QTY_LIMIT, &r->duration))
		return CDR_R_DURATION;
	if (cdr__parse_u64(f[6].s, f[6].n, QTY_LIMIT, &r->volume))
		return CDR_R_VOLUME;
	return CDR_OK;
}

int cdr__rec_fill(cdr__rec *r, const cdr__field *f, const char *start_format,
		  const cdr__norm *norm, char *nbuf)
{
	return fill(r, f, start_format, norm, nbuf);
}

/* ---- the native line ------------------------------------------------- */

static inline __attribute__((always_inline)) int
native(const char *p, size_t n, cdr__rec *r, const cdr__norm *norm,
       char *nbuf)
{
	cdr__field f[NCOLS];
	size_t k = 0;
	const char *s = p, *end = p + n;

	r->line = p;
	r->line_len = (uint32_t)n;
	r->id_line = 0;
	for (;;) {
		const char *c = memchr(s, ',', (size_t)(end - s));
		if (k == NCOLS)
			return CDR_R_COLUMNS;
		f[k].s = s;
		f[k].n = (uint32_t)((c ? c : end) - s);
		k++;
		if (!c)
			break;
		s = c + 1;
	}
	if (k != NCOLS)
		return CDR_R_COLUMNS;
	return fill(r, f, NULL, norm, nbuf);
}

int cdr__parse_line(const char *p, size_t n, cdr__rec *r)
{
	return native(p, n, r, NULL, NULL);
}

int cdr__parse_line_norm(const char *p, size_t n, cdr__rec *r,
			 const cdr__norm *norm, char *nbuf)
{
	return native(p, n, r, norm, nbuf);
}
