/*
 * report.c - the run report: one self-contained HTML page.
 */
#include <errno.h>
#include <stdlib.h>

#include "breakdown.h"

int cdr__report_html(const cdr__bdrows *rows, const char *const *summary,
		     int nsummary, char **buf, size_t *len)
{
	(void)rows; (void)summary; (void)nsummary; (void)buf; (void)len;
	return -ENOMEM;
}
