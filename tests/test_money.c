/*
 * test_money.c - amounts in and out: parsing to micro-units, rounding half
 * up, printing with `decimals` places. Expected values are worked by hand.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "internal.h"

static int64_t money(const char *s)
{
	int64_t v = -1;
	cr_assert_eq(cdr__parse_money(s, strlen(s), &v), 0, "parse %s", s);
	return v;
}

Test(money, parses_decimals_into_micros)
{
	cr_assert_eq(money("0.07"), 70000);	  /* 0.07 * 10^6 */
	cr_assert_eq(money("18"), 18000000);
	cr_assert_eq(money("1.5"), 1500000);
	cr_assert_eq(money("0.000001"), 1);	  /* one micro */
	cr_assert_eq(money("999999999.999999"), 999999999999999LL);
}

Test(money, rejects_bad_amounts)
{
	const char *bad[] = {"", ".5", "1.", "1.0000001", "-1", "1e3",
			     "1,5", "1000000000", " 1", "0x10", "1.2.3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int64_t v;
		cr_assert_neq(cdr__parse_money(bad[i], strlen(bad[i]), &v), 0,
			      "accepted '%s'", bad[i]);
	}
}

Test(money, u64_bounds)
{
	uint64_t v;
	cr_assert_eq(cdr__parse_u64("999999999999", 12, 999999999999ULL, &v), 0);
	cr_assert_eq(v, 999999999999ULL);
	cr_assert_neq(cdr__parse_u64("1000000000000", 13, 999999999999ULL, &v), 0);
	/* 2^64 overflows: rejected, never wrapped */
	cr_assert_neq(cdr__parse_u64("18446744073709551616", 20, UINT64_MAX, &v), 0);
	cr_assert_neq(cdr__parse_u64("-1", 2, UINT64_MAX, &v), 0);
	cr_assert_neq(cdr__parse_u64("", 0, UINT64_MAX, &v), 0);
}

Test(money, round_half_up)
{
	/* 5/2 = 2.5 -> 3; 7/3 = 2.33 -> 2; 8/3 = 2.67 -> 3; 4/2 exact */
	cr_assert_eq((uint64_t)cdr__div_round(5, 2), 3);
	cr_assert_eq((uint64_t)cdr__div_round(7, 3), 2);
	cr_assert_eq((uint64_t)cdr__div_round(8, 3), 3);
	cr_assert_eq((uint64_t)cdr__div_round(4, 2), 2);
	cr_assert_eq((uint64_t)cdr__div_round(0, 7), 0);
	/* Where the 64-bit shortcut ends: (2^64 - 1 + 1) / 2 needs the
	 * 65th bit, so does anything from 2^64 on. */
	const u128 m = UINT64_MAX;
	cr_assert(cdr__div_round(m, 2) == ((u128)1 << 63)); /* 9.2e18 + .5 up */
	cr_assert(cdr__div_round(m - 1, 2) == m / 2);	     /* exact */
	cr_assert(cdr__div_round(m, 3) == m / 3);	     /* m divisible by 3 */
	cr_assert(cdr__div_round(m + 1, 2) == ((u128)1 << 63));
	cr_assert(cdr__div_round(m * 10 + 5, 10) == m + 1);
	cr_assert(cdr__div_round(m, m) == 1);
	cr_assert(cdr__div_round(m / 2, m) == 0); /* just under a half */
	cr_assert(cdr__div_round(m / 2 + 1, m) == 1);
}

static const char *amt(i128 micros, int dec)
{
	static char b[64];
	size_t n = cdr__fmt_amount(b, micros, dec);
	b[n] = '\0';
	return b;
}

Test(money, prints_with_decimals_rounding_once)
{
	cr_assert_str_eq(amt(1234567, 2), "1.23");   /* 1.234567 */
	cr_assert_str_eq(amt(1235000, 2), "1.24");   /* half up */
	cr_assert_str_eq(amt(1234999, 2), "1.23");
	cr_assert_str_eq(amt(5000, 2), "0.01");	     /* 0.005 -> 0.01 */
	cr_assert_str_eq(amt(4999, 2), "0.00");
	cr_assert_str_eq(amt(0, 2), "0.00");
	cr_assert_str_eq(amt(18000000, 0), "18");    /* no point */
	cr_assert_str_eq(amt(18500000, 0), "19");
	cr_assert_str_eq(amt(1, 6), "0.000001");
	cr_assert_str_eq(amt(-1500000, 2), "-1.50");
	cr_assert_str_eq(amt(-5000, 2), "0.00");     /* -0.005 rounds up to 0 */
	cr_assert_str_eq(amt(-5001, 2), "-0.01");
}

Test(money, prints_beyond_64_bits)
{
	/* 2^100 micros = 1267650600228229401496703.205376 units */
	i128 v = (i128)1 << 100;
	cr_assert_str_eq(amt(v, 6), "1267650600228229401496703.205376");
	cr_assert_str_eq(amt(v, 2), "1267650600228229401496703.21");
}

static const char *u128s(u128 v)
{
	static char b[64];
	b[cdr__fmt_u128(b, v)] = '\0';
	return b;
}

static const char *scaled(i128 v, int dec)
{
	static char b[64];
	b[cdr__fmt_scaled(b, v, dec)] = '\0';
	return b;
}

/* The 64-bit fast paths and where they hand over to 128 bits. */
Test(money, prints_at_the_64_bit_edges)
{
	const u128 m64 = UINT64_MAX;
	cr_assert_str_eq(u128s(0), "0");
	cr_assert_str_eq(u128s(9), "9");
	cr_assert_str_eq(u128s(10), "10");
	cr_assert_str_eq(u128s(99999), "99999");
	cr_assert_str_eq(u128s(100000), "100000");
	cr_assert_str_eq(u128s(m64), "18446744073709551615");
	cr_assert_str_eq(u128s(m64 + 1), "18446744073709551616");
	/* low 19 digits zero-padded: 10^19 * 7 + 5 */
	cr_assert_str_eq(u128s((u128)UINT64_C(10000000000000000000) * 7 + 5),
			 "70000000000000000005");
	cr_assert_str_eq(u128s(~(u128)0),
			 "340282366920938463463374607431768211455");
	char b[32];
	cr_assert_eq(cdr__fmt_u64(b, 1234567890123ULL), 13);
	cr_assert_eq(memcmp(b, "1234567890123", 13), 0);
	cr_assert_str_eq(scaled(INT64_MAX, 2), "92233720368547758.07");
	cr_assert_str_eq(scaled(-(i128)INT64_MAX, 2), "-92233720368547758.07");
	cr_assert_str_eq(scaled((i128)INT64_MAX + 1, 2), "92233720368547758.08");
	cr_assert_str_eq(scaled((i128)m64 + 1, 6), "18446744073709.551616");
	cr_assert_str_eq(scaled(-((i128)m64 + 1), 3), "-18446744073709551.616");
	cr_assert_str_eq(scaled(7, 6), "0.000007");
	cr_assert_str_eq(scaled(-7, 1), "-0.7");
	cr_assert_str_eq(scaled(-(i128)m64 * 1000, 0),
			 "-18446744073709551615000");
}

Test(money, dates)
{
	int64_t d;
	cr_assert_eq(cdr__parse_date("1970-01-01", 10, &d), 0);
	cr_assert_eq(d, 0);
	cr_assert_eq(cdr__parse_date("2026-10-01", 10, &d), 0);
	cr_assert_eq(d, 20727); /* (2026-10-01 00:00Z) 1790812800 / 86400 */
	cr_assert_eq(cdr__parse_date("2024-02-29", 10, &d), 0);
	cr_assert_neq(cdr__parse_date("2026-02-29", 10, &d), 0);
	cr_assert_neq(cdr__parse_date("2026-13-01", 10, &d), 0);
	cr_assert_neq(cdr__parse_date("2026-1-01", 9, &d), 0);
	int64_t s;
	cr_assert_eq(cdr__parse_datetime("2026-10-01 08:30:15", 19, &s), 0);
	cr_assert_eq(s, 20727LL * 86400 + 8 * 3600 + 30 * 60 + 15);
	cr_assert_eq(cdr__parse_datetime("2026-10-01T08:30:15", 19, &s), 0);
	cr_assert_neq(cdr__parse_datetime("2026-13-45 25:61:00", 19, &s), 0);
	cr_assert_neq(cdr__parse_datetime("2026-10-01 24:00:00", 19, &s), 0);
}
