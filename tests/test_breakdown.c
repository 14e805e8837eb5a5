/*
 * test_breakdown.c - the breakdown's sums (breakdown.c): the same rows
 * whatever worker saw a record and in whatever order workers merge; a
 * duplicate taken back leaves nothing; the cell table grows without losing
 * a cell; local hour and day of a start; the reject samples keep the
 * smallest orders whatever the order they came in.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "breakdown.h"
#include "internal.h"
#include "testutil.h"

static cdr__rated rec(uint32_t account, int svc, uint32_t zone, uint32_t band,
		      uint64_t q, i128 charge, int64_t utc)
{
	cdr__rated x;
	memset(&x, 0, sizeof(x));
	x.reason = CDR_OK;
	x.service = (uint8_t)svc;
	x.account = account;
	x.row = 0;
	x.rate_row = -1;
	x.cell = UINT32_MAX; /* no rate row: no cell (as rate.c's free calls) */
	x.zone = zone;
	x.band = band;
	x.quantity = q;
	x.charge_micros = charge;
	x.start_utc = utc;
	return x;
}

typedef struct fx {
	char *dir;
	cdr_tariff *t;
	cdr__period per;
	uint32_t a1;
} fx;

static void fx_init(fx *f)
{
	char err[CDR_ERR_MAX];
	f->dir = tu_tariff();
	f->t = tu_load(f->dir, err);
	cr_assert_not_null(f->t, "%s", err);
	f->a1 = 0;
	while (strcmp(f->t->accounts[f->a1], "A1"))
		f->a1++;
	cdr__period_init(&f->per, f->t, 2026, 10);
}

static void fx_fini(fx *f)
{
	cdr_tariff_free(f->t);
	tu_rmdir(f->dir);
}

static void acc_bd(fx *f, cdr__acc *a)
{
	cr_assert_eq(cdr__acc_init(a, f->t), 0);
	a->bd = cdr__bd_new(f->t, &f->per, 1);
	cr_assert_not_null(a->bd);
}

/* The CSV of a merged accumulator. */
static char *csv_of(fx *f, cdr__acc *a)
{
	static const uint64_t none[CDR_NREASON] = {0};
	cdr__bdside s = {a, &f->per, none};
	const char *paths[1] = {"in.csv"};
	cdr__bdrows rows;
	cr_assert_eq(cdr__acc_seal(a), 0);
	cr_assert_eq(cdr__bd_rows(&s, 1, paths, 1, &rows), 0);
	char *buf;
	size_t len;
	cr_assert_eq(cdr__bd_csv(&rows, &buf, &len), 0);
	cdr__bd_rows_free(&rows);
	char *z = malloc(len + 1);
	memcpy(z, buf, len);
	z[len] = '\0';
	free(buf);
	return z;
}

/* 2026-10-06 00:00 local in Asia/Shanghai (UTC+8), as a UTC instant. */
#define OCT6 (INT64_C(1791244800) - 8 * 3600)

Test(breakdown, merge_order_and_workers_do_not_matter)
{
	fx f;
	fx_init(&f);
	enum { N = 200 };
	cdr__rated x[N];
	for (int i = 0; i < N; i++)
		x[i] = rec(f.a1, i / 21 % 3, (uint32_t)(i % 7),
			   (uint32_t)(i / 7 % 3),
			   (uint64_t)(i * 7), (i128)(i * 12345 + 1),
			   OCT6 + (int64_t)i * 5000);
	/* one worker, in order */
	cdr__acc one;
	acc_bd(&f, &one);
	for (int i = 0; i < N; i++)
		cr_assert_eq(cdr__acc_add(&one, &x[i], 1), 0);
	char *want = csv_of(&f, &one);
	/* three workers, records dealt round-robin backwards, merged both
	 * ways round */
	for (int way = 0; way < 2; way++) {
		cdr__acc w[3];
		for (int k = 0; k < 3; k++)
			acc_bd(&f, &w[k]);
		for (int i = N - 1; i >= 0; i--)
			cr_assert_eq(cdr__acc_add(&w[i % 3], &x[i], 1), 0);
		int first = way ? 2 : 0;
		for (int k = 0; k < 3; k++)
			if (k != first)
				cr_assert_eq(cdr__acc_merge(&w[first], &w[k]), 0);
		char *got = csv_of(&f, &w[first]);
		cr_assert_str_eq(got, want);
		free(got);
		for (int k = 0; k < 3; k++)
			cdr__acc_fini(&w[k]);
	}
	/* 3 services x 7 zones (6 and *) x 3 bands (2 and *): 63 cells,
	 * more than the table's first size holds, so it grew; every one is
	 * a row. */
	cr_assert_eq(f.t->nzones, 6);
	cr_assert_eq(f.t->nbands, 2);
	size_t cells = 0;
	for (const char *p = want; (p = strstr(p, "\ncell,")); p++)
		cells++;
	cr_assert_eq(cells, 63, "%s", want);
	free(want);
	cdr__acc_fini(&one);
	fx_fini(&f);
}

Test(breakdown, a_duplicate_taken_back_leaves_nothing)
{
	fx f;
	fx_init(&f);
	cdr__acc a;
	acc_bd(&f, &a);
	cdr__rated keep = rec(f.a1, CDR_VOICE, 0, 0, 60, 150000, OCT6 + 3600);
	cdr__rated dup = rec(f.a1, CDR_SMS, 1, 1, 1, 100000, OCT6 + 7200);
	cr_assert_eq(cdr__acc_add(&a, &keep, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &dup, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &dup, -1), 0);
	char *csv = csv_of(&f, &a);
	/* one cell, hour 01 and day 2026-10-06 only */
	cr_assert_null(strstr(csv, "\ncell,sms"), "%s", csv);
	cr_assert_not_null(strstr(csv, "\ncell,voice,m18,"), "%s", csv);
	cr_assert_not_null(strstr(csv, ",01,1,0,0,0.15,"), "%s", csv);
	cr_assert_null(strstr(csv, ",02,"), "%s", csv);
	cr_assert_not_null(strstr(csv, "\nday,,,,,2026-10-06,1,0,0,0.15,"),
			   "%s", csv);
	/* the totals' voice charge 0.15 and the cells' agree: rounding 0 */
	cr_assert_not_null(strstr(csv, "\nrounding,voice,,,,,0,0,0,0.00,0.00,"),
			   "%s", csv);
	free(csv);
	cdr__acc_fini(&a);
	fx_fini(&f);
}

Test(breakdown, samples_keep_the_smallest_orders)
{
	fx f;
	fx_init(&f);
	cdr__bd *a = cdr__bd_new(f.t, &f.per, 2), *b = cdr__bd_new(f.t, &f.per, 2);
	cr_assert(a && b);
	static const uint64_t ord[6] = {50, 10, 40, 30, 20, 60};
	for (int i = 0; i < 6; i++) {
		char line[16];
		int n = snprintf(line, sizeof(line), "L%llu",
				 (unsigned long long)ord[i]);
		cdr__bd_reject(i % 2 ? a : b, (uint32_t)(i % 2), ord[i],
			       CDR_R_NO_ZONE, line, (size_t)n);
	}
	cr_assert_eq(cdr__bd_merge(a, b), 0);
	cr_assert_eq(a->nsample[CDR_R_NO_ZONE], 6);
	cr_assert_eq(a->rej_in[0] + a->rej_in[1], 6);
	const char *want[3] = {"L10", "L20", "L30"};
	for (int k = 0; k < 3; k++) {
		const cdr__bdsample *s = &a->sample[CDR_R_NO_ZONE][k];
		cr_assert_eq(s->n, 3);
		cr_assert_eq(memcmp(s->line, want[k], 3), 0, "sample %d: %.*s",
			     k, (int)s->n, s->line);
	}
	cdr__bd_free(a);
	cdr__bd_free(b);
	fx_fini(&f);
}
