/*
 * mem.c - zeroed allocations backed by transparent huge pages.
 *
 * The per-record lookups land at random in tables of tens of megabytes
 * (subscriber slots, rows, account sums). With 4 KiB pages nearly every
 * one of them also misses the TLB, and a profile of the rating pass put
 * most of its stalls on the prefetches of those tables. 2 MiB pages cover
 * the same tables with 512 times fewer entries. Where the kernel has THP
 * in "madvise" mode the advice turns them on; elsewhere it is harmless.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define HUGE_PAGE ((size_t)2 << 20)

void *cdr__calloc_huge(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	size_t bytes = n * size;
	void *p;
	if (bytes < 2 * HUGE_PAGE) {
		/* Cache-line aligned, so a 64-byte record is one line. */
		if (posix_memalign(&p, 64, bytes ? bytes : 1))
			return NULL;
		memset(p, 0, bytes);
		return p;
	}
	size_t rounded = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	if (posix_memalign(&p, HUGE_PAGE, rounded))
		return NULL;
	madvise(p, rounded, MADV_HUGEPAGE);
	memset(p, 0, bytes);
	return p;
}
