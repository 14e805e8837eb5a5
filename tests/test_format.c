/*
 * test_format.c - the input formats of SPEC section 11: the quoted-field
 * splitter, detection by the first non-empty line, each row of the mapping
 * table for asterisk, asterisk-custom and freeswitch, the `unanswered`
 * reject and the native column names of the other rejects, column maps,
 * and native headers read by name. Every line here is written by hand from
 * the layouts in the contract; the expected values are read off the line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "testutil.h"

/* ---- splitter -------------------------------------------------------- */

static char scratch[CDR__SCRATCH(4096)];

static int split(const char *s, cdr__field *f)
{
	return cdr__split(s, strlen(s), ',', f, 32, scratch);
}

#define FIELD_IS(x, text) \
	cr_assert((x).n == strlen(text) && !memcmp((x).s, text, (x).n), \
		  "field '%.*s', wanted '%s'", (int)(x).n, (x).s, text)

Test(split, plain_and_empty_fields)
{
	cdr__field f[32];
	cr_assert_eq(split("a,,b,", f), 4);
	FIELD_IS(f[0], "a");
	FIELD_IS(f[1], "");
	FIELD_IS(f[2], "b");
	FIELD_IS(f[3], "");
	cr_assert(!f[0].quoted);
	cr_assert_eq(split("", f), 1); /* one empty field */
}

Test(split, quotes_doubled_quotes_commas_inside)
{
	cdr__field f[32];
	cr_assert_eq(split("\"a,b\",\"say \"\"hi\"\"\",\"\"", f), 3);
	FIELD_IS(f[0], "a,b");
	cr_assert(f[0].quoted);
	FIELD_IS(f[1], "say \"hi\"");
	FIELD_IS(f[2], "");
	cr_assert(f[2].quoted);
}

Test(split, text_after_the_closing_quote_is_appended)
{
	cdr__field f[32];
	/* Real exports: `"User 10" <114>` and `""Name" <1115>"`. */
	cr_assert_eq(split("\"User 10\" <114>,x", f), 2);
	FIELD_IS(f[0], "User 10 <114>");
	cr_assert_eq(split("\"\"\"Caller 1\"\" <100>\",x", f), 2);
	FIELD_IS(f[0], "\"Caller 1\" <100>");
	/* `""Name" <1115>"`: `""` then the closing quote? No: the opening
	 * quote, `"` (escaped by the next), then Name, then `"` closes,
	 * and ` <1115>"` follows as it stands. */
	cr_assert_eq(split("\"\"\"Name\" <1115>\"", f), 1);
	FIELD_IS(f[0], "\"Name <1115>\"");
}

Test(split, spaces_before_an_opening_quote_are_skipped)
{
	cdr__field f[32];
	cr_assert_eq(split("\"a\", \"b\",\t\"c\", d", f), 4);
	FIELD_IS(f[1], "b");
	FIELD_IS(f[2], "c");
	FIELD_IS(f[3], " d"); /* unquoted: spaces are data */
	cr_assert(f[1].quoted && !f[3].quoted);
}

Test(split, unclosed_quote_and_too_many_fields)
{
	cdr__field f[32];
	cr_assert_eq(split("\"abc,d", f), -1);
	cr_assert_eq(split("a,\"b\"\"", f), -1);
	cr_assert_eq(cdr__split("a,b,c", 5, ',', f, 2, scratch), -2);
	/* another delimiter */
	cr_assert_eq(cdr__split("a;\"b;c\"", 7, ';', f, 4, scratch), 2);
	FIELD_IS(f[1], "b;c");
}

/*
 * Fields of every length from 0 to 90 (the splitter searches words up to
 * 32 bytes, then memchr), quoted or not, with `""`, delimiters inside
 * quotes and text after a closing quote, built from known contents and
 * split back in an exactly sized buffer (ASan catches a read past it).
 */
Test(split, fields_of_every_length)
{
	uint32_t seed = 12345;
	char line[4096], want[16][128];
	size_t want_n[16];
	for (int round = 0; round < 3000; round++) {
		size_t n = 0;
		int nf = 1 + (int)(round % 16);
		for (int k = 0; k < nf; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t len = (seed >> 8) % 91;
			int quoted = (seed >> 20) & 1, tail = quoted && !((seed >> 22) % 7);
			size_t w = 0;
			if (k)
				line[n++] = ',';
			if (quoted)
				line[n++] = '"';
			for (size_t c = 0; c < len; c++) {
				seed = seed * 1103515245u + 12345u;
				char ch = "ab0,\"x9 "[(seed >> 16) % 8];
				if (!quoted && (ch == ',' || ch == '"'))
					ch = 'y';
				if (!quoted && c == 0 && ch == ' ')
					ch = 'z'; /* a leading space then '"' would quote */
				want[k][w++] = ch;
				line[n++] = ch;
				if (ch == '"')
					line[n++] = '"';
			}
			if (quoted)
				line[n++] = '"';
			if (tail) {
				memcpy(line + n, " <7>", 4);
				memcpy(want[k] + w, " <7>", 4);
				n += 4, w += 4;
			}
			want_n[k] = w;
		}
		char *p = malloc(n ? n : 1);
		cr_assert(p);
		memcpy(p, line, n);
		cdr__field f[32];
		int got = cdr__split(p, n, ',', f, 32, scratch);
		cr_assert_eq(got, nf, "round %d: %d fields of %d: %.*s", round, got,
			     nf, (int)n, p);
		for (int k = 0; k < nf; k++)
			cr_assert(f[k].n == want_n[k] &&
					  !memcmp(f[k].s, want[k], want_n[k]),
				  "round %d field %d: '%.*s' for '%.*s'", round, k,
				  (int)f[k].n, f[k].s, (int)want_n[k], want[k]);
		free(p);
	}
}

/* ---- detection ------------------------------------------------------- */

/* Asterisk cdr_csv, 18 fields (uniqueid, userfield). */
#define AST18                                                                 \
	"\"\",\"100\",\"700\",\"phones\",\"\"\"Caller 1\"\" <100>\","         \
	"\"SIP/100-0\",\"\",\"Hangup\",\"\",\"2026-10-05 08:00:00\","         \
	"\"2026-10-05 08:00:05\",\"2026-10-05 08:01:05\",65,60,"              \
	"\"ANSWERED\",\"DOCUMENTATION\",\"1427211880.0\",\"\""
/* Asterisk cdr_custom, sample mapping, 19 fields. */
#define CUSTOM19                                                              \
	"\"\"\"\"\" <client1>\",\"client1\",\"6789\",\"default\","            \
	"\"PJSIP/c1\",\"PJSIP/c2\",\"Dial\",\"PJSIP/c2\","                    \
	"\"2026-10-05 08:00:00\",\"2026-10-05 08:00:10\","                    \
	"\"2026-10-05 08:00:40\",\"40\",\"30\",\"ANSWERED\","                 \
	"\"DOCUMENTATION\",\"\",\"1690325492.2\",\"\",2"
/* FreeSWITCH example template, 15 fields. */
#define FS15                                                                  \
	"\"Caller 1\",\"1000\",\"1002\",\"default\",\"2026-10-05 08:00:00\"," \
	"\"2026-10-05 08:00:11\",\"2026-10-05 08:00:38\",\"38\",\"27\","     \
	"\"NORMAL_CLEARING\",\"e852a435-b155\",\"f2f39a06\",\"1000\","        \
	"\"G722\",\"G722\""
/* FreeSWITCH default template, 13 fields, `, "${accountcode}"`. */
#define FS13                                                                  \
	"\"Caller 1\",\"1000\",\"1002\",\"default\",\"2026-10-05 08:00:00\"," \
	"\"2026-10-05 08:00:11\",\"2026-10-05 08:00:38\",\"38\",\"27\","     \
	"\"NORMAL_CLEARING\",\"uuid-13\",\"\", \"1000\""

static cdr__fmt head(cdr_format want, const char *line, int *rc)
{
	cdr__fmt f;
	char err[CDR_ERR_MAX] = "";
	*rc = cdr__fmt_head(&f, want, NULL, line, strlen(line), err,
			    sizeof(err));
	return f;
}

static cdr_format detected(const char *line, int *guessed)
{
	int rc;
	cdr__fmt f = head(CDR_FORMAT_AUTO, line, &rc);
	cr_assert_eq(rc, 0, "%s", line);
	*guessed = f.guessed;
	return (cdr_format)f.kind;
}

Test(detect, each_row_of_the_table)
{
	int g;
	cr_assert_eq(detected(AST18, &g), CDR_FORMAT_ASTERISK);
	cr_assert_eq(detected(CUSTOM19, &g), CDR_FORMAT_ASTERISK_CUSTOM);
	cr_assert_eq(detected(FS15, &g), CDR_FORMAT_FREESWITCH);
	cr_assert_eq(detected(FS13, &g), CDR_FORMAT_FREESWITCH);
	cr_assert_eq(detected("c1,1,voice,2026-10-05 08:00:00,2,3,0", &g),
		     CDR_FORMAT_NATIVE);
	cr_assert(!g);
	cr_assert_eq(detected("id,subscriber,service,start,destination,"
			      "duration,volume", &g),
		     CDR_FORMAT_NATIVE);
	cr_assert(!g);
}

Test(detect, what_auto_cannot_place_is_native_and_flagged)
{
	int g;
	/* The spreadsheet-saved FreeSWITCH file: no quotes at all. */
	cr_assert_eq(detected("Outbound Call,1002,&,default,2020/2/10 22:41,"
			      "2020/2/10 22:41,2020/2/10 22:41,11,9,"
			      "NORMAL_CLEARING,d80e,,1002,PCMU,PCMU", &g),
		     CDR_FORMAT_NATIVE);
	cr_assert(g);
	/* 7 fields but the 3rd is no service; a quoted native-looking line */
	cr_assert_eq(detected("c1,1,fax,2026-10-05 08:00:00,2,3,0", &g),
		     CDR_FORMAT_NATIVE);
	cr_assert(g);
	cr_assert_eq(detected("c1,1,\"voice\",2026-10-05 08:00:00,2,3,0", &g),
		     CDR_FORMAT_NATIVE);
	cr_assert(g);
	cr_assert_eq(detected("\"open", &g), CDR_FORMAT_NATIVE);
	cr_assert(g);
}

Test(detect, native_header_by_name_and_missing_column)
{
	int rc;
	cdr__fmt f = head(CDR_FORMAT_AUTO,
			  "service,x,id,volume,duration,destination,start,"
			  "subscriber", &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(f.kind, CDR_FORMAT_NATIVE);
	cr_assert(f.header && f.bycol);
	cr_assert_eq(f.col[CDR__MC_ID], 2);
	cr_assert_eq(f.col[CDR__MC_SUB], 7);
	f = head(CDR_FORMAT_NATIVE, "id,subscriber,service,start", &rc);
	cr_assert_eq(rc, -EINVAL);
	/* A named format takes the first line as data. */
	f = head(CDR_FORMAT_ASTERISK, "id,subscriber,service,start", &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(f.kind, CDR_FORMAT_ASTERISK);
	cr_assert(!f.header);
}

/* ---- switch records -------------------------------------------------- */

static int parse_as(cdr_format kind, const char *line, cdr__rec *r)
{
	static char sc[CDR__SCRATCH(8192)];
	int rc;
	cdr__fmt f = head(kind, line, &rc);
	cr_assert_eq(rc, 0);
	return cdr__fmt_parse(&f, line, strlen(line), r, sc, "dir/a.csv", 7);
}

static int64_t naive(const char *stamp)
{
	int64_t s;
	cr_assert_eq(cdr__parse_datetime(stamp, 19, &s), 0);
	return s;
}

#define STR_IS(p, n, text) \
	cr_assert((n) == strlen(text) && !memcmp((p), text, (n)), \
		  "'%.*s', wanted '%s'", (int)(n), (p), text)

Test(asterisk, mapping_table_row_by_row)
{
	cdr__rec r;
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, AST18, &r), CDR_OK);
	STR_IS(r.sub, r.sub_len, "100");	 /* 2 src */
	STR_IS(r.dest, r.dest_len, "700");	 /* 3 dst */
	cr_assert_eq(r.start, naive("2026-10-05 08:00:05")); /* 11 answer */
	cr_assert_eq(r.start_kind, CDR_START_LOCAL);
	cr_assert_eq(r.duration, 60);		 /* 14 billsec, not 13 */
	cr_assert_eq(r.service, CDR_VOICE);
	cr_assert_eq(r.volume, 0);
	STR_IS(r.id, r.id_len, "1427211880.0"); /* 18 fields: 17 uniqueid */
	cr_assert_eq(r.id_line, 0);
	STR_IS(r.key, r.key_len, AST18);	 /* duplicates: whole line */
}

/* An 18-field line cut or extended to n fields (all fields quoted but
 * 13 and 14, as cdr_csv writes). */
static void ast_fields(char *buf, int n)
{
	strcpy(buf, "\"\",\"100\",\"700\",\"ctx\",\"clid\",\"chan\",\"dchan\","
		    "\"Dial\",\"x\",\"2026-10-05 08:00:00\","
		    "\"2026-10-05 08:00:05\",\"2026-10-05 08:01:05\",65,60,"
		    "\"ANSWERED\",\"3\"");
	for (int k = 17; k <= n; k++)
		sprintf(buf + strlen(buf), ",\"f%d\"", k);
}

Test(asterisk, itemize_id_by_field_count)
{
	char line[1024];
	cdr__rec r;
	for (int n = 16; n <= 21; n++) {
		ast_fields(line, n);
		cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, line, &r), CDR_OK,
			     "%d fields", n);
		if (n == 18) {
			STR_IS(r.id, r.id_len, "f17");
		} else if (n == 21) {
			STR_IS(r.id, r.id_len, "f17-f21");
		} else { /* FILE:LINE */
			STR_IS(r.id, r.id_len, "dir/a.csv");
			cr_assert_eq(r.id_line, 7, "%d fields", n);
		}
	}
	ast_fields(line, 15);
	line[strlen(line) - 4] = '\0'; /* 15 fields */
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, line, &r), CDR_R_COLUMNS);
	ast_fields(line, 22);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, line, &r), CDR_R_COLUMNS);
}

/* AST18 with one field replaced. */
static const char *ast_with(int field, const char *value)
{
	static char out[2048];
	cdr__field f[32];
	int n = split(AST18, f);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(out, ",");
		if (i + 1 == field)
			strcat(out, value);
		else
			sprintf(out + strlen(out), "\"%.*s\"", (int)f[i].n,
				f[i].s);
	}
	return out;
}

Test(asterisk, unanswered_and_native_reject_names)
{
	cdr__rec r;
	/* Unanswered: no answer stamp, or a disposition other than ANSWERED
	 * - and that before any field is checked (src is bad here too). */
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(11, "\"\""), &r),
		     CDR_R_UNANSWERED);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(15, "\"NO ANSWER\""),
			      &r), CDR_R_UNANSWERED);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(15, "\"BUSY\""), &r),
		     CDR_R_UNANSWERED);
	/* The checks of section 3 under the native names. */
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(2, "\"\""), &r),
		     CDR_R_SUBSCRIBER);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(2, "\"client1\""),
			      &r), CDR_R_SUBSCRIBER);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(3, "\"s\""), &r),
		     CDR_R_DESTINATION);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(11, "\"yesterday\""),
			      &r), CDR_R_START);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(14, "-1"), &r),
		     CDR_R_DURATION);
	/* Answered with billsec 0: a record, of quantity 0 later. */
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(14, "0"), &r),
		     CDR_OK);
	cr_assert_eq(r.duration, 0);
	/* An unclosed quote is a column error (mid-line, a stray quote
	 * only runs into the next field's opening one). */
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK, ast_with(18, "\"open"), &r),
		     CDR_R_COLUMNS);
}

Test(asterisk_custom, mapping_and_id)
{
	cdr__rec r;
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK_CUSTOM, CUSTOM19, &r),
		     CDR_R_SUBSCRIBER); /* src is a SIP user name */
	char line[1024];
	strcpy(line, CUSTOM19);
	char *p = strstr(line, "client1\",\"6789");
	memcpy(p, "1000001", 7);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK_CUSTOM, line, &r), CDR_OK);
	STR_IS(r.sub, r.sub_len, "1000001");		/* 2 src */
	STR_IS(r.dest, r.dest_len, "6789");		/* 3 dst */
	cr_assert_eq(r.start, naive("2026-10-05 08:00:10")); /* 10 answer */
	cr_assert_eq(r.duration, 30);			/* 13 billsec */
	STR_IS(r.id, r.id_len, "1690325492.2-2");	/* 17 - 19 */
	STR_IS(r.key, r.key_len, line);
	/* 14 disposition */
	p = strstr(line, "ANSWERED");
	memcpy(p, "ANSWERES", 8);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK_CUSTOM, line, &r),
		     CDR_R_UNANSWERED);
	cr_assert_eq(parse_as(CDR_FORMAT_ASTERISK_CUSTOM, AST18, &r),
		     CDR_R_COLUMNS); /* 18 fields */
}

Test(freeswitch, mapping_both_templates)
{
	cdr__rec r;
	cr_assert_eq(parse_as(CDR_FORMAT_FREESWITCH, FS15, &r), CDR_OK);
	STR_IS(r.sub, r.sub_len, "1000");	/* 2 caller_id_number */
	STR_IS(r.dest, r.dest_len, "1002");	/* 3 destination_number */
	cr_assert_eq(r.start, naive("2026-10-05 08:00:11")); /* 6 answer */
	cr_assert_eq(r.duration, 27);		/* 9 billsec */
	STR_IS(r.id, r.id_len, "e852a435-b155"); /* 11 uuid */
	STR_IS(r.key, r.key_len, FS15);
	cr_assert_eq(parse_as(CDR_FORMAT_FREESWITCH, FS13, &r), CDR_OK);
	STR_IS(r.id, r.id_len, "uuid-13");
	/* an empty answer_stamp: never answered, whatever follows */
	char line[1024];
	strcpy(line, FS13);
	char *p = strstr(line, "\"2026-10-05 08:00:11\"");
	memmove(p + 2, p + 21, strlen(p + 21) + 1);
	p[1] = '"';
	cr_assert_eq(parse_as(CDR_FORMAT_FREESWITCH, line, &r),
		     CDR_R_UNANSWERED);
	cr_assert_eq(parse_as(CDR_FORMAT_FREESWITCH, "\"a\",\"b\"", &r),
		     CDR_R_COLUMNS);
	cr_assert_eq(parse_as(CDR_FORMAT_FREESWITCH, AST18, &r), CDR_R_COLUMNS);
}

/* ---- maps ------------------------------------------------------------ */

static cdr_colmap *load_map(const char *text, char *err)
{
	char *dir = tu_tariff();
	tu_write(dir, "m.map", text);
	char path[512];
	snprintf(path, sizeof(path), "%s/m.map", dir);
	cdr_colmap *m = NULL;
	err[0] = '\0';
	cdr_colmap_load(&m, path, err, CDR_ERR_MAX);
	tu_rmdir(dir);
	return m;
}

Test(map, header_names_pattern_answered)
{
	char err[CDR_ERR_MAX];
	cdr_colmap *m = load_map(
		"# the spreadsheet file\n"
		"header = yes\n"
		"delimiter = ;\n"
		"subscriber = From\n"
		"destination = To\n"
		"start = When   # local\n"
		"start_format = %Y/%m/%d %H:%M\n"
		"duration = 4\n"
		"service = voice\n"
		"answered = State=ok\n", err);
	cr_assert_not_null(m, "%s", err);
	const char *hdr = "From;To;When;Secs;State";
	cdr__fmt f;
	cr_assert_eq(cdr__fmt_head(&f, CDR_FORMAT_MAP, m, hdr, strlen(hdr),
				   err, sizeof(err)), 0, "%s", err);
	cr_assert(f.header && f.line_ids);
	cdr__rec r;
	static char sc[CDR__SCRATCH(1024)];
	const char *l = "+8613800000001;\"139 x\";2020/2/10 22:41;61;ok";
	cr_assert_eq(cdr__fmt_parse(&f, l, strlen(l), &r, sc, "s.csv", 3),
		     CDR_R_DESTINATION);
	l = "+8613800000001;13912345678;2020/2/10 22:41;61;ok";
	cr_assert_eq(cdr__fmt_parse(&f, l, strlen(l), &r, sc, "s.csv", 3),
		     CDR_OK);
	STR_IS(r.sub, r.sub_len, "8613800000001");
	cr_assert_eq(r.start, naive("2020-02-10 22:41:00")); /* no %S: 0 */
	cr_assert_eq(r.duration, 61);
	STR_IS(r.id, r.id_len, "s.csv");
	cr_assert_eq(r.id_line, 3);
	STR_IS(r.key, r.key_len, l);
	l = "+8613800000001;13912345678;2020/2/10 22:41;61;busy";
	cr_assert_eq(cdr__fmt_parse(&f, l, strlen(l), &r, sc, "s.csv", 3),
		     CDR_R_UNANSWERED);
	l = "+8613800000001;13912345678;2020/2/10;61;ok";
	cr_assert_eq(cdr__fmt_parse(&f, l, strlen(l), &r, sc, "s.csv", 3),
		     CDR_R_START);
	l = "+8613800000001;13912345678;2020/2/10 22:41;61";
	cr_assert_eq(cdr__fmt_parse(&f, l, strlen(l), &r, sc, "s.csv", 3),
		     CDR_R_COLUMNS);
	/* A header without a named column stops the run. */
	cr_assert_eq(cdr__fmt_head(&f, CDR_FORMAT_MAP, m, "From;When", 9, err,
				   sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "'To'"), "%s", err);
	cdr_colmap_free(m);
}

Test(map, numbers_id_and_service_column)
{
	char err[CDR_ERR_MAX];
	cdr_colmap *m = load_map("header = no\nid = 1\nsubscriber = 2\n"
				 "service = 3\nstart = 4\ndestination = 5\n"
				 "duration = 6\nvolume = 7\n"
				 "start_format = %d.%m.%y %H.%M.%S\n", err);
	cr_assert_not_null(m, "%s", err);
	cdr__fmt f;
	const char *l = "\"k-1\",100,data,5.10.26 8.00.09,apn,0,2048";
	cr_assert_eq(cdr__fmt_head(&f, CDR_FORMAT_MAP, m, l, strlen(l), err,
				   sizeof(err)), 0);
	cr_assert(!f.header && !f.line_ids);
	cdr__rec r;
	static char sc[CDR__SCRATCH(1024)];
	cr_assert_eq(cdr__fmt_parse(&f, l, strlen(l), &r, sc, "s.csv", 1),
		     CDR_OK);
	STR_IS(r.id, r.id_len, "k-1");
	STR_IS(r.key, r.key_len, "k-1"); /* duplicates by id */
	cr_assert_eq(r.service, CDR_DATA);
	cr_assert_eq(r.volume, 2048);
	cr_assert_eq(r.start, naive("2026-10-05 08:00:09"));
	l = "k-2,100,fax,5.10.26 8.00.09,apn,0,2048";
	cr_assert_eq(cdr__fmt_parse(&f, l, strlen(l), &r, sc, "s.csv", 1),
		     CDR_R_SERVICE);
	l = ",100,sms,5.10.26 8.00.09,1,0,0";
	cr_assert_eq(cdr__fmt_parse(&f, l, strlen(l), &r, sc, "s.csv", 1),
		     CDR_R_ID);
	cdr_colmap_free(m);
}

static void map_fails(const char *text, const char *want)
{
	char err[CDR_ERR_MAX];
	cdr_colmap *m = load_map(text, err);
	cr_assert_null(m, "%s loaded", text);
	cr_assert(strstr(err, want), "'%s' lacks '%s'", err, want);
	cr_assert(strstr(err, "m.map:"), "'%s' names no map", err);
}

Test(map, bad_maps_name_file_and_line)
{
	map_fails("subscriber = 1\nbogus = 2\n", "m.map:2: unknown key");
	map_fails("header = maybe\n", "m.map:1: header must be");
	map_fails("delimiter = ::\n", "m.map:1: delimiter");
	map_fails("subscriber = 1\nsubscriber = 2\n", "m.map:2: key given");
	map_fails("start_format = %Y-%q\n", "m.map:1: bad start_format");
	map_fails("answered = ANSWERED\n", "m.map:1: answered");
	map_fails("subscriber = 1\n", "missing key");
	map_fails("header = no\nsubscriber = From\ndestination = 2\n"
		  "start = 3\nduration = 4\nservice = voice\n",
		  "m.map:2: a column by name needs header");
	map_fails("subscriber = 0\n", "m.map:1: bad column");
}
