/*
 * normalize.h - number normalisation (SPEC 11, the tariff's optional
 * normalize.csv): `applies_to,prefix,replace` rows that rewrite numbers as
 * written, before anything else looks at them.
 *
 * A loaded table is immutable and shared by every thread. A number is
 * rewritten at most once, by the longest prefix that starts it.
 */
#ifndef CDR_NORMALIZE_H
#define CDR_NORMALIZE_H

#include <stddef.h>
#include <stdio.h>

#define CDR__NORM_MAX 64 /* bytes of a prefix or replacement */

enum { CDR__NORM_SUB = 0, CDR__NORM_DEST = 1 };

typedef struct cdr__norm cdr__norm;

/*
 * Load DIR/normalize.csv. Absent: 0 and *out NULL (nothing is rewritten).
 * A bad row: -EINVAL and "normalize.csv:LINE: column C: ..." in err.
 */
int cdr__norm_load(cdr__norm **out, const char *dir, char *err,
		   size_t errlen);
void cdr__norm_free(cdr__norm *n);

/*
 * Rewrite s[0, len) for column `which` into buf (len + CDR__NORM_MAX
 * bytes) when a prefix matches: returns the rewritten length and sets *s
 * to buf; else returns len and leaves *s alone. n may be NULL.
 */
size_t cdr__norm_apply(const cdr__norm *n, int which, const char **s,
		       size_t len, char *buf);

/* Do two tables rewrite alike (both absent, or the same rows)? */
int cdr__norm_equal(const cdr__norm *a, const cdr__norm *b);

/* The rows, for `cdrate check`. */
void cdr__norm_describe(const cdr__norm *n, FILE *o);

#endif
