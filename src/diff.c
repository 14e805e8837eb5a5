/*
 * diff.c - compare two totals files account by account (rerate, diff).
 *
 * Works on the printed totals, not on internal sums, so that each side of
 * a delta is exactly what `cdrate rate` prints for that tariff and the
 * deltas of a row add up as printed. Amounts are read back into micros
 * (they have at most 6 places) and deltas printed with the larger of the
 * two sides' decimal places. Each delta row ends in a `change` column:
 * `changed` (on both sides, some figure moved), `added` (on the new side
 * only), `removed` (on the old side only), or `unchanged` (listed with
 * `all` alone).
 *
 * Sections: reading totals - the delta CSV - the report.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NQTY 5 /* records, late_records, voice_seconds, sms_count, data_bytes */
#define NAMT 7 /* voice, sms, data, allowance, recurring, outage, total */

static const char header[] =
	"account,period,records,late_records,voice_seconds,sms_count,"
	"data_bytes,voice_charge,sms_charge,data_charge,allowance_credit,"
	"recurring_charge,outage_credit,total";

typedef cdr__figures trow; /* a totals line: account, figures in micros */

typedef struct totals {
	trow *rows;
	size_t n;
	char period[8];
	int decimals; /* -1 until an amount is seen */
} totals;

/* ---- reading totals -------------------------------------------------- */

/* Digits into a 128-bit value; the first 19 in native 64-bit arithmetic,
 * which is all that almost every figure has. */
static int parse_digits(const char *s, size_t n, u128 *v)
{
	uint64_t lo = 0;
	size_t i = 0;
	for (; i < n && i < 19; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9)
			return -1;
		lo = lo * 10 + d;
	}
	u128 x = lo;
	for (; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9)
			return -1;
		x = x * 10 + d;
	}
	*v = x;
	return 0;
}

static int parse_qty(const char *s, size_t n, u128 *v)
{
	if (!n || n > 38)
		return -1;
	return parse_digits(s, n, v);
}

/* -?digits[.digits] with at most 6 places -> micros, and its places. */
static int parse_amt(const char *s, size_t n, i128 *v, int *places)
{
	int neg = n && s[0] == '-';
	size_t i = (size_t)neg;
	u128 x = 0, frac = 0;
	if (i == n || n > 40)
		return -1;
	const char *dot = memchr(s + i, '.', n - i);
	size_t whole_n = dot ? (size_t)(dot - s) - i : n - i;
	size_t frac_n = dot ? n - (size_t)(dot - s) - 1 : 0;
	if (!whole_n || (dot && (frac_n == 0 || frac_n > 6)) ||
	    parse_digits(s + i, whole_n, &x) ||
	    (dot && parse_digits(dot + 1, frac_n, &frac)))
		return -1;
	for (size_t k = 0; k < frac_n; k++)
		x *= 10;
	x += frac;
	int d = (int)frac_n;
	*places = d;
	for (int k = *places; k < 6; k++)
		x *= 10;
	*v = neg ? -(i128)x : (i128)x;
	return 0;
}

/* The message, escaped: names and values come from the user's files. */
static int say(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int say(char *err, size_t errlen, const char *fmt, ...)
{
	char m[2 * CDR_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (errlen)
		cdr__escape_ctl(err, errlen, m);
	return -EINVAL;
}

static int bad(char *err, size_t errlen, const char *name, size_t line,
	       const char *what)
{
	return say(err, errlen, "%s:%zu: %s", name, line, what);
}

/* Order row indexes by account (qsort_r context: the rows). */
static int cmp_acct_idx(const void *a, const void *b, void *rows);
static int cmp_acct(const trow *a, const trow *b);

/*
 * A totals file has one row per account: a second row of one account
 * would be added to nothing and dropped from the delta. Rows are sorted
 * as cdrate writes them, so neighbours are compared; otherwise an index
 * is sorted (n log n). Names the first line, in file order, that repeats
 * an account.
 */
static int check_unique(const totals *t, const size_t *lines,
			const char *name, char *err, size_t errlen)
{
	size_t dup = 0, first = 0; /* line of the repeat, of the first row */
	const trow *who = NULL;
	int in_order = 1;
	for (size_t i = 1; i < t->n && in_order; i++) {
		int c = cmp_acct(&t->rows[i - 1], &t->rows[i]);
		in_order = c <= 0;
		if (c == 0 && !dup) {
			dup = lines[i];
			first = lines[i - 1];
			who = &t->rows[i];
		}
	}
	if (!in_order) {
		size_t *ix = malloc((t->n + 1) * sizeof(*ix));
		if (!ix)
			return -ENOMEM;
		for (size_t i = 0; i < t->n; i++)
			ix[i] = i;
		qsort_r(ix, t->n, sizeof(*ix), cmp_acct_idx, t->rows);
		dup = 0;
		for (size_t i = 1, g = 0; i < t->n; i++) {
			if (cmp_acct(&t->rows[ix[g]], &t->rows[ix[i]])) {
				g = i; /* a new account; ix is stable in line */
				continue;
			}
			if (i == g + 1 && (!dup || lines[ix[i]] < dup)) {
				dup = lines[ix[i]];
				first = lines[ix[g]];
				who = &t->rows[ix[i]];
			}
		}
		free(ix);
	}
	if (!dup)
		return 0;
	return say(err, errlen, "%s:%zu: column account: '%.*s' already has "
		   "a row (line %zu)", name, dup, (int)who->acct_n, who->acct,
		   first);
}

/* The rows of a totals file into t (sized by the caller), each row's line
 * number into lines[]; then the check that no account repeats. */
static int parse_totals(const char *b, size_t len, const char *name,
			totals *t, size_t *lines, char *err, size_t errlen)
{
	size_t line = 0;
	const char *p = b, *end = b + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		size_t n = (size_t)(e - p);
		line++;
		if (n && p[n - 1] == '\r')
			n--;
		if (line == 1) {
			if (n != sizeof(header) - 1 || memcmp(p, header, n) != 0)
				return bad(err, errlen, name, line,
					   "not a cdrate totals file (header "
					   "differs)");
		} else if (n) {
			const char *f[14];
			size_t fl[14], k = 0;
			/* One pass over the line: the fields are short, and a
			 * memchr call per field cost more than the scan. */
			f[0] = p;
			for (size_t i = 0; i < n && k < 14; i++)
				if (p[i] == ',') {
					fl[k] = (size_t)(p + i - f[k]);
					if (++k < 14)
						f[k] = p + i + 1;
				}
			if (k < 14)
				fl[k] = (size_t)(p + n - f[k]);
			k++;
			if (k != 14 || !fl[0])
				return bad(err, errlen, name, line,
					   "expected 14 columns");
			if (fl[1] != 7)
				return bad(err, errlen, name, line,
					   "column period: expected YYYY-MM");
			if (!t->period[0])
				memcpy(t->period, f[1], 7);
			else if (memcmp(t->period, f[1], 7) != 0)
				return bad(err, errlen, name, line,
					   "column period: rows of more than "
					   "one period");
			lines[t->n] = line;
			trow *r = &t->rows[t->n++];
			r->acct = f[0];
			r->acct_n = fl[0];
			for (int q = 0; q < NQTY; q++)
				if (parse_qty(f[2 + q], fl[2 + q], &r->qty[q]))
					return bad(err, errlen, name, line,
						   "bad quantity");
			for (int a = 0; a < NAMT; a++) {
				int places;
				if (parse_amt(f[7 + a], fl[7 + a], &r->amt[a],
					      &places))
					return bad(err, errlen, name, line,
						   "bad amount");
				if (places > t->decimals)
					t->decimals = places;
			}
			/* total = voice + sms + data - allowance + recurring
			 * - outage, as printed (section 8): a row that does
			 * not add up was not written by cdrate. */
			i128 sum = r->amt[0] + r->amt[1] + r->amt[2] -
				   r->amt[3] + r->amt[4] - r->amt[5];
			if (sum != r->amt[6]) {
				char want[64];
				want[cdr__fmt_amount(want, sum, t->decimals)] = 0;
				return say(err, errlen,
					   "%s:%zu: column total: %.*s is not "
					   "the sum of the columns (%s)", name,
					   line, (int)fl[13], f[13], want);
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (line == 0)
		return bad(err, errlen, name, 1, "empty file");
	return check_unique(t, lines, name, err, errlen);
}

static int read_totals(const char *b, size_t len, const char *name,
		       totals *t, char *err, size_t errlen)
{
	size_t cap = 1;
	memset(t, 0, sizeof(*t));
	t->decimals = -1;
	/* One row per line: size the array once (growing it copied rows of
	 * 200 bytes over and over, most of a 750k-account diff). */
	for (const char *q = b; (q = memchr(q, '\n', len - (size_t)(q - b)));
	     q++)
		cap++;
	t->rows = malloc(cap * sizeof(*t->rows));
	size_t *lines = malloc(cap * sizeof(*lines));
	int rc = -ENOMEM;
	if (t->rows && lines)
		rc = parse_totals(b, len, name, t, lines, err, errlen);
	free(lines);
	return rc;
}

static int cmp_acct(const trow *a, const trow *b)
{
	size_t m = a->acct_n < b->acct_n ? a->acct_n : b->acct_n;
	int c = memcmp(a->acct, b->acct, m);
	return c ? c : (a->acct_n > b->acct_n) - (a->acct_n < b->acct_n);
}

static int cmp_row(const void *a, const void *b)
{
	return cmp_acct(a, b);
}

static int cmp_acct_idx(const void *a, const void *b, void *rows)
{
	const trow *r = rows;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = cmp_acct(&r[x], &r[y]);
	return c ? c : (x > y) - (x < y); /* ties in file order */
}

static int sorted(const totals *t)
{
	for (size_t i = 1; i < t->n; i++)
		if (cmp_acct(&t->rows[i - 1], &t->rows[i]) > 0)
			return 0;
	return 1;
}

/* ---- the report ------------------------------------------------------ */

typedef struct move {
	const trow *acct;
	i128 delta;
} move;

static int cmp_up(const void *a, const void *b)
{
	const move *x = a, *y = b;
	if (x->delta != y->delta)
		return x->delta > y->delta ? -1 : 1;
	return cmp_acct(x->acct, y->acct);
}

static void put_amt(FILE *f, i128 micros, int dec)
{
	char b[64];
	size_t n = cdr__fmt_amount(b, micros, dec);
	fwrite(b, 1, n, f);
}

/* ---- the delta CSV --------------------------------------------------- */

int cdr_diff_totals(const char *old_csv, size_t old_len, const char *name_old,
		    const char *new_csv, size_t new_len, const char *name_new,
		    int all, char **out, size_t *out_len, FILE *report,
		    char *err, size_t errlen)
{
	totals a, b;
	int rc = read_totals(old_csv, old_len, name_old, &a, err, errlen);
	if (rc == -ENOMEM)
		say(err, errlen, "%s: out of memory", name_old);
	if (!rc) {
		rc = read_totals(new_csv, new_len, name_new, &b, err, errlen);
		if (rc == -ENOMEM)
			say(err, errlen, "%s: out of memory", name_new);
	} else {
		memset(&b, 0, sizeof(b));
	}
	if (!rc && a.period[0] && b.period[0] &&
	    memcmp(a.period, b.period, 7) != 0) {
		rc = say(err, errlen, "periods differ: %s is %.7s, %s is %.7s",
			 name_old, a.period, name_new, b.period);
	}
	if (!rc) {
		int dec = a.decimals > b.decimals ? a.decimals : b.decimals;
		rc = cdr__delta_render(a.rows, a.n, b.rows, b.n,
				       a.period[0] ? a.period : b.period,
				       dec < 0 ? 2 : dec, all, out, out_len,
				       report);
		if (rc < 0)
			say(err, errlen, "out of memory comparing %s and %s",
			    name_old, name_new);
	}
	free(a.rows);
	free(b.rows);
	return rc;
}

int cdr__delta_render(cdr__figures *arows, size_t na, cdr__figures *brows,
		      size_t nb, const char *period, int dec, int all,
		      char **out, size_t *out_len, FILE *report)
{
	static const char dheader[] =
		"account,period,old_total,new_total,delta,voice_delta,"
		"sms_delta,data_delta,allowance_delta,recurring_delta,"
		"outage_delta,records_delta,change\n";
	totals a = {.rows = arows, .n = na}, b = {.rows = brows, .n = nb};
	move *moves = NULL;
	size_t nmoves = 0, up = 0, down = 0, level = 0;
	i128 sum_old = 0, sum_new = 0;
	int rc = 0;
	/* Totals written by cdrate are sorted already: check, sort if not. */
	if (!sorted(&a))
		qsort(a.rows, a.n, sizeof(trow), cmp_row);
	if (!sorted(&b))
		qsort(b.rows, b.n, sizeof(trow), cmp_row);

	size_t cap = sizeof(dheader), o = 0;
	for (size_t i = 0; i < a.n; i++)
		cap += a.rows[i].acct_n + 512;
	for (size_t i = 0; i < b.n; i++)
		cap += b.rows[i].acct_n + 512;
	char *s = malloc(cap);
	moves = malloc((a.n + b.n + 1) * sizeof(*moves));
	if (!s || !moves) {
		free(s);
		rc = -ENOMEM;
		goto done;
	}
	memcpy(s, dheader, sizeof(dheader) - 1);
	o = sizeof(dheader) - 1;
	static const trow zero;
	for (size_t i = 0, j = 0; i < a.n || j < b.n;) {
		int c = i == a.n ? 1 : j == b.n ? -1 : cmp_acct(&a.rows[i], &b.rows[j]);
		const trow *x = c <= 0 ? &a.rows[i] : &zero;
		const trow *y = c >= 0 ? &b.rows[j] : &zero;
		const trow *id = c <= 0 ? x : y;
		i += c <= 0;
		j += c >= 0;
		int same = 1;
		for (int q = 0; q < NQTY; q++)
			same &= x->qty[q] == y->qty[q];
		for (int k = 0; k < NAMT; k++)
			same &= x->amt[k] == y->amt[k];
		sum_old += x->amt[6];
		sum_new += y->amt[6];
		i128 d = y->amt[6] - x->amt[6];
		if (!same) {
			moves[nmoves].acct = id;
			moves[nmoves++].delta = d;
			up += d > 0;
			down += d < 0;
			level += d == 0; /* columns moved, the total did not */
		}
		if (same && !all)
			continue;
		memcpy(s + o, id->acct, id->acct_n);
		o += id->acct_n;
		s[o++] = ',';
		memcpy(s + o, period, 7);
		o += 7;
		const i128 cols[9] = {x->amt[6],
				      y->amt[6],
				      d,
				      y->amt[0] - x->amt[0],
				      y->amt[1] - x->amt[1],
				      y->amt[2] - x->amt[2],
				      y->amt[3] - x->amt[3],
				      y->amt[4] - x->amt[4],
				      y->amt[5] - x->amt[5]};
		for (int k = 0; k < 9; k++) {
			s[o++] = ',';
			o += cdr__fmt_amount(s + o, cols[k], dec);
		}
		s[o++] = ',';
		i128 rd = (i128)y->qty[0] - (i128)x->qty[0];
		o += cdr__fmt_scaled(s + o, rd, 0);
		static const struct {
			char text[12];
			size_t n;
		} change[] = {{",removed\n", 9},
			      {",added\n", 7},
			      {",unchanged\n", 11},
			      {",changed\n", 9}};
		int ci = c < 0 ? 0 : c > 0 ? 1 : same ? 2 : 3;
		memcpy(s + o, change[ci].text, change[ci].n);
		o += change[ci].n;
	}
	*out = s;
	*out_len = o;

	if (report) {
		fprintf(report,
			"cdrate: %zu accounts changed: %zu up, %zu down, "
			"%zu with the same total\n",
			nmoves, up, down, level);
		fputs("cdrate: total old ", report);
		put_amt(report, sum_old, dec);
		fputs(", new ", report);
		put_amt(report, sum_new, dec);
		fputs(", delta ", report);
		put_amt(report, sum_new - sum_old, dec);
		fputc('\n', report);
		qsort(moves, nmoves, sizeof(*moves), cmp_up);
		size_t shown = 0;
		for (size_t k = 0; k < nmoves && shown < 10 &&
				   moves[k].delta > 0; k++, shown++) {
			if (!shown)
				fputs("cdrate: largest increases:\n", report);
			fprintf(report, "cdrate:   %.*s +",
				(int)moves[k].acct->acct_n, moves[k].acct->acct);
			put_amt(report, moves[k].delta, dec);
			fputc('\n', report);
		}
		shown = 0;
		for (size_t k = nmoves; k-- > 0 && shown < 10 &&
					moves[k].delta < 0; shown++) {
			if (!shown)
				fputs("cdrate: largest decreases:\n", report);
			fprintf(report, "cdrate:   %.*s ",
				(int)moves[k].acct->acct_n, moves[k].acct->acct);
			put_amt(report, moves[k].delta, dec);
			fputc('\n', report);
		}
	}
done:
	free(moves);
	return rc ? rc : (int)(nmoves > INT32_MAX ? INT32_MAX : nmoves);
}
