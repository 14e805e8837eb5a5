/*
 * breakdown.h - the run's breakdowns (breakdown.c) and the HTML report
 * drawn from them (report.c). Private to the library.
 *
 * A cdr__bd rides on one tariff's cdr__acc (agg.c) when --breakdown or
 * --report asked for it, and is NULL otherwise: cdr__acc_add then pays one
 * test of a pointer. Its sums are commutative like the accumulators', so
 * the breakdown does not depend on thread count or input order.
 */
#ifndef CDR_BREAKDOWN_H
#define CDR_BREAKDOWN_H

#include <stdint.h>

#include "internal.h"

/* One (service, plan, zone, band) cell of the hash table. */
typedef struct cdr__bdcell {
	uint64_t key; /* 0: empty slot; else cell_key() */
	int64_t records, late;
	i128 qty, charge, allow;
} cdr__bdcell;

/* A cell of the dense table: the pass's cells, indexed by the record's
 * cdr__rated.cell (the tariff's cell table, when it has one). */
typedef struct cdr__bddense {
	int64_t records; /* late records are the hash table's */
	i128 qty, charge;
} cdr__bddense;
/* The dense table is made for at most this many cells (6 MiB). */
#define CDR_BD_DENSE_MAX (1u << 17)

#define CDR_BD_SAMPLES 3    /* sample lines shown per reject reason */
/* Lines kept per reason: the first by order, so that duplicates' losers
 * taken out at the end (cdr__bd_undo) leave the next ones in place. */
#define CDR_BD_POOL 32
#define CDR_BD_SAMPLE_MAX 200 /* bytes of a sample line kept */
#define CDR_BD_DAYS 33	    /* 31 days of the period, earlier, later */

typedef struct cdr__bdsample {
	uint64_t order; /* (input's rank by path) << 44 | offset; 0: unused */
	uint16_t n;
	char line[CDR_BD_SAMPLE_MAX];
} cdr__bdsample;

/* What a rate's report needs of the totals' figures: the amount columns
 * summed, the count of accounts, and the largest totals (by total, then
 * account name) - not every account's figures. */
#define CDR_BD_TOP 20
typedef struct cdr__bdfigs {
	i128 sum[7]; /* cdr__figures.amt, summed */
	size_t n;    /* accounts */
	uint32_t ntop;
	cdr__figures top[CDR_BD_TOP];
} cdr__bdfigs;

typedef struct cdr__bd {
	const cdr_tariff *t;
	const cdr__period *p;
	cdr__bdcell *cells;
	uint32_t ncells, cap; /* cap a power of two */
	/* The pass's cells of rated records, [ndc] (0: no dense table, all
	 * cells in the hash table); folded into cells by cdr__bd_fold. */
	cdr__bddense *dc;
	uint32_t ndc;
	uint32_t nband;	      /* t->nbands + 1: the last is `*` */
	uint32_t nplans;      /* t->nplans: the plan of a record without a row */
	int64_t local0;	      /* the period's first local midnight (naive) */
	uint64_t span;	      /* its length in seconds */
	/* The zone keeps one offset over the whole period (no DST change
	 * in it): then local0 is the instant utc0 and no lookup is needed. */
	int fixed;
	int64_t utc0;
	/* Records and charge by local hour of the period x band, [nhp *
	 * nband] (the pass's one index), and by local hour of day x band,
	 * [24 * nband], of records outside the period (late ones), which
	 * also go to day_rec/day_chg; both folded together at the end. */
	int64_t *hp_rec;
	i128 *hp_chg;
	uint32_t nhp;
	int64_t *hour_rec;
	i128 *hour_chg;
	int64_t day_rec[CDR_BD_DAYS];
	i128 day_chg[CDR_BD_DAYS];
	uint32_t nin;
	int64_t *rej_in; /* [nin] rejects by input */
	int64_t nsample[CDR_NREASON];
	/* The first lines of each reason by order (smallest first): the
	 * lines of that final reason once the duplicates are resolved. */
	cdr__bdsample sample[CDR_NREASON][CDR_BD_POOL];
	/* The totals' figures per account, kept by totals.c or monthly.c
	 * when they make them for the totals or the delta, so the breakdown
	 * need not make them again; NULL until then. */
	cdr__figures *fig;
	size_t nfig;
	/* Unless keep_figs (a rerate's sides, a shard's rate task: every
	 * account's figures are needed), totals.c keeps only figs when it
	 * renders the totals (has_figs). */
	int keep_figs, has_figs;
	cdr__bdfigs figs;
	/* The cells' allowance credits are in place (cdr__bd_credit, or a
	 * sharded run's merged parts): cdr__bd_rows keeps them. */
	int credited;
} cdr__bd;

/* A breakdown for tariff t over period p and nin inputs; NULL: no memory. */
cdr__bd *cdr__bd_new(const cdr_tariff *t, const cdr__period *p, uint32_t nin);
void cdr__bd_free(cdr__bd *b);
/* A rated record added (sign +1) or taken back (-1). 0 or -ENOMEM. */
int cdr__bd_add_slow(cdr__bd *b, const cdr__rated *x, int sign);

/* The cell key: never 0 (the empty slot), the service stored plus one. */
static inline uint64_t cdr__bd_key(uint32_t svc, uint32_t plan, uint32_t zone,
				   uint32_t band)
{
	return (uint64_t)plan << 34 | (uint64_t)(zone & 0xffffffu) << 10 |
	       (uint64_t)(band & 0xffu) << 2 | (svc + 1);
}

static inline uint32_t cdr__bd_slot(uint64_t key, uint32_t cap)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/*
 * cdr__bd_add_slow's common case, inlined into cdr__acc_add: a record
 * added (not taken back), not late, that has a cell of the dense table
 * (so a rate row: a free call's cell is UINT32_MAX), and whose start is
 * a local day of the period. Its band is then
 * a band of the tariff (not `*`). Anything else takes the slow path,
 * which does the same sums in the hash table.
 */
static inline int cdr__bd_add(cdr__bd *b, const cdr__rated *x, int sign)
{
	/* With one offset a late record (before the period's start) is
	 * before utc0: t wraps above span. */
	const uint64_t t =
		b->fixed ? (uint64_t)(x->start_utc - b->utc0)
		: x->late
			? UINT64_MAX
			: (uint64_t)(x->start_utc +
				     cdr__tz_win_offset(&b->p->tzw, x->start_utc) -
				     b->local0);
	if (sign < 0 || x->cell >= b->ndc || t >= b->span)
		return cdr__bd_add_slow(b, x, sign);
	cdr__bddense *c = &b->dc[x->cell];
	c->records++;
	c->qty += x->quantity;
	c->charge += x->charge_micros;
	/* t < span < 2^32 */
	const size_t h = (size_t)((uint32_t)t / 3600u) * b->nband + x->band;
	b->hp_rec[h]++;
	b->hp_chg[h] += x->charge_micros;
	return 0;
}
/* The dense table's cells into the hash table (then emptied). 0 or
 * -ENOMEM. Everything that reads b->cells calls it first. */
int cdr__bd_fold(cdr__bd *b);
/* A rejected line of input `in`; order sorts the samples (smallest kept). */
void cdr__bd_reject(cdr__bd *b, uint32_t in, uint64_t order, int reason,
		    const char *line, size_t n);
/* The line at order, first `reason` (CDR_OK: rated), is a duplicate's
 * loser: its sample moves to `duplicate`; a rated one is one more reject
 * of its input. */
void cdr__bd_undo(cdr__bd *b, uint32_t in, uint64_t order, int reason,
		  const char *line, size_t n);
/* One account's figures into s (out of line: monthly.c's loop over the
 * accounts stays as it is without a breakdown). */
void cdr__bd_figs_add(cdr__bdfigs *s, const cdr__figures *f);
/* s's of another range of accounts into into. */
void cdr__bd_figs_merge(cdr__bdfigs *into, const cdr__bdfigs *from);
/* from's sums into into. 0 or -ENOMEM. */
int cdr__bd_merge(cdr__bd *into, const cdr__bd *from);
/* A sample line of reason kept when its order (never 0) is among the
 * smallest; counts as one more reject of that reason. */
void cdr__bd_sample(cdr__bd *b, int reason, uint64_t order, const char *line,
		    size_t n);
/* The cell of key (made when new); NULL: no memory. */
cdr__bdcell *cdr__bd_cell(cdr__bd *b, uint64_t key);
/* The totals' allowance takes of merged accumulator a credited to its
 * bd's cells (cleared first); sets credited. 0 or -ENOMEM. */
int cdr__bd_credit(const cdr__acc *a);

/* ---- rows: what the CSV prints and the report draws ------------------- */

enum {
	CDR_BV_RECORDS,
	CDR_BV_LATE,
	CDR_BV_QTY,
	CDR_BV_CHARGE, /* money: counts of 10^-decimals */
	CDR_BV_ALLOW,
	CDR_BV_RECURRING,
	CDR_BV_OUTAGE,
	CDR_BV_N
};

enum {
	CDR_BK_TABLE,
	CDR_BK_SERVICE,
	CDR_BK_PLAN,
	CDR_BK_ZONE,
	CDR_BK_BAND,
	CDR_BK_KEY,
	CDR_BK_N
};

typedef struct cdr__bdrow {
	const char *k[CDR_BK_N]; /* raw text, "" when empty */
	size_t ko[CDR_BK_N];	 /* where k[i] is in the arena */
	i128 v[2][CDR_BV_N];	 /* [0] the side shown, [1] the old side */
	uint8_t has[2];		 /* the row exists on that side */
} cdr__bdrow;

typedef struct cdr__bdrows {
	cdr__bdrow *row;
	size_t n, cap;
	char *arena; /* the key texts */
	size_t an, acap;
	int decimals, sides; /* sides 2: rerate (v[1] the old tariff) */
	int year, month;     /* the period of the side shown */
	const char *currency;
	/* Figures per account of each side (for the report), in micros;
	 * the sides' bd own them. A rate's side 0 may hold only its largest
	 * totals (cdr__bdfigs); naccts and total are of every account. */
	const cdr__figures *fig[2];
	size_t nfig[2];
	size_t naccts[2];
	i128 total[2];
	/* Samples of each reject reason (side 0: the shown side). */
	const cdr__bd *bd;
} cdr__bdrows;

/* One tariff's side of a run: its merged accumulator (with its bd), its
 * period and its counts by reason. */
typedef struct cdr__bdside {
	const cdr__acc *acc;
	const cdr__period *per;
	const uint64_t *by_reason; /* [CDR_NREASON] */
} cdr__bdside;
/* The rows of the run's breakdown, sorted bytewise by the key columns:
 * side[0] the side shown, side[1] (nsides 2) the old side of a rerate.
 * paths[nin] name the inputs. */
int cdr__bd_rows(const cdr__bdside *side, int nsides,
		 const char *const *paths, uint32_t nin, cdr__bdrows *out);
void cdr__bd_rows_free(cdr__bdrows *rows);
/* The CSV of rows. */
int cdr__bd_csv(const cdr__bdrows *rows, char **buf, size_t *len);
/* The HTML page of rows (report.c). */
int cdr__report_html(const cdr__bdrows *rows, const char *const *summary,
		     int nsummary, char **buf, size_t *len);
/* The CSV (csv non-NULL) and the page (html non-NULL) of rows, both or
 * neither; rows are freed either way. */
int cdr__bd_render(cdr__bdrows *rows, char **csv, size_t *csv_len,
		   const char *const *summary, int nsummary, char **html,
		   size_t *html_len);

#endif
