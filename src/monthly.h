/*
 * monthly.h - what monthly.c (the monthly charges) and totals.c (the
 * totals CSV) share: the month, prepared once from a merged accumulator,
 * its jobs over account ranges, and the totals line the jobs print.
 * Private to those two files.
 */
#ifndef CDR_MONTHLY_H
#define CDR_MONTHLY_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "breakdown.h"
#include "internal.h"

/* Credits keyed by row, then by account: outages are few, so a short
 * list instead of an array over every row. */
typedef struct keyed_credit {
	uint32_t key;
	i128 v;
} keyed_credit;

typedef struct credits {
	keyed_credit *c;
	size_t n, cap;
} credits;

/*
 * Everything the month needs, prepared once and then read by account
 * ranges on several threads: the log sorted by row, each account's rows,
 * and the outage credits per account (capped per row at the row's
 * prorated plan fee). Each account's figures depend on its own rows
 * only, so ranges of accounts rendered apart and put end to end are the
 * bytes one thread would write.
 */
typedef struct month {
	const cdr__acc *a;
	const cdr_tariff *t;
	const cdr__period *p;
	bk_rows b;
	uint32_t *acc_off;  /* [naccounts + 1] */
	uint32_t *acc_rows; /* account i: acc_rows[acc_off[i] .. acc_off[i+1]) */
	credits out;	    /* by account */
	i128 scale;	    /* micros per printed unit of the last place */
	char period[16];
	size_t period_n;
} month;

/* Text that grows at its end (totals.c): b[0 .. n) of cap bytes. */
typedef struct sbuf {
	char *b;
	size_t n, cap;
} sbuf;

/* One thread's part: accounts [lo, hi), as figures or as text. */
typedef struct month_job {
	month *m;
	uint32_t lo, hi;
	int text;
	int keep;	 /* text == 1: the figures too (a breakdown's): 1
			    all, 2 only their sums and largest totals (fs) */
	cdr__figures *f; /* text == 0, or keep 1 */
	cdr__bdfigs fs;	 /* keep 2 */
	size_t n;
	sbuf s; /* text == 1 */
	int rc;
} month_job;

#define MONTH_MAX_THREADS 2

/* The month of merged accumulator a in period p: 0, or -ENOMEM (m then
 * holds nothing to free). */
int cdr__month_init(month *m, const cdr__acc *a, const cdr__period *p);
void cdr__month_free(month *m);
/* Every account of m in up to MONTH_MAX_THREADS jobs j[0 .. *nj), as
 * figures (text 0) or as totals lines (text 1); the caller zeroed j. */
int cdr__month_jobs(month *m, int text, month_job *j, int *nj);
/* The figures of jobs j[0 .. nj), end to end in one new array of *n
 * (when `want`; NULL when it cannot be had), the jobs' own freed. */
cdr__figures *cdr__month_figures(month_job *j, int nj, int want, size_t *n);
/* One figures line, as the totals file prints it, at the end of s
 * (totals.c). 0 or -ENOMEM. */
int cdr__totals_line(sbuf *s, const cdr__figures *r, const month *m);

#endif
