/*
 * mem.c - zeroed allocations backed by transparent huge pages.
 *
 * The per-record lookups land at random in tables of tens of megabytes
 * (subscriber slots, rows, account sums). With 4 KiB pages nearly every
 * one of them also misses the TLB, and a profile of the rating pass put
 * most of its stalls on the prefetches of those tables. 2 MiB pages cover
 * the same tables with 512 times fewer entries. Where the kernel has THP
 * in "madvise" mode the advice turns them on; elsewhere it is harmless.
 *
 * Large tables come straight from mmap: fresh pages are already zero, so
 * nothing is written until a slot is used. (A memset after malloc made the
 * kernel zero every page on its fault and then wrote it all again, for
 * tables of which a load or a run touches only some pages early.) Every
 * block carries a small header in front, so cdr__free_huge knows how it
 * was made.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define HUGE_PAGE ((size_t)2 << 20)
#define HDR ((size_t)64) /* keeps the block cache-line aligned */

typedef struct hdr {
	void *base; /* NULL: from posix_memalign, at the header itself */
	size_t len; /* the mapping, for munmap */
} hdr;

void *cdr__calloc_huge(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	size_t bytes = n * size;
	if (bytes < 2 * HUGE_PAGE) {
		/* Cache-line aligned, so a 64-byte record is one line. */
		void *q;
		if (posix_memalign(&q, 64, HDR + bytes))
			return NULL;
		memset(q, 0, HDR + bytes);
		return (char *)q + HDR;
	}
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t rounded = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
	if (rounded > SIZE_MAX - 2 * HUGE_PAGE)
		return NULL;
	/* Room to put the block on a 2 MiB boundary with the header in the
	 * page before it; the slack either side is given back. */
	size_t len = rounded + 2 * HUGE_PAGE;
	char *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	/* base + page, rounded up to the next 2 MiB boundary */
	uintptr_t b = (uintptr_t)(base + page);
	char *p = base + page + ((HUGE_PAGE - b % HUGE_PAGE) % HUGE_PAGE);
	char *keep = p - page, *end = p + rounded;
	if (keep > base)
		munmap(base, (size_t)(keep - base));
	if (base + len > end)
		munmap(end, (size_t)(base + len - end));
	madvise(p, rounded, MADV_HUGEPAGE);
	hdr *h = (hdr *)(void *)(p - HDR);
	h->base = keep;
	h->len = (size_t)(end - keep);
	return p;
}

void cdr__free_huge(void *p)
{
	if (!p)
		return;
	hdr *h = (hdr *)(void *)((char *)p - HDR);
	if (h->base)
		munmap(h->base, h->len);
	else
		free(h);
}
