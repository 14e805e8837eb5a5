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
 * A well-formed native line takes a faster road: one walk that frames,
 * checks and converts every field (the one-walk path), which gives up on
 * anything unusual and leaves the verdict to the checked path. Both read
 * words of 8 bytes where a field holds them (the words section).
 *
 * Sections: words - start time forms - start_format patterns - the fields
 * - the one-walk path - the chunk walk - the native line.
 */
#include <string.h>

#include "civil.h"
#include "format.h"

#define NCOLS 7
#define ID_MAX 64
#define NUMBER_MAX 32 /* digits of a subscriber number */
#define QTY_LIMIT 999999999999ULL /* duration and volume are < 10^12 */
#define UNIX_MAX 253402300799LL	  /* 9999-12-31T23:59:59Z */

/* ---- words ----------------------------------------------------------- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HAVE_FAST 1
#define FAST_NO (-1)

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#define NIBS 0x0F0F0F0F0F0F0F0FULL

static inline uint64_t load8(const char *s)
{
	uint64_t x;
	memcpy(&x, s, 8);
	return x;
}

/* Bytes of x equal to c: the lowest flagged byte is exact (the zero-byte
 * test's borrow can flag bytes above a match, never below). */
static inline uint64_t bytes_eq(uint64_t x, unsigned char c)
{
	uint64_t y = x ^ (ONES * c);
	return (y - ONES) & ~y & HIGHS;
}

/* Bytes of x (restricted to the bytes of `mask`) that are not ASCII
 * digits: a digit is 0x3_ with a low nibble that takes +6 without
 * leaving 0x3_. Only a non-digit (>= 0xFA) carries into the byte above,
 * so the lowest flagged byte is exact; zero means all are digits. */
static inline uint64_t non_digits(uint64_t x, uint64_t mask)
{
	const uint64_t hi = 0xF0F0F0F0F0F0F0F0ULL & mask,
		       three = 0x3030303030303030ULL & mask;
	return ((x & hi) ^ three) |
	       (((x + (0x0606060606060606ULL & mask)) & hi) ^ three);
}

static inline unsigned first_byte(uint64_t flags)
{
	return (unsigned)__builtin_ctzll(flags) >> 3;
}

/* The first r (0..8) digits of x as nibbles (digit + 1), the first digit
 * highest: the packing of cdr__rec.subk. Bytes are put most significant
 * first and then merged pairwise into nibbles, bytes, half-words. */
static inline uint64_t pack_digits(uint64_t x, unsigned r)
{
	uint64_t y = __builtin_bswap64((x & NIBS) + ONES);
	y = (y | y >> 4) & 0x00FF00FF00FF00FFULL;
	y = (y | y >> 8) & 0x0000FFFF0000FFFFULL;
	y = (y | y >> 16) & 0xFFFFFFFFULL;
	return y >> (4 * (8 - r));
}

/* Per byte b of digit values: b * 10 + the next byte's, so byte i of the
 * result is the two-digit number at i, i + 1 (at most 165: no carries). */
static inline uint64_t pairs(uint64_t x)
{
	uint64_t v = x & NIBS;
	return v * 10 + (v >> 8);
}

#define BYTE(x, i) ((unsigned)((x) >> (8 * (i))) & 0xFF)

/* "voice,", "sms,", "data," read as little-endian words. */
#define W_VOICE 0x2C6563696F76ULL
#define W_SMS 0x2C736D73ULL
#define W_DATA 0x2C61746164ULL

/* The last month a thread's stamps named: its word `YYYY-MM-` (checked
 * when it was taken), its first day and its length. A file's records
 * nearly all fall in one month, so a match spares the year and month and
 * the calendar arithmetic. Per thread, so readers never share it; `valid`
 * because any 8 bytes may be a line's. */
static _Thread_local struct {
	uint64_t word;
	int64_t first_day;
	unsigned days;
	int valid;
} month_memo;

/*
 * The stamp's seconds from its words a = YYYY-MM-, b = DD?HH:MM and
 * c = HH:MM:SS, once the framing around them is checked: the month
 * through month_memo, then the day and time. The time of day is one
 * multiply: hh (byte 3 of b's digit pairs) and mi (byte 6) moved to bits
 * 0 and 24 and multiplied by 3600 * 2^24 + 60 leave hh * 3600 + mi * 60
 * in bits 24..47 (the rest lands below or above). With minutes and
 * seconds at most 59, that plus ss is below 86400 exactly when hh is at
 * most 23: one compare for the hour. `mmss` (a constant at each caller):
 * the caller has checked the tens of minutes and seconds (at most '5'),
 * so they need no test here. 0 or FAST_NO.
 */
static inline __attribute__((always_inline)) int
stamp_secs(uint64_t a, uint64_t b, uint64_t c, int mmss, int64_t *secs)
{
	if (!month_memo.valid || a != month_memo.word) {
		if (non_digits(a, 0x00FFFF00FFFFFFFFULL) |
		    ((a & 0xFF0000FF00000000ULL) ^ 0x2D00002D00000000ULL))
			return FAST_NO;
		const uint64_t pa = pairs(a);
		const unsigned y = BYTE(pa, 0) * 100 + BYTE(pa, 2),
			       mo = BYTE(pa, 5);
		if (y < 1 || mo - 1 > 11)
			return FAST_NO;
		month_memo.word = a;
		month_memo.first_day = cdr__days_from_civil(y, mo, 1);
		month_memo.days = cdr__days_in_month(y, mo);
		month_memo.valid = 1;
	}
	const uint64_t pb = pairs(b), pc = pairs(c);
	const unsigned d = BYTE(pb, 0), ss = BYTE(pc, 6);
	const uint64_t hm = (pb >> 24) & 0xFF0000FFULL; /* hh, mi << 24 */
	const unsigned sod =
		(unsigned)((hm * ((3600ULL << 24) + 60)) >> 24 & 0xFFFFFF) + ss;
	if (d - 1 >= month_memo.days || sod >= 86400 ||
	    (!mmss && (BYTE(pb, 6) > 59 || ss > 59)))
		return FAST_NO;
	*secs = (month_memo.first_day + d - 1) * 86400 + (int64_t)sod;
	return 0;
}

/*
 * The stamp `YYYY-MM-DD HH:MM:SS` (or 'T'), the 19 bytes at s, as naive
 * local seconds. Accepts only what cdr__parse_datetime accepts, with the
 * same value; 0 or FAST_NO (then that parser decides).
 */
static inline __attribute__((always_inline)) int
fast_stamp(const char *s, int64_t *secs)
{
	/* a = YYYY-MM-, b = DD?HH:MM, c = HH:MM:SS (bytes 11..18) */
	const uint64_t a = load8(s), b = load8(s + 8), c = load8(s + 11);
	const uint64_t sep = b & 0xFF0000ULL;
	if (non_digits(b, 0xFFFF00FFFF00FFFFULL) |
	    non_digits(c, 0xFFFF000000000000ULL) |
	    ((b & 0xFF0000000000ULL) ^ 0x3A0000000000ULL) |
	    ((c & 0x0000FF0000000000ULL) ^ 0x00003A0000000000ULL) |
	    ((sep ^ 0x200000ULL) && (sep ^ 0x540000ULL)))
		return FAST_NO;
	return stamp_secs(a, b, c, 0, secs);
}
#else
#define HAVE_FAST 0
#endif

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
#if HAVE_FAST
		if (n == 19 && !fast_stamp(s, &secs)) { /* the common form */
			r->start_kind = CDR_START_LOCAL;
			r->start = secs;
			return 0;
		}
#endif
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
#if HAVE_FAST
	/* Digits only, a word at a time (the last word overlapping). */
	if (n >= 8) {
		uint64_t nd = 0;
		for (size_t i = 0; i + 8 < n; i += 8)
			nd |= non_digits(load8(s + i), ~0ULL);
		if (!(nd | non_digits(load8(s + n - 8), ~0ULL)))
			return 1;
	}
#endif
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

/* A duration or volume: up to 12 digits are below 10^12 whatever the
 * leading zeros, so only longer spellings need cdr__parse_u64's care. */
static inline int qty(const char *s, size_t n, uint64_t *v)
{
	if (n == 0 || n > 12)
		return cdr__parse_u64(s, n, QTY_LIMIT, v);
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(unsigned char)s[i] - '0';
		if (d > 9)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

/*
 * A subscriber number (1..NUMBER_MAX digits) packed as the subscriber table
 * keys it (internal.h, cdr__rec.subk): checking the digits and packing them
 * is one walk, so the lookup never reads the number again.
 */
static int pack_number(const char *s, size_t n, uint64_t k[2])
{
	uint64_t a = 0, b = 0;
	if (n == 0)
		return -1;
#if HAVE_FAST
	if (n >= 8 && n <= 16) { /* two words, the second overlapping */
		const uint64_t x = load8(s), y = load8(s + n - 8);
		if (non_digits(x, ~0ULL) | non_digits(y, ~0ULL))
			return -1;
		a = pack_digits(x, 8);
		if (n > 8)
			a = a << (4 * (n - 8)) |
			    pack_digits(y >> (8 * (16 - n)), (unsigned)(n - 8));
		k[0] = a;
		k[1] = 0;
		return 0;
	}
#endif
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(unsigned char)s[i] - '0';
		if (d > 9)
			return -1;
		if (i < 16)
			a = a << 4 | (d + 1);
		else
			b = b << 4 | (d + 1);
	}
	k[0] = a;
	k[1] = b;
	return 0;
}

void cdr__pack_key(const char *s, size_t n, uint64_t k[2])
{
#if HAVE_FAST
	if (n >= 8 && n <= 16) { /* pack_number's words, unchecked */
		const uint64_t x = load8(s), y = load8(s + n - 8);
		k[0] = n > 8 ? pack_digits(x, 8) << (4 * (n - 8)) |
				       pack_digits(y >> (8 * (16 - n)),
						   (unsigned)(n - 8))
			     : pack_digits(x, 8);
		k[1] = 0;
		return;
	}
#endif
	uint64_t a = 0, b = 0;
	for (size_t i = 0; i < n && i < 32; i++) { /* two words of 16 */
		uint64_t d = ((unsigned char)s[i] & 0x0F) + 1u;
		if (i < 16)
			a = a << 4 | d;
		else
			b = b << 4 | d;
	}
	k[0] = a;
	k[1] = b;
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
	if (sn > NUMBER_MAX || pack_number(sub, sn, r->subk))
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

	if (qty(f[5].s, f[5].n, &r->duration))
		return CDR_R_DURATION;
	if (qty(f[6].s, f[6].n, &r->volume))
		return CDR_R_VOLUME;
	return CDR_OK;
}

int cdr__rec_fill(cdr__rec *r, const cdr__field *f, const char *start_format,
		  const cdr__norm *norm, char *nbuf)
{
	return fill(r, f, start_format, norm, nbuf);
}

/* ---- the one-walk path ----------------------------------------------- */

/*
 * Nearly every line of a real file is well formed, and for such a line one
 * walk from left to right settles everything: it frames each field, checks
 * it and converts it as it goes, and packs the subscriber for the table,
 * where the checked path below finds the seven commas first (a memchr each)
 * and then walks every field again. The walk reads 8 bytes at a time where
 * the line holds them: the end of a field is the lowest flagged byte of a
 * word (a comma, or the first byte that is not a digit), and the fixed
 * layout of a start stamp is checked with masks, word by word.
 *
 * It decides nothing about a line it does not fully accept: anything off
 * the common shape (a reject, a field near the end of a short line, a '*'
 * in a destination, a start with an offset, more than 16 digits, ...) gives
 * up with FAST_NO and the checked path decides the reason, so reasons and
 * their order stay that path's alone. What it accepts it fills exactly as
 * the checked path would (tests/test_parse.c compares the two on every
 * mutation of a set of lines; the parse_diff fuzz target holds both to an
 * independent reader of the contract).
 *
 * Lines are not padded: the duplicate check reads lines back into exact
 * buffers, and so do tests and fuzzers; so every wide load first checks
 * that the line has 8 more bytes.
 */
#if HAVE_FAST
/* Offset of the first comma at or after s, or -1 when the line has none:
 * words while the line holds them, then bytes. */
static inline ptrdiff_t comma_at(const char *s, const char *e)
{
	const char *q = s;
	for (; e - q >= 8; q += 8) {
		uint64_t m = bytes_eq(load8(q), ',');
		if (m)
			return q - s + first_byte(m);
	}
	for (; q < e; q++)
		if (*q == ',')
			return q - s;
	return -1;
}

/* Count of leading ASCII digits at s, up to the end of the line. */
static inline ptrdiff_t digit_run(const char *s, const char *e)
{
	const char *q = s;
	for (; e - q >= 8; q += 8) {
		uint64_t nd = non_digits(load8(q), ~0ULL);
		if (nd)
			return q - s + first_byte(nd);
	}
	while (q < e && (unsigned)(unsigned char)*q - '0' <= 9)
		q++;
	return q - s;
}

/* Leading digits at s (all of its first 16 bytes must lie in the line):
 * their count, and their packing. FAST_NO when 16 or more. */
static inline int digits16(const char *s, const char *e, uint64_t *k)
{
	if (e - s < 16)
		return FAST_NO;
	const uint64_t x = load8(s), nd = non_digits(x, ~0ULL);
	if (nd) {
		unsigned r = first_byte(nd);
		*k = pack_digits(x, r);
		return (int)r;
	}
	const uint64_t x2 = load8(s + 8), nd2 = non_digits(x2, ~0ULL);
	if (!nd2)
		return FAST_NO;
	unsigned r = first_byte(nd2);
	*k = pack_digits(x, 8) << (4 * r) | pack_digits(x2, r);
	return (int)(8 + r);
}

/* 1..12 digits (below 10^12 whatever the leading zeros) from *sp, ending
 * at `stop` (a comma) or at e when stop is 0. */
static inline int fast_qty(const char **sp, const char *e, char stop,
			   uint64_t *v)
{
	const char *s = *sp, *f = s;
	uint64_t x = 0;
	unsigned d;
	while (s < e && (d = (unsigned)(unsigned char)*s - '0') <= 9) {
		x = x * 10 + d;
		s++;
	}
	if (s == f || s - f > 12 || (stop ? s == e || *s != stop : s != e))
		return FAST_NO;
	*v = x;
	*sp = s + 1;
	return 0;
}

static inline __attribute__((always_inline)) int
fast_line(const char *p, size_t n, cdr__rec *r)
{
	const char *s = p, *e = p + n;
	ptrdiff_t c = comma_at(s, e);
	if (c <= 0 || c > ID_MAX)
		return FAST_NO;
	r->id = r->key = s;
	r->id_len = r->key_len = (uint32_t)c;
	s += c + 1;

	s += s < e && *s == '+';
	int k = digits16(s, e, &r->subk[0]);
	if (k <= 0 || s[k] != ',')
		return FAST_NO;
	r->subk[1] = 0;
	r->sub = s;
	r->sub_len = (uint32_t)k;
	s += k + 1;

	if (e - s < 8)
		return FAST_NO;
	const uint64_t w = load8(s);
	if ((w & 0xFFFFFFFFFFFFULL) == W_VOICE)
		r->service = CDR_VOICE, s += 6;
	else if ((w & 0xFFFFFFFFULL) == W_SMS)
		r->service = CDR_SMS, s += 4;
	else if ((w & 0xFFFFFFFFFFULL) == W_DATA)
		r->service = CDR_DATA, s += 5;
	else
		return FAST_NO;

	if (e - s < 20 || s[19] != ',' || fast_stamp(s, &r->start))
		return FAST_NO;
	r->start_kind = CDR_START_LOCAL;
	s += 20;

	ptrdiff_t dn;
	if (r->service == CDR_DATA) { /* any text but a comma */
		dn = comma_at(s, e);
		if (dn < 0)
			return FAST_NO;
	} else { /* digits only here; '*' and '#' take the checked path */
		s += s < e && *s == '+';
		dn = digit_run(s, e);
		if (dn == 0 || dn == e - s || s[dn] != ',')
			return FAST_NO;
	}
	r->dest = s;
	r->dest_len = (uint32_t)dn;
	s += dn + 1;

	if (fast_qty(&s, e, ',', &r->duration) ||
	    fast_qty(&s, e, 0, &r->volume))
		return FAST_NO;
	r->line = p;
	r->line_len = (uint32_t)n;
	r->id_line = 0;
	return CDR_OK;
}
#endif

/* ---- the chunk walk -------------------------------------------------- */

/*
 * The one walk again, for a line still in its chunk (run.c's line
 * splitting): it finds the line's end as it goes, so the pass needs no
 * newline search of its own for the lines it accepts. Every field's end
 * is the lowest flagged byte of one 16-byte SSE2 compare at its start (a
 * non-digit for numbers and quantities, a comma or newline for the id and
 * an APN), which checks the field as it frames it; the subscriber is packed
 * from the same 16 bytes, the quantities converted 8 digits at a time.
 * The volume's end must be the line's: '\n', or "\r\n" (the splitter drops
 * that '\r', and so does this: the line excludes it).
 *
 * Like the one walk it decides nothing it does not accept (FAST_NO: the
 * caller finds the line end and parses it the usual way), and what it
 * accepts it fills exactly as the checked path would fill the line up to
 * that newline: no field it accepts can hold a newline, so the line it
 * ends is the one a newline search would end (tests/test_parse.c compares
 * it with the checked path on every mutation, at every offset from the
 * end of the readable bytes). Loads are unaligned and never go past
 * p + WALK_PAD, which must lie within the readable bytes [p, ce).
 */
#if HAVE_FAST && defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>

static inline __m128i ld16(const char *s)
{
	return _mm_loadu_si128((const __m128i *)(const void *)s);
}

/* Bit i: byte i of x is an ASCII digit. Adding 0x80 - '0' takes '0'..'9'
 * to the ten lowest signed bytes (-128..-119) and every other byte above
 * them, so one signed compare tells them apart (two compares and an or,
 * with a register copy each, cost 3 more instructions a use). The digits,
 * not the others: SSE2 has no signed less-or-equal, and the complement of
 * the mask is one scalar not, whose bits from 16 up are set, so the
 * count of leading digits is a ctz with no bit to add. */
static inline unsigned dig16(__m128i x)
{
	const __m128i t = _mm_add_epi8(x, _mm_set1_epi8((char)(0x80 - '0')));
	return (unsigned)_mm_movemask_epi8(
		_mm_cmpgt_epi8(_mm_set1_epi8(-128 + 10), t));
}

/* Bit i: byte i is ',' or '\n' (the end of a text field). */
static inline unsigned delim16(__m128i x)
{
	return (unsigned)_mm_movemask_epi8(
		_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(',')),
			     _mm_cmpeq_epi8(x, _mm_set1_epi8('\n'))));
}

/* Leading digits of the 16 bytes at s: their count (16 when all are). */
static inline unsigned digits_at(const char *s)
{
	return (unsigned)__builtin_ctz(~dig16(ld16(s)));
}

/* Offset of the first ',' or '\n' at s within `max` bytes (a multiple of
 * 16), or max when none. */
static inline unsigned text_at(const char *s, unsigned max)
{
	for (unsigned o = 0; o < max; o += 16) {
		unsigned m = delim16(ld16(s + o));
		if (m)
			return o + (unsigned)__builtin_ctz(m);
	}
	return max;
}

/* The first k (1..16) digits of the 16 bytes x as cdr__rec.subk packs
 * them: each pair of bytes into one (digit + 1 per nibble, the first
 * high), the first pair lowest, byte-swapped so the first digit is the
 * highest nibble. */
static inline uint64_t pack16(__m128i x, unsigned k)
{
	const __m128i v = _mm_add_epi8(_mm_and_si128(x, _mm_set1_epi8(0x0F)),
				       _mm_set1_epi8(1));
	const __m128i t = _mm_and_si128(
		_mm_or_si128(_mm_slli_epi16(v, 4), _mm_srli_epi16(v, 8)),
		_mm_set1_epi16(0xFF));
	const uint64_t u = (uint64_t)_mm_cvtsi128_si64(_mm_packus_epi16(t, t));
	return __builtin_bswap64(u) >> (4 * (16 - k));
}

/* The value of the k (1..8) digits at s: the 8 bytes at s shifted up so
 * the digits are the word's top k bytes (zeros below: leading zeros), then
 * digits paired into bytes, half-words, words. */
static inline uint64_t val8(const char *s, unsigned k)
{
	uint64_t y = (load8(s) << (8 * (8 - k))) & NIBS;
	y = ((y * 2561) >> 8) & 0x00FF00FF00FF00FFULL;
	y = ((y * 6553601) >> 16) & 0x0000FFFF0000FFFFULL;
	return (y * 42949672960001ULL) >> 32;
}

/* 1..12 digits at s (k of them; below 10^12 whatever the zeros). */
static inline uint64_t val12(const char *s, unsigned k)
{
	if (k <= 8)
		return val8(s, k);
	return val8(s, k - 8) * 100000000ULL + val8(s + k - 8, 8);
}

/* 1..12 digits, the usual one alone without the multiplies (a zero
 * volume, most records). */
static inline uint64_t qty_val(const char *s, unsigned k)
{
	return k == 1 ? (uint64_t)(s[0] - '0') : val12(s, k);
}

/*
 * fast_stamp with the 16 bytes at s + 3 ("Y-MM-DD HH:MM:SS") checked by
 * one compare: non-digits exactly where the separators go, and the
 * separators what they must be, and by one more the tens of minutes and
 * seconds (at most '5'); the month word as there. Same values, same
 * verdicts (FAST_NO wherever fast_stamp says it).
 */
static inline __attribute__((always_inline)) int
stamp16(const char *s, int64_t *secs)
{
	const __m128i x = ld16(s + 3);
	const __m128i sep = _mm_setr_epi8(0, '-', 0, 0, '-', 0, 0, ' ', 0, 0,
					  ':', 0, 0, ':', 0, 0);
	const unsigned eq =
		(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, sep)) |
		((unsigned)_mm_movemask_epi8(
			 _mm_cmpeq_epi8(x, _mm_set1_epi8('T'))) &
		 0x80u);
	/* '5' where the tens of minutes and of seconds go, no bound
	 * elsewhere (a signed compare: no byte is above 0x7F) */
	const __m128i tens = _mm_setr_epi8(127, 127, 127, 127, 127, 127, 127,
					   127, 127, 127, 127, '5', 127, 127,
					   '5', 127);
	const unsigned over =
		(unsigned)_mm_movemask_epi8(_mm_cmpgt_epi8(x, tens));
	if ((dig16(x) ^ (0xFFFFu ^ 0x2492u)) | (eq ^ 0x2492u) | over)
		return FAST_NO;
	const uint64_t a = load8(s);
	return stamp_secs(a, load8(s + 8), load8(s + 11), 1, secs);
}

#define WALK_PAD 192 /* bytes from p the walk may load */

static inline __attribute__((always_inline)) int
walk_line(const char *p, const char *ce, cdr__rec *r, const char **nextp)
{
	if (ce - p < WALK_PAD)
		return FAST_NO;
	const char *s = p;
	/* id: 1..64 bytes, up to a comma (80 bytes looked at) */
	unsigned c = text_at(s, 80);
	if (c - 1 >= ID_MAX || s[c] != ',')
		return FAST_NO;
	r->id = r->key = s;
	r->id_len = r->key_len = c;
	s += c + 1;

	/* subscriber: 1..16 digits, packed from the same 16 bytes */
	s += *s == '+';
	const __m128i xs = ld16(s);
	const unsigned k = (unsigned)__builtin_ctz(~dig16(xs));
	if (k == 0 || s[k] != ',')
		return FAST_NO;
	r->subk[0] = pack16(xs, k);
	r->subk[1] = 0;
	r->sub = s;
	r->sub_len = k;
	s += k + 1;

	const uint64_t w = load8(s);
	if ((w & 0xFFFFFFFFFFFFULL) == W_VOICE)
		r->service = CDR_VOICE, s += 6;
	else if ((w & 0xFFFFFFFFULL) == W_SMS)
		r->service = CDR_SMS, s += 4;
	else if ((w & 0xFFFFFFFFFFULL) == W_DATA)
		r->service = CDR_DATA, s += 5;
	else
		return FAST_NO;

	if (s[19] != ',' || stamp16(s, &r->start))
		return FAST_NO;
	r->start_kind = CDR_START_LOCAL;
	s += 20;

	unsigned dn;
	if (r->service == CDR_DATA) { /* any text but a comma: 0..47 bytes */
		dn = text_at(s, 48);
		if (s[dn] != ',') /* also when none: s[48] is in the pad */
			return FAST_NO;
	} else { /* 1..31 digits; '*' and '#' take the checked path */
		s += *s == '+';
		dn = digits_at(s);
		if (dn == 16)
			dn += digits_at(s + 16);
		if (dn == 0 || s[dn] != ',')
			return FAST_NO;
	}
	r->dest = s;
	r->dest_len = dn;
	s += dn + 1;

	unsigned q = digits_at(s);
	if (q - 1 >= 12 || s[q] != ',')
		return FAST_NO;
	r->duration = qty_val(s, q);
	s += q + 1;

	q = digits_at(s);
	if (q - 1 >= 12)
		return FAST_NO;
	const char *end = s + q, *next;
	if (*end == '\n')
		next = end + 1;
	else if (*end == '\r' && end[1] == '\n')
		next = end + 2;
	else
		return FAST_NO;
	r->volume = qty_val(s, q);
	r->line = p;
	r->line_len = (uint32_t)(end - p);
	r->id_line = 0;
	*nextp = next;
	return CDR_OK;
}

int cdr__walk_line(const char *p, const char *ce, cdr__rec *r, size_t *n,
		   const char **next)
{
	const int rc = walk_line(p, ce, r, next);
	if (rc == CDR_OK)
		*n = r->line_len;
	return rc;
}

/* A call a run of lines, not a line: the call and its frame were 25
 * instructions a line. */
int cdr__walk_lines(const char *p, const char *ce, int max, cdr__rec *rec,
		    const char **endp)
{
	int k = 0;
	const char *next;
	while (k < max && walk_line(p, ce, &rec[k], &next) == CDR_OK) {
		k++;
		p = next;
	}
	*endp = p;
	return k;
}
#else
int cdr__walk_line(const char *p, const char *ce, cdr__rec *r, size_t *n,
		   const char **next)
{
	(void)p, (void)ce, (void)r, (void)n, (void)next;
	return -1;
}

int cdr__walk_lines(const char *p, const char *ce, int max, cdr__rec *rec,
		    const char **endp)
{
	(void)ce, (void)max, (void)rec;
	*endp = p;
	return 0;
}
#endif

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

#if HAVE_FAST
static __attribute__((noinline)) int checked_line(const char *p, size_t n,
						 cdr__rec *r)
{
	return native(p, n, r, NULL, NULL);
}
#endif

int cdr__parse_line_checked(const char *p, size_t n, cdr__rec *r)
{
	return native(p, n, r, NULL, NULL);
}

int cdr__parse_line(const char *p, size_t n, cdr__rec *r)
{
#if HAVE_FAST
	/* The checked path is a call of its own, so the one walk keeps a
	 * small frame: the prologue was 18 instructions a line. */
	if (fast_line(p, n, r) == CDR_OK)
		return CDR_OK;
	return checked_line(p, n, r);
#else
	return native(p, n, r, NULL, NULL);
#endif
}

int cdr__parse_line_norm(const char *p, size_t n, cdr__rec *r,
			 const cdr__norm *norm, char *nbuf)
{
	return native(p, n, r, norm, nbuf);
}
