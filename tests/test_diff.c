/*
 * test_diff.c - `cdrate diff` reading two totals files (contract section
 * 9): a totals file has one row per account and every row adds up as
 * printed (section 8); a file that breaks either was not written by
 * cdrate rate, and the delta of it would be wrong, so it is refused with
 * the line named. Messages escape what they echo.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdrate/cdrate.h"

#define HDR                                                                   \
	"account,period,records,late_records,voice_seconds,sms_count,"        \
	"data_bytes,voice_charge,sms_charge,data_charge,allowance_credit,"    \
	"recurring_charge,outage_credit,total\n"

static char err[CDR_ERR_MAX];

/* The delta has a length, no NUL: add one, for the string asserts. */
static int terminate(char **out, size_t len)
{
	char *b = realloc(*out, len + 1);
	if (!b)
		return -1;
	b[len] = '\0';
	*out = b;
	return 0;
}

/* diff OLD NEW; the count of accounts that moved and the delta in *out
 * (NUL-terminated), or the error code. */
static int diff(const char *old, const char *nw, char **out)
{
	size_t len = 0;
	*out = NULL;
	err[0] = '\0';
	int rc = cdr_diff_totals(old, strlen(old), "old.csv", nw, strlen(nw),
				 "new.csv", 1, out, &len, NULL, err,
				 sizeof(err));
	return rc < 0 ? rc : terminate(out, len) ? -ENOMEM : rc;
}

Test(diff, rows_that_add_up_are_compared)
{
	/* 1 + 2 + 3 - 0.5 + 12 - 0.25 = 17.25 */
	const char *a = HDR "A,2026-10,3,0,60,1,1024,1.00,2.00,3.00,0.50,"
			    "12.00,0.25,17.25\n";
	const char *b = HDR "A,2026-10,3,0,60,1,1024,1.00,2.00,3.00,0.50,"
			    "12.00,0.25,17.25\nB,2026-10,0,0,0,0,0,0.00,0.00,"
			    "0.00,0.00,12.00,0.00,12.00\n";
	char *out;
	/* One account moved (B, added); A is listed (all) but unchanged. */
	cr_assert_eq(diff(a, b, &out), 1, "%s", err);
	cr_assert(strstr(out, "B,2026-10,0.00,12.00,12.00,"), "%s", out);
	cr_assert(strstr(out, ",12.00,0.00,0,added\n"), "%s", out);
	cr_assert(strstr(out, "A,2026-10,17.25,17.25,0.00,0.00,0.00,0.00,"
			      "0.00,0.00,0.00,0,unchanged\n"),
		  "%s", out);
	free(out);
}

Test(diff, change_column_and_the_moves_that_keep_the_total)
{
	/* A: voice +1.00, sms -1.00, total still 3.00: changed, counted as
	 * moved with the same total. B only old: removed. C only new. */
	const char *a = HDR "A,2026-10,2,0,60,1,0,2.00,1.00,0.00,0.00,"
			    "0.00,0.00,3.00\nB,2026-10,1,0,0,1,0,0.00,1.00,"
			    "0.00,0.00,0.00,0.00,1.00\n";
	const char *b = HDR "A,2026-10,2,0,60,1,0,3.00,0.00,0.00,0.00,"
			    "0.00,0.00,3.00\nC,2026-10,1,0,0,1,0,0.00,2.00,"
			    "0.00,0.00,0.00,0.00,2.00\n";
	char *out = NULL, *rep = NULL;
	size_t len = 0, rlen = 0;
	FILE *report = open_memstream(&rep, &rlen);
	cr_assert_not_null(report);
	int n = cdr_diff_totals(a, strlen(a), "old.csv", b, strlen(b),
				"new.csv", 0, &out, &len, report, err,
				sizeof(err));
	fclose(report);
	cr_assert_eq(n, 3, "%s", err);
	cr_assert_eq(terminate(&out, len), 0);
	cr_assert_str_eq(out,
			 "account,period,old_total,new_total,delta,"
			 "voice_delta,sms_delta,data_delta,allowance_delta,"
			 "recurring_delta,outage_delta,records_delta,change\n"
			 "A,2026-10,3.00,3.00,0.00,1.00,-1.00,0.00,0.00,0.00,"
			 "0.00,0,changed\n"
			 "B,2026-10,1.00,0.00,-1.00,0.00,-1.00,0.00,0.00,0.00,"
			 "0.00,-1,removed\n"
			 "C,2026-10,0.00,2.00,2.00,0.00,2.00,0.00,0.00,0.00,"
			 "0.00,1,added\n");
	cr_assert(strstr(rep, "3 accounts changed: 1 up, 1 down, 1 with the "
			      "same total\n"),
		  "%s", rep);
	free(out);
	free(rep);
}

/* Was accepted: the second row of A was compared with nothing. */
Test(diff, an_account_twice_is_an_error_naming_the_line)
{
	const char *ok = HDR;
	const char *twice = HDR "A,2026-10,0,0,0,0,0,0.00,0.00,0.00,0.00,"
				"12.00,0.00,12.00\nA,2026-10,0,0,0,0,0,0.00,"
				"0.00,0.00,0.00,12.00,0.00,12.00\n";
	char *out;
	cr_assert_eq(diff(ok, twice, &out), -EINVAL);
	cr_assert_str_eq(err, "new.csv:3: column account: 'A' already has a "
			      "row (line 2)");
	/* Out of order, the repeat is still found, and the line named is
	 * the first one, in file order, that repeats an account. */
	const char *shuffled = HDR
		"B,2026-10,0,0,0,0,0,0.00,0.00,0.00,0.00,1.00,0.00,1.00\n"
		"A,2026-10,0,0,0,0,0,0.00,0.00,0.00,0.00,1.00,0.00,1.00\n"
		"C,2026-10,0,0,0,0,0,0.00,0.00,0.00,0.00,1.00,0.00,1.00\n"
		"A,2026-10,0,0,0,0,0,0.00,0.00,0.00,0.00,1.00,0.00,1.00\n"
		"B,2026-10,0,0,0,0,0,0.00,0.00,0.00,0.00,1.00,0.00,1.00\n";
	cr_assert_eq(diff(shuffled, ok, &out), -EINVAL);
	cr_assert_str_eq(err, "old.csv:5: column account: 'A' already has a "
			      "row (line 3)");
}

/* Was accepted, and its total taken as given. */
Test(diff, a_total_that_is_not_the_sum_is_an_error)
{
	const char *bad = HDR "A,2026-10,1,0,60,0,0,1.00,0.00,0.00,0.00,"
			      "12.00,0.00,14.00\n";
	char *out;
	cr_assert_eq(diff(HDR, bad, &out), -EINVAL);
	cr_assert_str_eq(err, "new.csv:2: column total: 14.00 is not the sum "
			      "of the columns (13.00)");
}

Test(diff, messages_escape_control_bytes)
{
	const char *a = HDR "A,2026-1\033,0,0,0,0,0,0.00,0.00,0.00,0.00,"
			    "1.00,0.00,1.00\n";
	const char *b = HDR "A,2026-11,0,0,0,0,0,0.00,0.00,0.00,0.00,"
			    "1.00,0.00,1.00\n";
	char *out;
	cr_assert_eq(diff(a, b, &out), -EINVAL);
	cr_assert_str_eq(err, "periods differ: old.csv is 2026-1\\x1b, new.csv "
			      "is 2026-11");
}
