/*
 * test_agg.c - per-account sums: 64-bit sums that spill into 128 bits
 * exactly when they would overflow (adding, taking back, merging), and
 * the totals line printed from them. Figures worked out by hand below.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

static cdr__rated voice(uint32_t account, uint64_t q, i128 charge)
{
	cdr__rated x;
	memset(&x, 0, sizeof(x));
	x.reason = CDR_OK;
	x.service = CDR_VOICE;
	x.account = account;
	x.row = 0;
	x.rate_row = -1; /* no allowance bucket */
	x.quantity = q;
	x.charge_micros = charge;
	return x;
}

Test(agg, sums_leave_64_bits_exactly)
{
	char err[CDR_ERR_MAX];
	char *dir = tu_tariff();
	cdr_tariff *t = tu_load(dir, err);
	cr_assert_not_null(t, "%s", err);
	uint32_t a1 = 0;
	while (strcmp(t->accounts[a1], "A1"))
		a1++;
	cdr__period per;
	cdr__period_init(&per, t, 2026, 10);

	cdr__acc a, b;
	cr_assert_eq(cdr__acc_init(&a, t), 0);
	cr_assert_eq(cdr__acc_init(&b, t), 0);
	const i128 huge = (i128)1 << 100; /* a charge no int64 holds */
	const uint64_t q = (uint64_t)1 << 62;
	cdr__rated big = voice(a1, q, huge);
	cdr__rated small = voice(a1, 60, 150000);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(cdr__acc_add(&a, &big, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &small, 1), 0);
	cr_assert_eq(cdr__acc_add(&a, &big, -1), 0); /* a duplicate taken back */
	/* records 3; seconds 2 * 2^62 + 60 = 2^63 + 60 (past INT64_MAX) */
	cr_assert(cdr__acc_get(&a, a1, CDR_F_RECORDS) == 3);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_VOICE_S) ==
		  ((i128)1 << 63) + 60);
	cr_assert(cdr__acc_get(&a, a1, CDR_F_VOICE_C) == 2 * huge + 150000);

	/* Another worker's sums, near INT64_MAX: merging must spill. */
	cdr__rated near = voice(a1, (uint64_t)INT64_MAX - 10, 5);
	cr_assert_eq(cdr__acc_add(&b, &near, 1), 0);
	cr_assert_eq(cdr__acc_merge(&a, &b), 0);
	/* seconds: 2^63 + 60 + 2^63 - 11 = 2^64 + 49 = 18446744073709551665
	 * charge: 2^101 + 150005 micros
	 *       = 2535301200456458802993406560757 micros
	 *       = 2535301200456458802993406.560757 -> .56 (2 places)
	 * total: that + 18.00 of m18's fee = ...3424.56 */
	char *buf;
	size_t len;
	cr_assert_eq(cdr__totals_render(&a, &per, &buf, &len), 0);
	const char *want =
		"A1,2026-10,4,0,18446744073709551665,0,0,"
		"2535301200456458802993406.56,0.00,0.00,0.00,18.00,0.00,"
		"2535301200456458802993424.56\n";
	const char *line = (const char *)memchr(buf, '\n', len) + 1;
	cr_assert_eq((size_t)(buf + len - line), strlen(want));
	cr_assert_eq(memcmp(line, want, strlen(want)), 0, "%.*s",
		     (int)(buf + len - line), line);
	free(buf);
	cdr__acc_fini(&a);
	cdr__acc_fini(&b);
	cdr_tariff_free(t);
	tu_rmdir(dir);
}
