/*
 * tz.c - time zones from compiled tzdata (TZif v1..v4), without libc.
 *
 * localtime/mktime read the one process-wide TZ and keep hidden state; the
 * rater rates under two tariffs in two zones at once, from many threads. So
 * this file reads the TZif file (RFC 8536) itself and turns it into a plain
 * table of offset changes that any number of threads can search.
 *
 * Model. A zone is a step function from instant to UTC offset:
 *
 *     offset(t) = before                 if t < trans[0]
 *               = offs[i]                if trans[i] <= t < trans[i+1]
 *               = rule(t)                if t >= limit (footer rule)
 *
 * The table holds the file's transitions followed by the transitions that
 * the file's POSIX TZ footer (v2+) generates up to the start of year 2201
 * (or later, if the file itself reaches further). Past `limit` the footer
 * rule is evaluated on the fly, so any year works (calls may run past 9999)
 * without a table that grows with it.
 *
 * Invariants, established by load and never changed after:
 *   - trans[] is strictly increasing and every entry changes the offset
 *     (offs[i] != offs[i-1], offs[0] != before): transitions that only
 *     rename the zone or flip isdst are dropped, so next_change can return
 *     trans[] entries directly;
 *   - every entry of trans[] is < limit; limit == INT64_MAX unless the
 *     footer has daylight saving, and then the table and rule agree at
 *     limit - 1 (both include exactly the rule's changes before limit);
 *   - every offset lies within +-CDR_TZ_MAX_OFF, which bounds the search
 *     window of local_to_utc;
 *   - the object is one allocation and is never written after load.
 *
 * Map:
 *   1. Layout and constants
 *   2. Helpers: big-endian reads, messages, name checks
 *   3. POSIX TZ strings (the v2+ footer)
 *   4. Footer rule evaluation: a year's changes, offset, next change
 *   5. TZif parsing into a view of the file buffer
 *   6. Building the table; load and free
 *   7. Lookups: offset_at, next_change, local_to_utc
 *   8. Windows: a range's stretches, for the lookups of a period
 */
#include "tz.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "civil.h"

/* ---- 1. Layout and constants ---------------------------------------- */

#define CDR_TZ_DAY 86400

/*
 * Largest |offset| accepted, from the file or the footer. POSIX offsets stop
 * at 24:59:59 (25 h with the default hour of daylight saving) and real
 * zones, local mean times included, stay within 16 h, so 26 h rejects
 * nothing real and keeps local_to_utc's window small.
 */
#define CDR_TZ_MAX_OFF ((int64_t)26 * 3600)

/*
 * Instants the footer rule is evaluated for are clamped to +-2^62 s: the
 * rule works a few years either side of t, and at 2^62 (~1.46e11 years)
 * that arithmetic still has a factor two of headroom in int64_t.
 */
#define CDR_TZ_T_MAX ((int64_t)1 << 62)

/*
 * File transitions must lie within +-2^61 s, far beyond anything zic writes
 * (its earliest "big bang" sentinel is -2^59), so the rule can start just
 * after the last of them without overflowing.
 */
#define CDR_TZ_FILE_T_MAX ((int64_t)1 << 61)

/*
 * The table covers footer changes up to the start of this year; beyond it
 * the rule is evaluated per lookup. 2201 keeps the table at ~360 entries
 * for an EU or US zone while covering every plausible billing period.
 */
#define CDR_TZ_TABLE_YEAR 2201

/* No table generation before this year: zic's -2^59 sentinel would
 * otherwise ask for billions of years of rule changes. */
#define CDR_TZ_RULE_FROM_YEAR 1800

/* TZif files of real zones are under 4 KiB; anything near this is not one. */
#define CDR_TZ_MAX_FILE (1u << 20)

/* Footer strings of real zones are under 60 bytes. */
#define CDR_TZ_MAX_FOOTER 255

/* One date of a POSIX rule: Jn, n or Mm.w.d, and the local time of day. */
struct cdr__tz_date {
	char kind;	  /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' */
	unsigned n;	  /* J and D */
	unsigned m, w, d; /* M: month 1..12, week 1..5, weekday 0 = Sunday */
	int32_t secs;	  /* -167h .. +167h (v3), default 02:00 */
};

/* A POSIX TZ string reduced to what the offset depends on. */
struct cdr__tz_rule {
	int32_t std_off; /* seconds east, the sign POSIX writes flipped */
	int32_t dst_off;
	bool has_dst; /* false: std_off at all times */
	struct cdr__tz_date start, end;
};

/* One change a rule makes: at t (UTC) daylight saving starts or ends. */
struct cdr__tz_event {
	int64_t t;
	bool dst;
};

struct cdr__tz {
	const int64_t *trans; /* n change instants, strictly increasing */
	const int32_t *offs;  /* offs[i] in force from trans[i] */
	const char *name;
	size_t n;
	int64_t limit;	/* t >= limit: ask the rule */
	int32_t before; /* offset before trans[0], or always if n == 0 */
	struct cdr__tz_rule rule;
	/* trans[], offs[] and name follow in the same allocation. */
};

/* ---- 2. Helpers ----------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Two's complement reinterpretation without implementation-defined casts. */
static int32_t s32(uint32_t u)
{
	return u <= INT32_MAX ? (int32_t)u : (int32_t)(u - 0x80000000u) + INT32_MIN;
}

static int64_t s64(uint64_t u)
{
	return u <= INT64_MAX ? (int64_t)u : (int64_t)(u - 0x8000000000000000u) + INT64_MIN;
}

/* Year of an instant, in UTC. Callers only need it to within a day. */
static int64_t year_of(int64_t t)
{
	int64_t y;
	unsigned m, d;

	cdr__civil_from_days(cdr__floor_div(t, CDR_TZ_DAY), &y, &m, &d);
	return y;
}

/*
 * Copy name into buf for a message: names come from tariff files and may
 * hold anything, and the message must stay one printable line.
 */
static const char *printable(char *buf, size_t size, const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 4 < size; i++) {
		const unsigned char c = (unsigned char)name[i];
		buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (name[i] != '\0' && i >= 3) {
		memcpy(buf + i - 3, "...", 3);
	}
	buf[i] = '\0';
	return buf;
}

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * A name may only reach files under the zone directory: no absolute
 * paths, no component starting with '.' (which covers ".." and hidden
 * files), and only the characters IANA names use.
 */
static bool name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 255 || name[0] == '/')
		return false;
	for (size_t i = 0; i < len; i++) {
		const char c = name[i];
		const bool word = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				  (c >= '0' && c <= '9') || c == '_' || c == '+' ||
				  c == '-' || c == '.' || c == '/';
		if (!word)
			return false;
		if (c == '.' && (i == 0 || name[i - 1] == '/'))
			return false;
	}
	return strstr(name, "..") == NULL;
}

/*
 * Names that tzdata links to Etc/UTC or Etc/GMT. They are answered without
 * a file so that a UTC tariff works on a machine without tzdata.
 */
static bool is_utc_name(const char *name)
{
	static const char *const utc[] = {
		"UTC", "UCT", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich",
		"Universal", "Zulu",
	};

	if (strncmp(name, "Etc/", 4) == 0)
		name += 4;
	for (size_t i = 0; i < sizeof(utc) / sizeof(utc[0]); i++) {
		if (strcmp(name, utc[i]) == 0)
			return true;
	}
	return false;
}

/* ---- 3. POSIX TZ strings -------------------------------------------- */

/*
 * The footer grammar (POSIX TZ with the RFC 8536 v3 extension):
 *
 *     std offset [dst [offset] [,start[/time],end[/time]]]
 *
 * Names are three or more letters, or <...> of letters, digits, + and -.
 * Offsets are [+-]hh[:mm[:ss]] west of Greenwich, hh <= 24. Times of day
 * are the same with hh <= 167 and may be negative (v3). Dates are Jn
 * (1..365, Feb 29 never counted), n (0..365, zero-based, Feb 29 counted)
 * or Mm.w.d (day d, 0 = Sunday, of week w, 5 = last, of month m).
 */

static const char *parse_tz_name(const char *s)
{
	const char *p = s;

	if (*p == '<') {
		for (p++; (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			  (*p >= '0' && *p <= '9') || *p == '+' || *p == '-';
		     p++)
			;
		if (*p != '>' || p - s - 1 < 3)
			return NULL;
		return p + 1;
	}
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
		p++;
	return p - s < 3 ? NULL : p;
}

/* Unsigned decimal of 1..max_digits digits, at most max. */
static const char *parse_num(const char *s, unsigned max_digits, unsigned max,
			     unsigned *out)
{
	unsigned v = 0, k = 0;

	while (*s >= '0' && *s <= '9' && k < max_digits) {
		v = v * 10 + (unsigned)(*s++ - '0');
		k++;
	}
	if (k == 0 || v > max || (*s >= '0' && *s <= '9'))
		return NULL;
	*out = v;
	return s;
}

/* [+-]hh[:mm[:ss]], hh <= max_h. Returns seconds as written (POSIX sign). */
static const char *parse_hms(const char *s, unsigned max_h, int32_t *out)
{
	unsigned h, m = 0, sec = 0;
	bool neg = false;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	s = parse_num(s, 3, max_h, &h);
	if (s != NULL && *s == ':') {
		s = parse_num(s + 1, 2, 59, &m);
		if (s != NULL && *s == ':')
			s = parse_num(s + 1, 2, 59, &sec);
	}
	if (s == NULL)
		return NULL;
	const int32_t v = (int32_t)(h * 3600 + m * 60 + sec);
	*out = neg ? -v : v;
	return s;
}

static const char *parse_tz_date(const char *s, struct cdr__tz_date *dt)
{
	if (*s == 'J') {
		dt->kind = 'J';
		s = parse_num(s + 1, 3, 365, &dt->n);
		if (s != NULL && dt->n == 0)
			return NULL;
	} else if (*s == 'M') {
		dt->kind = 'M';
		s = parse_num(s + 1, 2, 12, &dt->m);
		if (s == NULL || dt->m == 0 || *s != '.')
			return NULL;
		s = parse_num(s + 1, 1, 5, &dt->w);
		if (s == NULL || dt->w == 0 || *s != '.')
			return NULL;
		s = parse_num(s + 1, 1, 6, &dt->d);
	} else {
		dt->kind = 'D';
		s = parse_num(s, 3, 365, &dt->n);
	}
	if (s == NULL)
		return NULL;
	dt->secs = 2 * 3600;
	if (*s == '/')
		s = parse_hms(s + 1, 167, &dt->secs);
	return s;
}

/* Returns 0, or -EINVAL if s is not a TZ string this module understands. */
static int parse_tz_string(const char *s, struct cdr__tz_rule *r)
{
	int32_t v;

	memset(r, 0, sizeof(*r));
	s = parse_tz_name(s);
	if (s == NULL || (s = parse_hms(s, 24, &v)) == NULL)
		return -EINVAL;
	r->std_off = -v;
	if (*s == '\0')
		return 0;

	s = parse_tz_name(s);
	if (s == NULL)
		return -EINVAL;
	r->dst_off = r->std_off + 3600; /* POSIX: an hour ahead unless given */
	if (*s != ',' && *s != '\0') {
		if ((s = parse_hms(s, 24, &v)) == NULL)
			return -EINVAL;
		r->dst_off = -v;
	}
	/*
	 * No rule given: POSIX leaves it to the implementation; tzcode uses
	 * the US rule since 2007, and so do we. zic always writes one.
	 */
	const char *rules = *s == '\0' ? ",M3.2.0,M11.1.0" : s;
	if (*rules != ',' || (rules = parse_tz_date(rules + 1, &r->start)) == NULL ||
	    *rules != ',' || (rules = parse_tz_date(rules + 1, &r->end)) == NULL ||
	    *rules != '\0')
		return -EINVAL;
	/* An equal dst offset never changes anything: treat as standard. */
	r->has_dst = r->dst_off != r->std_off;
	return 0;
}

/* ---- 4. Footer rule evaluation -------------------------------------- */

/* Day number of a rule date in year y (the local calendar). */
static int64_t rule_day(const struct cdr__tz_date *dt, int64_t y)
{
	const int64_t jan1 = cdr__days_from_civil(y, 1, 1);

	switch (dt->kind) {
	case 'J':
		/* J60 is March 1 in every year: Feb 29 is not counted. */
		return jan1 + dt->n - 1 + (cdr__is_leap(y) && dt->n >= 60);
	case 'D':
		return jan1 + dt->n;
	default: {
		const int64_t first = cdr__days_from_civil(y, dt->m, 1);
		/* POSIX counts weekdays from Sunday, civil.h from Monday. */
		const unsigned want = (dt->d + 6) % 7;
		const unsigned delta = (want + 7 - cdr__weekday(first)) % 7;
		int64_t day = first + delta + 7 * (int64_t)(dt->w - 1);
		const int64_t end = first + cdr__days_in_month(y, dt->m);

		while (day >= end) /* week 5 means the last one */
			day -= 7;
		return day;
	}
	}
}

/*
 * The two changes of year y. Daylight saving starts at a local time
 * reckoned in standard time and ends at one reckoned in daylight time,
 * since each is read off the clock in force just before it.
 */
static void rule_year(const struct cdr__tz_rule *r, int64_t y,
		      struct cdr__tz_event ev[2])
{
	ev[0].t = rule_day(&r->start, y) * CDR_TZ_DAY + r->start.secs - r->std_off;
	ev[0].dst = true;
	ev[1].t = rule_day(&r->end, y) * CDR_TZ_DAY + r->end.secs - r->dst_off;
	ev[1].dst = false;
}

/*
 * Order by instant; at equal instants the end of daylight saving first, so
 * that "end of year y == start of year y+1" (the v3 way of writing
 * permanent daylight saving, e.g. "EST5EDT,0/0,J365/25") leaves it on.
 */
static bool event_before(const struct cdr__tz_event *a,
			 const struct cdr__tz_event *b)
{
	return a->t < b->t || (a->t == b->t && !a->dst && b->dst);
}

static void sort_events(struct cdr__tz_event *ev, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		const struct cdr__tz_event x = ev[i];
		size_t j = i;

		for (; j > 0 && event_before(&x, &ev[j - 1]); j--)
			ev[j] = ev[j - 1];
		ev[j] = x;
	}
}

/* The sorted changes of years y0 .. y0 + years - 1 (years <= 6). */
static size_t rule_window(const struct cdr__tz_rule *r, int64_t y0,
			  unsigned years, struct cdr__tz_event ev[12])
{
	for (unsigned k = 0; k < years; k++)
		rule_year(r, y0 + k, ev + 2 * (size_t)k);
	sort_events(ev, 2 * (size_t)years);
	return 2 * (size_t)years;
}

static int64_t clamp_t(int64_t t)
{
	return t > CDR_TZ_T_MAX ? CDR_TZ_T_MAX : t < -CDR_TZ_T_MAX ? -CDR_TZ_T_MAX : t;
}

/*
 * Where a year's changes can fall. A rule date is a day of year y, or
 * Jan 1 of y+1 for day 365 of a common year; its time of day reaches
 * +-167 h (v3) and the offset subtracted from it +-25 h. So every change
 * of year y lies within ten days of [Jan 1 of y, Jan 1 of y+1].
 */
#define CDR_TZ_SPILL (10 * (int64_t)CDR_TZ_DAY)

static int64_t jan1(int64_t y)
{
	return cdr__days_from_civil(y, 1, 1) * CDR_TZ_DAY;
}

/*
 * Offset under the rule at t, t in year y. Each year's changes keep within
 * CDR_TZ_SPILL of it, so years y-2 .. y+1 hold the last change at or
 * before t (a whole year of changes lies between it and anything older)
 * and every later year's changes come after t. Costs 8 date computations
 * and a sort of 8; only instants past the table come here.
 */
static int32_t rule_offset(const struct cdr__tz_rule *r, int64_t t)
{
	struct cdr__tz_event ev[12];
	bool dst = false;

	if (!r->has_dst)
		return r->std_off;
	t = clamp_t(t);
	const size_t n = rule_window(r, year_of(t) - 2, 4, ev);
	for (size_t i = 0; i < n && ev[i].t <= t; i++)
		dst = ev[i].dst;
	return dst ? r->dst_off : r->std_off;
}

/*
 * First change of offset under the rule strictly after t. Changes at one
 * instant count together: permanent daylight saving ends and restarts at
 * the same instant, which is no change. A window of six years y0..y0+5
 * knows every change between Jan 1 of y0 and of y0+6, less the spill, so
 * only those are judged; windows step three years. A real rule changes
 * every year and the first window answers; the loop only runs on for
 * rules whose changes cancel in some years, and gives up after a 400-year
 * calendar cycle (rule_settle has made sure a rule with has_dst changes
 * at least once in every cycle).
 */
static int64_t rule_next(const struct cdr__tz_rule *r, int64_t t)
{
	struct cdr__tz_event ev[12];

	if (!r->has_dst || t >= CDR_TZ_T_MAX)
		return INT64_MAX;
	t = clamp_t(t);
	const int32_t cur = rule_offset(r, t);
	const int64_t y = year_of(t);
	for (int64_t y0 = y - 2; y0 <= y + 400; y0 += 3) {
		const size_t n = rule_window(r, y0, 6, ev);
		const int64_t lo = jan1(y0) + CDR_TZ_SPILL, hi = jan1(y0 + 6) - CDR_TZ_SPILL;

		for (size_t i = 0; i < n;) {
			const int64_t at = ev[i].t;

			while (i < n && ev[i].t == at)
				i++;
			const int32_t after = ev[i - 1].dst ? r->dst_off : r->std_off;
			if (at > t && at > lo && at < hi && after != cur)
				return at;
		}
	}
	return INT64_MAX;
}

/*
 * Turn a rule whose changes never change the offset (permanent daylight
 * saving written as two changes at one instant) into a plain offset, so
 * that lookups need not search for changes that never come. The calendar
 * repeats every 400 years, so one cycle decides.
 */
static void rule_settle(struct cdr__tz_rule *r)
{
	if (r->has_dst && rule_next(r, jan1(2000)) == INT64_MAX) {
		r->std_off = rule_offset(r, jan1(2000));
		r->dst_off = r->std_off;
		r->has_dst = false;
	}
}

/* ---- 5. TZif parsing ------------------------------------------------ */

/*
 * RFC 8536 layout: a 44-byte header ("TZif", version, 15 reserved bytes,
 * six big-endian counts), then a data block of 32-bit times; version 2 and
 * later repeat header and block with 64-bit times and end with a footer
 * "\n<POSIX TZ string>\n". Readers of v2+ skip the first block.
 */

#define TZIF_HDR 44

struct tzif_counts {
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

/* A validated TZif file, as pointers into the caller's buffer. */
struct tzif_view {
	unsigned tsize;		   /* 4 (v1 block) or 8 */
	uint32_t timecnt, typecnt;
	const unsigned char *times; /* timecnt times of tsize bytes */
	const unsigned char *idx;   /* timecnt type indices */
	const unsigned char *types; /* typecnt records of 6 bytes */
	bool has_footer;
	char footer[CDR_TZ_MAX_FOOTER + 1];
};

static int64_t view_time(const struct tzif_view *v, uint32_t i)
{
	const unsigned char *p = v->times + (size_t)i * v->tsize;

	return v->tsize == 4 ? s32(be32(p)) : s64(be64(p));
}

static int32_t view_type_off(const struct tzif_view *v, uint32_t k)
{
	return s32(be32(v->types + 6 * (size_t)k));
}

/* Header at p (len bytes left): 0, or -EINVAL with a reason. */
static int parse_header(const unsigned char *p, size_t len, char *version,
			struct tzif_counts *c, const char **why)
{
	if (len < TZIF_HDR || memcmp(p, "TZif", 4) != 0) {
		*why = len < TZIF_HDR && len >= 4 && memcmp(p, "TZif", 4) == 0 ?
			       "truncated header" : "not a TZif file";
		return -EINVAL;
	}
	*version = (char)p[4];
	/* RFC 8536: readers treat versions past the known ones as the last. */
	if (*version != '\0' && *version < '2') {
		*why = "unknown TZif version";
		return -EINVAL;
	}
	c->isutcnt = be32(p + 20);
	c->isstdcnt = be32(p + 24);
	c->leapcnt = be32(p + 28);
	c->timecnt = be32(p + 32);
	c->typecnt = be32(p + 36);
	c->charcnt = be32(p + 40);
	return 0;
}

static uint64_t block_size(const struct tzif_counts *c, unsigned tsize)
{
	return (uint64_t)c->timecnt * (tsize + 1) + (uint64_t)c->typecnt * 6 +
	       c->charcnt + (uint64_t)c->leapcnt * (tsize + 4) + c->isstdcnt +
	       c->isutcnt;
}

/* Check a data block and point the view at it. */
static int parse_block(const unsigned char *p, size_t len,
		       const struct tzif_counts *c, unsigned tsize,
		       struct tzif_view *v, const char **why)
{
	/*
	 * Leap-second ("right/") files count time with leap seconds; CDR
	 * instants are POSIX seconds, so such a zone would be off by ~27 s.
	 * Checked first so the message says so whatever else is wrong.
	 */
	if (c->leapcnt != 0) {
		*why = "leap-second zones are not supported";
		return -EINVAL;
	}
	if (block_size(c, tsize) > len) {
		*why = "truncated data";
		return -EINVAL;
	}
	if (c->typecnt == 0 || c->charcnt == 0 ||
	    (c->isutcnt != 0 && c->isutcnt != c->typecnt) ||
	    (c->isstdcnt != 0 && c->isstdcnt != c->typecnt)) {
		*why = "inconsistent counts";
		return -EINVAL;
	}
	v->tsize = tsize;
	v->timecnt = c->timecnt;
	v->typecnt = c->typecnt;
	v->times = p;
	v->idx = p + (size_t)c->timecnt * tsize;
	v->types = v->idx + c->timecnt;

	for (uint32_t i = 0; i < c->timecnt; i++) {
		const int64_t t = view_time(v, i);

		if (t < -CDR_TZ_FILE_T_MAX || t > CDR_TZ_FILE_T_MAX ||
		    (i > 0 && t <= view_time(v, i - 1))) {
			*why = "transition times out of order or range";
			return -EINVAL;
		}
		if (v->idx[i] >= c->typecnt) {
			*why = "bad time type index";
			return -EINVAL;
		}
	}
	for (uint32_t k = 0; k < c->typecnt; k++) {
		const unsigned char *ty = v->types + 6 * (size_t)k;
		const int32_t off = view_type_off(v, k);

		if (off < -CDR_TZ_MAX_OFF || off > CDR_TZ_MAX_OFF || ty[4] > 1 ||
		    ty[5] >= c->charcnt) {
			*why = "bad local time type";
			return -EINVAL;
		}
	}
	return 0;
}

/* Validate a whole file and fill the view: 0, or -EINVAL with a reason. */
static int parse_tzif(const unsigned char *p, size_t len, struct tzif_view *v,
		      const char **why)
{
	struct tzif_counts c;
	char version;
	int rc;

	memset(v, 0, sizeof(*v));
	if ((rc = parse_header(p, len, &version, &c, why)) != 0)
		return rc;
	if (version == '\0')
		return parse_block(p + TZIF_HDR, len - TZIF_HDR, &c, 4, v, why);

	const uint64_t skip = TZIF_HDR + block_size(&c, 4);
	if (skip > len) {
		*why = "truncated data";
		return -EINVAL;
	}
	p += skip;
	len -= (size_t)skip;
	char version2;
	if ((rc = parse_header(p, len, &version2, &c, why)) != 0) {
		if (len < TZIF_HDR)
			*why = "truncated data";
		return rc;
	}
	p += TZIF_HDR;
	len -= TZIF_HDR;
	if ((rc = parse_block(p, len, &c, 8, v, why)) != 0)
		return rc;
	p += block_size(&c, 8);
	len -= (size_t)block_size(&c, 8);

	/* The footer: "\n" TZ string "\n"; an empty string means no rule. */
	assert(p != NULL); /* it points into the file's bytes */
	const unsigned char *nl = len > 0 ? memchr(p + 1, '\n', len - 1) : NULL;
	if (len == 0 || p[0] != '\n' || nl == NULL) {
		*why = "missing or truncated footer";
		return -EINVAL;
	}
	const size_t flen = (size_t)(nl - (p + 1));
	if (flen > CDR_TZ_MAX_FOOTER || memchr(p + 1, '\0', flen) != NULL) {
		*why = "bad footer";
		return -EINVAL;
	}
	memcpy(v->footer, p + 1, flen);
	v->footer[flen] = '\0';
	v->has_footer = flen > 0;
	return 0;
}

/* Read a whole regular file. 0, or -errno with *why for -EINVAL. */
static int read_file(const char *path, unsigned char **buf, size_t *len,
		     const char **why)
{
	struct stat st;
	int rc = 0;

	/* O_NONBLOCK: a FIFO planted under TZDIR must not hang the load. */
	const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -ENOENT; /* "Europe" is a directory, not a zone */
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CDR_TZ_MAX_FILE) {
		*why = "not a TZif file";
		rc = -EINVAL;
		goto out;
	}
	const size_t size = (size_t)st.st_size;
	*buf = malloc(size + 1);
	if (*buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*len = 0;
	/* Read to EOF rather than trusting st_size: the file may shrink. */
	while (*len <= size) {
		const ssize_t r = read(fd, *buf + *len, size + 1 - *len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		*len += (size_t)r;
	}
	if (rc == 0 && *len > size) {
		*why = "file changed while reading";
		rc = -EINVAL;
	}
	if (rc != 0) {
		free(*buf);
		*buf = NULL;
	}
out:
	close(fd);
	return rc;
}

/* ---- 6. Building the table; load and free --------------------------- */

/* A table under construction inside the final allocation. */
struct table {
	int64_t *trans;
	int32_t *offs;
	size_t n;
	int32_t before;
};

/*
 * Append a change, keeping the invariants: no entry that leaves the offset
 * as it was, and one entry per instant (the later of two changes at one
 * instant wins, and may cancel the entry altogether).
 */
static void table_push(struct table *tb, int64_t t, int32_t off)
{
	const int32_t last = tb->n > 0 ? tb->offs[tb->n - 1] : tb->before;

	if (off == last)
		return;
	if (tb->n > 0 && tb->trans[tb->n - 1] == t) {
		const int32_t prev = tb->n > 1 ? tb->offs[tb->n - 2] : tb->before;

		tb->offs[tb->n - 1] = off;
		if (off == prev)
			tb->n--;
		return;
	}
	tb->trans[tb->n] = t;
	tb->offs[tb->n] = off;
	tb->n++;
}

/*
 * Make the zone from a validated view and its footer rule (NULL: none, the
 * last transition's type holds forever, as in v1 files).
 *
 * RFC 8536 semantics: time type 0 before the first transition; the footer
 * after the last one, or at all times if there are no transitions. The
 * footer's changes are laid into the table from the year before the last
 * transition to the start of CDR_TZ_TABLE_YEAR (~800 events at most, all
 * at load); later instants go to the rule on the fly.
 */
static int build(cdr__tz **out, const char *name, const struct tzif_view *v,
		 const struct cdr__tz_rule *rule)
{
	struct cdr__tz_event *ev = NULL;
	size_t nev = 0;
	int64_t from = INT64_MIN, limit = INT64_MAX;
	const int64_t last = v->timecnt > 0 ? view_time(v, v->timecnt - 1) : 0;

	if (rule != NULL && rule->has_dst) {
		const int64_t last_year =
			v->timecnt > 0 ? year_of(last) : CDR_TZ_RULE_FROM_YEAR;
		const int64_t y0 = last_year - 1 > CDR_TZ_RULE_FROM_YEAR ?
					   last_year - 1 : CDR_TZ_RULE_FROM_YEAR;
		const int64_t y1 = last_year + 2 > CDR_TZ_TABLE_YEAR ?
					   last_year + 2 : CDR_TZ_TABLE_YEAR;

		from = v->timecnt > 0 ? last : jan1(y0);
		limit = jan1(y1);
		nev = 2 * (size_t)(y1 - y0 + 1);
		ev = malloc(nev * sizeof(*ev));
		if (ev == NULL)
			return -ENOMEM;
		for (int64_t y = y0; y <= y1; y++)
			rule_year(rule, y, ev + 2 * (size_t)(y - y0));
		/* Already sorted but for neighbours: insertion sort is linear. */
		sort_events(ev, nev);
	}

	/* One allocation: the struct, trans[], offs[], then the name. */
	const size_t cap = v->timecnt + 1 + nev;
	const size_t namelen = strlen(name);
	cdr__tz *tz = malloc(sizeof(*tz) + cap * (sizeof(int64_t) + sizeof(int32_t)) +
			     namelen + 1);
	if (tz == NULL) {
		free(ev);
		return -ENOMEM;
	}
	/* sizeof(*tz) is a multiple of its int64_t alignment, so is tz + 1. */
	int64_t *trans = (int64_t *)(void *)(tz + 1);
	int32_t *offs = (int32_t *)(void *)(trans + cap);
	char *name_copy = (char *)(offs + cap);
	struct table tb = {trans, offs, 0, view_type_off(v, 0)};

	for (uint32_t i = 0; i < v->timecnt; i++)
		table_push(&tb, view_time(v, i), view_type_off(v, v->idx[i]));
	if (rule != NULL) {
		/*
		 * zic writes footers that agree with the last transition; if one
		 * does not, the footer wins from that transition on, as the RFC
		 * says, so the table and the rule never disagree.
		 */
		if (v->timecnt == 0)
			tb.before = rule_offset(rule, from);
		else
			table_push(&tb, last, rule_offset(rule, last));
		for (size_t i = 0; i < nev; i++) {
			if (ev[i].t > from && ev[i].t < limit)
				table_push(&tb, ev[i].t,
					   ev[i].dst ? rule->dst_off : rule->std_off);
		}
	}
	free(ev);

	memcpy(name_copy, name, namelen + 1);
	tz->trans = trans;
	tz->offs = offs;
	tz->name = name_copy;
	tz->n = tb.n;
	tz->before = tb.before;
	tz->limit = limit;
	if (rule != NULL)
		tz->rule = *rule;
	else
		memset(&tz->rule, 0, sizeof(tz->rule));
	*out = tz;
	return 0;
}

/* Read, check and build one zone file; messages as cdr__tz_load. */
static int load_file(cdr__tz **out, const char *name, char *err, size_t errlen)
{
	char shown[96], path[4096], shown_path[160];
	const char *why = "not a TZif file";
	const char *dir = getenv("TZDIR");
	unsigned char *buf = NULL;
	size_t len = 0;
	struct tzif_view view;
	struct cdr__tz_rule rule;

	printable(shown, sizeof(shown), name);
	if (dir == NULL || dir[0] == '\0')
		dir = "/usr/share/zoneinfo";
	const int plen = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (plen < 0 || (size_t)plen >= sizeof(path)) {
		set_err(err, errlen, "time zone '%s': path too long", shown);
		return -ENAMETOOLONG;
	}
	printable(shown_path, sizeof(shown_path), path);

	/* The view points into buf: it lives until build() has run. */
	int rc = read_file(path, &buf, &len, &why);
	if (rc == 0)
		rc = parse_tzif(buf, len, &view, &why);
	if (rc == 0 && view.has_footer && parse_tz_string(view.footer, &rule) != 0) {
		free(buf);
		printable(shown_path, sizeof(shown_path), view.footer);
		set_err(err, errlen, "time zone '%s': bad POSIX TZ string '%s'",
			shown, shown_path);
		return -EINVAL;
	}
	if (rc == 0 && view.has_footer)
		rule_settle(&rule);
	if (rc == 0)
		rc = build(out, name, &view, view.has_footer ? &rule : NULL);
	free(buf);

	switch (rc) {
	case 0:
		break;
	case -ENOENT:
	case -ENOTDIR: /* "Europe/Berlin/x" */
		set_err(err, errlen, "unknown time zone '%s'", shown);
		rc = -ENOENT;
		break;
	case -EINVAL:
		set_err(err, errlen, "time zone '%s': %s: %s", shown, shown_path, why);
		break;
	case -ENOMEM:
		set_err(err, errlen, "out of memory loading time zone '%s'", shown);
		break;
	default:
		set_err(err, errlen, "time zone '%s': %s: %s", shown, shown_path,
			strerror(-rc));
		break;
	}
	return rc;
}

int cdr__tz_load(cdr__tz **out, const char *name, char *err, size_t errlen)
{
	char shown[96];

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (name == NULL || !name_ok(name)) {
		set_err(err, errlen, "invalid time zone name '%s'",
			name == NULL ? "(null)" : printable(shown, sizeof(shown), name));
		return -EINVAL;
	}
	if (is_utc_name(name)) {
		/* One type of offset 0, no transitions, no rule. */
		static const unsigned char utc_type[6] = {0, 0, 0, 0, 0, 0};
		const struct tzif_view utc = {.tsize = 8, .typecnt = 1, .types = utc_type};
		const int rc = build(out, name, &utc, NULL);

		if (rc != 0)
			set_err(err, errlen, "out of memory loading time zone '%s'", name);
		return rc;
	}
	return load_file(out, name, err, errlen);
}

void cdr__tz_free(cdr__tz *tz)
{
	free(tz); /* one allocation, see build() */
}

const char *cdr__tz_name(const cdr__tz *tz)
{
	return tz->name;
}

/* ---- 7. Lookups ----------------------------------------------------- */

/* Index of the first transition after t (n if none). O(log n). */
static size_t first_after(const cdr__tz *tz, int64_t t)
{
	size_t lo = 0, hi = tz->n;

	while (lo < hi) {
		const size_t mid = lo + (hi - lo) / 2;

		if (tz->trans[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int32_t cdr__tz_offset_at(const cdr__tz *tz, int64_t utc)
{
	if (utc >= tz->limit)
		return rule_offset(&tz->rule, utc);
	const size_t i = first_after(tz, utc);
	return i == 0 ? tz->before : tz->offs[i - 1];
}

int64_t cdr__tz_next_change(const cdr__tz *tz, int64_t utc)
{
	if (utc >= tz->limit)
		return rule_next(&tz->rule, utc);
	const size_t i = first_after(tz, utc);
	if (i < tz->n)
		return tz->trans[i];
	/* Past the table's last change: the rule's first one from limit on. */
	return tz->limit == INT64_MAX ? INT64_MAX : rule_next(&tz->rule, tz->limit - 1);
}

/*
 * Every instant u with u + offset(u) == local lies in [local - MAX_OFF,
 * local + MAX_OFF], so walk the offset's constant stretches across that
 * window, earliest first. A stretch [a, b) with offset o holds a solution
 * iff a <= local - o < b; the first one found is the earliest, which is
 * the fold rule. If the candidate of one stretch lies at or past its end
 * and the next stretch's lies before its start, local was skipped: a gap,
 * and the previous stretch's offset shifts it forward by the gap's length.
 * Usually the window holds no change: two binary searches.
 */
int64_t cdr__tz_local_to_utc(const cdr__tz *tz, int64_t local)
{
	local = clamp_t(local);
	int64_t a = local - CDR_TZ_MAX_OFF;
	int32_t o = cdr__tz_offset_at(tz, a);

	for (;;) {
		const int64_t b = cdr__tz_next_change(tz, a);
		const int64_t u = local - o;

		if (u < b) /* u >= a: see below */
			return u;
		if (b > local + CDR_TZ_MAX_OFF)
			break; /* cannot happen with offsets within MAX_OFF */
		const int32_t next = cdr__tz_offset_at(tz, b);
		if (local - next < b)
			return u; /* gap at b: keep the offset before it */
		/* The next stretch's candidate is >= its start b = a. */
		a = b;
		o = next;
	}
	return local - o;
}

/* ---- 8. Windows ----------------------------------------------------- */

/*
 * local_to_utc, read off the loop above: stretch i (offset o_i, ending at
 * b_i, followed by o_{i+1}) answers local - o_i exactly when local is below
 * T_i = b_i + max(o_i, o_{i+1}) (its own candidate lies in it, or the gap
 * at b_i shifts the time forward with o_i), and the first such stretch
 * from the one holding local - MAX_OFF wins. A stretch ending at or before
 * lo has T <= lo + MAX_OFF, so for local >= lo + MAX_OFF none before the
 * window can win; the window's last stretch ends at or after hi, so its T
 * is at least hi - MAX_OFF and for local below that it wins if no earlier
 * one does. Hence the local range [lo + MAX_OFF, hi - MAX_OFF), and the
 * first i with local < lend[i] = T_i.
 */
void cdr__tz_win_init(cdr__tz_win *w, const cdr__tz *tz, int64_t from,
		      int64_t to)
{
	unsigned n = 0;
	from = clamp_t(from);
	to = clamp_t(to);
	int64_t t = from;
	int32_t o = cdr__tz_offset_at(tz, from);

	w->tz = tz;
	w->lo = from;
	for (;;) {
		const int64_t b = cdr__tz_next_change(tz, t);
		w->off[n] = o;
		if (b >= to || n == CDR_TZ_WIN_MAX - 1) {
			w->hi = b < to ? b : to;
			w->end[n] = w->lend[n] = INT64_MAX;
			n++;
			break;
		}
		w->end[n] = b;
		t = b;
		o = cdr__tz_offset_at(tz, b);
		w->lend[n] = b + (w->off[n] > o ? w->off[n] : o);
		n++;
	}
	w->llo = w->lo + CDR_TZ_MAX_OFF;
	w->lhi = w->hi - CDR_TZ_MAX_OFF;
	if (w->lhi < w->llo) /* too short to answer local times */
		w->lhi = w->llo;
}
