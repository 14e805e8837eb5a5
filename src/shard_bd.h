/*
 * shard_bd.h - a sharded run's breakdown parts (shard_bd.c), between
 * shard.c's rate and merge and breakdown.c. Private to the library.
 */
#ifndef CDR_SHARD_BD_H
#define CDR_SHARD_BD_H

#include <stddef.h>
#include <stdint.h>

#include "breakdown.h"
#include "internal.h"

/* The line number (1-based) of the byte at `offset` of the input of rank
 * `rank` in the task's run; 0, or nonzero to leave the sample out. */
typedef int (*cdr__shard_line_fn)(void *ctx, uint64_t rank, uint64_t offset,
				  uint64_t *line);

/* Merged accumulator a's breakdown (period per) as rate bucket `bucket`
 * of `shards`'s part text: its sums, exact, and the figures of its own
 * accounts. line_of (NULL: keep the offsets) numbers the sample lines.
 * Caller frees *buf. 0 or -errno. */
int cdr__shard_bd_part(const cdr__acc *a, const cdr__period *per, int bucket,
		       int shards, cdr__shard_line_fn line_of, void *ctx,
		       char **buf, size_t *len);

/* Account figures gathered from the parts (names owned). */
typedef struct cdr__shard_figs {
	cdr__figures *fig;
	char **names; /* [n]: fig[i].acct, owned */
	size_t n, cap;
} cdr__shard_figs;
void cdr__shard_figs_free(cdr__shard_figs *g);

/* Add part text buf (NUL-ended; changed in place) to bd and its figures
 * to figs. 0, -ENOMEM, or -EINVAL with *line_no the bad line. */
int cdr__shard_bd_load(cdr__bd *bd, char *buf, cdr__shard_figs *figs,
		       int *line_no);

#endif
