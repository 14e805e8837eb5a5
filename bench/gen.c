/*
 * gen.c - seeded, deterministic benchmark data for cdrate.
 *
 * Writes a complete tariff directory (SPEC section 4) and a set of native
 * CSV CDR files (SPEC section 3) of any size, so that every benchmark run
 * and every machine rates exactly the same bytes: the same arguments give
 * byte-identical output everywhere. That rules out rand(), floating point
 * (libm's log/exp may differ in the last place between C libraries) and
 * anything read from the clock or the locale; all arithmetic below is on
 * integers, and the generator is our own splitmix64.
 *
 * Invariants:
 * - Record i (0-based over the whole data set, before duplicates are mixed
 *   in) is a pure function of (seed, i): its random stream is seeded by
 *   hashing the two. So the number of files only re-partitions the records,
 *   and a duplicate is made by simply generating its source record again.
 * - Every voice/sms destination is built from a row of zones.csv, so none is
 *   rejected no_zone; every caller has a subscribers.csv row active for the
 *   whole of 2026-10; rates.csv has a (plan, service, *, *) row for every
 *   plan and service. With --dups 0 a run over the period 2026-10 should
 *   therefore rate every record.
 *
 * Map of this file:
 *   1. random numbers     splitmix64, bounded draws, per-record streams
 *   2. output             a large buffer flushed with write(2), every error
 *                         checked; hand-written number formatting
 *   3. zones              the prefix table and destination generation
 *   4. subscribers        numbering, accounts, plans, Zipf caller table
 *   5. tariff files       tariff.conf, bands, holidays, plans, rates, ...
 *   6. CDR files          the hot loop
 *   7. main               arguments
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Calendar arithmetic shared with the library (header-only). */
#include "../src/civil.h"

#define GEN_MAX_SUBSCRIBERS 50000000u	/* account ids have 8 digits */
#define GEN_MAX_FILES 1000u		/* part-NNN.csv keeps name order */
#define GEN_MAX_PREFIXES 400000u	/* mobile 7-digit segments run out */
#define GEN_OUT_BUF (1u << 20)		/* see struct out */
#define GEN_REC_MAX 256u		/* longest record line, with margin */

static const char *gen_prog = "gen";

__attribute__((format(printf, 1, 2), noreturn))
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", gen_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p)
		die("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

/* ------------------------------------------------------------------ */
/* 1. Random numbers                                                   */
/* ------------------------------------------------------------------ */

/*
 * splitmix64 (Steele, Lea, Flood 2014): one add and a 64-bit finaliser per
 * draw, passes BigCrush, and any 64-bit value is a valid state, which is
 * what lets every record own a stream seeded by a hash of its index.
 */
struct rng {
	uint64_t s;
};

static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static inline uint64_t rng_next(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15u;
	return mix64(r->s);
}

/* Distinct, reproducible stream per (key, index). */
static inline struct rng rng_at(uint64_t key, uint64_t index)
{
	struct rng r = { mix64(key ^ mix64(index + 0x632be59bd9b4e019u)) };

	return r;
}

/* High 64 bits of a 64x64 product; the same value with or without int128. */
static inline uint64_t mulhi64(uint64_t a, uint64_t b)
{
#ifdef __SIZEOF_INT128__
	return (uint64_t)(((unsigned __int128)a * b) >> 64);
#else
	const uint64_t al = (uint32_t)a, ah = a >> 32;
	const uint64_t bl = (uint32_t)b, bh = b >> 32;
	const uint64_t ll = al * bl, lh = al * bh, hl = ah * bl;
	const uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;

	return ah * bh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

/*
 * Uniform in [0, n), by Lemire's multiply-shift without the rejection step:
 * the bias is below n / 2^64, far under anything a benchmark can notice,
 * and no rejection keeps the number of draws per record fixed.
 */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return mulhi64(rng_next(r), n);
}

/* Uniform in [lo, hi). */
static inline uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
	return lo + rng_below(r, hi - lo);
}

/* Stream keys: one per use, so adding draws to one never shifts another. */
enum {
	KEY_SUBS = 1,	/* subscriber numbering, accounts, plans */
	KEY_PERM,	/* Zipf rank -> subscriber */
	KEY_CDR,	/* record contents */
	KEY_DUP,	/* duplicate sources */
	KEY_OUTAGE,
	KEY_HEAVY,	/* --month packages: packages, dated rows (own stream) */
};

static uint64_t gen_key(uint64_t seed, unsigned use)
{
	return mix64(mix64(seed) + use * 0xd1b54a32d192ed03u);
}

/* ------------------------------------------------------------------ */
/* 2. Output                                                           */
/* ------------------------------------------------------------------ */

/*
 * One output file. Records are formatted straight into buf and the buffer
 * goes out in one write(2) when full. 1 MiB makes the syscall cost
 * invisible (about 16 000 records a write) and fits this machine's L2:
 * 10M records took 0.2 s of system time with it, 0.2-0.9 s with 4 MiB.
 */
struct out {
	int fd;
	char path[4096];
	char *buf;
	size_t len;
	size_t cap;
	uint64_t total;		/* bytes written so far */
};

static void out_open(struct out *o, const char *path)
{
	if (snprintf(o->path, sizeof(o->path), "%s", path) >= (int)sizeof(o->path))
		die("path too long: %s", path);
	o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o->fd < 0)
		die("cannot create %s: %s", path, strerror(errno));
	o->cap = GEN_OUT_BUF;
	o->buf = xcalloc(1, o->cap);
	o->len = 0;
	o->total = 0;
}

static void out_flush(struct out *o)
{
	size_t off = 0;

	while (off < o->len) {
		const ssize_t n = write(o->fd, o->buf + off, o->len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write %s: %s", o->path, strerror(errno));
		}
		if (n == 0)
			die("write %s: wrote nothing", o->path);
		off += (size_t)n;
	}
	o->total += o->len;
	o->len = 0;
}

/* Room for at least n bytes at the returned pointer; commit with out_end. */
static inline char *out_begin(struct out *o, size_t n)
{
	if (o->cap - o->len < n)
		out_flush(o);
	return o->buf + o->len;
}

static inline void out_end(struct out *o, const char *p)
{
	o->len = (size_t)(p - o->buf);
}

static void out_mem(struct out *o, const void *p, size_t n)
{
	while (n > 0) {
		size_t room = o->cap - o->len;

		if (room == 0) {
			out_flush(o);
			room = o->cap;
		}
		const size_t k = n < room ? n : room;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p = (const char *)p + k;
		n -= k;
	}
}

static void out_str(struct out *o, const char *s)
{
	out_mem(o, s, strlen(s));
}

/* Returns the bytes written to the file. */
static uint64_t out_close(struct out *o)
{
	out_flush(o);
	/* close() can report a deferred write error (NFS, quota): check it. */
	if (close(o->fd) != 0)
		die("close %s: %s", o->path, strerror(errno));
	free(o->buf);
	o->buf = NULL;
	o->fd = -1;
	return o->total;
}

/*
 * Number formatting. printf costs about 100 ns a field; these cost a few,
 * and the CDR loop formats five numbers a record.
 */
static char digits2[200];	/* "00" "01" ... "99" */

static void digits_init(void)
{
	for (unsigned i = 0; i < 100; i++) {
		digits2[2 * i] = (char)('0' + i / 10);
		digits2[2 * i + 1] = (char)('0' + i % 10);
	}
}

/* Exactly width digits, zero padded; v must be below 10^width. */
static inline char *fmt_fixed(char *p, uint64_t v, unsigned width)
{
	char *q = p + width;

	while (q - p >= 2) {
		q -= 2;
		memcpy(q, digits2 + 2 * (v % 100), 2);
		v /= 100;
	}
	if (q > p)
		*p = (char)('0' + v);
	return p + width;
}

static inline unsigned ndigits(uint64_t v)
{
	unsigned n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static inline char *fmt_u64(char *p, uint64_t v)
{
	return fmt_fixed(p, v, ndigits(v));
}

static inline char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUTLIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* Days since 1970-01-01 -> YYYY-MM-DD (the library's civil.h). */
static char *fmt_date(char *p, int64_t z)
{
	int64_t y;
	unsigned m, d;
	cdr__civil_from_days(z, &y, &m, &d);

	p = fmt_fixed(p, (uint64_t)y, 4);
	*p++ = '-';
	p = fmt_fixed(p, m, 2);
	*p++ = '-';
	return fmt_fixed(p, d, 2);
}

/* ------------------------------------------------------------------ */
/* 3. Zones                                                            */
/* ------------------------------------------------------------------ */

/*
 * The prefix table is modelled on a Shanghai operator: 021 and 8-digit
 * numbers starting 2-8 are local, other area codes national, 1xx mobile,
 * 00+country international, carrier-select IP prefixes, and the four
 * emergency numbers as exact rows. A fixed core comes first; --prefixes
 * then fills up with 4-digit area codes, 4-digit mobile segments and
 * finally 7-digit mobile segments (the HLR blocks real zone tables list),
 * so the longest-prefix match sees realistic depth and size.
 */
enum zone {
	Z_LOCAL,
	Z_NATIONAL,
	Z_MOBILE,
	Z_INTL,
	Z_IP,
	Z_EMERGENCY,
	Z_COUNT
};

static const char *const zone_name[Z_COUNT] = {
	"local", "national", "mobile", "international", "ip", "emergency",
};

struct prefix {
	char s[12];		/* digits, or "=110" style exact numbers */
	unsigned char len;
	unsigned char zone;
};

struct zones {
	struct prefix *row;
	size_t n, cap;
	/* rows of each zone, for drawing destinations */
	uint32_t *by_zone[Z_COUNT];
	size_t n_zone[Z_COUNT];
	size_t n_popular_intl;	/* the first ones get most traffic */
};

static void zones_add(struct zones *z, const char *s, enum zone zone)
{
	const size_t len = strlen(s);

	if (z->n == z->cap) {
		z->cap = z->cap ? 2 * z->cap : 1024;
		z->row = realloc(z->row, z->cap * sizeof(*z->row));
		if (!z->row)
			die("out of memory");
	}
	if (len >= sizeof(z->row->s))
		die("internal: prefix %s too long", s);
	memcpy(z->row[z->n].s, s, len + 1);
	z->row[z->n].len = (unsigned char)len;
	z->row[z->n].zone = (unsigned char)zone;
	z->n++;
}

static const char *const mobile3[] = {
	"130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
	"145", "147", "150", "151", "152", "153", "155", "156", "157", "158",
	"159", "166", "170", "171", "173", "175", "176", "177", "178", "180",
	"181", "182", "183", "184", "185", "186", "187", "188", "189", "191",
	"198", "199",
};
#define N_MOBILE3 (sizeof(mobile3) / sizeof(mobile3[0]))

/* Our own subscribers' mobiles come from the 13x/15x/18x blocks. */
static const char *const home3[] = {
	"130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
	"150", "151", "152", "153", "155", "156", "157", "158", "159", "180",
	"181", "182", "183", "184", "185", "186", "187", "188", "189",
};
#define N_HOME3 (sizeof(home3) / sizeof(home3[0]))

/* Most-called first: the first GEN_POPULAR_INTL get 70% of the traffic. */
static const char *const country[] = {
	"1", "852", "81", "82", "886", "65", "44", "60", "61", "66",
	"853", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39",
	"40", "41", "43", "45", "46", "47", "48", "49", "51", "52", "53",
	"54", "55", "56", "57", "58", "62", "63", "64", "84", "90", "91",
	"92", "93", "94", "95", "98", "212", "213", "216", "234", "254",
	"351", "353", "358", "380", "420", "855", "856", "880", "960",
	"971", "972", "974", "977",
};
#define N_COUNTRY (sizeof(country) / sizeof(country[0]))
#define GEN_POPULAR_INTL 10u

static void zones_build(struct zones *z, uint64_t want)
{
	char buf[16];

	/* The core: every category present whatever --prefixes says. */
	zones_add(z, "=110", Z_EMERGENCY);
	zones_add(z, "=119", Z_EMERGENCY);
	zones_add(z, "=120", Z_EMERGENCY);
	zones_add(z, "=122", Z_EMERGENCY);
	zones_add(z, "17951", Z_IP);
	zones_add(z, "17911", Z_IP);
	zones_add(z, "17909", Z_IP);
	zones_add(z, "12593", Z_IP);
	zones_add(z, "021", Z_LOCAL);
	for (char c = '2'; c <= '8'; c++) {
		buf[0] = c;
		buf[1] = '\0';
		zones_add(z, buf, Z_LOCAL);
	}
	zones_add(z, "010", Z_NATIONAL);
	zones_add(z, "020", Z_NATIONAL);
	for (char c = '2'; c <= '9'; c++) {
		snprintf(buf, sizeof(buf), "02%c", c);
		if (strcmp(buf, "021") != 0)
			zones_add(z, buf, Z_NATIONAL);
	}
	for (size_t i = 0; i < N_MOBILE3; i++)
		zones_add(z, mobile3[i], Z_MOBILE);
	for (size_t i = 0; i < N_COUNTRY; i++) {
		snprintf(buf, sizeof(buf), "00%s", country[i]);
		zones_add(z, buf, Z_INTL);
	}
	z->n_popular_intl = GEN_POPULAR_INTL;

	/*
	 * 4-digit area codes 0300-0999, visited in a stride order (37 is
	 * coprime to 700) so that a small --prefixes still spreads over the
	 * whole country rather than taking 03xx only.
	 */
	for (unsigned k = 0; k < 700 && z->n < want; k++) {
		const unsigned code = 300 + (k * 37) % 700;

		buf[0] = '0';
		fmt_fixed(buf + 1, code, 3);
		buf[4] = '\0';
		zones_add(z, buf, Z_NATIONAL);
	}
	/* 4-digit mobile segments 1300-1999 under the mobile blocks. */
	for (unsigned d = 0; d < 10 && z->n < want; d++)
		for (size_t i = 0; i < N_MOBILE3 && z->n < want; i++) {
			snprintf(buf, sizeof(buf), "%s%u", mobile3[i], d);
			zones_add(z, buf, Z_MOBILE);
		}
	/* 7-digit HLR segments, as many as asked for. */
	for (unsigned seg = 0; seg < 10000 && z->n < want; seg++)
		for (size_t i = 0; i < N_MOBILE3 && z->n < want; i++) {
			memcpy(buf, mobile3[i], 3);
			fmt_fixed(buf + 3, (seg * 7919u) % 10000u, 4);
			buf[7] = '\0';
			zones_add(z, buf, Z_MOBILE);
		}

	for (size_t i = 0; i < z->n; i++)
		z->n_zone[z->row[i].zone]++;
	for (unsigned k = 0; k < Z_COUNT; k++) {
		z->by_zone[k] = xcalloc(z->n_zone[k] ? z->n_zone[k] : 1,
					sizeof(uint32_t));
		z->n_zone[k] = 0;
	}
	for (size_t i = 0; i < z->n; i++) {
		const unsigned k = z->row[i].zone;

		z->by_zone[k][z->n_zone[k]++] = (uint32_t)i;
	}
}

static inline const struct prefix *zones_pick(const struct zones *z,
					      enum zone k, struct rng *r)
{
	return &z->row[z->by_zone[k][rng_below(r, z->n_zone[k])]];
}

/* Prefix then random digits up to total length len. */
static inline char *fill_number(char *p, const struct prefix *pf,
				unsigned len, struct rng *r)
{
	static const uint64_t pow10[] = {
		1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u,
		100000000u, 1000000000u, 10000000000u, 100000000000u,
	};
	const unsigned rest = len > pf->len ? len - pf->len : 0;

	p = put(p, pf->s, pf->len);
	return fmt_fixed(p, rng_below(r, pow10[rest]), rest);
}

static char *dest_mobile(char *p, const struct zones *z, struct rng *r)
{
	return fill_number(p, zones_pick(z, Z_MOBILE, r), 11, r);
}

static char *dest_local(char *p, const struct zones *z, struct rng *r)
{
	const struct prefix *pf = zones_pick(z, Z_LOCAL, r);

	return fill_number(p, pf, pf->len == 3 ? 11u : 8u, r);	/* 021+8 */
}

static char *dest_national(char *p, const struct zones *z, struct rng *r)
{
	const struct prefix *pf = zones_pick(z, Z_NATIONAL, r);

	/* 3-digit codes carry 8-digit numbers, 4-digit codes 7 or 8. */
	return fill_number(p, pf, pf->len == 3 ? 11u
			   : (unsigned)rng_range(r, 11, 13), r);
}

static char *dest_intl(char *p, const struct zones *z, struct rng *r)
{
	const size_t n = z->n_zone[Z_INTL];
	const size_t i = rng_below(r, 100) < 70 ? rng_below(r, z->n_popular_intl)
						 : rng_below(r, n);
	const struct prefix *pf = &z->row[z->by_zone[Z_INTL][i]];

	return fill_number(p, pf, pf->len + (unsigned)rng_range(r, 7, 11), r);
}

static char *dest_ip(char *p, const struct zones *z, struct rng *r)
{
	const struct prefix *pf = zones_pick(z, Z_IP, r);
	const uint64_t u = rng_below(r, 100);

	/* Carrier select goes before the full number, usually a long one. */
	p = put(p, pf->s, pf->len);
	if (u < 55)
		return dest_mobile(p, z, r);
	if (u < 80)
		return dest_national(p, z, r);
	return dest_intl(p, z, r);
}

static char *dest_emergency(char *p, const struct zones *z, struct rng *r)
{
	const struct prefix *pf = zones_pick(z, Z_EMERGENCY, r);

	return put(p, pf->s + 1, (size_t)pf->len - 1);	/* drop the '=' */
}

/* ------------------------------------------------------------------ */
/* 4. Subscribers                                                      */
/* ------------------------------------------------------------------ */

#define NUM_LEN 11		/* every subscriber number has 11 digits */
#define FIXED_PERMILLE 50	/* share of fixed lines among numbers */
#define PACKAGE_PERMILLE 40	/* share holding the data bundle */
#define SECOND_NUMBER_PERMILLE 333 /* accounts with two numbers */

enum plan { P_BASIC, P_STANDARD, P_PREMIUM, P_COUNT };
static const char *const plan_name[P_COUNT] = { "basic", "standard", "premium" };

/*
 * --month packages: the month an operator with bundles bills. Most numbers
 * hold 1-3 of seven packages (some of several allowance rows), about 1 in
 * 10 changes plan inside the month (two dated rows), about 1 in 30 is
 * inactive (its row ended before the period) and 1 in 50 is installed
 * during it, and 2% of records come from numbers the tariff does not know.
 * One account in four holds two numbers (~0.8 S accounts). All of it is
 * drawn from its own stream (KEY_HEAVY), so the default month is
 * byte-for-byte what it was.
 */
#define HEAVY_PACKAGE_PERMILLE 850	/* numbers with 1-3 packages */
#define HEAVY_CHANGE_PERMILLE 100	/* plan change inside the month */
#define HEAVY_INACTIVE_PERMILLE 33	/* row ended before the period */
#define HEAVY_NEW_PERMILLE 20		/* installed during the period */
#define HEAVY_UNKNOWN_PERMILLE 20	/* records from unknown numbers */
#define HEAVY_SECOND_NUMBER_PERMILLE 250

static const char *const heavy_pkg[] = {
	"data10g", "data1g", "voice300", "local600", "idle1000", "sms200",
	"intl30",
};
#define N_HEAVY_PKG (sizeof(heavy_pkg) / sizeof(heavy_pkg[0]))
#define HEAVY_VOICE_PKG_FIRST 2	/* packages 2..4 and 6 hold voice */

struct subs {
	uint32_t n;
	int heavy;		/* --month packages */
	uint32_t n_mobile;	/* mobiles numbered; higher indexes unused */
	uint64_t b_mobile;
	/*
	 * Numbers: in subscribers.csv row order until subs_zipf, then
	 * shuffled into Zipf rank order, so the heavy callers are spread over
	 * the file and a draw reads num[rank] with no rank -> row table.
	 */
	char (*num)[NUM_LEN];
	/*
	 * Zipf table, rank k (0-based) has weight floor(2^40 / (k + 1)), i.e.
	 * s = 1.0. cum[k] is the inclusive prefix sum (below 2^46 for any n
	 * allowed). Drawn by inverse CDF with a guide table (Chen & Asau's
	 * cutpoint method): the top bits of the random word pick a guide
	 * slot holding the first rank that could be the answer, and a short
	 * forward scan finishes; under two probes on average, no floats.
	 *
	 * At a million subscribers the draw is bound by cache misses: 10M
	 * records took 0.6 s of user time with 1000 subscribers, about 2 s
	 * with a million. Walker alias tables, which touch one random line a
	 * draw instead of up to three, measured no faster here (CPU time of
	 * the whole run: this table 2.2 s, 32-byte alias columns 2.5 s,
	 * 16-byte ones 2.3 s, within noise); presumably because the head
	 * ranks, half the draws, stay cached either way. So the simpler
	 * table stayed.
	 */
	uint64_t *cum;
	uint64_t total;
	uint32_t *guide;
	unsigned guide_bits;
};

static void subs_number(char *num, uint32_t idx_mobile, uint32_t idx_fixed,
			int fixed, uint64_t b_mobile, uint64_t b_fixed)
{
	/*
	 * x -> (x * a + b) mod m is a bijection when a is coprime to m, so
	 * numbers are unique by construction; a near 0.618 m (Weyl/Fibonacci
	 * hashing) sends neighbouring rows far apart, over every block. The
	 * products stay below 2^64 for every index allowed.
	 */
	if (fixed) {
		/* m = 5 * 10^7; a is coprime to 2 and 5 */
		const uint64_t local = ((uint64_t)idx_fixed * 30901699u + b_fixed) %
				       50000000u;

		memcpy(num, "021", 3);
		fmt_fixed(num + 3, 20000000u + local, 8);	/* 2xxx-6xxx */
	} else {
		/* m = 29 * 10^8; a is coprime to 2, 5 and 29 */
		const uint64_t m = (uint64_t)N_HOME3 * 100000000u;
		const uint64_t v = ((uint64_t)idx_mobile * UINT64_C(1792298567) +
				    b_mobile) % m;

		memcpy(num, home3[v / 100000000u], 3);
		fmt_fixed(num + 3, v % 100000000u, 8);
	}
}

/* Up to three distinct packages for a number, into q; fixed lines only
 * voice ones. */
static char *heavy_packages(char *q, struct rng *h, int fixed)
{
	static const unsigned char fixed_pkg[] = { 2, 3, 4, 6 };
	unsigned want = 1 + (unsigned)rng_below(h, 3), got = 0;
	unsigned char have[3];

	for (unsigned tries = 0; got < want && tries < 8; tries++) {
		const unsigned char k = fixed
			? fixed_pkg[rng_below(h, sizeof(fixed_pkg))]
			: (unsigned char)rng_below(h, N_HEAVY_PKG);
		unsigned j = 0;

		while (j < got && have[j] != k)
			j++;
		if (j < got)
			continue;
		have[got++] = k;
		if (got > 1)
			*q++ = ';';
		q = put(q, heavy_pkg[k], strlen(heavy_pkg[k]));
	}
	return q;
}

/* Writes subscribers.csv and fills s->num. */
static void subs_build(struct subs *s, uint32_t n, uint64_t seed,
		       const char *path)
{
	struct rng r = rng_at(gen_key(seed, KEY_SUBS), 0);
	struct rng h = rng_at(gen_key(seed, KEY_HEAVY), 0);
	const uint64_t b_mobile = rng_below(&r, (uint64_t)N_HOME3 * 100000000u);
	const uint64_t b_fixed = rng_below(&r, 50000000u);
	/* from dates: 2015-01-01 .. 2026-10-01 inclusive, days since 1970 */
	const int64_t from_lo = 16436, from_hi = 20727;
	const unsigned second = s->heavy ? HEAVY_SECOND_NUMBER_PERMILLE
					 : SECOND_NUMBER_PERMILLE;
	uint32_t n_mobile = 0, n_fixed = 0, account = 0;
	struct out o;

	s->n = n;
	s->num = xcalloc(n, sizeof(*s->num));
	s->b_mobile = b_mobile;
	out_open(&o, path);
	out_str(&o, "subscriber,account,plan,packages,from,to\n");
	for (uint32_t i = 0; i < n; ) {
		const unsigned take = (i + 1 < n &&
			rng_below(&r, 1000) < second) ? 2 : 1;

		account++;
		for (unsigned k = 0; k < take; k++, i++) {
			const int fixed = rng_below(&r, 1000) < FIXED_PERMILLE;
			const uint64_t p = rng_below(&r, 100);
			const enum plan plan = p < 50 ? P_BASIC
					     : p < 85 ? P_STANDARD : P_PREMIUM;
			const int pkg = rng_below(&r, 1000) < PACKAGE_PERMILLE;
			int64_t from = (int64_t)rng_range(&r, (uint64_t)from_lo,
							(uint64_t)from_hi + 1);
			int64_t to = -1, change = -1;
			char *q = out_begin(&o, 256);

			subs_number(s->num[i], n_mobile, n_fixed, fixed,
				    b_mobile, b_fixed);
			if (fixed)
				n_fixed++;
			else
				n_mobile++;
			if (s->heavy) {
				const uint64_t u = rng_below(&h, 1000);
				if (u < HEAVY_CHANGE_PERMILLE)	/* 2nd..30th */
					change = from_hi + (int64_t)rng_range(&h, 1, 30);
				else if (u < HEAVY_CHANGE_PERMILLE +
					 HEAVY_INACTIVE_PERMILLE)
					to = (int64_t)rng_range(&h, (uint64_t)from_lo + 400,
						(uint64_t)from_hi);
				else if (u < HEAVY_CHANGE_PERMILLE +
					 HEAVY_INACTIVE_PERMILLE + HEAVY_NEW_PERMILLE)
					from = from_hi + (int64_t)rng_range(&h, 1, 30);
				if (to >= 0 && from > to - 30)
					from = to - 30;
			}
			for (int part = 0; part < (change >= 0 ? 2 : 1); part++) {
				const enum plan pl = part ? (enum plan)((plan + 1) % P_COUNT)
							  : plan;
				q = put(q, s->num[i], NUM_LEN);
				q = PUTLIT(q, ",A");
				q = fmt_fixed(q, account, 8);
				*q++ = ',';
				q = put(q, plan_name[pl], strlen(plan_name[pl]));
				*q++ = ',';
				if (s->heavy) {
					if (rng_below(&h, 1000) < HEAVY_PACKAGE_PERMILLE)
						q = heavy_packages(q, &h, fixed);
				} else if (pkg && !fixed) {
					/* Fixed lines do no data; no bundle for them. */
					q = PUTLIT(q, "data10g");
				}
				*q++ = ',';
				q = fmt_date(q, part ? change : from);
				*q++ = ',';
				if (!part && change >= 0)
					q = fmt_date(q, change - 1);
				else if (to >= 0)
					q = fmt_date(q, to);
				*q++ = '\n';
			}
			out_end(&o, q);
		}
	}
	s->n_mobile = n_mobile;
	out_close(&o);
}

static void subs_zipf(struct subs *s, uint64_t seed)
{
	const uint32_t n = s->n;
	uint64_t sum = 0;
	unsigned bits = 1;

	s->cum = xcalloc(n, sizeof(*s->cum));
	for (uint32_t k = 0; k < n; k++) {
		sum += (UINT64_C(1) << 40) / ((uint64_t)k + 1);
		s->cum[k] = sum;
	}
	s->total = sum;

	/* At least one guide slot per rank, so scans stay short. */
	while ((UINT64_C(1) << bits) < n)
		bits++;
	s->guide_bits = bits;
	s->guide = xcalloc((size_t)1 << bits, sizeof(*s->guide));
	uint32_t k = 0;
	for (uint64_t j = 0; j < (UINT64_C(1) << bits); j++) {
		/* the smallest u any word in slot j gives */
		const uint64_t lo = mulhi64(j << (64 - bits), s->total);

		while (s->cum[k] <= lo)
			k++;
		s->guide[j] = k;
	}

	/* Fisher-Yates over the numbers: row order -> rank order. */
	struct rng r = rng_at(gen_key(seed, KEY_PERM), 0);
	for (uint32_t i = n; i > 1; i--) {
		const uint32_t j = (uint32_t)rng_below(&r, i);
		char t[NUM_LEN];

		memcpy(t, s->num[i - 1], NUM_LEN);
		memcpy(s->num[i - 1], s->num[j], NUM_LEN);
		memcpy(s->num[j], t, NUM_LEN);
	}
}

/* A Zipf rank, i.e. an index into the rank-ordered s->num. */
static inline uint32_t subs_draw(const struct subs *s, struct rng *r)
{
	const uint64_t w = rng_next(r);
	const uint64_t u = mulhi64(w, s->total);	/* uniform in [0, total) */
	uint32_t k = s->guide[w >> (64 - s->guide_bits)];

	while (s->cum[k] <= u)
		k++;
	return k;
}

/* Fixed lines are the numbers with a leading 0 (021...). */
static inline int subs_fixed(const struct subs *s, uint32_t rank)
{
	return s->num[rank][0] == '0';
}

/* ------------------------------------------------------------------ */
/* 5. Tariff files                                                     */
/* ------------------------------------------------------------------ */

/* dir/name into path[4096], or die. */
static void join(char *path, const char *dir, const char *name)
{
	const int n = snprintf(path, 4096, "%s/%s", dir, name);

	if (n < 0 || n >= 4096)
		die("path too long: %s/%s", dir, name);
}

static void write_small(const char *dir, const char *name, const char *text)
{
	char path[4096];
	struct out o;

	join(path, dir, name);
	out_open(&o, path);
	out_str(&o, text);
	out_close(&o);
}

static void write_zones(const char *dir, const struct zones *z)
{
	char path[4096];
	struct out o;

	join(path, dir, "zones.csv");
	out_open(&o, path);
	out_str(&o, "prefix,zone\n");
	for (size_t i = 0; i < z->n; i++) {
		out_mem(&o, z->row[i].s, z->row[i].len);
		out_mem(&o, ",", 1);
		out_str(&o, zone_name[z->row[i].zone]);
		out_mem(&o, "\n", 1);
	}
	out_close(&o);
}

/* A handful of outages on distinct numbers, all inside 2026-10. */
#define N_OUTAGES 6

static void write_outages(const char *dir, const struct subs *s, uint64_t seed)
{
	struct rng r = rng_at(gen_key(seed, KEY_OUTAGE), 0);
	uint32_t who[N_OUTAGES];
	char path[4096];
	unsigned n = 0;
	struct out o;

	/* The heaviest caller is one of them: its outage credit matters. */
	who[n++] = 0;	/* rank 0 */
	while (n < N_OUTAGES && n < s->n) {
		const uint32_t c = (uint32_t)rng_below(&r, s->n);
		unsigned k = 0;

		while (k < n && who[k] != c)
			k++;
		if (k == n)
			who[n++] = c;
	}
	join(path, dir, "outages.csv");
	out_open(&o, path);
	out_str(&o, "subscriber,from,to\n");
	for (unsigned i = 0; i < n; i++) {
		const uint64_t day = rng_range(&r, 1, 31);	/* 1..30 */
		const uint64_t from = rng_below(&r, 86400 - 3600);
		const uint64_t len = rng_range(&r, 1800, 8 * 3600);
		const uint64_t to = from + len;	/* may run into the next day */
		char *q = out_begin(&o, 128);

		q = put(q, s->num[who[i]], NUM_LEN);
		q = PUTLIT(q, ",2026-10-");
		q = fmt_fixed(q, day, 2);
		*q++ = ' ';
		q = fmt_fixed(q, from / 3600, 2);
		*q++ = ':';
		q = fmt_fixed(q, from / 60 % 60, 2);
		*q++ = ':';
		q = fmt_fixed(q, from % 60, 2);
		q = PUTLIT(q, ",2026-10-");
		q = fmt_fixed(q, day + to / 86400, 2);
		*q++ = ' ';
		q = fmt_fixed(q, to % 86400 / 3600, 2);
		*q++ = ':';
		q = fmt_fixed(q, to / 60 % 60, 2);
		*q++ = ':';
		q = fmt_fixed(q, to % 60, 2);
		*q++ = '\n';
		out_end(&o, q);
	}
	out_close(&o);
}

static void write_tariff(const char *dir, const struct zones *z, int heavy)
{
	write_small(dir, "tariff.conf",
		"# cdrate benchmark tariff, written by bench/gen.\n"
		"timezone = Asia/Shanghai\n"
		"currency = CNY\n"
		"decimals = 2\n"
		"band_split = start\n"
		"proration = half_month\n"
		"free_zones = emergency\n");
	/* Every minute of every day type is covered; holidays are idle. */
	write_small(dir, "bands.csv",
		"band,days,from,to\n"
		"peak,mon-fri,08:00,22:00\n"
		"idle,mon-fri,00:00,08:00\n"
		"idle,mon-fri,22:00,24:00\n"
		"idle,sat;sun;holiday,00:00,24:00\n");
	write_small(dir, "holidays.csv",
		"date,name\n"
		"2026-10-01,National Day\n");
	write_small(dir, "plans.csv",
		"plan,monthly_fee\n"
		"basic,18\n"
		"standard,58\n"
		"premium,128\n");
	/*
	 * Per-minute billing on basic and standard, per-second on premium;
	 * per-KiB data; one mid-month price cut (standard voice from the
	 * 15th) so dated rows are exercised. A (plan, service, *, *) row for
	 * every plan and service is the coverage guarantee.
	 */
	write_small(dir, "rates.csv",
		"plan,service,zone,band,connect,price,unit,first,increment,from\n"
		"basic,voice,*,*,0,0.25,60,60,60,\n"
		"basic,voice,local,peak,0,0.15,60,60,60,\n"
		"basic,voice,local,idle,0,0.08,60,60,60,\n"
		"basic,voice,national,*,0,0.20,60,60,60,\n"
		"basic,voice,international,*,0.5,6,60,60,60,\n"
		"basic,voice,ip,*,0,0.39,60,60,60,\n"
		"basic,sms,*,*,0,0.1,1,1,1,\n"
		"basic,sms,international,*,0,1,1,1,1,\n"
		"basic,data,*,*,0,0.29,1048576,1024,1024,\n"
		"standard,voice,*,*,0,0.19,60,60,60,\n"
		"standard,voice,*,*,0,0.15,60,60,60,2026-10-15\n"
		"standard,voice,*,idle,0,0.1,60,60,60,\n"
		"standard,voice,international,*,0,4.8,60,60,60,\n"
		"standard,sms,*,*,0,0.1,1,1,1,\n"
		"standard,sms,international,*,0,0.8,1,1,1,\n"
		"standard,data,*,*,0,0.1,1048576,1024,1024,\n"
		"premium,voice,*,*,0,0.12,60,1,1,\n"
		"premium,voice,international,*,0,3.6,60,6,6,\n"
		"premium,sms,*,*,0,0.05,1,1,1,\n"
		"premium,data,*,*,0,0.03,1048576,1,1,\n");
	if (heavy)
		write_small(dir, "packages.csv",
			"package,monthly_fee,service,zone,band,amount\n"
			"data10g,30,data,*,*,10737418240\n"
			"data1g,10,data,*,*,1073741824\n"
			"voice300,20,voice,*,*,18000\n"
			"local600,15,voice,local,*,36000\n"
			"idle1000,10,voice,*,idle,60000\n"
			"sms200,5,sms,*,*,200\n"
			"intl30,25,voice,international,*,1800\n"
			"intl30,25,sms,international,*,20\n");
	else
		write_small(dir, "packages.csv",
			"package,monthly_fee,service,zone,band,amount\n"
			"data10g,30,data,*,*,10737418240\n");
	write_zones(dir, z);
}

/* ------------------------------------------------------------------ */
/* 6. CDR files                                                        */
/* ------------------------------------------------------------------ */

/*
 * Per-mille tables. Durations are a piecewise-uniform stand-in for the
 * usual log-normal (no libm, see the top): 88% of calls under 5 minutes.
 */
struct piece {
	unsigned permille;
	uint64_t lo, hi;	/* [lo, hi) */
};

static const struct piece voice_secs[] = {
	{ 20, 0, 1 },		/* set up, never answered */
	{ 380, 1, 60 },
	{ 300, 60, 180 },
	{ 180, 180, 300 },
	{ 90, 300, 900 },
	{ 27, 900, 3600 },
	{ 3, 3600, 10800 },
};

static const struct piece data_bytes[] = {
	{ 10, 0, 1 },
	{ 490, 1024, 100 << 10 },
	{ 300, 100 << 10, 1 << 20 },
	{ 150, 1 << 20, 10 << 20 },
	{ 50, 10 << 20, 50 << 20 },
};

static inline uint64_t draw_piece(const struct piece *t, size_t n,
				  struct rng *r)
{
	unsigned u = (unsigned)rng_below(r, 1000);
	size_t i = 0;

	while (i + 1 < n && u >= t[i].permille) {
		u -= t[i].permille;
		i++;
	}
	return rng_range(r, t[i].lo, t[i].hi);
}

/* Calls per hour of day, per mille: quiet nights, busy days and evenings. */
static const unsigned short hour_weight[24] = {
	10, 6, 4, 3, 3, 5, 12, 30, 55, 68, 72, 68,
	55, 55, 62, 65, 65, 62, 58, 62, 66, 60, 35, 19,
};
static unsigned char hour_of[1000];	/* inverse of hour_weight */

static void hours_init(void)
{
	unsigned k = 0, sum = 0;

	for (unsigned h = 0; h < 24; h++) {
		sum += hour_weight[h];
		while (k < sum && k < 1000)
			hour_of[k++] = (unsigned char)h;
	}
	if (sum != 1000)
		die("internal: hour weights sum to %u", sum);
}

static const char *const apn[] = { "cmnet", "cmnet", "cmnet", "cmnet",
				   "cmnet", "cmnet", "cmnet", "cmnet",
				   "cmwap", "ims", "", "" };
#define N_APN (sizeof(apn) / sizeof(apn[0]))

struct cdr_ctx {
	const struct subs *subs;
	const struct zones *zones;
	uint64_t key;
	uint64_t hkey;	/* --month packages: unknown callers */
};

/* Formats record i at p (GEN_REC_MAX bytes of room) and returns its end. */
static char *cdr_format(char *p, const struct cdr_ctx *c, uint64_t i)
{
	struct rng r = rng_at(c->key, i);
	const uint64_t svc = rng_below(&r, 100);	/* 75 / 15 / 10 */
	uint32_t who = subs_draw(c->subs, &r);

	/* Fixed lines only make calls: redraw, a few times at most. */
	for (unsigned tries = 0; svc >= 75 && subs_fixed(c->subs, who) &&
	     tries < 16; tries++)
		who = subs_draw(c->subs, &r);

	/* id: 8 base-36 digits of the record number, unique by construction */
	uint64_t v = i;
	for (int k = 7; k >= 0; k--) {
		const unsigned d = (unsigned)(v % 36);

		p[k] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= 36;
	}
	p += 8;
	*p++ = ',';
	struct rng h = rng_at(c->hkey, i);
	if (c->subs->heavy && !subs_fixed(c->subs, who) &&
	    rng_below(&h, 1000) < HEAVY_UNKNOWN_PERMILLE) {
		/* A mobile numbered past the tariff's last: unknown. */
		char unk[NUM_LEN];
		subs_number(unk, c->subs->n_mobile +
			    (uint32_t)rng_below(&h, 1000000), 0, 0,
			    c->subs->b_mobile, 0);
		p = put(p, unk, NUM_LEN);
	} else {
		p = put(p, c->subs->num[who], NUM_LEN);
	}

	const int fixed = subs_fixed(c->subs, who);
	if (svc < 75 || fixed)
		p = PUTLIT(p, ",voice,2026-10-");
	else if (svc < 90)
		p = PUTLIT(p, ",sms,2026-10-");
	else
		p = PUTLIT(p, ",data,2026-10-");

	p = fmt_fixed(p, rng_range(&r, 1, 32), 2);
	*p++ = ' ';
	p = fmt_fixed(p, hour_of[rng_below(&r, 1000)], 2);
	*p++ = ':';
	p = fmt_fixed(p, rng_below(&r, 60), 2);
	*p++ = ':';
	p = fmt_fixed(p, rng_below(&r, 60), 2);
	*p++ = ',';

	const uint64_t u = rng_below(&r, 1000);
	if (svc < 75 || fixed) {
		if (u < 580)
			p = dest_mobile(p, c->zones, &r);
		else if (u < 740)
			p = dest_local(p, c->zones, &r);
		else if (u < 880)
			p = dest_national(p, c->zones, &r);
		else if (u < 940)
			p = dest_intl(p, c->zones, &r);
		else if (u < 999)
			p = dest_ip(p, c->zones, &r);
		else
			p = dest_emergency(p, c->zones, &r);
		*p++ = ',';
		p = fmt_u64(p, draw_piece(voice_secs, sizeof(voice_secs) /
					  sizeof(voice_secs[0]), &r));
		p = PUTLIT(p, ",0\n");
	} else if (svc < 90) {
		p = u < 970 ? dest_mobile(p, c->zones, &r)
			    : dest_intl(p, c->zones, &r);
		p = PUTLIT(p, ",0,0\n");
	} else {
		const char *a = apn[u % N_APN];

		p = put(p, a, strlen(a));
		*p++ = ',';
		/* session length: ignored by the rater, but real CDRs have it */
		p = fmt_u64(p, rng_below(&r, 3600));
		*p++ = ',';
		p = fmt_u64(p, draw_piece(data_bytes, sizeof(data_bytes) /
					  sizeof(data_bytes[0]), &r));
		*p++ = '\n';
	}
	return p;
}

/*
 * Output slot s of N is either the next unique record or, for K evenly
 * spaced slots, a copy of another unique record. With U = N - K unique
 * records cut into K runs of U / K, dup j copies a record drawn from run
 * (j * stride) mod K: distinct runs, so the K sources are distinct and
 * `uniq -d` over the ids counts exactly K; and the stride (coprime to K)
 * scatters the sources, so a copy is usually far from its original, often
 * in another file and sometimes before it.
 */
struct dup_plan {
	uint64_t n, k, u;
	uint64_t stride;	/* coprime to k */
	uint64_t next;		/* index of the next dup */
	uint64_t key;
};

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		const uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static inline uint64_t dup_slot(const struct dup_plan *d, uint64_t j)
{
	const uint64_t run = d->n / d->k;

	return j * run + run / 2;	/* the middle of the j-th run of slots */
}

static inline uint64_t dup_source(const struct dup_plan *d, uint64_t j)
{
	struct rng r = rng_at(d->key, j);
	const uint64_t run = d->u / d->k;

	return (j * d->stride) % d->k * run + rng_below(&r, run);
}

static uint64_t write_cdrs(const char *dir, unsigned files, uint64_t n,
			   uint64_t k, const struct cdr_ctx *c)
{
	struct dup_plan d = { n, k, n - k, 1, 0, gen_key(c->key, KEY_DUP) };
	uint64_t slot = 0, uniq = 0, bytes = 0;

	/* 2654435761 is prime: coprime to k unless k is a multiple of it. */
	if (k > 1 && gcd64(k, UINT64_C(2654435761) % k) == 1)
		d.stride = UINT64_C(2654435761) % k;
	for (unsigned f = 0; f < files; f++) {
		const uint64_t end = n * (f + 1) / files;
		char path[4096];
		struct out o;

		if (snprintf(path, sizeof(path), "%s/part-%03u.csv", dir, f) >=
		    (int)sizeof(path))
			die("path too long: %s", dir);
		out_open(&o, path);
		for (; slot < end; slot++) {
			char *p = out_begin(&o, GEN_REC_MAX);
			uint64_t rec;

			if (d.next < d.k && dup_slot(&d, d.next) == slot) {
				rec = dup_source(&d, d.next);
				d.next++;
			} else {
				rec = uniq++;
			}
			out_end(&o, cdr_format(p, c, rec));
		}
		bytes += out_close(&o);
	}
	return bytes;
}

/* The rater reads every file in cdrs/: say so if a stale one is there. */
static void warn_strays(const char *dir, unsigned files)
{
	DIR *dp = opendir(dir);
	struct dirent *e;

	if (!dp)
		die("opendir %s: %s", dir, strerror(errno));
	while ((e = readdir(dp)) != NULL) {
		unsigned f;
		char tail[8];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strlen(e->d_name) == 12 &&
		    sscanf(e->d_name, "part-%3u.%3s", &f, tail) == 2 &&
		    strcmp(tail, "csv") == 0 && f < files)
			continue;
		fprintf(stderr, "%s: warning: %s/%s is not from this run; "
			"cdrate would read it too\n", gen_prog, dir, e->d_name);
	}
	closedir(dp);
}

/* ------------------------------------------------------------------ */
/* 7. main                                                             */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
"usage: %s --out DIR [--records N] [--subscribers S] [--files F]\n"
"           [--prefixes P] [--seed X] [--dups K] [--month plain|packages]\n"
"\n"
"Writes DIR/tariff/ (a complete tariff, SPEC section 4) and\n"
"DIR/cdrs/part-000.csv ... (N native CSV records over 2026-10 in F files).\n"
"Same arguments, same bytes, on any machine.\n"
"\n"
"  --records N      records in total, duplicates included (10000000)\n"
"  --subscribers S  subscriber numbers (1000000)\n"
"  --files F        CDR files, 1..%u (4)\n"
"  --prefixes P     about P rows in zones.csv, at least the core of\n"
"                   ~140 (1000)\n"
"  --seed X         any 64-bit number (1)\n"
"  --dups K         K of the N records repeat another record's line,\n"
"                   id included; K <= N/2 (0)\n"
"  --month M        plain (one data bundle, ~4%% of numbers) or packages\n"
"                   (1-3 of 7 packages on 85%% of numbers, plan changes,\n"
"                   inactive and unknown numbers, ~0.8 S accounts) (plain)\n",
		gen_prog, GEN_MAX_FILES);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
	char *end;

	if (!s || *s < '0' || *s > '9') {
		fprintf(stderr, "%s: %s needs a non-negative integer\n",
			gen_prog, opt);
		exit(2);
	}
	errno = 0;
	const unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end) {
		fprintf(stderr, "%s: bad number for %s: %s\n", gen_prog, opt, s);
		exit(2);
	}
	return (uint64_t)v;
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	const char *out = NULL, *month = "plain";
	uint64_t records = 10000000, subscribers = 1000000, files = 4;
	uint64_t prefixes = 1000, seed = 1, dups = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *eq = strchr(a, '=');
		const size_t len = eq ? (size_t)(eq - a) : strlen(a);
		const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
		uint64_t *num = NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
#define OPT(name) (len == sizeof(name) - 1 && memcmp(a, name, len) == 0)
		const char **str = NULL;
		if (OPT("--out"))
			str = &out;
		else if (OPT("--month"))
			str = &month;
		else if (OPT("--records"))
			num = &records;
		else if (OPT("--subscribers"))
			num = &subscribers;
		else if (OPT("--files"))
			num = &files;
		else if (OPT("--prefixes"))
			num = &prefixes;
		else if (OPT("--seed"))
			num = &seed;
		else if (OPT("--dups"))
			num = &dups;
		else {
			fprintf(stderr, "%s: unknown argument %s\n", gen_prog, a);
			usage(stderr);
			return 2;
		}
#undef OPT
		if (!val) {
			fprintf(stderr, "%s: %.*s needs a value\n", gen_prog,
				(int)len, a);
			return 2;
		}
		if (num)
			*num = parse_u64(a, val);
		else
			*str = val;
		if (!eq)
			i++;
	}
	if (!out || !*out) {
		usage(stderr);
		return 2;
	}
	if (strcmp(month, "plain") != 0 && strcmp(month, "packages") != 0) {
		fprintf(stderr, "%s: --month is plain or packages, not %s\n",
			gen_prog, month);
		return 2;
	}
	if (subscribers < 1 || subscribers > GEN_MAX_SUBSCRIBERS ||
	    files < 1 || files > GEN_MAX_FILES || dups > records / 2 ||
	    dups > UINT32_MAX ||	/* keeps j * stride in dup_source in 64 bits */
	    prefixes > GEN_MAX_PREFIXES || records > (UINT64_C(1) << 40)) {
		fprintf(stderr, "%s: out of range: need 1 <= S <= %u, "
			"1 <= F <= %u, K <= N/2 and < 2^32, P <= %u, N <= 2^40\n", gen_prog,
			GEN_MAX_SUBSCRIBERS, GEN_MAX_FILES, GEN_MAX_PREFIXES);
		return 2;
	}

	const double t0 = now_seconds();
	char tdir[4096], cdir[4096];
	join(tdir, out, "tariff");
	join(cdir, out, "cdrs");
	make_dir(out);
	make_dir(tdir);
	make_dir(cdir);

	digits_init();
	hours_init();

	struct zones z = { 0 };
	zones_build(&z, prefixes);
	write_tariff(tdir, &z, strcmp(month, "packages") == 0);

	struct subs s = { 0 };
	s.heavy = strcmp(month, "packages") == 0;
	char spath[4096];
	join(spath, tdir, "subscribers.csv");
	subs_build(&s, (uint32_t)subscribers, seed, spath);
	subs_zipf(&s, seed);
	write_outages(tdir, &s, seed);
	const double t1 = now_seconds();

	const struct cdr_ctx c = { &s, &z, gen_key(seed, KEY_CDR),
				   gen_key(seed, KEY_HEAVY + 1) };
	const uint64_t bytes = write_cdrs(cdir, (unsigned)files, records, dups, &c);
	const double t2 = now_seconds();
	warn_strays(cdir, (unsigned)files);

	fprintf(stderr, "%s: tariff: %zu zone rows, %llu subscribers (%.2f s)\n"
		"%s: cdrs: %llu records (%llu duplicates) in %llu files, "
		"%llu bytes, %.2f s, %.0f MB/s\n",
		gen_prog, z.n, (unsigned long long)subscribers, t1 - t0,
		gen_prog, (unsigned long long)records, (unsigned long long)dups,
		(unsigned long long)files, (unsigned long long)bytes, t2 - t1,
		t2 > t1 ? (double)bytes / 1e6 / (t2 - t1) : 0.0);

	free(s.num);
	free(s.cum);
	free(s.guide);
	for (unsigned k = 0; k < Z_COUNT; k++)
		free(z.by_zone[k]);
	free(z.row);
	return 0;
}
