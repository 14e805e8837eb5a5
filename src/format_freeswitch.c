/*
 * format_freeswitch.c - FreeSWITCH mod_cdr_csv records: the `example`
 * template (15 quoted fields) and the default one (13, written with
 * `, "${accountcode}"`, a space before the quote, which the splitter skips).
 *
 * caller_id_number is the subscriber, destination_number the destination,
 * answer_stamp the start and billsec the duration of a voice record; an
 * empty answer_stamp means the call was never answered (SPEC 11). The
 * duplicate key is the whole line, the itemize id the uuid (field 11).
 */
#include <string.h>

#include "format.h"

int cdr__parse_freeswitch(const char *p, size_t n, cdr__rec *r, char *scratch,
			  const cdr__norm *norm)
{
	cdr__field f[16];
	int nf = cdr__split(p, n, ',', f, 15, scratch);
	if (nf != 13 && nf != 15)
		return CDR_R_COLUMNS;
	if (!f[5].n) /* field 6, answer_stamp */
		return CDR_R_UNANSWERED;
	cdr__field nat[7] = {
		{NULL, 0, 0}, f[1], {"voice", 5, 0}, f[5], f[2], f[8],
		{"0", 1, 0},
	};
	int rc = cdr__rec_fill(r, nat, NULL, norm, CDR__NORM_BUF(scratch, n));
	if (rc != CDR_OK)
		return rc;
	r->key = p;
	r->key_len = (uint32_t)n;
	r->id = f[10].s;
	r->id_len = f[10].n;
	return CDR_OK;
}
