/*
 * civil.h - proleptic Gregorian calendar arithmetic on day counts.
 *
 * Days are counted from 1970-01-01 (day 0), negative before it. These are
 * Howard Hinnant's branch-light algorithms: exact for every year that fits
 * in int64_t arithmetic, no tables, no libc time functions (which depend on
 * the process-wide TZ and are not what a rater that carries two tariffs in
 * two time zones can use).
 */
#ifndef CDR_CIVIL_H
#define CDR_CIVIL_H

#include <stdint.h>

/* Day number of y-m-d (m 1..12, d 1..31; not range checked). */
static inline int64_t cdr__days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Inverse of cdr__days_from_civil. */
static inline void cdr__civil_from_days(int64_t z, int64_t *y, unsigned *m,
					unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* 0 = Monday ... 6 = Sunday. 1970-01-01 was a Thursday (3). */
static inline unsigned cdr__weekday(int64_t days)
{
	return (unsigned)(((days % 7) + 7 + 3) % 7);
}

static inline int cdr__is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static inline unsigned cdr__days_in_month(int64_t y, unsigned m)
{
	static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30,
					      31, 31, 30, 31, 30, 31};
	return m == 2 && cdr__is_leap(y) ? 29u : dim[m - 1];
}

static inline uint64_t cdr__gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t r = a % b;
		a = b;
		b = r;
	}
	return a;
}

/* Floor division for seconds -> days of possibly negative instants. */
static inline int64_t cdr__floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

#endif
