/*
 * format_asterisk.c - Asterisk's CSV records: cdr_csv (Master.csv, 16 to 21
 * fields) and cdr_custom with its sample mapping (19 fields).
 *
 * Both are read through the quoted splitter and then mapped onto the native
 * fields (SPEC 11): src is the subscriber, dst the destination, the answer
 * stamp the start and billsec the duration of a voice record. The order of
 * checks is the contract's: field count, then answered (an unanswered call
 * is a normal outcome, rejected `unanswered` with no other check), then the
 * native checks left to right. The duplicate key is the whole line, since
 * Asterisk gives every leg of a forked or queued call the same uniqueid.
 *
 * Sections: layouts - the record.
 */
#include <string.h>

#include "format.h"

/* ---- layouts --------------------------------------------------------- */

/* 1-based field numbers of one layout. */
typedef struct layout {
	int min, max;
	int src, dst, answer, billsec, disposition, uniqueid, sequence;
} layout;

static const layout csv = {16, 21, 2, 3, 11, 14, 15, 17, 21};
static const layout custom = {19, 19, 2, 3, 10, 13, 14, 17, 19};

/* ---- the record ------------------------------------------------------ */

int cdr__parse_asterisk(const char *p, size_t n, cdr__rec *r, char *scratch,
			int is_custom, const cdr__norm *norm)
{
	const layout *L = is_custom ? &custom : &csv;
	cdr__field f[22];
	int nf = cdr__split(p, n, ',', f, L->max, scratch);
	if (nf < L->min)
		return CDR_R_COLUMNS; /* also -1 (open quote), -2 (too many) */
#define FLD(k) (&f[(k) - 1])
	const cdr__field *ans = FLD(L->answer), *disp = FLD(L->disposition);
	if (!ans->n || disp->n != 8 || memcmp(disp->s, "ANSWERED", 8) != 0)
		return CDR_R_UNANSWERED;
	cdr__field nat[7] = {
		{NULL, 0, 0}, *FLD(L->src), {"voice", 5, 0}, *ans,
		*FLD(L->dst), *FLD(L->billsec), {"0", 1, 0},
	};
	int rc = cdr__rec_fill(r, nat, NULL, norm, CDR__NORM_BUF(scratch, n));
	if (rc != CDR_OK)
		return rc;
	r->key = p;
	r->key_len = (uint32_t)n;
	/* The itemize id: uniqueid alone (18 fields), uniqueid-sequence
	 * (21, and cdr_custom), else the line's place (r->id NULL). */
	r->id = NULL;
	if (is_custom || nf == 21) {
		const cdr__field *u = FLD(L->uniqueid), *q = FLD(L->sequence);
		/* Both are fields of the line: together shorter than it, so
		 * the second half of the scratch holds them. */
		char *o = scratch + n;
		memcpy(o, u->s, u->n);
		o[u->n] = '-';
		memcpy(o + u->n + 1, q->s, q->n);
		r->id = o;
		r->id_len = u->n + 1 + q->n;
	} else if (nf == 18) {
		r->id = FLD(L->uniqueid)->s;
		r->id_len = FLD(L->uniqueid)->n;
	}
#undef FLD
	return CDR_OK;
}
