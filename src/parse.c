/*
 * parse.c - one native-CSV CDR line into a cdr__rec.
 *
 * The parser never allocates and never copies: the record points into the
 * caller's buffer. It checks the field count first and then the fields from
 * left to right, so the first bad field decides the reason, as the contract
 * requires (malformed:columns, then malformed:id ... malformed:volume).
 *
 * Sections: field splitting - start time forms - the line.
 */
#include <string.h>

#include "internal.h"

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
static int parse_start(const char *s, size_t n, cdr__rec *r)
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

/* ---- the line -------------------------------------------------------- */

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

int cdr__parse_line(const char *p, size_t n, cdr__rec *r)
{
	const char *f[NCOLS];
	size_t len[NCOLS];
	size_t k = 0;
	const char *s = p, *end = p + n;

	r->line = p;
	r->line_len = (uint32_t)n;
	for (;;) {
		const char *c = memchr(s, ',', (size_t)(end - s));
		if (k == NCOLS)
			return CDR_R_COLUMNS;
		f[k] = s;
		len[k] = (size_t)((c ? c : end) - s);
		k++;
		if (!c)
			break;
		s = c + 1;
	}
	if (k != NCOLS)
		return CDR_R_COLUMNS;

	if (len[0] == 0 || len[0] > ID_MAX)
		return CDR_R_ID;
	r->id = f[0];
	r->id_len = (uint32_t)len[0];

	const char *sub = f[1];
	size_t sn = len[1];
	if (sn && sub[0] == '+')
		sub++, sn--;
	if (sn > NUMBER_MAX || !is_number(sub, sn, 0))
		return CDR_R_SUBSCRIBER;
	r->sub = sub;
	r->sub_len = (uint32_t)sn;

	if (len[2] == 5 && !memcmp(f[2], "voice", 5))
		r->service = CDR_VOICE;
	else if (len[2] == 3 && !memcmp(f[2], "sms", 3))
		r->service = CDR_SMS;
	else if (len[2] == 4 && !memcmp(f[2], "data", 4))
		r->service = CDR_DATA;
	else
		return CDR_R_SERVICE;

	if (parse_start(f[3], len[3], r))
		return CDR_R_START;

	const char *d = f[4];
	size_t dn = len[4];
	if (r->service != CDR_DATA) {
		if (dn && d[0] == '+')
			d++, dn--;
		if (!is_number(d, dn, 1))
			return CDR_R_DESTINATION;
	}
	r->dest = d;
	r->dest_len = (uint32_t)dn;

	if (cdr__parse_u64(f[5], len[5], QTY_LIMIT, &r->duration))
		return CDR_R_DURATION;
	if (cdr__parse_u64(f[6], len[6], QTY_LIMIT, &r->volume))
		return CDR_R_VOLUME;
	return CDR_OK;
}
