/*
 * money.c - decimal amounts, integers and dates, in and out.
 *
 * Every amount crosses the program's boundary through this file: parsed
 * from tariff decimals into int64 micro-units, and printed from 128-bit
 * micro sums with `decimals` places, rounded half up exactly once. No
 * floating point anywhere.
 *
 * Sections: parsing (money, integers, dates) - rounding - printing.
 */
#include <errno.h>
#include <string.h>

#include "civil.h"
#include "internal.h"

/* ---- parsing --------------------------------------------------------- */

int cdr__parse_money(const char *s, size_t n, int64_t *micros)
{
	size_t i = 0, intd = 0, fracd = 0;
	int64_t whole = 0, frac = 0;

	while (i < n && s[i] >= '0' && s[i] <= '9') {
		whole = whole * 10 + (s[i] - '0');
		if (++intd > 9) /* amounts are below 10^9 */
			return -EINVAL;
		i++;
	}
	if (i < n && s[i] == '.') {
		i++;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (++fracd > 6)
				return -EINVAL;
			frac = frac * 10 + (s[i] - '0');
			i++;
		}
		if (fracd == 0)
			return -EINVAL;
	}
	if (i != n || intd == 0)
		return -EINVAL;
	for (size_t k = fracd; k < 6; k++)
		frac *= 10;
	*micros = whole * CDR_MICROS + frac;
	return 0;
}

int cdr__parse_u64(const char *s, size_t n, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;

	if (n == 0)
		return -EINVAL;
	/* Leading zeros are spelling: any number of them (the fuzzed
	 * differential check found "000...0" of 21 digits refused). */
	while (n > 1 && s[0] == '0')
		s++, n--;
	if (n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9)
			return -EINVAL;
		if (x > (UINT64_MAX - d) / 10)
			return -EINVAL;
		x = x * 10 + d;
	}
	if (x > max)
		return -EINVAL;
	*v = x;
	return 0;
}

static int digits(const char *s, size_t n, unsigned *v)
{
	unsigned x = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

int cdr__parse_date(const char *s, size_t n, int64_t *day)
{
	unsigned y, m, d;

	if (n != 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) ||
	    digits(s + 5, 2, &m) || digits(s + 8, 2, &d))
		return -EINVAL;
	if (y < 1 || m < 1 || m > 12 || d < 1 ||
	    d > cdr__days_in_month(y, m))
		return -EINVAL;
	*day = cdr__days_from_civil(y, m, d);
	return 0;
}

int cdr__parse_datetime(const char *s, size_t n, int64_t *secs)
{
	unsigned hh, mm, ss;
	int64_t day;

	if (n != 19 || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
	    s[16] != ':' || cdr__parse_date(s, 10, &day) ||
	    digits(s + 11, 2, &hh) || digits(s + 14, 2, &mm) ||
	    digits(s + 17, 2, &ss) || hh > 23 || mm > 59 || ss > 59)
		return -EINVAL;
	*secs = day * 86400 + (int64_t)hh * 3600 + (int64_t)mm * 60 + ss;
	return 0;
}

/* ---- rounding -------------------------------------------------------- */

u128 cdr__div_round(u128 num, u128 den)
{
	/* Half up: adding floor(den/2) moves exactly the halves (which only
	 * exist for even den) and everything above them to the next unit.
	 * A record's price times quantity nearly always fits 64 bits, where
	 * the division is one instruction instead of a library call. */
	if ((uint64_t)(num >> 64) == 0 && (uint64_t)(den >> 64) == 0) {
		const uint64_t n64 = (uint64_t)num, d64 = (uint64_t)den;
		if (n64 <= UINT64_MAX - d64 / 2)
			return (n64 + d64 / 2) / d64;
	}
	return (num + den / 2) / den;
}

i128 cdr__round_to_decimals(i128 micros, int decimals)
{
	static const int64_t pow10[7] = {1000000, 100000, 10000, 1000,
					 100,	  10,	  1};
	if (micros >= 0 && micros <= INT64_MAX / 2) {
		/* The common case, in native 64-bit division. */
		int64_t d = pow10[decimals], m = (int64_t)micros;
		return (m + d / 2) / d;
	}
	i128 div = pow10[decimals];
	if (micros >= 0)
		return (i128)cdr__div_round((u128)micros, (u128)div);
	/* Half up means toward +infinity on ties: -0.005 -> -0.00. */
	return -(i128)(((u128)(-micros) + (u128)div / 2 - 1) / (u128)div);
}

/* ---- printing -------------------------------------------------------- */

static const char digits2[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233"
	"34353637383940414243444546474849505152535455565758596061626364656667"
	"6869707172737475767778798081828384858687888990919293949596979899";

static unsigned ndigits(uint64_t v)
{
	unsigned n = 1;
	while (v >= 10000) {
		v /= 10000;
		n += 4;
	}
	return n + (v >= 10) + (v >= 100) + (v >= 1000);
}

/* v's decimal digits, exactly n of them (leading zeros when v is
 * shorter), written back to front two at a time. */
static void put_digits(char *buf, uint64_t v, unsigned n)
{
	char *p = buf + n;
	while (n >= 2) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		*--p = digits2[d + 1];
		*--p = digits2[d];
		n -= 2;
	}
	if (n)
		*--p = (char)('0' + (unsigned)(v % 10));
}

size_t cdr__fmt_u64(char *buf, uint64_t v)
{
	unsigned n = ndigits(v);
	put_digits(buf, v, n);
	return n;
}

size_t cdr__fmt_u128(char *buf, u128 v)
{
	if (v <= UINT64_MAX)
		return cdr__fmt_u64(buf, (uint64_t)v);
	/* Past 64 bits: the low 19 digits in native division, the rest by
	 * 128-bit division once (10^19 < 2^64 < 10^20). */
	const uint64_t e19 = UINT64_C(10000000000000000000);
	u128 hi = v / e19;
	size_t n = cdr__fmt_u128(buf, hi);
	put_digits(buf + n, (uint64_t)(v - hi * e19), 19);
	return n + 19;
}

size_t cdr__fmt_scaled(char *buf, i128 v, int decimals)
{
	static const uint64_t pow10[7] = {1, 10, 100, 1000, 10000, 100000,
					  1000000};
	size_t o = 0;
	u128 a = v < 0 ? -(u128)v : (u128)v;

	if (v < 0)
		buf[o++] = '-';
	if (decimals == 0)
		return o + cdr__fmt_u128(buf + o, a);
	/* Whole units, then exactly `decimals` places: 5 with 2 places is
	 * 0.05. In 64 bits unless the figure needs more. */
	const uint64_t d = pow10[decimals];
	u128 ip = a <= UINT64_MAX ? (u128)((uint64_t)a / d) : a / d;
	uint64_t fp = (uint64_t)(a - ip * d);
	o += cdr__fmt_u128(buf + o, ip);
	buf[o++] = '.';
	put_digits(buf + o, fp, (unsigned)decimals);
	return o + (size_t)decimals;
}

size_t cdr__fmt_amount(char *buf, i128 micros, int decimals)
{
	return cdr__fmt_scaled(buf, cdr__round_to_decimals(micros, decimals),
			       decimals);
}
