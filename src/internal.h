/*
 * internal.h - types shared between the pipeline stages of libcdrate.
 *
 * Data flows one way: reader -> parse -> rate -> agg -> write. The tariff
 * (tariff.c) is built once and then read-only; everything a worker thread
 * writes lives in its own cdr__worker (agg.c). Names here carry the `cdr__`
 * prefix: visible across files, never exported.
 *
 * Money is an integer count of micro-units (1 unit = 1,000,000 micros).
 * Per-record products (price * quantity can reach ~2e27) and all sums are
 * carried in 128 bits, so nothing overflows for 10^10 records.
 */
#ifndef CDR_INTERNAL_H
#define CDR_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "cdrate/cdrate.h"
#include "normalize.h"
#include "tz.h"

typedef __int128 i128;
typedef unsigned __int128 u128;

#define CDR_MICROS 1000000
#define CDR_DAY_NONE INT64_MIN /* rates.csv `from` absent: always in force */
#define CDR_DAY_OPEN INT64_MAX /* subscribers.csv `to` empty: still active */
#define CDR_LINE_MAX ((size_t)64 * 1024) /* longer CDR lines are rejected */
#define CDR_UNIX_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

enum cdr__service { CDR_VOICE = 0, CDR_SMS = 1, CDR_DATA = 2, CDR_NSVC = 3 };

/* Reject reasons; index into cdr_reason_name(). CDR_OK is "rated". */
enum cdr__reason {
	CDR_OK = 0,
	CDR_R_COLUMNS,
	CDR_R_ID,
	CDR_R_SUBSCRIBER,
	CDR_R_SERVICE,
	CDR_R_START,
	CDR_R_DESTINATION,
	CDR_R_DURATION,
	CDR_R_VOLUME,
	CDR_R_LINE_TOO_LONG,
	CDR_R_DUPLICATE,
	CDR_R_AFTER_PERIOD,
	CDR_R_NO_ZONE,
	CDR_R_INACTIVE,
	CDR_R_UNKNOWN_SUBSCRIBER,
	CDR_R_NO_RATE,
	CDR_R_UNANSWERED, /* a switch record never answered (SPEC 11) */
	CDR_NREASON
};

/* ---- tariff (tariff.c) ----------------------------------------------- */

#define CDR_ANY (-1)	   /* `*` in a zone or band column */
#define CDR_BAND_STAR 255  /* band of a free-zone record */
#define CDR_NDAYTYPE 8	   /* mon..sun, holiday */
#define CDR_HOLIDAY 7

typedef struct cdr__rate_row {
	uint32_t plan;
	uint8_t service;
	int32_t zone; /* zone index or CDR_ANY */
	int32_t band; /* band index or CDR_ANY */
	int64_t connect_micros;
	int64_t price_micros; /* per `unit` billed units */
	uint64_t unit, first, increment;
	int64_t from_day; /* CDR_DAY_NONE: always */
	uint32_t line;	  /* line in rates.csv, for tie-breaks and messages */
} cdr__rate_row;

/* One dated row of a rate key: rows of a key sorted by from_day. */
typedef struct cdr__rate_step {
	int64_t from_day;
	uint32_t row;
} cdr__rate_step;

/* A rate key (plan, service, zone, band) that rates.csv writes, and its
 * rows steps[first .. first + n). zone and band are stored + 1, so that
 * `*` is 0; n == 0 marks an empty slot of the table. */
typedef struct cdr__rate_key {
	uint32_t plan, zone;
	uint8_t svc, band;
	uint16_t pad;
	uint32_t first, n;
} cdr__rate_key;

/* What one (plan, service) has, so a lookup probes only keys that may
 * exist: the (*, *) key's slot + 1 (0: none), and flags. */
#define CDR_PS_ZONE 1	   /* keys with a zone of their own */
#define CDR_PS_STAR_BAND 2 /* (*, band) keys */
typedef struct cdr__plan_svc {
	uint32_t star_slot;
	uint32_t flags;
} cdr__plan_svc;

typedef struct cdr__allowance {
	uint8_t service;
	int32_t zone, band; /* or CDR_ANY */
	uint64_t amount;    /* billed units */
} cdr__allowance;

typedef struct cdr__package {
	char *name;
	int64_t fee_micros;
	uint32_t first_allow, nallow; /* into tariff->allows */
} cdr__package;

typedef struct cdr__plan {
	char *name;
	int64_t fee_micros;
} cdr__plan;

typedef struct cdr__sub_row {
	uint32_t sub;	  /* subscriber index */
	uint32_t account; /* dense index, accounts sorted bytewise */
	uint32_t plan;
	uint32_t first_pkg, npkg; /* into tariff->row_pkgs */
	int64_t from_day, to_day; /* inclusive local days; to may be OPEN */
	uint32_t line;
	uint8_t change_start, change_end; /* plan change at that end */
} cdr__sub_row;

typedef struct cdr__subscriber {
	const char *num; /* digits, NUL-terminated, in tariff->sub_text */
	uint32_t first_row, nrows; /* rows sorted by from_day */
} cdr__subscriber;

typedef struct cdr__outage {
	uint32_t sub;
	int64_t from_utc, to_utc;
	uint32_t line;
} cdr__outage;

typedef struct cdr__trie_node {
	int32_t child[12]; /* 0-9, '*', '#'; 0 = none (root is never a child) */
	int32_t zone;	   /* zone of a prefix ending here, or -1 */
	int32_t exact;	   /* zone of an `=number` ending here, or -1 */
} cdr__trie_node;

/* Where the first CDR_ZONE_TAB_DIGITS digits of a destination leave a
 * longer match possible: the trie node they reach, and the zone of the
 * longest prefix up to there (or -1). */
typedef struct cdr__zone_more {
	uint32_t node;
	int32_t best;
} cdr__zone_more;
#define CDR_ZONE_TAB_DIGITS 4

typedef struct cdr__band_seg {
	uint16_t from_min, to_min; /* [from, to) minutes of the local day */
	uint8_t band;
} cdr__band_seg;

struct cdr_tariff {
	char *dir;
	/* tariff.conf */
	cdr__tz *tz;
	char currency[16];
	int decimals;
	int band_split; /* 0 start, 1 split */
	int proration;	/* 0 half_month, 1 daily, 2 none */
	/* zones.csv */
	char **zone_names;
	uint32_t nzones;
	uint8_t *zone_free; /* [nzones] listed in free_zones */
	cdr__trie_node *trie;
	uint32_t ntrie, trie_cap;
	/* [ntrie][2]: the zones.csv line of each node's prefix row and
	 * `=number` row (0: none), for explain; never read while rating */
	uint32_t *trie_line;
	uint32_t nprefixes;
	/* The zone by a destination's first CDR_ZONE_TAB_DIGITS digits,
	 * zone_tab[d0 d1 d2 d3 as a decimal]: e >= -1 is the answer (a zone,
	 * or -1 no_zone) for every number of at least that many digits
	 * starting so, no longer prefix or `=number` lying below; e <= -2
	 * sends the walk on from zone_more[-2 - e]. Built from the trie. */
	int32_t *zone_tab;
	cdr__zone_more *zone_more;
	/* bands.csv, holidays.csv */
	char **band_names;
	uint32_t nbands;
	uint8_t minute_band[CDR_NDAYTYPE][1440];
	cdr__band_seg *segs[CDR_NDAYTYPE];
	uint32_t nsegs[CDR_NDAYTYPE];
	int64_t *holidays; /* sorted local days */
	uint32_t nholidays;
	/* plans.csv, rates.csv, packages.csv */
	cdr__plan *plans;
	uint32_t nplans;
	cdr__rate_row *rates;
	uint32_t nrates;
	/* rate lookup: the keys rates.csv writes, open addressing, and
	 * their dated rows; zone_keyed[z] says zone z has keys of its own
	 * (else a lookup goes straight to the `*` zone keys) */
	cdr__rate_key *rate_keys;
	uint32_t rate_mask;
	cdr__rate_step *steps;
	uint8_t *zone_keyed;
	cdr__plan_svc *plan_svc; /* [plan * CDR_NSVC + service] */
	/* When the cells are few next to the rows: each (plan, svc, zone
	 * 0..nzones, band) cell's timeline of rows, resolved ahead of time,
	 * cell_steps[cell_off[c] .. cell_off[c + 1]); else NULL */
	uint32_t *cell_off;
	cdr__rate_step *cell_steps;
	/* [cells]: the cell's row on every day when its timeline is one row
	 * from always (nearly every cell), -1 when it has none, else
	 * CDR_CELL_DATED (scan the timeline); with cell_off */
	int32_t *cell_row;
	cdr__package *packages;
	uint32_t npackages;
	cdr__allowance *allows;
	uint32_t nallows;
	/* subscribers.csv */
	char *sub_text; /* subscribers.csv; numbers and accounts point in */
	cdr__subscriber *subs;
	uint32_t nsubs;
	cdr__sub_row *rows;
	uint32_t nrows;
	uint32_t *row_pkgs;
	/* [nrows]: bit s set when an allowance of the row's packages is of
	 * service s; a record no allowance can match makes no bucket */
	uint8_t *row_allow_svc;
	char **accounts; /* sorted bytewise; includes "-" */
	uint32_t naccounts;
	uint32_t dash_account; /* index of "-" */
	struct cdr__submap *sub_map; /* number -> subscriber index */
	/* The image the tables above are mapped from (tariff_image.c), or
	 * NULL when they were built from subscribers.csv */
	struct cdr__timg *img;
	/* outages.csv */
	cdr__outage *outages;
	uint32_t noutages;
	/* normalize.csv (normalize.c), or NULL */
	struct cdr__norm *norm;
};

/* Zone of a destination (digits, '*', '#'), or -1 (no_zone). */
int32_t cdr__zone_lookup(const cdr_tariff *t, const char *d, size_t n);
/* The same by the trie alone (what zone_tab is checked against). */
int32_t cdr__zone_lookup_trie(const cdr_tariff *t, const char *d, size_t n);
/* The trie walk on from node `node` over [d, e), `best` the zone so far. */
int32_t cdr__zone_walk(const cdr_tariff *t, uint32_t node, int32_t best,
		       const char *d, const char *e);
/* cdr__zone_lookup, inline: a destination of 4 digits or more starting
 * with digits is one index into zone_tab, and a walk only below a prefix
 * that longer prefixes extend (the trie walk cost ~80 instructions). */
static inline int32_t cdr__zone_lookup_inline(const cdr_tariff *t,
					      const char *d, size_t n)
{
	if (n >= CDR_ZONE_TAB_DIGITS && t->zone_tab) {
		uint32_t x;
		memcpy(&x, d, sizeof(x));
		/* Four ASCII digits: every byte's high nibble 3, and none
		 * whose low nibble passes 9 (adding 6 then carries into its
		 * high nibble; a carry out of a byte needs 0xFA or more,
		 * which fails on its own). */
		if (((x & 0xF0F0F0F0u) | ((x + 0x06060606u) & 0xF0F0F0F0u) >> 4) ==
		    0x33333333u) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			/* d[0] in the low byte: pairs d0d1 and d2d3 in
			 * bytes 0 and 2, then the four as one number. */
			uint32_t v = x & 0x0F0F0F0Fu;
			v = v * 10 + (v >> 8);
			const uint32_t i = (v & 0xFF) * 100 + (v >> 16 & 0xFF);
#else
			const uint32_t i = (uint32_t)(d[0] - '0') * 1000 +
					   (uint32_t)(d[1] - '0') * 100 +
					   (uint32_t)(d[2] - '0') * 10 +
					   (uint32_t)(d[3] - '0');
#endif
			const int32_t e = t->zone_tab[i];
			if (e >= -1)
				return e;
			const cdr__zone_more *m = &t->zone_more[-2 - e];
			return cdr__zone_walk(t, m->node, m->best,
					      d + CDR_ZONE_TAB_DIGITS, d + n);
		}
	}
	return cdr__zone_lookup_trie(t, d, n);
}
/* Subscriber index of a number (digits, no '+'), or -1. */
int32_t cdr__sub_lookup(const cdr_tariff *t, const char *num, size_t n);
/* What the subscriber table knows of a number. */
typedef struct cdr__subhit {
	uint32_t first, nrows; /* its rows: t->rows[first .. first + nrows) */
	/* Its first row, copied into the table's slot: a number with one row
	 * (nearly all) is rated without reading the rows array. From first
	 * to has_pkgs the fields are the slot's own (subslot, from
	 * first_row), copied as one block. */
	int64_t from_day, to_day;
	uint32_t account, plan;
	uint32_t has_pkgs; /* 0 or 1 */
	int known;	   /* 0: the number has no rows */
} cdr__subhit;

/* Look a number up in steps, so a batch of records can have its table
 * slots fetched from memory together: hash (the same in every tariff),
 * prefetch the slot, then find with the hash. Returns hit->known. */
uint64_t cdr__sub_hash(const char *num, size_t n);
/* The hash itself, of the number packed as cdr__rec.subk packs it (which
 * cdr__sub_hash does first): one 128-bit multiply, folded, where XXH3 of
 * the digits was a call and 25 instructions a record. */
static inline uint64_t cdr__sub_hash_packed(const uint64_t k[2])
{
	const u128 m = (u128)(k[0] ^ 0x9E3779B97F4A7C15ULL) *
		       (k[1] ^ 0xD6E8FEB86659FD93ULL);
	return (uint64_t)m ^ (uint64_t)(m >> 64);
}
void cdr__sub_prefetch(const cdr_tariff *t, uint64_t h);
int cdr__sub_find(const cdr_tariff *t, const char *num, size_t n, uint64_t h,
		  cdr__subhit *hit);
/* The same for a number already packed (cdr__rec.subk), which spares the
 * lookup a walk over its digits. */
int cdr__sub_find_packed(const cdr_tariff *t, const uint64_t k[2],
			 uint64_t h, cdr__subhit *hit);
struct cdr__rec;
/* A batch of the pass keeps each record's per-tariff values (start
 * instant, lookup, rating) side by side, for a rerate's two tariffs: the
 * batch calls below read element i * CDR_SIDES. A constant, so the loops
 * index with a scale instead of a stride kept in a register. */
#define CDR_SIDES 2
/* cdr__sub_find_packed over the n records of a batch, without a call per
 * record: record i is rec[i] (looked up when bit i of `live` is set: it
 * parsed) with hash h[i], its hit goes to hit[i * CDR_SIDES]; the rows of
 * numbers with several are prefetched. */
void cdr__sub_find_batch(const cdr_tariff *t, int n, uint32_t live,
			 const struct cdr__rec *rec, const uint64_t *h,
			 cdr__subhit *hit);
/* Day type (0 mon .. 6 sun, 7 holiday) of a local day. */
unsigned cdr__day_type(const cdr_tariff *t, int64_t day);
/* Row of subscriber `sub` active on local day `day`, or -1. */
int32_t cdr__row_at(const cdr_tariff *t, uint32_t sub, int64_t day);
/* The same among rows[first .. first + nrows) (one number's rows). */
int32_t cdr__row_in(const cdr_tariff *t, uint32_t first, uint32_t nrows,
		    int64_t day);
/* Rate row for a cell on a local day, or -1 (no_rate). */
int32_t cdr__rate_find(const cdr_tariff *t, uint32_t plan, unsigned svc,
		       uint32_t zone, uint32_t band, int64_t day);
#define CDR_CELL_DATED (-2) /* cell_row: a timeline of dated rows */
/* The cell of (plan, svc, zone, band) in cell_off: plan, service, zone
 * (nzones: `*`), band, the last fastest. */
static inline size_t cdr__rate_cell(const cdr_tariff *t, uint32_t plan,
				    unsigned svc, uint32_t zone, uint32_t band)
{
	return (((size_t)plan * CDR_NSVC + svc) * (t->nzones + 1) + zone) *
		       t->nbands +
	       band;
}

/* The same as cdr__rate_find, inline when the cells' timelines were
 * resolved ahead (the usual tariff; rating asks once per record); *cell
 * is set to the cell (UINT32_MAX without the table). */
static inline int32_t cdr__rate_find_inline(const cdr_tariff *t,
					    uint32_t plan, unsigned svc,
					    uint32_t zone, uint32_t band,
					    int64_t day, uint32_t *cell)
{
	if (!t->cell_off) {
		*cell = UINT32_MAX;
		return cdr__rate_find(t, plan, svc, zone, band, day);
	}
	size_t c = cdr__rate_cell(t, plan, svc, zone, band);
	*cell = (uint32_t)c;
	int32_t row = t->cell_row[c];
	if (row != CDR_CELL_DATED)
		return row;
	row = -1;
	/* Steps are few (one per price change) and ordered by day. */
	for (uint32_t i = t->cell_off[c]; i < t->cell_off[c + 1]; i++) {
		if (t->cell_steps[i].from_day > day)
			break;
		row = (int32_t)t->cell_steps[i].row;
	}
	return row;
}

/* Copy the string s into out (size > 0), control bytes as \xNN, for
 * messages that echo what a file holds (tariff.c). */
void cdr__escape_ctl(char *out, size_t size, const char *s);

/* Zeroed memory for big random-access tables, on huge pages when the
 * kernel allows (mem.c); release with cdr__free_huge (not free()). */
void *cdr__calloc_huge(size_t n, size_t size);
void cdr__free_huge(void *p);

/* Threads cdr_tariff_load uses for subscribers.csv: 0 (the default) is
 * two on a machine with two cores or more, else 1 or 2 as set (tests
 * compare the two; the tariff loaded is the same). */
extern unsigned cdr__tariff_threads;

/* ---- money and numbers (money.c) ------------------------------------- */

/* Parse a decimal amount ("0.07", "18", "1.5"; at most 6 decimals, below
 * 10^9, non-negative) into micros. 0 or -EINVAL. */
int cdr__parse_money(const char *s, size_t n, int64_t *micros);
/* Parse a non-negative decimal integer <= max. 0 or -EINVAL. */
int cdr__parse_u64(const char *s, size_t n, uint64_t max, uint64_t *v);
/* Parse YYYY-MM-DD into a day number. 0 or -EINVAL. */
int cdr__parse_date(const char *s, size_t n, int64_t *day);
/* Parse YYYY-MM-DD HH:MM:SS (or 'T') into naive local seconds. */
int cdr__parse_datetime(const char *s, size_t n, int64_t *secs);
/* num / den rounded half up (num >= 0, den > 0). */
u128 cdr__div_round(u128 num, u128 den);
/* Print micros with `decimals` places, rounded half up; returns length.
 * buf must hold 48 bytes. */
size_t cdr__fmt_amount(char *buf, i128 micros, int decimals);
/* Scale micros to a count of 10^-decimals units, rounded half up. */
i128 cdr__round_to_decimals(i128 micros, int decimals);
/* Print a count of 10^-decimals units as a decimal. */
size_t cdr__fmt_scaled(char *buf, i128 v, int decimals);
size_t cdr__fmt_u128(char *buf, u128 v);
size_t cdr__fmt_u64(char *buf, uint64_t v);

/* ---- records (format.h, format_native.c) ----------------------------- */

enum { CDR_START_LOCAL = 0, CDR_START_UTC = 1 };

typedef struct cdr__rec {
	const char *line;
	uint32_t line_len;
	uint32_t id_len, sub_len, dest_len;
	const char *id, *sub, *dest; /* sub and dest without '+' */
	/* The duplicate key: the id, or for switch records the whole line. */
	const char *key;
	uint32_t key_len;
	/* Nonzero: the itemize id is FILE:LINE, `id` being the path. */
	uint64_t id_line;
	uint8_t service;
	uint8_t start_kind; /* local naive seconds or UTC instant */
	int64_t start;
	uint64_t duration, volume;
	/* The subscriber as the subscriber table keys it, packed while its
	 * digits were checked: one digit a nibble (digit + 1, so 0 ends it),
	 * digits 1-16 in subk[0] and 17-32 in subk[1], the first digit
	 * highest. Equal keys are equal numbers. */
	uint64_t subk[2];
} cdr__rec;

/* Parse one native line (no line end) by position. Returns CDR_OK or a
 * malformed reason; the key is the id. */
int cdr__parse_line(const char *p, size_t n, cdr__rec *r);
/* Up to 32 digits packed as cdr__rec.subk packs them, unchecked (other
 * bytes pack to something: callers hash numbers they checked). */
void cdr__pack_key(const char *s, size_t n, uint64_t k[2]);
/* The same for a line in its chunk, whose bytes [p, ce) may be read: the
 * line is p up to the first '\n' (a '\r' before it dropped), its length
 * into *n and the byte after that '\n' into *next. CDR_OK, filled as
 * cdr__parse_line fills it, or -1 for a line it leaves to that parser
 * (anything unusual, or fewer than 192 bytes left to ce). */
int cdr__walk_line(const char *p, const char *ce, cdr__rec *r, size_t *n,
		   const char **next);
/* Lines walked one after another from p, at most max, up to the first
 * the walk leaves: rec[i] for each (its line and line_len the line's);
 * *endp is where the next line starts. Returns how many. */
int cdr__walk_lines(const char *p, const char *ce, int max, cdr__rec *rec,
		    const char **endp);

/* ---- rate (rate.c) --------------------------------------------------- */

/* Days either side of a period that its lookups answer from its own
 * tables: late records start days or weeks before it. */
#define CDR_PERIOD_MARGIN_DAYS 62

typedef struct cdr__period {
	int year, month;
	int64_t first_day, last_day; /* local days */
	int64_t start_utc, end_utc;  /* [start, end) instants */
	/* The tariff's zone around the period (tz.h), and the day type
	 * (cdr__day_type) of each local day from dt_first on: what rating
	 * asks per record, without binary searches. */
	cdr__tz_win tzw;
	int64_t dt_first;
	uint32_t dt_n;
	uint8_t day_type[31 + 2 * CDR_PERIOD_MARGIN_DAYS];
	int64_t dt_first_local; /* local second day dt_first begins at */
	/* When the window holds one offset: instants from one_off_from
	 * below the period's end have offset one_off (else INT64_MAX) */
	int64_t one_off_from;
	int32_t one_off;
	/* Naive local times [ls_lo, ls_lo + ls_span) are the instants
	 * local - ls_off, all within 0 .. CDR_UNIX_MAX: the window's first
	 * stretch, so a start there is one subtraction (span 0: none). */
	int32_t ls_off;
	int64_t ls_lo;
	uint64_t ls_span;
} cdr__period;

int cdr__period_init(cdr__period *p, const cdr_tariff *t, int year, int month);

/* cdr__day_type through the period's table. */
static inline unsigned cdr__period_day_type(const cdr__period *p,
					    const cdr_tariff *t, int64_t day)
{
	uint64_t i = (uint64_t)(day - p->dt_first);
	return i < p->dt_n ? p->day_type[i] : cdr__day_type(t, day);
}

/* Everything one record contributes to the totals. */
typedef struct cdr__rated {
	uint8_t reason; /* CDR_OK or a reject reason */
	uint8_t service;
	uint8_t late;
	uint8_t is_free;
	uint8_t has_pkgs; /* its row holds packages: fills a bucket */
	uint32_t account;
	int32_t row;	  /* subscriber row, -1 for a free call without one */
	int32_t rate_row; /* -1 for free calls */
	uint32_t zone;	  /* zone index; nzones means `*` (data) */
	uint32_t band;	  /* band index or CDR_BAND_STAR */
	/* A record rated CDR_OK: with a rate row, its (plan, service, zone,
	 * band) cell of the tariff's cell table (cdr__rate_cell), a
	 * breakdown's index; UINT32_MAX for a free call or without that
	 * table. Not set for a reject. In padding. */
	uint32_t cell;
	uint64_t quantity;
	int64_t start_utc; /* in the padding before charge: still 64 bytes */
	i128 charge_micros;
} cdr__rated;

/* Resolve the start instant; CDR_OK or CDR_R_START (out of range). */
int cdr__start_utc(const cdr_tariff *t, const cdr__rec *r, int64_t *utc);
/* The same through the period's window of the zone (the pass: inline, a
 * call and its spills were a third of what it cost a record). */
static inline int cdr__period_start_utc(const cdr__period *p,
					const cdr__rec *r, int64_t *utc)
{
	int64_t u = r->start;
	if (r->start_kind == CDR_START_LOCAL) {
		if ((uint64_t)u - (uint64_t)p->ls_lo < p->ls_span) {
			*utc = u - p->ls_off;
			return CDR_OK;
		}
		u = cdr__tz_win_local_to_utc(&p->tzw, r->start);
	}
	if (u < 0 || u > CDR_UNIX_MAX)
		return CDR_R_START;
	*utc = u;
	return CDR_OK;
}
/* Steps 3..10 of rating for a parsed record with start instant `utc`. */
void cdr__rate_record(const cdr_tariff *t, const cdr__period *p,
		      const cdr__rec *r, int64_t utc, cdr__rated *out);

/*
 * The pieces of a split voice call (band_split = split): billed seconds
 * of [start, start + q) per band, each band with the rate row that priced
 * it. agg.c puts each in its own allowance bucket. x is a rated voice
 * record with a row. 0, or -1 when a piece's band has no rate (never for a
 * record rate.c accepted).
 */
typedef struct cdr__pieces {
	unsigned n;	/* bands with seconds, in band order */
	uint8_t band[CDR_BAND_STAR];
	uint32_t row[CDR_BAND_STAR];
	uint64_t secs[CDR_BAND_STAR];
} cdr__pieces;
int cdr__split_pieces(const cdr_tariff *t, const cdr__rated *x,
		      cdr__pieces *out);

/* cdr__rate_record with the lookup already done. */
void cdr__rate_record_hit(const cdr_tariff *t, const cdr__period *p,
			  const cdr__rec *r, int64_t utc,
			  const cdr__subhit *hit, cdr__rated *out);

/* The same by the contract's steps alone, without rate.c's fast path
 * for the usual record (what tests compare that path with). */
void cdr__rate_record_steps(const cdr_tariff *t, const cdr__period *p,
			    const cdr__rec *r, int64_t utc,
			    const cdr__subhit *hit, cdr__rated *out);

struct cdr__acct;
/*
 * cdr__rate_record_hit over the n records of a batch under one tariff,
 * without a call per record: record i is rec[i] (rated when bit i of
 * `live` is set: it parsed), with start instant utc[i * CDR_SIDES], lookup
 * hit[i * CDR_SIDES] and result x[i * CDR_SIDES]. The account sums acct[account] of each
 * accepted record are prefetched for writing: cdr__acc_add adds to them
 * next. Returns the records rated CDR_OK, bit i for record i.
 */
uint32_t cdr__rate_batch(const cdr_tariff *t, const cdr__period *p, int n,
			 uint32_t live, const cdr__rec *rec,
		     const int64_t *utc, const cdr__subhit *hit,
		     cdr__rated *x, const struct cdr__acct *acct);


/* ---- agg (agg.c) ----------------------------------------------------- */

/* The sums kept per account: counts, billed quantities, charges. */
enum {
	CDR_F_RECORDS, CDR_F_LATE, CDR_F_VOICE_S, CDR_F_SMS, CDR_F_DATA_B,
	CDR_F_VOICE_C, CDR_F_SMS_C, CDR_F_DATA_C, CDR_NF
};

/*
 * One account's sums in one cache line (the rating pass touches one per
 * record). A figure that would leave 64 bits - possible in principle with
 * 10^10 records of 10^12 units, never in practice - is carried in the
 * accumulator's `wide` table instead; the sum is acct + wide.
 */
typedef struct cdr__acct {
	int64_t f[CDR_NF];
} cdr__acct;

typedef struct cdr__wide {
	i128 f[CDR_NF];
} cdr__wide;

/* Allowance bucket: billed units of one (row, rate row, zone, band). */
typedef struct cdr__bucket {
	uint32_t row, rate_row, zone, band;
	u128 units;
} cdr__bucket;

/* One record's (or split piece's) billed units for a bucket, signed: a
 * duplicate taken back is an entry of its own with negative units. The
 * log of them is appended to during the pass and sorted at the end. */
typedef struct cdr__bkent {
	uint32_t row, rate_row, zone;
	uint8_t band, pad[3];
	int64_t units;
} cdr__bkent;

#define CDR_BK_CHUNK 65536u /* entries per chunk of the log (1.5 MiB) */
typedef struct cdr__bkchunk {
	uint32_t n;
	cdr__bkent e[];
} cdr__bkchunk;

/* One tariff's accumulators: per worker, then merged. */
typedef struct cdr__acc {
	const cdr_tariff *t;
	cdr__acct *acct; /* [t->naccounts] */
	cdr__wide *wide; /* [t->naccounts], made at the first overflow */
	cdr__bkchunk **chunks; /* the allowance log; appended at the last */
	uint32_t nchunks, chunks_cap;
	size_t bk_n; /* entries in the log (chunks and sealed) */
	int threads; /* monthly charges and totals on up to 2 threads when > 1 */
	/* The log once sealed: entries grouped by row (row r's are
	 * sealed[sealed_off[r] .. sealed_off[r + 1])), each row's in taking
	 * order with equal buckets added up; entries added later go to
	 * chunks again. */
	uint32_t *sealed_off;
	cdr__bkent *sealed;
	size_t sealed_n;
	/* The breakdown (breakdown.h) when one was asked for, else NULL;
	 * the accumulator frees it and merges it with its own sums. */
	struct cdr__bd *bd;
} cdr__acc;

int cdr__acc_init(cdr__acc *a, const cdr_tariff *t);
void cdr__acc_fini(cdr__acc *a);
/* Add (sign +1) or take back (-1) one rated record. 0 or -ENOMEM. */
int cdr__acc_add(cdr__acc *a, const cdr__rated *x, int sign);
/* The same, sign +1, for x[i * CDR_SIDES] of each bit i of mask (the
 * pass). */
int cdr__acc_add_batch(cdr__acc *a, const cdr__rated *x, uint32_t mask);
/* Add from's sums into `into`; from's allowance log moves over whole
 * (no entry is copied), so from keeps only its account sums. */
int cdr__acc_merge(cdr__acc *into, cdr__acc *from);
/* The allowance buckets of a merged accumulator, row by row: for each row
 * with a bucket of nonzero units, fn(ctx, row, bk, n) with that row's
 * buckets, dearest first (SPEC 7's taking order); fn may consume them.
 * Rows come in increasing order. 0, -ENOMEM, or what fn returned. */
typedef int (*cdr__bk_fn)(void *ctx, uint32_t row, cdr__bucket *bk, size_t n);
/* Sort the log into the sealed form and free its chunks as they are
 * read: after the pass, so the monthly charges need no copy of it. The
 * buckets are the same either way. 0 or -ENOMEM (the log unchanged). */
int cdr__acc_seal(cdr__acc *a);
/* Fewer log entries than this are sealed on one thread even when
 * a->threads > 1 (tests lower it to cut small logs in two). */
extern size_t cdr__seal_split_min;
int cdr__acc_buckets(const cdr__acc *a, cdr__bk_fn fn, void *ctx);
/* Sum `f` of account `i`: the 64-bit part plus any overflow. Inline:
 * the month (monthly.c) reads every sum of every account through it. */
static inline i128 cdr__acc_get(const cdr__acc *a, uint32_t i, int f)
{
	return (i128)a->acct[i].f[f] + (a->wide ? a->wide[i].f[f] : 0);
}

/* ---- monthly charges, totals, deltas (monthly.c, totals.c, diff.c) --- */

/* Every allowance take of a merged accumulator, as the totals make them
 * (SPEC 7): fn(ctx, bucket taken from, credit in micros, rounded on its
 * own). The credits of a row's takes add up to its allowance credit. */
typedef void (*cdr__take_fn)(void *ctx, const cdr__bucket *b, i128 credit);
int cdr__acc_takes(const cdr__acc *a, cdr__take_fn fn, void *ctx);

/* Render the totals CSV for a merged accumulator (the monthly charges
 * are computed on the way, monthly.c). Caller frees *buf. */
int cdr__totals_render(const cdr__acc *a, const cdr__period *p, char **buf,
		       size_t *len);

/* One account's totals line as figures: what cdr__totals_render prints,
 * and what diff reads back from a totals file. */
typedef struct cdr__figures {
	const char *acct;
	size_t acct_n;
	u128 qty[5]; /* records, late_records, voice_seconds, sms, data */
	i128 amt[7]; /* voice, sms, data, allowance, recurring, outage,
			total: the printed values, in micros */
} cdr__figures;

/* The lines of cdr__totals_render, in its order, as figures (account
 * names point into the tariff). Caller frees *rows. */
int cdr__totals_figures(const cdr__acc *a, const cdr__period *p,
			cdr__figures **rows, size_t *n);

/* The delta CSV (and the report) between two sides' figures; `dec` is
 * the places to print. Sorts the rows when they are not sorted. Returns
 * the count of accounts that moved, or -ENOMEM. */
int cdr__delta_render(cdr__figures *a, size_t na, cdr__figures *b,
		      size_t nb, const char *period, int dec, int all,
		      char **out, size_t *out_len, FILE *report);

/* ---- reader (reader.c, reader_uring.c) ------------------------------- */

/*
 * A backend fills buffers from a file descriptor. `off` is the file offset
 * for regular files and -1 for pipes (read at the current position). It
 * returns the bytes read (short only at end of file) or -errno.
 */
typedef struct cdr__backend {
	const char *name;
	ssize_t (*fill)(struct cdr__backend *b, int fd, char *buf, size_t len,
			int64_t off);
	void (*close)(struct cdr__backend *b);
} cdr__backend;

/* The read(2) backend; static, never fails. */
cdr__backend *cdr__backend_read(void);
/* An io_uring backend, or NULL with *why set to the kernel's refusal. */
cdr__backend *cdr__backend_uring(int *why);

#endif
