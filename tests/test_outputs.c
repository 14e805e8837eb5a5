/*
 * test_outputs.c - the text of the rejects and itemize files (outputs.c):
 * the CSV escaping rule the README gives (bytes that are not valid UTF-8,
 * controls and the backslash as \xHH, then RFC 4180 quoting), local times,
 * and the words of reject details re-derived from a line on the cold path.
 * Expected strings are written out by hand from the README's rules.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "run_int.h"

static char out[4096];

static const char *csv(const char *s, size_t n, int quote)
{
	size_t k = cdr__csv_text(out, s, n, quote);
	cr_assert_leq(k, CDR__CSV_BOUND(n));
	out[k] = '\0';
	return out;
}
#define CSV(lit, q) csv(lit, sizeof(lit) - 1, q)

Test(csv, plain_text_is_copied)
{
	cr_assert_str_eq(CSV("8613800000001", 0), "8613800000001");
	cr_assert_str_eq(CSV("", 0), "");
	cr_assert_str_eq(CSV("", 1), "\"\"");
	cr_assert_str_eq(CSV("a b*#+", 1), "\"a b*#+\"");
}

Test(csv, comma_and_quote_quote_the_field)
{
	cr_assert_str_eq(CSV("a,b", 0), "\"a,b\"");
	cr_assert_str_eq(CSV("say \"hi\"", 0), "\"say \"\"hi\"\"\"");
	cr_assert_str_eq(CSV("\"", 0), "\"\"\"\"");
}

Test(csv, backslash_and_controls_are_escaped)
{
	cr_assert_str_eq(CSV("C:\\x", 0), "C:\\x5Cx");
	cr_assert_str_eq(CSV("a\tb", 0), "a\\x09b");
	cr_assert_str_eq(CSV("a\rb\x7f", 0), "a\\x0Db\\x7F");
	cr_assert_str_eq(csv("a\0b", 3, 0), "a\\x00b");
	/* Escaping alone does not quote; a comma still does. */
	cr_assert_str_eq(CSV("\x01,", 0), "\"\\x01,\"");
}

Test(csv, valid_utf8_kept_invalid_bytes_escaped)
{
	cr_assert_str_eq(CSV("caf\xc3\xa9", 0), "caf\xc3\xa9");		/* é */
	cr_assert_str_eq(CSV("\xe8\xaf\xa6\xe5\x8d\x95", 0),
			 "\xe8\xaf\xa6\xe5\x8d\x95");			/* 详单 */
	cr_assert_str_eq(CSV("\xf0\x9f\x98\x80", 0), "\xf0\x9f\x98\x80");
	cr_assert_str_eq(CSV("\xff", 0), "\\xFF");
	cr_assert_str_eq(CSV("\xc0\x80", 0), "\\xC0\\x80");	/* overlong NUL */
	cr_assert_str_eq(CSV("\xed\xa0\x80", 0), "\\xED\\xA0\\x80"); /* surrogate */
	cr_assert_str_eq(CSV("\xf4\x90\x80\x80", 0),
			 "\\xF4\\x90\\x80\\x80");		/* past U+10FFFF */
	cr_assert_str_eq(CSV("\xe4\xb8", 0), "\\xE4\\xB8");	/* cut short */
	cr_assert_str_eq(CSV("\x80x", 0), "\\x80x");		/* lone continuation */
}

Test(csv, worst_case_fits_the_bound)
{
	char in[256];
	memset(in, '\xff', sizeof(in));
	csv(in, sizeof(in), 1);
	cr_assert_eq(strlen(out), 4 * sizeof(in) + 2);
}

Test(local, stamps)
{
	char b[32];
	b[cdr__fmt_local(b, 0)] = '\0';
	cr_assert_str_eq(b, "1970-01-01 00:00:00");
	b[cdr__fmt_local(b, -3600)] = '\0';
	cr_assert_str_eq(b, "1969-12-31 23:00:00");
	/* 2026-10-08 09:15:00 as local seconds: day 20734. */
	b[cdr__fmt_local(b, 20734LL * 86400 + 9 * 3600 + 15 * 60)] = '\0';
	cr_assert_str_eq(b, "2026-10-08 09:15:00");
	/* The last instant of SPEC 3, eight hours east of UTC. */
	b[cdr__fmt_local(b, 253402300799LL + 8 * 3600)] = '\0';
	cr_assert_str_eq(b, "10000-01-01 07:59:59");
}

/* The detail of a native line rejected while parsing. */
static const char *parse_detail(const char *line, int reason)
{
	static char d[CDR__DETAIL_MAX];
	cdr__fmt f;
	memset(&f, 0, sizeof(f));
	f.kind = CDR_FORMAT_NATIVE;
	size_t n = cdr__reject_detail(d, sizeof(d), NULL, NULL, &f, line,
				      strlen(line), reason, NULL, NULL);
	d[n] = '\0';
	return d;
}

Test(detail, columns_counted_by_commas)
{
	cr_assert_str_eq(parse_detail("a,b,c,d,e,f,g,h", CDR_R_COLUMNS),
			 "8 fields, expected 7");
	cr_assert_str_eq(parse_detail("abc", CDR_R_COLUMNS),
			 "1 field, expected 7");
	/* Native lines have no quoting: a quote is just a byte. */
	cr_assert_str_eq(parse_detail("\"a,b\"", CDR_R_COLUMNS),
			 "2 fields, expected 7");
}

Test(detail, the_failing_field_is_shown)
{
	cr_assert_str_eq(
		parse_detail("x1,057188000001,voice,2026-13-01 00:00:00,1,0,0",
			     CDR_R_START),
		"start \"2026-13-01 00:00:00\": expected YYYY-MM-DD HH:MM:SS "
		"(or with T, Z, +HH:MM, or Unix seconds) from 1970 to 9999");
	cr_assert_str_eq(parse_detail("x1,+86abc,voice,1,1,0,0",
				      CDR_R_SUBSCRIBER),
			 "subscriber \"+86abc\": expected digits after an "
			 "optional +");
	cr_assert_str_eq(parse_detail("x1,1,fax,1,1,0,0", CDR_R_SERVICE),
			 "service \"fax\": expected voice, sms or data");
	cr_assert_str_eq(parse_detail("x1,1,voice,1,1,-5,0", CDR_R_DURATION),
			 "duration \"-5\": expected whole seconds from 0 "
			 "below 10^12");
	cr_assert_str_eq(parse_detail("x1,1,data,1,,0,1e6", CDR_R_VOLUME),
			 "volume \"1e6\": expected whole bytes from 0 below "
			 "10^12");
}

Test(detail, long_values_are_cut_at_64_bytes)
{
	char line[200];
	memset(line, 'i', 70);
	strcpy(line + 70, ",1,voice,1,1,0,0");
	const char *d = parse_detail(line, CDR_R_ID);
	cr_assert_str_eq(d, "id \"iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii"
			    "iiiiiiiiiiiiiiii...\": expected 1 to 64 bytes");
}

Test(detail, too_long_lines_say_so)
{
	cr_assert_str_eq(parse_detail("x", CDR_R_LINE_TOO_LONG),
			 "longer than 65536 bytes; the record holds its first "
			 "65536");
}
