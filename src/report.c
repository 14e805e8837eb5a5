/*
 * report.c - the run report: one self-contained HTML page drawn from the
 * breakdown's rows (breakdown.c).
 *
 * Everything is inline: CSS in a <style>, the charts as SVG, no script
 * and nothing fetched, so the page reads the same from a mail attachment
 * as from a web server. Every figure is printed exactly as the breakdown
 * CSV prints it (money with the tariff's decimals, then its currency),
 * and carries machine-readable hooks for tests/e2e/report.sh: a figure of
 * one breakdown row has data-bd (its key columns joined by '|') and
 * data-col (the CSV column); a figure that adds up several rows has
 * data-agg (the table and key column it groups by), data-name and
 * data-col. Chart geometry is drawn from doubles; the numbers printed on
 * it are exact.
 *
 * Sections: text - charts - sections of the page.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breakdown.h"
#include "civil.h"

/* ---- text -------------------------------------------------------------- */

typedef struct hb {
	char *b;
	size_t n, cap;
	int oom;
} hb;

static void hb_raw(hb *h, const char *p, size_t n)
{
	if (h->oom)
		return;
	if (h->n + n + 1 > h->cap) {
		size_t cap = h->cap ? h->cap : 65536;
		while (cap < h->n + n + 1)
			cap *= 2;
		char *b = realloc(h->b, cap);
		if (!b) {
			h->oom = 1;
			return;
		}
		h->b = b;
		h->cap = cap;
	}
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void hb_s(hb *h, const char *p)
{
	hb_raw(h, p, strlen(p));
}

static void hb_f(hb *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hb_f(hb *h, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap, aq;
	va_start(ap, fmt);
	va_copy(aq, ap);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(tmp)) {
		hb_raw(h, tmp, (size_t)n);
	} else if (n >= 0) {
		char *big = malloc((size_t)n + 1);
		if (big && vsnprintf(big, (size_t)n + 1, fmt, aq) == n)
			hb_raw(h, big, (size_t)n);
		else
			h->oom = 1;
		free(big);
	}
	va_end(aq);
}

/* Length of the valid UTF-8 sequence at p (of n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t l = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2
			     : (p[0] & 0xf0) == 0xe0 ? 3
			     : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (!l || l > n || (l == 2 && p[0] < 0xc2))
		return 0;
	for (size_t i = 1; i < l; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return l;
}

/* Text for HTML (element or attribute): markup escaped, controls and
 * bytes that are not UTF-8 as \xHH. */
static void hb_text(hb *h, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t l = utf8_len(p + i, n - i);
		if (c == '&')
			hb_s(h, "&amp;");
		else if (c == '<')
			hb_s(h, "&lt;");
		else if (c == '>')
			hb_s(h, "&gt;");
		else if (c == '"')
			hb_s(h, "&quot;");
		else if (c == '\'')
			hb_s(h, "&#39;");
		else if (!l || c < 0x20 || c == 0x7f)
			hb_f(h, "\\x%02X", c);
		else
			hb_raw(h, s + i, l);
		i += l ? l : 1;
	}
}

static void hb_t(hb *h, const char *s)
{
	hb_text(h, s, strlen(s));
}

/* A count of 10^-decimals units, as the CSV prints it. */
static const char *num(char *b, i128 v, int dec)
{
	b[cdr__fmt_scaled(b, v, dec)] = '\0';
	return b;
}

/* The data-bd hook of a row: its key columns joined by '|'. */
static void hb_key(hb *h, const cdr__bdrow *r)
{
	hb_s(h, " data-bd=\"");
	for (int k = 0; k < CDR_BK_N; k++) {
		if (k)
			hb_s(h, "|");
		hb_t(h, r->k[k]);
	}
	hb_s(h, "\"");
}

static const char *const col_names[CDR_BV_N] = {
	"records",	    "late_records",	"quantity",    "charge",
	"allowance_credit", "recurring_charge", "outage_credit"};

typedef struct rep {
	hb h;
	const cdr__bdrows *rows;
	int dec;
	const char *cur;
	i128 scale; /* micros per unit of the last place */
} rep;

/* A <td> holding value v of row r's column c on side s. */
static void td_val(rep *p, const cdr__bdrow *r, int s, int c)
{
	char b[64];
	int money = c >= CDR_BV_CHARGE;
	hb_s(&p->h, "<td class=n");
	hb_key(&p->h, r);
	hb_f(&p->h, " data-col=\"%s%s\">", s ? "old_" : "", col_names[c]);
	hb_s(&p->h, num(b, r->v[s][c], money ? p->dec : 0));
	hb_s(&p->h, "</td>");
}

/* ---- charts ------------------------------------------------------------ */

typedef struct item {
	const char *name;
	i128 v;		/* units (money) or a count */
	i128 seg[16];	/* stacked parts (bands) */
} item;

static const char *const palette[] = {"#2f6db5", "#e08a1e", "#3a9e5a",
				      "#c4463a", "#7d5bb5", "#8c6d46",
				      "#d266a8", "#6f7f8f"};
#define NPAL (sizeof(palette) / sizeof(*palette))

/* A round step (1, 2 or 5 times a power of ten, at least 1) that puts
 * about `ticks` steps under max. */
static i128 nice_step(i128 max, int ticks)
{
	i128 raw = max / ticks + (max % ticks != 0), p = 1;
	if (raw < 1)
		return 1;
	for (;;) {
		if (raw <= p)
			return p;
		if (raw <= 2 * p)
			return 2 * p;
		if (raw <= 5 * p)
			return 5 * p;
		p *= 10;
	}
}

/* Horizontal bars: one an item, the exact value printed at its end. */
static void hbars(rep *p, const item *it, int n, const char *agg,
		  const char *col, const char *axis, int money)
{
	hb *h = &p->h;
	const int lw = 150, bw = 420, rh = 26, top = 10;
	const int H = top + rh * n + 50, W = lw + bw + 150;
	i128 max = 0;
	for (int i = 0; i < n; i++)
		if (it[i].v > max)
			max = it[i].v;
	i128 step = nice_step(max, 4), top_v = step * ((max + step - 1) / step);
	if (top_v < 1)
		top_v = 1;
	char b[64];
	hb_f(h, "<svg class=chart width=%d height=%d viewBox=\"0 0 %d %d\" "
		"role=img>", W, H, W, H);
	for (i128 v = 0; v <= top_v; v += step) {
		double x = lw + (double)v / (double)top_v * bw;
		hb_f(h, "<line x1=%.1f y1=%d x2=%.1f y2=%d class=grid />", x,
		     top, x, top + rh * n);
		hb_f(h, "<text x=%.1f y=%d class=tick text-anchor=middle>%s</text>",
		     x, top + rh * n + 16, num(b, v, money ? p->dec : 0));
	}
	for (int i = 0; i < n; i++) {
		double w = (double)it[i].v / (double)top_v * bw;
		int y = top + rh * i;
		hb_s(h, "<text x=");
		hb_f(h, "%d y=%d class=lab text-anchor=end>", lw - 8, y + 17);
		hb_t(h, it[i].name);
		hb_s(h, "</text>");
		hb_f(h, "<rect x=%d y=%d width=%.1f height=%d fill=\"%s\"><title>",
		     lw, y + 4, w < 0 ? 0 : w, rh - 8, palette[0]);
		hb_t(h, it[i].name);
		hb_s(h, "</title></rect>");
		hb_f(h, "<text x=%.1f y=%d class=val data-agg=\"%s\" data-name=\"",
		     lw + (w < 0 ? 0 : w) + 6, y + 17, agg);
		hb_t(h, it[i].name);
		hb_f(h, "\" data-col=\"%s\">%s%s%s</text>", col,
		     num(b, it[i].v, money ? p->dec : 0), money ? " " : "",
		     money ? p->cur : "");
	}
	hb_f(h, "<text x=%d y=%d class=axis text-anchor=middle>", lw + bw / 2,
	     H - 8);
	hb_t(h, axis);
	hb_s(h, "</text></svg>\n");
}

/* Vertical bars, stacked by segment when nseg > 0; labels[i] under each. */
static void vbars(rep *p, const item *it, int n, int nseg,
		  const char *const *segname, const char *xaxis,
		  const char *yaxis, int money, int label_every)
{
	hb *h = &p->h;
	const int l = 70, t = 12, pw = 680, ph = 220;
	const int W = l + pw + 20, H = t + ph + 60 + (nseg ? 24 : 0);
	i128 max = 0;
	for (int i = 0; i < n; i++)
		if (it[i].v > max)
			max = it[i].v;
	i128 step = nice_step(max, 5), top_v = step * ((max + step - 1) / step);
	if (top_v < 1)
		top_v = 1;
	char b[64];
	hb_f(h, "<svg class=chart width=%d height=%d viewBox=\"0 0 %d %d\" "
		"role=img>", W, H, W, H);
	for (i128 v = 0; v <= top_v; v += step) {
		double y = t + ph - (double)v / (double)top_v * ph;
		hb_f(h, "<line x1=%d y1=%.1f x2=%d y2=%.1f class=grid />", l, y,
		     l + pw, y);
		hb_f(h, "<text x=%d y=%.1f class=tick text-anchor=end>%s</text>",
		     l - 6, y + 4, num(b, v, money ? p->dec : 0));
	}
	double cw = (double)pw / n;
	for (int i = 0; i < n; i++) {
		double x = l + cw * i + cw * 0.15, w = cw * 0.7, base = t + ph;
		int ns = nseg ? nseg : 1;
		for (int s = 0; s < ns; s++) {
			i128 v = nseg ? it[i].seg[s] : it[i].v;
			if (v <= 0)
				continue;
			double hh = (double)v / (double)top_v * ph;
			hb_f(h, "<rect x=%.1f y=%.1f width=%.1f height=%.1f "
				"fill=\"%s\"><title>", x, base - hh, w, hh,
			     palette[(size_t)s % NPAL]);
			hb_t(h, it[i].name);
			if (nseg) {
				hb_s(h, " ");
				hb_t(h, segname[s]);
			}
			hb_f(h, ": %s%s%s</title></rect>",
			     num(b, v, money ? p->dec : 0), money ? " " : "",
			     money ? p->cur : "");
			base -= hh;
		}
		if (i % label_every == 0) {
			hb_f(h, "<text x=%.1f y=%d class=tick text-anchor=middle>",
			     l + cw * i + cw / 2, t + ph + 16);
			hb_t(h, it[i].name);
			hb_s(h, "</text>");
		}
	}
	hb_f(h, "<line x1=%d y1=%d x2=%d y2=%d class=base />", l, t + ph,
	     l + pw, t + ph);
	hb_f(h, "<text x=%d y=%d class=axis text-anchor=middle>", l + pw / 2,
	     t + ph + 38);
	hb_t(h, xaxis);
	hb_f(h, "</text><text class=axis text-anchor=middle "
		"transform=\"translate(16 %d) rotate(-90)\">", t + ph / 2);
	hb_t(h, yaxis);
	hb_s(h, "</text>");
	for (int s = 0; s < nseg; s++) {
		int x = l + 110 * s, y = t + ph + 52;
		hb_f(h, "<rect x=%d y=%d width=12 height=12 fill=\"%s\" />"
			"<text x=%d y=%d class=lab>", x, y, palette[(size_t)s % NPAL],
		     x + 16, y + 11);
		hb_t(h, segname[s]);
		if (!strcmp(segname[s], "*"))
			hb_s(h, " (free zone)");
		hb_s(h, "</text>");
	}
	hb_s(h, "</svg>\n");
}

/* ---- sections of the page ---------------------------------------------- */

static const char css[] =
	"body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;margin:24px;"
	"color:#1d2530;background:#fff;max-width:1100px}"
	"h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;"
	"border-bottom:2px solid #dde3ea;padding-bottom:4px}"
	"table{border-collapse:collapse;font-size:13px;margin:6px 0}"
	"td,th{padding:3px 9px;border-bottom:1px solid #e6eaef;text-align:left;"
	"vertical-align:top}th{background:#f2f5f8}td.n,th.n{text-align:right;"
	"font-variant-numeric:tabular-nums;white-space:nowrap}"
	".cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}"
	".card{border:1px solid #dde3ea;border-radius:6px;padding:10px 16px;"
	"min-width:150px}.card b{display:block;font-size:22px}"
	".card span{font-size:12px;color:#56606b}"
	"code{font-size:12px;background:#f4f6f8;padding:1px 4px;"
	"word-break:break-all}"
	"svg.chart{display:block;margin:6px 0 10px}"
	"svg text{font-family:'DejaVu Sans',Verdana,Arial,sans-serif}"
	".grid{stroke:#e3e7ec;stroke-width:1}.base{stroke:#7a8592}"
	".tick{font-size:11px;fill:#56606b}.lab{font-size:12px;fill:#1d2530}"
	".val{font-size:12px;fill:#1d2530;font-weight:bold}"
	".axis{font-size:12px;fill:#1d2530}"
	".up{color:#b03a2e}.down{color:#2e7d4f}.note{font-size:12px;"
	"color:#56606b}.two{display:flex;gap:28px;flex-wrap:wrap}"
	"@media print{body{margin:8mm}h2{break-after:avoid}"
	"svg,table{break-inside:avoid}}";

static int is(const cdr__bdrow *r, const char *table)
{
	return !strcmp(r->k[CDR_BK_TABLE], table);
}

/* Sum of column c (side 0) over rows of `table`, grouped by key column kc:
 * the groups in first-seen order (rows are sorted, so by name). */
static int group(const cdr__bdrows *rows, const char *table, int kc, int c,
		 item *it, int max)
{
	int n = 0;
	for (size_t i = 0; i < rows->n; i++) {
		const cdr__bdrow *r = &rows->row[i];
		if (!is(r, table))
			continue;
		int j = 0;
		while (j < n && strcmp(it[j].name, r->k[kc]) != 0)
			j++;
		if (j == n) {
			if (n == max)
				continue;
			memset(&it[n], 0, sizeof(it[n]));
			it[n++].name = r->k[kc];
		}
		it[j].v += r->v[0][c];
	}
	return n;
}

static int cmp_item_desc(const void *a, const void *b)
{
	const item *x = a, *y = b;
	if (x->v != y->v)
		return x->v < y->v ? 1 : -1;
	return strcmp(x->name, y->name);
}

static void money(rep *p, i128 micros_or_units, int is_micros, char *b)
{
	i128 v = is_micros ? micros_or_units / p->scale : micros_or_units;
	size_t n = cdr__fmt_scaled(b, v, p->dec);
	snprintf(b + n, 40, " %s", p->cur);
}

static void sec_summary(rep *p, const char *const *kv, int nkv)
{
	hb *h = &p->h;
	const cdr__bdrows *rows = p->rows;
	i128 total = rows->total[0], rated = 0, rej = 0;
	for (size_t i = 0; i < rows->n; i++) {
		if (is(&rows->row[i], "cell"))
			rated += rows->row[i].v[0][CDR_BV_RECORDS];
		if (is(&rows->row[i], "reject_reason"))
			rej += rows->row[i].v[0][CDR_BV_RECORDS];
	}
	char b[96];
	hb_s(h, "<div class=cards>");
	money(p, total, 1, b);
	hb_f(h, "<div class=card><b data-fig=total>%s</b><span>total billed "
		"(totals file)</span></div>", b);
	hb_f(h, "<div class=card><b data-fig=accounts>%zu</b><span>accounts "
		"billed</span></div>", rows->naccts[0]);
	hb_f(h, "<div class=card><b data-agg=\"cell\" data-name=\"\" "
		"data-col=records>%s</b><span>records rated</span></div>",
	     num(b, rated, 0));
	hb_f(h, "<div class=card><b data-agg=\"reject_reason\" data-name=\"\" "
		"data-col=records>%s</b><span>records rejected</span></div>",
	     num(b, rej, 0));
	hb_s(h, "</div>\n<table>");
	for (int i = 0; i < nkv; i++) {
		hb_s(h, "<tr><th>");
		hb_t(h, kv[2 * (size_t)i]);
		hb_s(h, "</th><td>");
		hb_t(h, kv[2 * (size_t)i + 1]);
		hb_s(h, "</td></tr>");
	}
	hb_s(h, "</table>\n");
}

static void sec_zone_band(rep *p)
{
	enum { MAXI = 256 };
	item *it = calloc(MAXI, sizeof(*it));
	if (!it) {
		p->h.oom = 1;
		return;
	}
	char axis[64];
	snprintf(axis, sizeof(axis), "charge (%s)", p->cur);
	hb_s(&p->h, "<h2>Charge by zone</h2>\n");
	int n = group(p->rows, "cell", CDR_BK_ZONE, CDR_BV_CHARGE, it, MAXI);
	qsort(it, (size_t)n, sizeof(*it), cmp_item_desc);
	hbars(p, it, n < 30 ? n : 30, "cell:zone", "charge", axis, 1);
	if (n > 30)
		hb_f(&p->h, "<p class=note>%d more zones in the breakdown.</p>",
		     n - 30);
	hb_s(&p->h, "<h2>Charge by band</h2>\n");
	n = group(p->rows, "cell", CDR_BK_BAND, CDR_BV_CHARGE, it, MAXI);
	qsort(it, (size_t)n, sizeof(*it), cmp_item_desc);
	hbars(p, it, n < 30 ? n : 30, "cell:band", "charge", axis, 1);
	hb_s(&p->h, "<h2>Charge by service</h2>\n");
	n = group(p->rows, "cell", CDR_BK_SERVICE, CDR_BV_CHARGE, it, MAXI);
	qsort(it, (size_t)n, sizeof(*it), cmp_item_desc);
	hbars(p, it, n, "cell:service", "charge", axis, 1);
	free(it);
}

static void sec_hours_days(rep *p)
{
	const cdr__bdrows *rows = p->rows;
	item hr[24], dy[33];
	const char *seg[16];
	int nseg = 0;
	static const char *const hname[24] = {
		"00", "01", "02", "03", "04", "05", "06", "07",
		"08", "09", "10", "11", "12", "13", "14", "15",
		"16", "17", "18", "19", "20", "21", "22", "23"};
	memset(hr, 0, sizeof(hr));
	for (int i = 0; i < 24; i++)
		hr[i].name = hname[i];
	for (size_t i = 0; i < rows->n; i++) {
		const cdr__bdrow *r = &rows->row[i];
		if (!is(r, "hour"))
			continue;
		int s = 0;
		while (s < nseg && strcmp(seg[s], r->k[CDR_BK_BAND]) != 0)
			s++;
		if (s == nseg && nseg < 16)
			seg[nseg++] = r->k[CDR_BK_BAND];
		if (s == 16)
			s = 15;
		long hh = strtol(r->k[CDR_BK_KEY], NULL, 10);
		if (hh < 0 || hh > 23)
			continue;
		hr[hh].seg[s] += r->v[0][CDR_BV_RECORDS];
		hr[hh].v += r->v[0][CDR_BV_RECORDS];
	}
	hb_s(&p->h, "<h2>Traffic by local hour of day</h2>\n");
	vbars(p, hr, 24, nseg, seg, "local hour of day (start of the record)",
	      "records", 0, 1);
	/* Days: late records (before the period) first, then every day of
	 * the period, those without a record shown empty. */
	int nd = 0;
	static const char *const tail[2] = {"late", "after"};
	char dnames[31][4];
	memset(dy, 0, sizeof(dy));
	int ndays = (int)cdr__days_in_month(rows->year, (unsigned)rows->month);
	/* The day rows, together: the rows sort by table first. */
	size_t d0 = 0, d1;
	while (d0 < rows->n && !is(&rows->row[d0], "day"))
		d0++;
	for (d1 = d0; d1 < rows->n && is(&rows->row[d1], "day"); d1++)
		;
	for (int pass = 0; pass < 3; pass++) {
		int to = pass == 1 ? ndays : 1;
		for (int d = 0; d < to; d++) {
			char key[16];
			if (pass == 1)
				snprintf(key, sizeof(key), "%04d-%02d-%02d",
					 rows->year, rows->month, d + 1);
			else
				snprintf(key, sizeof(key), "%s",
					 pass ? "later" : "earlier");
			const cdr__bdrow *r = NULL;
			for (size_t i = d0; i < d1 && !r; i++)
				if (!strcmp(rows->row[i].k[CDR_BK_KEY], key))
					r = &rows->row[i];
			if (!r && pass != 1)
				continue;
			if (pass == 1) {
				snprintf(dnames[d], sizeof(dnames[d]), "%d", d + 1);
				dy[nd].name = dnames[d];
			} else {
				dy[nd].name = tail[pass / 2];
			}
			dy[nd].v = r ? r->v[0][CDR_BV_RECORDS] : 0;
			dy[nd].seg[0] = r ? r->v[0][CDR_BV_CHARGE] : 0;
			nd++;
		}
	}
	if (!nd)
		return;
	hb_s(&p->h, "<h2>Records and charge by day</h2>\n");
	vbars(p, dy, nd, 0, NULL, "local day of the month (late: records of "
				  "an earlier period)", "records", 0, 1);
	for (int i = 0; i < nd; i++)
		dy[i].v = dy[i].seg[0];
	char axis[64];
	snprintf(axis, sizeof(axis), "charge (%s)", p->cur);
	vbars(p, dy, nd, 0, NULL, "local day of the month (late: records of "
				  "an earlier period)", axis, 1, 1);
	/* The same figures as a table, two columns of days. */
	hb_s(&p->h, "<table><tr><th>day</th><th class=n>records</th>"
		    "<th class=n>charge</th></tr>");
	for (size_t i = 0; i < rows->n; i++) {
		const cdr__bdrow *r = &rows->row[i];
		if (!is(r, "day"))
			continue;
		hb_s(&p->h, "<tr><td>");
		hb_t(&p->h, r->k[CDR_BK_KEY]);
		hb_s(&p->h, "</td>");
		td_val(p, r, 0, CDR_BV_RECORDS);
		td_val(p, r, 0, CDR_BV_CHARGE);
		hb_s(&p->h, "</tr>");
	}
	hb_s(&p->h, "</table>\n");
}

static void sec_rejects(rep *p)
{
	hb *h = &p->h;
	const cdr__bdrows *rows = p->rows;
	hb_s(h, "<h2>Rejects by reason</h2>\n<table><tr><th>reason</th>"
		"<th class=n>records</th><th>sample lines (first by input "
		"path and offset)</th></tr>");
	int any = 0;
	for (size_t i = 0; i < rows->n; i++) {
		const cdr__bdrow *r = &rows->row[i];
		if (!is(r, "reject_reason") || !r->v[0][CDR_BV_RECORDS])
			continue;
		any = 1;
		hb_s(h, "<tr><td>");
		hb_t(h, r->k[CDR_BK_KEY]);
		hb_s(h, "</td>");
		td_val(p, r, 0, CDR_BV_RECORDS);
		hb_s(h, "<td>");
		int reason = -1;
		for (int c = 0; c < CDR_NREASON; c++)
			if (cdr_reason_name(c) &&
			    !strcmp(cdr_reason_name(c), r->k[CDR_BK_KEY]))
				reason = c;
		for (int k = 0; reason >= 0 && rows->bd && k < CDR_BD_SAMPLES;
		     k++) {
			const cdr__bdsample *s = &rows->bd->sample[reason][k];
			if (!s->order)
				continue;
			hb_s(h, "<code>");
			hb_text(h, s->line, s->n);
			hb_s(h, "</code><br>");
		}
		hb_s(h, "</td></tr>");
	}
	if (!any)
		hb_s(h, "<tr><td colspan=3>no rejects</td></tr>");
	hb_s(h, "</table>\n<table><tr><th>input</th><th class=n>rejects</th>"
		"</tr>");
	for (size_t i = 0; i < rows->n; i++) {
		const cdr__bdrow *r = &rows->row[i];
		if (!is(r, "reject_file"))
			continue;
		hb_s(h, "<tr><td>");
		hb_t(h, r->k[CDR_BK_KEY]);
		hb_s(h, "</td>");
		td_val(p, r, 0, CDR_BV_RECORDS);
		hb_s(h, "</tr>");
	}
	hb_s(h, "</table>\n");
}

static int cmp_fig_total(const void *a, const void *b)
{
	const cdr__figures *x = *(const cdr__figures *const *)a,
			   *y = *(const cdr__figures *const *)b;
	if (x->amt[6] != y->amt[6])
		return x->amt[6] < y->amt[6] ? 1 : -1;
	return strcmp(x->acct, y->acct);
}

static void sec_top(rep *p)
{
	hb *h = &p->h;
	const cdr__bdrows *rows = p->rows;
	/* The 20 largest by one pass (insertion into a short list): a sort
	 * of every account would cost more than the rest of the page. */
	enum { TOP = 20 };
	const cdr__figures *f[TOP];
	size_t n = 0;
	for (size_t i = 0; i < rows->nfig[0]; i++) {
		const cdr__figures *x = &rows->fig[0][i];
		/* most accounts are below the 20th: one comparison */
		if (n == TOP && (x->amt[6] < f[TOP - 1]->amt[6] ||
				 cmp_fig_total(&x, &f[TOP - 1]) >= 0))
			continue;
		size_t at = n < TOP ? n++ : TOP - 1;
		while (at > 0 && cmp_fig_total(&x, &f[at - 1]) < 0) {
			f[at] = f[at - 1];
			at--;
		}
		f[at] = x;
	}
	static const char *const cols[7] = {
		"voice", "sms", "data", "allowance", "recurring", "outage",
		"total"};
	hb_f(h, "<h2>Top %d accounts by total</h2>\n<table><tr><th>#</th>"
		"<th>account</th><th class=n>records</th>",
	     n < 20 ? (int)n : 20);
	for (int c = 0; c < 7; c++)
		hb_f(h, "<th class=n>%s</th>", cols[c]);
	hb_s(h, "</tr>");
	char b[96];
	for (size_t i = 0; i < n && i < 20; i++) {
		hb_f(h, "<tr><td>%zu</td><td>", i + 1);
		hb_text(h, f[i]->acct, f[i]->acct_n);
		hb_f(h, "</td><td class=n>%llu</td>",
		     (unsigned long long)f[i]->qty[0]);
		for (int c = 0; c < 7; c++) {
			money(p, f[i]->amt[c], 1, b);
			hb_f(h, "<td class=n>%s</td>", b);
		}
		hb_s(h, "</tr>");
	}
	hb_s(h, "</table>\n");
}

/* The breakdown table itself: every cell row, then the lines that make
 * it reconcile with the totals file. */
static void sec_cells(rep *p)
{
	hb *h = &p->h;
	const cdr__bdrows *rows = p->rows;
	int two = rows->sides > 1;
	hb_f(h, "<h2>Breakdown by service, plan, zone and band</h2>\n<p "
		"class=note>Money in %s with %d decimals; each cell is rounded "
		"once from its exact sum. The <i>rounding</i> lines carry what "
		"the totals file's per-account rounding adds, so every charge "
		"column adds up to the totals file's.%s</p>\n<table><tr><th>"
		"table</th><th>service</th><th>plan</th><th>zone</th><th>band"
		"</th><th class=n>records</th><th class=n>late</th><th "
		"class=n>quantity</th><th class=n>charge</th><th class=n>"
		"allowance credit</th><th class=n>recurring</th><th class=n>"
		"outage credit</th>%s</tr>",
	     p->cur, p->dec, two ? " Old figures are the old tariff's." : "",
	     two ? "<th class=n>old charge</th><th class=n>old allowance"
		   "</th>" : "");
	for (size_t i = 0; i < rows->n; i++) {
		const cdr__bdrow *r = &rows->row[i];
		if (!is(r, "cell") && !is(r, "rounding") && !is(r, "monthly"))
			continue;
		hb_s(h, "<tr>");
		for (int k = 0; k < CDR_BK_KEY; k++) {
			hb_s(h, "<td>");
			hb_t(h, r->k[k]);
			hb_s(h, "</td>");
		}
		for (int c = 0; c < CDR_BV_N; c++)
			td_val(p, r, 0, c);
		if (two) {
			td_val(p, r, 1, CDR_BV_CHARGE);
			td_val(p, r, 1, CDR_BV_ALLOW);
		}
		hb_s(h, "</tr>");
	}
	hb_s(h, "</table>\n");
}

typedef struct mover {
	const char *acct;
	i128 delta; /* micros */
	int change; /* 1 changed, 2 added, 3 removed */
} mover;

static int cmp_mover(const void *a, const void *b)
{
	const mover *x = a, *y = b;
	if (x->delta != y->delta)
		return x->delta < y->delta ? 1 : -1;
	return strcmp(x->acct, y->acct);
}

static void movers_table(rep *p, const mover *m, size_t n, int up)
{
	hb *h = &p->h;
	char b[96];
	hb_f(h, "<table><tr><th colspan=3>top movers %s</th></tr>",
	     up ? "up" : "down");
	int shown = 0;
	for (size_t k = 0; k < n && shown < 10; k++) {
		const mover *x = up ? &m[k] : &m[n - 1 - k];
		if (up ? x->delta <= 0 : x->delta >= 0)
			break;
		money(p, x->delta, 1, b);
		hb_s(h, "<tr><td>");
		hb_t(h, x->acct);
		hb_f(h, "</td><td class=\"n %s\">%s%s</td><td>%s</td></tr>",
		     up ? "up" : "down", x->delta > 0 ? "+" : "", b,
		     x->change == 2 ? "added" : x->change == 3 ? "removed"
							 : "changed");
		shown++;
	}
	if (!shown)
		hb_s(h, "<tr><td colspan=3>none</td></tr>");
	hb_s(h, "</table>");
}

static void sec_rerate(rep *p)
{
	hb *h = &p->h;
	const cdr__bdrows *rows = p->rows;
	const cdr__figures *nw = rows->fig[0], *od = rows->fig[1];
	size_t nn = rows->nfig[0], no = rows->nfig[1], i = 0, j = 0, n = 0;
	mover *m = malloc((nn + no + 1) * sizeof(*m));
	if (!m) {
		h->oom = 1;
		return;
	}
	size_t unchanged = 0;
	while (i < nn || j < no) {
		int c = i == nn ? 1 : j == no ? -1 : strcmp(nw[i].acct, od[j].acct);
		mover x;
		if (c < 0) {
			x = (mover){nw[i].acct, nw[i].amt[6], 2};
			i++;
		} else if (c > 0) {
			x = (mover){od[j].acct, -od[j].amt[6], 3};
			j++;
		} else {
			x = (mover){nw[i].acct, nw[i].amt[6] - od[j].amt[6], 1};
			int same = !x.delta;
			for (int k = 0; same && k < 7; k++)
				same = nw[i].amt[k] == od[j].amt[k];
			i++;
			j++;
			if (same) {
				unchanged++;
				continue;
			}
		}
		m[n++] = x;
	}
	qsort(m, n, sizeof(*m), cmp_mover);
	size_t up = 0, down = 0, flat = 0;
	i128 sum = 0;
	for (size_t k = 0; k < n; k++) {
		up += m[k].delta > 0;
		down += m[k].delta < 0;
		flat += m[k].delta == 0;
		sum += m[k].delta;
	}
	char b[96];
	money(p, sum, 1, b);
	hb_s(h, "<h2>Re-rating: who moved</h2>\n<div class=cards>");
	hb_f(h, "<div class=card><b class=up data-fig=up>%zu</b><span>accounts "
		"up</span></div>", up);
	hb_f(h, "<div class=card><b class=down data-fig=down>%zu</b><span>"
		"accounts down</span></div>", down);
	hb_f(h, "<div class=card><b data-fig=flat>%zu</b><span>same total, a "
		"column moved</span></div>", flat);
	hb_f(h, "<div class=card><b data-fig=unchanged>%zu</b><span>"
		"unchanged</span></div>", unchanged);
	hb_f(h, "<div class=card><b data-fig=delta>%s%s</b><span>total delta "
		"(new - old)</span></div></div>\n", sum > 0 ? "+" : "", b);
	if (n) {
		/* Histogram: ten bins of a round width over [min, max]. */
		i128 lo = m[n - 1].delta / p->scale, hi = m[0].delta / p->scale;
		i128 w = nice_step(hi - lo + 1, 10);
		i128 b0 = lo >= 0 ? lo / w * w : -((-lo + w - 1) / w) * w;
		int nb = (int)((hi - b0) / w) + 1;
		if (nb > 40)
			nb = 40;
		item *it = calloc((size_t)nb, sizeof(*it));
		char (*names)[64] = calloc((size_t)nb, sizeof(*names));
		if (it && names) {
			for (size_t k = 0; k < n; k++) {
				i128 v = m[k].delta / p->scale;
				int bi = (int)((v - b0) / w);
				it[bi < nb ? bi : nb - 1].v++;
			}
			for (int k = 0; k < nb; k++) {
				num(names[k], b0 + w * k, p->dec);
				it[k].name = names[k];
			}
			char axis[96];
			snprintf(axis, sizeof(axis),
				 "delta of the account's total (%s), bins from "
				 "the value shown", p->cur);
			hb_s(h, "<h2>Histogram of deltas</h2>\n");
			vbars(p, it, nb, 0, NULL, axis, "accounts", 0,
			      nb > 14 ? 2 : 1);
		} else {
			h->oom = 1;
		}
		free(it);
		free(names);
	}
	hb_s(h, "<h2>Top movers</h2>\n<div class=two>");
	movers_table(p, m, n, 1);
	movers_table(p, m, n, 0);
	hb_s(h, "</div>\n");
	free(m);
}

int cdr__report_html(const cdr__bdrows *rows, const char *const *summary,
		     int nsummary, char **buf, size_t *len)
{
	rep p = {.rows = rows, .dec = rows->decimals, .cur = rows->currency,
		 .scale = 1};
	for (int i = rows->decimals; i < 6; i++)
		p.scale *= 10;
	hb *h = &p.h;
	const char *period = "";
	for (int i = 0; i < nsummary; i++)
		if (!strcmp(summary[2 * (size_t)i], "period"))
			period = summary[2 * (size_t)i + 1];
	hb_s(h, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
		"<meta name=viewport content=\"width=device-width\">"
		"<title>cdrate run report ");
	hb_t(h, period);
	hb_f(h, "</title><style>%s</style></head><body>\n<h1>cdrate run "
		"report: ", css);
	hb_t(h, period);
	hb_s(h, "</h1>\n");
	sec_summary(&p, summary, nsummary);
	if (rows->sides > 1)
		sec_rerate(&p);
	sec_zone_band(&p);
	sec_hours_days(&p);
	sec_rejects(&p);
	sec_top(&p);
	sec_cells(&p);
	hb_s(h, "<p class=note>Generated by cdrate; the same figures are in "
		"the --breakdown CSV.</p>\n</body></html>\n");
	if (h->oom) {
		free(h->b);
		return -ENOMEM;
	}
	*buf = h->b;
	*len = h->n;
	return 0;
}
