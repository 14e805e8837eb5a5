/*
 * fuzz_parse_diff.c - libFuzzer target: cdr__parse_line against a second,
 * independent parser written straight from the contract.
 *
 * The reference below is deliberately naive: it finds the commas first,
 * then checks each field with the plainest code that says what SPEC section
 * 3 (the columns) and step 1 of section 5 (the first bad field from the
 * left decides malformed:<column>) say, and it shares nothing with src/:
 * its own digit loops, its own calendar (days before a year by the leap
 * rule, not civil.h's era arithmetic). When the two disagree on the reason
 * code, or on any parsed field of an accepted line, the target aborts and
 * prints both verdicts.
 *
 * Where the contract is silent and src/parse.c made a choice, the choice is
 * copied only when the contract's notation implies it or the README
 * documents it; each such place says so.
 *
 * Sections: reference fields - the reference line - comparison.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REF_UNIX_MAX 253402300799LL /* 9999-12-31T23:59:59Z */
#define REF_QTY_LIMIT 1000000000000ULL /* duration, volume < 10^12 */

/* What the reference makes of a line; offsets count from the line start. */
typedef struct ref_rec {
	int reason;
	size_t id_off, id_len, sub_off, sub_len, dest_off, dest_len;
	int service;
	int start_kind;
	int64_t start;
	uint64_t duration, volume;
} ref_rec;

/* ---- reference fields ------------------------------------------------ */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int all_digits(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return 0;
	return 1;
}

/*
 * A non-negative decimal integer below `limit` (a power of ten or so):
 * one or more digits, nothing else. Leading zeros are part of an integer's
 * spelling, so any number of them is allowed; the value is what counts.
 */
static int ref_uint(const char *s, size_t n, uint64_t limit_incl, uint64_t *v)
{
	if (!all_digits(s, n))
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		x = x * 10 + (uint64_t)(s[i] - '0');
		if (x > limit_incl)
			return -1; /* grows monotonically: no way back */
	}
	*v = x;
	return 0;
}

static int num2(const char *s, int *v)
{
	if (!is_digit(s[0]) || !is_digit(s[1]))
		return -1;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

static int ref_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int ref_month_days(int y, int m)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31};
	return m == 2 && ref_leap(y) ? 29 : mdays[m - 1];
}

/* Days from 1970-01-01 to y-m-d (y >= 1), counted the long way round:
 * whole years before y since 0001-01-01, then whole months, then days. */
static int64_t ref_days(int y, int m, int d)
{
	int64_t yb = y - 1;
	int64_t days = yb * 365 + yb / 4 - yb / 100 + yb / 400;
	for (int k = 1; k < m; k++)
		days += ref_month_days(y, k);
	days += d - 1;
	return days - 719162; /* 0001-01-01 .. 1970-01-01 */
}

/*
 * `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` (exactly 19 bytes) as
 * naive seconds. Month 1-12, a day that month has, hour 00-23, minute and
 * second 00-59. Year 0000 is refused: the contract's instants start in 1970
 * and no zone moves a naive year-0 time there, so refusing it at parse time
 * gives the same final verdict (malformed:start) as refusing it later.
 */
static int ref_datetime(const char *s, int64_t *secs)
{
	int y = 0, mo, d, hh, mi, ss;
	for (int i = 0; i < 4; i++) {
		if (!is_digit(s[i]))
			return -1;
		y = y * 10 + (s[i] - '0');
	}
	if (s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	if (num2(s + 5, &mo) || num2(s + 8, &d) || num2(s + 11, &hh) ||
	    num2(s + 14, &mi) || num2(s + 17, &ss))
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > ref_month_days(y, mo))
		return -1;
	if (hh > 23 || mi > 59 || ss > 59)
		return -1;
	*secs = ref_days(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss;
	return 0;
}

/*
 * The start column. Integer Unix seconds; or a date-time, alone (naive
 * local time, resolved later under the tariff's zone), or followed by `Z`
 * or `+HH:MM` / `-HH:MM` (then absolute: local = UTC + offset). An absolute
 * instant must lie in 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. The
 * offset's HH:MM reads like a time of day (hour 00-23, minute 00-59); the
 * contract writes no other bound.
 */
static int ref_start(const char *s, size_t n, ref_rec *o)
{
	if (all_digits(s, n)) {
		uint64_t u;
		if (ref_uint(s, n, (uint64_t)REF_UNIX_MAX, &u))
			return -1;
		o->start_kind = CDR_START_UTC;
		o->start = (int64_t)u;
		return 0;
	}
	int64_t secs;
	if (n < 19 || ref_datetime(s, &secs))
		return -1;
	if (n == 19) {
		o->start_kind = CDR_START_LOCAL;
		o->start = secs;
		return 0;
	}
	if (n == 20 && s[19] == 'Z') {
		/* already UTC */
	} else if (n == 25 && (s[19] == '+' || s[19] == '-') && s[22] == ':') {
		int oh, om;
		if (num2(s + 20, &oh) || num2(s + 23, &om) || oh > 23 || om > 59)
			return -1;
		int64_t off = oh * 3600 + om * 60;
		if (s[19] == '+')
			secs -= off;
		else
			secs += off;
	} else {
		return -1;
	}
	if (secs < 0 || secs > REF_UNIX_MAX)
		return -1;
	o->start_kind = CDR_START_UTC;
	o->start = secs;
	return 0;
}

/* A phone number: an optional leading '+' (dropped), then one or more
 * characters of `set`. */
static int ref_number(const char *line, size_t off, size_t n, const char *set,
		      size_t *out_off, size_t *out_len)
{
	if (n && line[off] == '+')
		off++, n--;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = line[off + i];
		if (c == '\0' || !strchr(set, c))
			return -1;
	}
	*out_off = off;
	*out_len = n;
	return 0;
}

/* ---- the reference line ---------------------------------------------- */

static int ref_parse(const char *p, size_t n, ref_rec *o)
{
	size_t off[7], len[7], nf = 0, from = 0;

	memset(o, 0, sizeof(*o));
	/* Split on every comma; no quoting. Seven fields, no more, no less. */
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != ',')
			continue;
		if (nf == 7)
			return o->reason = CDR_R_COLUMNS;
		off[nf] = from;
		len[nf] = i - from;
		nf++;
		from = i + 1;
	}
	if (nf != 7)
		return o->reason = CDR_R_COLUMNS;

	/* id: 1 to 64 bytes, any bytes but the comma. */
	if (len[0] < 1 || len[0] > 64)
		return o->reason = CDR_R_ID;
	o->id_off = off[0];
	o->id_len = len[0];

	if (ref_number(p, off[1], len[1], "0123456789", &o->sub_off,
		       &o->sub_len))
		return o->reason = CDR_R_SUBSCRIBER;
	/* The contract sets no length; cdrate caps a number at 32 digits
	 * (README, "Choices where the contract is silent"): the subscriber
	 * table packs numbers into 128 bits. */
	if (o->sub_len > 32)
		return o->reason = CDR_R_SUBSCRIBER;

	const char *sv = p + off[2];
	if (len[2] == 5 && !memcmp(sv, "voice", 5))
		o->service = CDR_VOICE;
	else if (len[2] == 3 && !memcmp(sv, "sms", 3))
		o->service = CDR_SMS;
	else if (len[2] == 4 && !memcmp(sv, "data", 4))
		o->service = CDR_DATA;
	else
		return o->reason = CDR_R_SERVICE;

	if (ref_start(p + off[3], len[3], o))
		return o->reason = CDR_R_START;

	if (o->service == CDR_DATA) {
		/* Free text or empty, taken as it stands ('+' kept). */
		o->dest_off = off[4];
		o->dest_len = len[4];
	} else if (ref_number(p, off[4], len[4], "0123456789*#", &o->dest_off,
			      &o->dest_len)) {
		return o->reason = CDR_R_DESTINATION;
	}

	/* Checked for every service, even where the value is ignored. */
	if (ref_uint(p + off[5], len[5], REF_QTY_LIMIT - 1, &o->duration))
		return o->reason = CDR_R_DURATION;
	if (ref_uint(p + off[6], len[6], REF_QTY_LIMIT - 1, &o->volume))
		return o->reason = CDR_R_VOLUME;
	return o->reason = CDR_OK;
}

/* ---- comparison ------------------------------------------------------ */

static void put_bytes(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
}

static void mismatch(const char *what, const char *p, size_t n,
		     const ref_rec *o, int rc, const cdr__rec *r)
{
	fprintf(stderr, "fuzz_parse_diff: %s\nline (%zu bytes): ", what, n);
	put_bytes(p, n < 512 ? n : 512);
	fprintf(stderr, "\nreference: %s", cdr_reason_name(o->reason));
	if (o->reason == CDR_OK)
		fprintf(stderr,
			" id@%zu+%zu sub@%zu+%zu svc %d start %d:%lld "
			"dest@%zu+%zu dur %llu vol %llu",
			o->id_off, o->id_len, o->sub_off, o->sub_len,
			o->service, o->start_kind, (long long)o->start,
			o->dest_off, o->dest_len,
			(unsigned long long)o->duration,
			(unsigned long long)o->volume);
	fprintf(stderr, "\nparse.c:   %s", cdr_reason_name(rc));
	if (rc == CDR_OK)
		fprintf(stderr,
			" id@%td+%u sub@%td+%u svc %d start %d:%lld "
			"dest@%td+%u dur %llu vol %llu",
			r->id - p, r->id_len, r->sub - p, r->sub_len,
			r->service, r->start_kind, (long long)r->start,
			r->dest - p, r->dest_len,
			(unsigned long long)r->duration,
			(unsigned long long)r->volume);
	fputc('\n', stderr);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly sized, so an overread by either parser is caught. */
	char *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	if (size)
		memcpy(p, data, size);

	ref_rec o;
	cdr__rec r;
	memset(&r, 0, sizeof(r));
	ref_parse(p, size, &o);
	int rc = cdr__parse_line(p, size, &r);

	if (rc != o.reason)
		mismatch("reason differs", p, size, &o, rc, &r);
	if (rc == CDR_OK) {
		if (r.id != p + o.id_off || r.id_len != o.id_len)
			mismatch("id differs", p, size, &o, rc, &r);
		if (r.sub != p + o.sub_off || r.sub_len != o.sub_len)
			mismatch("subscriber differs", p, size, &o, rc, &r);
		if (r.service != o.service)
			mismatch("service differs", p, size, &o, rc, &r);
		if (r.start_kind != o.start_kind || r.start != o.start)
			mismatch("start differs", p, size, &o, rc, &r);
		if (r.dest != p + o.dest_off || r.dest_len != o.dest_len)
			mismatch("destination differs", p, size, &o, rc, &r);
		if (r.duration != o.duration || r.volume != o.volume)
			mismatch("duration/volume differ", p, size, &o, rc, &r);
		/* The packed subscriber (internal.h): digit + 1 a nibble,
		 * digits 1-16 in subk[0], the rest in subk[1]. */
		uint64_t k[2] = {0, 0};
		for (size_t i = 0; i < o.sub_len; i++)
			k[i >= 16] = k[i >= 16] << 4 |
				     (uint64_t)(p[o.sub_off + i] - '0' + 1);
		if (r.subk[0] != k[0] || r.subk[1] != k[1])
			mismatch("packed subscriber differs", p, size, &o, rc,
				 &r);
	}
	free(p);
	return 0;
}
