/*
 * test_normalize.c - normalize.csv (SPEC 11 "Number normalisation"): the
 * longest prefix that starts a number is replaced once, by a replacement
 * that may be empty; rows are validated with file, line and column; and
 * the native parser drops a '+' left after the rewrite.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "format.h"
#include "testutil.h"

static cdr__norm *load(const char *text, char *err, int *rc)
{
	char *dir = tu_tariff();
	if (text)
		tu_write(dir, "normalize.csv", text);
	cdr__norm *n = NULL;
	err[0] = '\0';
	*rc = cdr__norm_load(&n, dir, err, CDR_ERR_MAX);
	tu_rmdir(dir);
	return n;
}

static const char *apply(const cdr__norm *n, int which, const char *s)
{
	static char buf[256], out[256];
	const char *p = s;
	size_t k = cdr__norm_apply(n, which, &p, strlen(s), buf);
	memcpy(out, p, k);
	out[k] = '\0';
	return out;
}

Test(normalize, longest_prefix_once)
{
	char err[CDR_ERR_MAX];
	int rc;
	cdr__norm *n = load("applies_to,prefix,replace\n"
			    "destination,+,00\n"
			    "destination,011,00\n"
			    "destination,9,\n"
			    "destination,9011,00\n"
			    "subscriber,+86,\n"
			    "both,0086,86\n", err, &rc);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(apply(n, CDR__NORM_DEST, "+4420"), "004420");
	cr_assert_str_eq(apply(n, CDR__NORM_DEST, "0114420"), "004420");
	/* 9011 is longer than 9: one rewrite, by the longest */
	cr_assert_str_eq(apply(n, CDR__NORM_DEST, "90114420"), "004420");
	/* 9 then nothing more: 9011... would become 011..., not 00... */
	cr_assert_str_eq(apply(n, CDR__NORM_DEST, "9011"), "00");
	cr_assert_str_eq(apply(n, CDR__NORM_DEST, "9+86"), "+86");
	cr_assert_str_eq(apply(n, CDR__NORM_DEST, "12345"), "12345");
	cr_assert_str_eq(apply(n, CDR__NORM_SUB, "+8613800000001"),
			 "13800000001");
	cr_assert_str_eq(apply(n, CDR__NORM_SUB, "008613800000001"),
			 "8613800000001");
	cr_assert_str_eq(apply(n, CDR__NORM_DEST, "0086139"), "86139");
	/* subscriber rules leave destinations alone */
	cr_assert_str_eq(apply(n, CDR__NORM_DEST, "86139"), "86139");
	cr_assert(cdr__norm_equal(n, n));
	cr_assert(!cdr__norm_equal(n, NULL));
	cr_assert(cdr__norm_equal(NULL, NULL));
	cdr__norm_free(n);
}

Test(normalize, absent_file_is_no_table)
{
	char err[CDR_ERR_MAX];
	int rc;
	cr_assert_null(load(NULL, err, &rc));
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(apply(NULL, CDR__NORM_DEST, "+1"), "+1");
}

static void fails(const char *text, const char *want)
{
	char err[CDR_ERR_MAX];
	int rc;
	cr_assert_null(load(text, err, &rc), "%s", text);
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(err, want), "'%s' lacks '%s'", err, want);
}

Test(normalize, bad_rows_name_line_and_column)
{
	fails("prefix,replace\n", "normalize.csv:1: header");
	fails("applies_to,prefix,replace\ncallee,1,2\n",
	      "normalize.csv:2: column applies_to");
	fails("applies_to,prefix,replace\nboth,,2\n",
	      "normalize.csv:2: column prefix");
	fails("applies_to,prefix,replace\nboth,1x,2\n",
	      "normalize.csv:2: column prefix");
	fails("applies_to,prefix,replace\nboth,1,2a\n",
	      "normalize.csv:2: column replace");
	fails("applies_to,prefix,replace\nboth,1\n", "normalize.csv:2: 3 col");
	fails("applies_to,prefix,replace\ndestination,1,2\nboth,1,3\n",
	      "normalize.csv:3: column prefix: '1' for destination already");
}

Test(normalize, native_line_rewritten_then_plus_dropped)
{
	char err[CDR_ERR_MAX];
	int rc;
	cdr__norm *n = load("applies_to,prefix,replace\n"
			    "subscriber,0086,+86\ndestination,9,\n", err, &rc);
	cr_assert_eq(rc, 0, "%s", err);
	static char sc[CDR__SCRATCH(256)];
	cdr__rec r;
	const char *l = "c1,008613800000001,voice,2026-10-05 08:00:00,9+4420,1,0";
	cr_assert_eq(cdr__parse_line_norm(l, strlen(l), &r, n,
					  CDR__NORM_BUF(sc, strlen(l))), CDR_OK);
	cr_assert(r.sub_len == 13 && !memcmp(r.sub, "8613800000001", 13));
	cr_assert(r.dest_len == 4 && !memcmp(r.dest, "4420", 4));
	/* the rewritten number must still be one */
	l = "c1,1,voice,2026-10-05 08:00:00,9x,1,0";
	cr_assert_eq(cdr__parse_line_norm(l, strlen(l), &r, n,
					  CDR__NORM_BUF(sc, strlen(l))),
		     CDR_R_DESTINATION);
	/* a data destination is an APN: not rewritten */
	l = "c1,1,data,2026-10-05 08:00:00,9apn,0,1";
	cr_assert_eq(cdr__parse_line_norm(l, strlen(l), &r, n,
					  CDR__NORM_BUF(sc, strlen(l))), CDR_OK);
	cr_assert(r.dest_len == 4 && !memcmp(r.dest, "9apn", 4));
	cdr__norm_free(n);
}
