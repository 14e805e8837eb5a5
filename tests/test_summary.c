/*
 * test_summary.c - the figures of the run summary that the run does not
 * keep: control totals read back from a totals file, and the tariff's
 * fingerprint. Expected sums are worked by hand from the rows below.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cdrate/cdrate.h"
#include "testutil.h"

#define HDR                                                                   \
	"account,period,records,late_records,voice_seconds,sms_count,"        \
	"data_bytes,voice_charge,sms_charge,data_charge,allowance_credit,"    \
	"recurring_charge,outage_credit,total\n"

static int control(const char *csv, int dec, cdr_control *c)
{
	return cdr_totals_control(csv, strlen(csv), dec, c);
}

Test(summary, control_totals_add_the_printed_columns)
{
	/* voice 0.10 + 0.20 = 0.30; allowance -0.05 (a credit given back)
	 * + 1.00 = 0.95; totals 0.10 + ... row by row: 12.05 + 0.65. */
	const char *csv = HDR
		"A,2026-10,3,1,60,1,0,0.10,0.00,0.00,-0.05,12.00,0.10,12.05\n"
		"B,2026-10,2,2,0,0,9,0.20,0.30,0.15,1.00,1.00,0.00,0.65\n";
	cdr_control c;
	cr_assert_eq(control(csv, 2, &c), 0);
	cr_assert_eq(c.accounts, 2);
	cr_assert_eq(c.records, 5);
	cr_assert_eq(c.late, 3);
	const char *want[CDR_MONEY_COLUMNS] = {"0.30", "0.30",	"0.15", "0.95",
					       "13.00", "0.10", "12.70"};
	for (int i = 0; i < CDR_MONEY_COLUMNS; i++)
		cr_assert_str_eq(c.money[i], want[i], "%s",
				 cdr_money_column(i));
	cr_assert_str_eq(cdr_money_column(6), "total");
	cr_assert_null(cdr_money_column(7));
}

Test(summary, control_totals_are_exact_past_a_double)
{
	/* 2^53 + 1 units of 10^-6 twice: a double would lose the 1s. */
	const char *csv = HDR
		"A,2026-10,0,0,0,0,0,9007199254.740993,0.000000,0.000000,"
		"0.000000,0.000000,0.000000,9007199254.740993\n"
		"B,2026-10,0,0,0,0,0,9007199254.740993,0.000000,0.000000,"
		"0.000000,0.000000,0.000000,9007199254.740993\n";
	cdr_control c;
	cr_assert_eq(control(csv, 6, &c), 0);
	cr_assert_str_eq(c.money[0], "18014398509.481986");
	cr_assert_str_eq(c.money[6], "18014398509.481986");
}

Test(summary, control_totals_of_no_rows_and_no_places)
{
	cdr_control c;
	cr_assert_eq(control(HDR, 2, &c), 0);
	cr_assert_eq(c.accounts, 0);
	cr_assert_str_eq(c.money[6], "0.00");
	cr_assert_eq(control(HDR "A,2026-10,1,0,0,1,0,0,1,0,0,-3,0,-2\n", 0,
			     &c),
		     0);
	cr_assert_str_eq(c.money[6], "-2");
	cr_assert_str_eq(c.money[4], "-3");
}

Test(summary, control_totals_refuse_another_shape)
{
	cdr_control c;
	cr_assert_eq(control("account,period\n", 2, &c), -EINVAL);
	/* places other than the tariff's: not this tariff's file */
	cr_assert_eq(control(HDR "A,2026-10,1,0,0,1,0,0.1,0.00,0.00,0.00,"
				 "0.00,0.00,0.10\n",
			     2, &c),
		     -EINVAL);
	/* 13 columns, and a line with no end */
	cr_assert_eq(control(HDR "A,2026-10,1,0,0,1,0,0.00,0.00,0.00,0.00,"
				 "0.00,0.00\n",
			     2, &c),
		     -EINVAL);
	cr_assert_eq(control(HDR "A,2026-10,1,0,0,1,0,0.00,0.00,0.00,0.00,"
				 "0.00,0.00,0.00",
			     2, &c),
		     -EINVAL);
}

/* An amount of units of 10^-dec as the totals print it. */
static void put_amount(char *out, size_t cap, __int128 v, int dec)
{
	char d[64];
	int n = 0, neg = v < 0;
	unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;
	do {
		d[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u || n <= dec);
	size_t k = 0;
	if (neg)
		out[k++] = '-';
	for (int i = n - 1; i >= 0; i--) {
		out[k++] = d[i];
		if (i == dec && dec > 0)
			out[k++] = '.';
	}
	out[k] = '\0';
	cr_assert_lt(k, cap);
}

/*
 * Random rows, amounts from one digit to 30 (past what 64 bits hold, so
 * both the 64-bit walk and the careful reader add), counts to 19 digits,
 * signs, every tariff's places, and once a text long enough to be read
 * in two halves: the sums as this test adds them.
 */
Test(summary, control_totals_of_random_rows)
{
	uint64_t seed = 88172645463325252ULL;
#define RND() (seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17)
	for (int dec = 0; dec <= 6; dec++) {
		/* at 2 places enough rows for two halves (CTL_SPLIT_MIN) */
		const int rows = dec == 2 ? 40000 : 2000;
		size_t cap = (size_t)16 << 20, len = 0;
		char *csv = malloc(cap);
		cr_assert_not_null(csv);
		len += (size_t)snprintf(csv, cap, "%s", HDR);
		__int128 want[CDR_MONEY_COLUMNS] = {0};
		uint64_t records = 0, late = 0;
		for (int row = 0; row < rows; row++) {
			const int digits19 = (int)(RND() % 19) + 1;
			uint64_t rec = RND() % 1000000000000000000ULL;
			for (int i = 19; i > digits19; i--)
				rec /= 10;
			if (row % 97 == 0)
				rec = 9999999999999999999ULL; /* 19 digits */
			const uint64_t lt = RND() % 1000;
			records += rec;
			late += lt;
			len += (size_t)snprintf(csv + len, cap - len,
						"acct%d,2026-10,%llu,%llu,1,2,3",
						row, (unsigned long long)rec,
						(unsigned long long)lt);
			for (int k = 0; k < CDR_MONEY_COLUMNS; k++) {
				const int nd = (int)(RND() % 30) + 1;
				__int128 v = 0;
				for (int i = 0; i < nd; i++)
					v = v * 10 + (__int128)(RND() % 10);
				if (RND() % 3 == 0)
					v = -v;
				want[k] += v;
				char a[64];
				put_amount(a, sizeof(a), v, dec);
				len += (size_t)snprintf(csv + len, cap - len,
							",%s", a);
			}
			csv[len++] = '\n';
			csv[len] = '\0';
		}
		cdr_control c;
		cr_assert_eq(cdr_totals_control(csv, len, dec, &c), 0, "dec %d",
			     dec);
		if (dec == 2)
			cr_assert_gt(len, (size_t)5 << 20);
		cr_assert_eq(c.accounts, (uint64_t)rows);
		cr_assert_eq(c.records, records);
		cr_assert_eq(c.late, late);
		for (int k = 0; k < CDR_MONEY_COLUMNS; k++) {
			char a[64];
			put_amount(a, sizeof(a), want[k], dec);
			cr_assert_str_eq(c.money[k], a, "dec %d column %d", dec,
					 k);
		}
		free(csv);
	}
#undef RND
}

/* The definition of the README, computed here the long way. */
static void want_fp(const char *const *names, const char *const *texts,
		    int n, char hex[CDR_FINGERPRINT_HEX])
{
	XXH3_state_t *st = XXH3_createState();
	XXH3_128bits_reset(st);
	for (int i = 0; i < n; i++) {
		char size[24];
		snprintf(size, sizeof(size), "%zu", strlen(texts[i]));
		XXH3_128bits_update(st, names[i], strlen(names[i]) + 1);
		XXH3_128bits_update(st, size, strlen(size) + 1);
		XXH3_128bits_update(st, texts[i], strlen(texts[i]));
	}
	XXH128_hash_t h = XXH3_128bits_digest(st);
	XXH3_freeState(st);
	snprintf(hex, CDR_FINGERPRINT_HEX, "%016llx%016llx",
		 (unsigned long long)h.high64, (unsigned long long)h.low64);
}

Test(summary, tariff_fingerprint_is_the_documented_hash)
{
	char *dir = tu_tariff();
	tu_write(dir, "README", "not a tariff file: not hashed\n");
	/* names sorted bytewise */
	const char *names[] = {"bands.csv", "plans.csv",       "rates.csv",
			       "subscribers.csv", "tariff.conf", "zones.csv"};
	const char *texts[] = {T_BANDS, T_PLANS, T_RATES,
			       T_SUBS,	T_CONF,	 T_ZONES};
	char got[CDR_FINGERPRINT_HEX], want[CDR_FINGERPRINT_HEX];
	char err[CDR_ERR_MAX];
	unsigned n = 0;
	cr_assert_eq(cdr_tariff_fingerprint(dir, NULL, got, &n, err,
					    sizeof(err)),
		     0, "%s", err);
	want_fp(names, texts, 6, want);
	cr_assert_eq(n, 6);
	cr_assert_str_eq(got, want);
	/* --subscribers stands under the name subscribers.csv */
	char subs[600];
	snprintf(subs, sizeof(subs), "%s/other.csv", dir);
	tu_write(dir, "other.csv", T_SUBS);
	tu_write(dir, "subscribers.csv", "subscriber,account,plan\n");
	cr_assert_eq(cdr_tariff_fingerprint(dir, subs, got, &n, err,
					    sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(got, want);
	/* one byte more in one file: another fingerprint */
	tu_write(dir, "plans.csv", T_PLANS "x10,10\n");
	cr_assert_eq(cdr_tariff_fingerprint(dir, subs, got, &n, err,
					    sizeof(err)),
		     0);
	cr_assert_str_neq(got, want);
	tu_rmdir(dir);
}
