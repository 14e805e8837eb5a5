/*
 * totals.c - the totals CSV: the month's figures (monthly.c) as text.
 *
 * One line per account in the accounts' bytewise order, each amount
 * printed at the tariff's decimal places from the micros it was rounded
 * to. The month's account ranges print their lines into buffers of their
 * own on their threads (cdr__totals_line); the first buffer starts with
 * the header and takes the others at its end.
 *
 * Sections: the buffer - a totals line - the file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "breakdown.h"
#include "internal.h"
#include "monthly.h"

/* ---- the buffer ------------------------------------------------------ */

static int sb_reserve(sbuf *s, size_t more)
{
	if (s->n + more <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 4096;
	while (cap < s->n + more)
		cap *= 2;
	char *nb = realloc(s->b, cap);
	if (!nb)
		return -ENOMEM;
	s->b = nb;
	s->cap = cap;
	return 0;
}

static void sb_put(sbuf *s, const char *p, size_t n)
{
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

/* ---- a totals line --------------------------------------------------- */

/* One figures line, as the totals file prints it, straight into s. */
int cdr__totals_line(sbuf *s, const cdr__figures *r, const month *m)
{
	const i128 scale = m->scale;
	const int dec = m->t->decimals;
	int rc = sb_reserve(s, r->acct_n + 16 + (size_t)12 * 48);
	if (rc || !s->b)
		return rc ? rc : -ENOMEM;
	char *o = s->b + s->n;
	memcpy(o, r->acct, r->acct_n);
	o += r->acct_n;
	*o++ = ',';
	memcpy(o, m->period, m->period_n);
	o += m->period_n;
	for (int k = 0; k < 5; k++) {
		*o++ = ',';
		o += r->qty[k] <= UINT64_MAX ? cdr__fmt_u64(o, (uint64_t)r->qty[k])
					     : cdr__fmt_u128(o, r->qty[k]);
	}
	for (int k = 0; k < 7; k++) {
		*o++ = ',';
		/* amt is a multiple of scale: divide in 64 bits when it fits */
		i128 v = r->amt[k] >= -INT64_MAX && r->amt[k] <= INT64_MAX
				 ? (i128)((int64_t)r->amt[k] / (int64_t)scale)
				 : r->amt[k] / scale;
		o += cdr__fmt_scaled(o, v, dec);
	}
	*o++ = '\n';
	s->n = (size_t)(o - s->b);
	return 0;
}

/* ---- the file -------------------------------------------------------- */

int cdr__totals_render(const cdr__acc *a, const cdr__period *p, char **buf,
		       size_t *len)
{
	static const char header[] =
		"account,period,records,late_records,voice_seconds,sms_count,"
		"data_bytes,voice_charge,sms_charge,data_charge,"
		"allowance_credit,recurring_charge,outage_credit,total\n";
	month m;
	month_job j[MONTH_MAX_THREADS] = {{0}};
	int nj = 0;
	int rc = cdr__month_init(&m, a, p);
	if (rc)
		return rc;
	/* The first part's buffer starts with the header and takes the
	 * others at its end (a realloc of a large block moves no bytes). */
	j[0].s.b = malloc(4096);
	j[0].s.cap = 4096;
	if (!j[0].s.b) {
		cdr__month_free(&m);
		return -ENOMEM;
	}
	memcpy(j[0].s.b, header, sizeof(header) - 1);
	j[0].s.n = sizeof(header) - 1;
	rc = cdr__month_jobs(&m, 1, j, &nj);
	size_t total = 0;
	for (int k = 0; k < nj; k++)
		total += j[k].s.n;
	if (!rc)
		rc = sb_reserve(&j[0].s, total - j[0].s.n + 1);
	for (int k = 1; k < nj; k++) {
		if (!rc && j[k].s.n)
			sb_put(&j[0].s, j[k].s.b, j[k].s.n);
		free(j[k].s.b);
	}
	/* A breakdown keeps the figures (breakdown.h), all parts in order,
	 * or their sums and largest totals. */
	if (j[0].keep == 2 && !rc) {
		a->bd->figs = j[0].fs;
		for (int k = 1; k < nj; k++)
			cdr__bd_figs_merge(&a->bd->figs, &j[k].fs);
		a->bd->has_figs = 1;
	} else if (j[0].keep == 1 && nj == 1 && !rc) {
		a->bd->fig = j[0].f; /* one part: as it is */
		a->bd->nfig = j[0].n;
	} else if (j[0].keep == 1) {
		size_t nf;
		cdr__figures *f = cdr__month_figures(j, nj, !rc, &nf);
		if (f) {
			a->bd->fig = f;
			a->bd->nfig = nf;
		}
	}
	char *out = j[0].s.b;
	if (rc)
		free(out);
	cdr__month_free(&m);
	if (rc)
		return rc;
	*buf = out;
	*len = total;
	return 0;
}
