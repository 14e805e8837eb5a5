/*
 * shard_bd.c - the breakdown of a sharded run (README "Shards"): each
 * rate task's exact sums as a part, DIR/rate/bucket-K.breakdown, and the
 * merge's sum of the parts into one cdr__bd, which breakdown.c then
 * renders as a single run renders its own.
 *
 * A part holds what cdr__bd_rows rounds, unrounded: every non-empty cell's
 * records, late records, quantity, charge and allowance credit (micros,
 * the totals' takes already credited), the records and charge by hour of
 * the period, by hour of day and by day (the bd's own arrays, unfolded),
 * the rejects by input, and the totals' figures of the bucket's own
 * accounts (the `rounding` and `monthly` rows sum them). Sums of exact
 * micro-units commute, so the merged bd is the single run's, and each
 * cell, hour and day is rounded once, at the end, as there.
 *
 * The text is one record a line, integers in decimal (128-bit where the
 * bd's are), account names in hex:
 *   cdrate breakdown part 1
 *   dims NBAND NHP NIN
 *   cell KEY RECORDS LATE QTY CHARGE ALLOW      (by key)
 *   hp I REC CHG | hour I REC CHG | day I REC CHG | rej I N
 *   fig HEXNAME QTY0..QTY4 AMT0..AMT6
 * A reject sample line (for the report) is
 *   sample REASON RANK LINE HEXLINE
 * with the line number in place of the rebuilt input's offset.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakdown.h"
#include "internal.h"
#include "shard_bd.h"

/* ---- writing ------------------------------------------------------------ */

static void put_i128(FILE *f, i128 v)
{
	char b[64];
	size_t n = cdr__fmt_scaled(b, v, 0);
	fputc(' ', f);
	fwrite(b, 1, n, f);
}

static void put_hex(FILE *f, const char *s, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	fputc(' ', f);
	if (!n)
		fputc('-', f);
	for (size_t i = 0; i < n; i++) {
		fputc(hx[(unsigned char)s[i] >> 4], f);
		fputc(hx[(unsigned char)s[i] & 15], f);
	}
}

static int cmp_cell(const void *a, const void *b)
{
	uint64_t x = ((const cdr__bdcell *)a)->key,
		 y = ((const cdr__bdcell *)b)->key;
	return (x > y) - (x < y);
}

int cdr__shard_bd_part(const cdr__acc *a, const cdr__period *per, int bucket,
		       int shards, const cdr__shard_line_fn line_of, void *ctx,
		       char **buf, size_t *len)
{
	cdr__bd *bd = a->bd;
	int rc;
	if (!bd)
		return -EINVAL;
	if ((rc = cdr__bd_fold(bd)))
		return rc;
	if (!bd->credited && (rc = cdr__bd_credit(a)))
		return rc;
	if (!bd->fig) {
		cdr__figures *tmp;
		size_t ntmp;
		if ((rc = cdr__totals_figures(a, per, &tmp, &ntmp)))
			return rc;
		free(tmp);
		if (!bd->fig)
			return -ENOMEM;
	}
	FILE *f = open_memstream(buf, len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "cdrate breakdown part 1\ndims %u %u %u\n", bd->nband,
		bd->nhp, bd->nin);
	/* Cells by key, the empty ones (a record and its duplicate taken
	 * back) left out: the same bytes whatever the thread count. */
	cdr__bdcell *cs = malloc((bd->ncells ? bd->ncells : 1) * sizeof(*cs));
	if (!cs) {
		fclose(f);
		free(*buf);
		*buf = NULL;
		return -ENOMEM;
	}
	size_t nc = 0;
	for (uint32_t i = 0; i < bd->cap; i++) {
		const cdr__bdcell *c = &bd->cells[i];
		if (c->key && (c->records || c->late || c->qty || c->charge ||
			       c->allow))
			cs[nc++] = *c;
	}
	qsort(cs, nc, sizeof(*cs), cmp_cell);
	for (size_t i = 0; i < nc; i++) {
		const cdr__bdcell *c = &cs[i];
		fprintf(f, "cell %llu %lld %lld", (unsigned long long)c->key,
			(long long)c->records, (long long)c->late);
		put_i128(f, c->qty);
		put_i128(f, c->charge);
		put_i128(f, c->allow);
		fputc('\n', f);
	}
	free(cs);
	const struct {
		const char *name;
		const int64_t *rec;
		const i128 *chg;
		size_t n;
	} arr[3] = {{"hp", bd->hp_rec, bd->hp_chg, (size_t)bd->nhp * bd->nband},
		    {"hour", bd->hour_rec, bd->hour_chg, (size_t)24 * bd->nband},
		    {"day", bd->day_rec, bd->day_chg, CDR_BD_DAYS}};
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < arr[k].n; i++) {
			if (!arr[k].rec[i] && !arr[k].chg[i])
				continue;
			fprintf(f, "%s %zu %lld", arr[k].name, i,
				(long long)arr[k].rec[i]);
			put_i128(f, arr[k].chg[i]);
			fputc('\n', f);
		}
	for (uint32_t i = 0; i < bd->nin; i++)
		if (bd->rej_in[i])
			fprintf(f, "rej %u %lld\n", i, (long long)bd->rej_in[i]);
	/* Every account appears in every bucket's run; its figures are
	 * counted in its own bucket only. */
	for (size_t i = 0; i < bd->nfig; i++) {
		const cdr__figures *g = &bd->fig[i];
		if ((int)cdr_shard_bucket(g->acct, g->acct_n, shards) != bucket)
			continue;
		fputs("fig", f);
		put_hex(f, g->acct, g->acct_n);
		for (int c = 0; c < 5; c++)
			put_i128(f, (i128)g->qty[c]);
		for (int c = 0; c < 7; c++)
			put_i128(f, g->amt[c]);
		fputc('\n', f);
	}
	for (int r = 0; r < CDR_NREASON; r++)
		for (int k = 0; k < CDR_BD_POOL; k++) {
			const cdr__bdsample *s = &bd->sample[r][k];
			if (!s->order)
				continue;
			uint64_t o = s->order - 1;
			uint64_t rank = o >> 44, line = 0;
			if (line_of && line_of(ctx, rank, o & ((1ull << 44) - 1),
					       &line))
				continue;
			fprintf(f, "sample %d %llu %llu", r,
				(unsigned long long)rank,
				(unsigned long long)line);
			put_hex(f, s->line, s->n);
			fputc('\n', f);
		}
	return fclose(f) ? -ENOMEM : 0;
}

/* ---- reading ------------------------------------------------------------ */

static int get_i128(char **p, i128 *v)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	int neg = *s == '-';
	if (neg)
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	u128 u = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		u = u * 10 + (u128)(unsigned)(*s - '0');
	*v = neg ? -(i128)u : (i128)u;
	*p = s;
	return 0;
}

static int get_u64(char **p, uint64_t *v)
{
	i128 x;
	if (get_i128(p, &x) || x < 0)
		return -1;
	*v = (uint64_t)x;
	return 0;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9'	? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
				      : -1;
}

/* A hex field into a new string (length *n); NULL on a bad field. */
static char *get_hex(char **p, size_t *n)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	char *e = s;
	while (*e && *e != ' ' && *e != '\n')
		e++;
	size_t hn = (size_t)(e - s);
	*p = e;
	if (hn == 1 && *s == '-') {
		*n = 0;
		return calloc(1, 1);
	}
	if (hn % 2)
		return NULL;
	char *o = malloc(hn / 2 + 1);
	if (!o)
		return NULL;
	for (size_t i = 0; i < hn / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(o);
			return NULL;
		}
		o[i] = (char)(hi << 4 | lo);
	}
	o[hn / 2] = '\0';
	*n = hn / 2;
	return o;
}

void cdr__shard_figs_free(cdr__shard_figs *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->names[i]);
	free(g->names);
	free(g->fig);
	memset(g, 0, sizeof(*g));
}

static int figs_add(cdr__shard_figs *g, const cdr__figures *f, char *name)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		cdr__figures *n = realloc(g->fig, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		g->fig = n;
		char **nm = realloc(g->names, cap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		g->names = nm;
		g->cap = cap;
	}
	g->names[g->n] = name;
	g->fig[g->n++] = *f;
	return 0;
}

int cdr__shard_bd_load(cdr__bd *bd, char *buf, cdr__shard_figs *figs,
		       int *line_no)
{
	int ln = 0;
	*line_no = 0;
	for (char *q = buf; q && *q;) {
		char *e = strchr(q, '\n');
		if (e)
			*e = '\0';
		ln++;
		*line_no = ln;
		char *p = q;
		q = e ? e + 1 : NULL;
		if (ln == 1) {
			if (strcmp(p, "cdrate breakdown part 1") != 0)
				return -EINVAL;
			continue;
		}
		char *sp = strchr(p, ' ');
		if (!sp)
			return -EINVAL;
		const char *kw = p;
		size_t kn = (size_t)(sp - p);
		p = sp;
#define KW(s) (kn == sizeof(s) - 1 && !memcmp(kw, s, kn))
		if (KW("dims")) {
			uint64_t a, b, c;
			if (get_u64(&p, &a) || get_u64(&p, &b) || get_u64(&p, &c) ||
			    a != bd->nband || b != bd->nhp || c != bd->nin)
				return -EINVAL;
		} else if (KW("cell")) {
			uint64_t key;
			i128 v[5];
			if (get_u64(&p, &key) || !key)
				return -EINVAL;
			for (int i = 0; i < 5; i++)
				if (get_i128(&p, &v[i]))
					return -EINVAL;
			cdr__bdcell *c = cdr__bd_cell(bd, key);
			if (!c)
				return -ENOMEM;
			c->records += (int64_t)v[0];
			c->late += (int64_t)v[1];
			c->qty += v[2];
			c->charge += v[3];
			c->allow += v[4];
		} else if (KW("hp") || KW("hour") || KW("day")) {
			uint64_t i;
			i128 rec, chg;
			if (get_u64(&p, &i) || get_i128(&p, &rec) ||
			    get_i128(&p, &chg))
				return -EINVAL;
			int64_t *r;
			i128 *c;
			size_t n;
			if (KW("hp"))
				r = bd->hp_rec, c = bd->hp_chg,
				n = (size_t)bd->nhp * bd->nband;
			else if (KW("hour"))
				r = bd->hour_rec, c = bd->hour_chg,
				n = (size_t)24 * bd->nband;
			else
				r = bd->day_rec, c = bd->day_chg, n = CDR_BD_DAYS;
			if (i >= n)
				return -EINVAL;
			r[i] += (int64_t)rec;
			c[i] += chg;
		} else if (KW("rej")) {
			uint64_t i, n;
			if (get_u64(&p, &i) || get_u64(&p, &n) || i >= bd->nin)
				return -EINVAL;
			bd->rej_in[i] += (int64_t)n;
		} else if (KW("fig")) {
			cdr__figures f;
			memset(&f, 0, sizeof(f));
			char *name = get_hex(&p, &f.acct_n);
			if (!name)
				return -EINVAL;
			f.acct = name;
			int bad = 0;
			for (int c = 0; c < 5; c++) {
				i128 v = 0;
				bad |= get_i128(&p, &v) || v < 0;
				f.qty[c] = (u128)v;
			}
			for (int c = 0; c < 7; c++)
				bad |= get_i128(&p, &f.amt[c]);
			if (bad || figs_add(figs, &f, name)) {
				free(name);
				return bad ? -EINVAL : -ENOMEM;
			}
		} else if (KW("sample")) {
			uint64_t r, rank, line;
			size_t n;
			if (get_u64(&p, &r) || get_u64(&p, &rank) ||
			    get_u64(&p, &line) || r >= CDR_NREASON)
				return -EINVAL;
			char *s = get_hex(&p, &n);
			if (!s)
				return -EINVAL;
			/* the merged bd's samples sort by input rank, then
			 * line: the single run's order (by offset) of the
			 * same lines */
			cdr__bd_sample(bd, (int)r,
				       (rank << 44 | (line & ((1ull << 44) - 1))) + 1,
				       s, n);
			free(s);
		} else {
			return -EINVAL;
		}
#undef KW
	}
	*line_no = 0;
	return 0;
}
