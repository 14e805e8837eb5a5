/*
 * reader.c - the reader thread: each input, in order, into chunks of whole
 * lines for the workers (run.c's queue).
 *
 * A buffer is CHUNK bytes of fresh data after the line carried over from
 * the previous read; a line longer than CDR_LINE_MAX becomes one too_long
 * chunk of its head and the rest is skipped, so a hostile line costs no
 * memory. Before any chunk of an input is queued its first non-empty line
 * settles the format (check_head, through format.c). Streams - standard
 * input, pipes, FIFOs - cannot be read back by offset, so they are spooled
 * as they stream, end to end in one unlinked temporary file, for the
 * duplicate check (dedup.c): a plain stream's bytes as read, a compressed
 * stream's compressed bytes (source.h). A compressed regular file is not
 * spooled at all: dedup.c decodes it again from its path when it holds
 * duplicate candidates.
 *
 * Sections: progress and names - the head check - spooling - reading one
 * input - the thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "internal.h"
#include "run_int.h"
#include "source.h"
#include "sys.h"

/* ---- reader ---------------------------------------------------------- */

static void progress(cdr_run *r, double t0, double *last)
{
	double t = cdr__now();
	if (!r->o.progress || !r->o.log || t - *last < 1.0)
		return;
	*last = t;
	pthread_mutex_lock(&r->mu);
	uint64_t b = r->bytes_read;
	pthread_mutex_unlock(&r->mu);
	fprintf(r->o.log, "\rcdrate: %.1f MB read, %.0f s", (double)b / 1e6,
		t - t0);
	fflush(r->o.log);
}

static const char *in_name(const input *in)
{
	return strcmp(in->path, "-") ? in->path : "standard input";
}

/* Each side's normalize.csv: the same table on both sides of a run but a
 * rerate whose tariffs rewrite numbers differently (run_int.h, norm2). */
static void set_norms(const cdr_run *r, input *in)
{
	in->fmt.norm = r->t[0]->norm;
	in->fmt1 = in->fmt;
	in->fmt1.norm = r->t[r->nt - 1]->norm;
}

/*
 * Check a file's first non-empty line (no line end) before any of it is
 * rated, and settle the input's format from it. A bare CR in a header, or
 * in a first line that no \n ends within CDR_LINE_MAX (`open`), means the
 * file's line ends are CR alone: the whole file is one "line", which would
 * be skipped as a header or rejected whole, so the run stops. (A CR inside
 * a line that \n ends is only a bad byte, rejected with its line.) A
 * header starting `id,` that misses a native column, or a map's column
 * missing from the header, stops the run naming it (SPEC 11).
 */
static int check_head(cdr_run *r, input *in, const char *p, size_t n,
		      int open)
{
	int header = n >= 3 && !memcmp(p, "id,", 3);
	if ((header || open) && memchr(p, '\r', n))
		return cdr__run_err(r, -EINVAL,
			       "%s: line ends are bare CR (\\r); cdrate reads "
			       "\\n or \\r\\n",
			       in_name(in));
	char msg[CDR_ERR_MAX];
	int rc = cdr__fmt_head(&in->fmt, r->o.format, r->o.map, p, n, msg,
			       sizeof(msg));
	if (rc)
		return cdr__run_err(r, rc, "%s: %s", in_name(in), msg);
	set_norms(r, in);
	return 0;
}

/* While *first (no non-empty line seen yet in the file), look for the
 * first non-empty line in p[0, n), which holds whole lines (the last one
 * maybe ended by the end of the file) or the head of a cut one, and check
 * it (`at_start`: p is the file's first byte, where a UTF-8 byte order
 * mark may stand). Lines split as the workers split them: on \n, one \r
 * before it dropped, empty lines skipped. */
static int head_scan(cdr_run *r, input *in, const char *p, size_t n,
		     int at_start, int *first)
{
	size_t i = at_start && n >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3) ? 3 : 0;
	while (*first && i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t e = nl ? (size_t)(nl - p) : n, len = e - i;
		if (len && p[e - 1] == '\r')
			len--;
		if (len) {
			*first = 0;
			return in->head ? 0 : check_head(r, in, p + i, len, !nl);
		}
		i = e + 1;
	}
	return 0;
}

/* Copy b[lo, hi) into the spool of a stream at its file offset. */
static int spool(cdr_run *r, const input *in, const char *b, size_t lo,
		 size_t hi, uint64_t base)
{
	while (in->spool_fd >= 0 && lo < hi) {
		ssize_t w = cdr__sys_table.pwrite(in->spool_fd, b + lo, hi - lo,
						  (off_t)(in->spool_at + base + lo));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : ENOSPC;
			return cdr__run_err(r, -e, "%s: spooling: %s", in_name(in),
				       strerror(e));
		}
		lo += (size_t)w;
	}
	return 0;
}

/*
 * Read one input into chunks of whole lines. A buffer is CHUNK bytes of
 * fresh data after up to CDR_LINE_MAX bytes carried from the previous read
 * (the unfinished last line). A line longer than CDR_LINE_MAX is cut: its
 * first CDR_LINE_MAX bytes become a too_long chunk and the rest is skipped
 * up to the next newline, so a hostile line costs no memory.
 */
/* The run's spool, made by its first stream (reader thread only). */
typedef struct spool_state {
	int fd;
	uint64_t end; /* where the next stream's bytes go */
} spool_state;

static int read_input(cdr_run *r, cdr__backend *be, uint32_t idx,
		      char *carry, spool_state *sp, double t0, double *last)
{
	input *in = &r->in[idx];
	int is_stdin = !strcmp(in->path, "-");
	int fd = is_stdin ? STDIN_FILENO
			  : cdr__sys_table.open(cdr__in_open_path(in), O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return cdr__run_err(r, -errno, "%s: cannot open: %s", in->path,
			       strerror(errno));
	struct stat st;
	int regular = !is_stdin && !fstat(fd, &st) && S_ISREG(st.st_mode);
	if (regular) {
		in->dev = st.st_dev;
		in->ino = st.st_ino;
		in->size = st.st_size;
		in->mtime = st.st_mtim;
	}
	/* The source tells plain bytes from gzip and zstd (source.h);
	 * streams are read with read(2), one request at a time. */
	cdr__source src;
	int rc = cdr__source_open(&src, fd, regular ? be : cdr__backend_read(),
				  regular);
	if (rc) {
		cdr__source_close(&src);
		if (!is_stdin)
			close(fd);
		return cdr__run_err(r, rc, "%s: read error: %s", in_name(in),
			       strerror(-rc));
	}
	in->comp = (uint8_t)src.comp;
	/* Standard input, a pipe or a FIFO cannot be read again for the
	 * duplicate check: keep a copy as it streams, of the bytes as read
	 * (compressed ones are several times fewer than what they decode
	 * to). A regular file is read again from its path, decoded again
	 * when compressed. */
	int spooled = !regular;
	if (spooled) {
		if (sp->fd < 0) {
			const char *dir = getenv("TMPDIR");
			char path[4096];
			snprintf(path, sizeof(path), "%s/cdrate-spool-XXXXXX",
				 dir && *dir ? dir : "/tmp");
			sp->fd = mkstemp(path);
			if (sp->fd < 0) {
				int e = errno;
				cdr__source_close(&src);
				if (!is_stdin)
					close(fd);
				return cdr__run_err(r, -e, "%s: cannot spool: %s",
					       in_name(in), strerror(e));
			}
			unlink(path);
			in->spool_owner = 1;
		}
		in->spool_fd = sp->fd;
		in->spool_at = sp->end;
		if (src.comp != CDR_COMP_NONE)
			cdr__source_spool(&src, sp->fd, sp->end);
	}
	/* The reader copies a plain stream's lines itself (a long line's
	 * rest is left out); a decoder spools its own input. */
	int spool_text = spooled && src.comp == CDR_COMP_NONE;
	/* Until a first line says otherwise (an input of blank lines only
	 * keeps this): the format asked for, native for auto. */
	memset(&in->fmt, 0, sizeof(in->fmt));
	in->fmt.kind = (uint8_t)(r->o.format == CDR_FORMAT_AUTO
					 ? CDR_FORMAT_NATIVE
					 : r->o.format);
	set_norms(r, in);
	int first = 1;
	/* A head given with the input settles its format instead of its own
	 * first line (a shard's rebuilt input: cdr_run_add_input_as);
	 * head_scan then only finds where the file's first line is. */
	if (in->head) {
		rc = check_head(r, in, in->head, in->head_n, 0);
		if (rc) {
			cdr__source_close(&src);
			if (!is_stdin)
				close(fd);
			return rc;
		}
	}
	uint64_t lines = 0; /* '\n's before the next chunk, when counted */
	uint64_t off = 0;   /* offset of the next fresh byte, decoded */
	uint64_t raw_seen = 0; /* src.raw_off already counted in prog_raw */
	size_t carry_n = 0;
	int skipping = 0;

	for (;;) {
		char *b = cdr__run_buf_get(r);
		if (!b) {
			rc = -ECANCELED;
			break;
		}
		memcpy(b, carry, carry_n);
		ssize_t n = cdr__source_fill(&src, b + carry_n, CHUNK);
		/* Raw bytes, as stored: what a progress line's percent of
		 * the known sizes counts, compressed or not. */
		atomic_fetch_add_explicit(&r->prog_raw, src.raw_off - raw_seen,
					  memory_order_relaxed);
		raw_seen = src.raw_off;
		if (n < 0) {
			cdr__run_buf_put(r, b);
			rc = src.why[0] ? cdr__run_err(r, (int)n, "%s: %s",
						  in_name(in), src.why)
					: cdr__run_err(r, (int)n, "%s: read error: %s",
						  in->path, strerror((int)-n));
			break;
		}
		uint64_t base = off - carry_n; /* offset of b[0] */
		size_t total = carry_n + (size_t)n, fresh = carry_n;
		off += (uint64_t)n;
		carry_n = 0;
		size_t start = 0;
		if (skipping) {
			char *nl = memchr(b, '\n', total);
			if (!nl) { /* still inside the long line */
				cdr__run_buf_put(r, b);
				if (n == 0)
					break;
				continue;
			}
			start = (size_t)(nl - b) + 1;
			skipping = 0;
			lines++; /* the end of the line cut as too long */
		}
		size_t end = total;
		if (n > 0) { /* keep the unfinished last line for next time */
			char *nl = memrchr(b + start, '\n', total - start);
			end = nl ? (size_t)(nl - b) + 1 : start;
		}
		size_t tail = total - end;
		/* The first non-empty line is checked before it is rated: in
		 * these whole lines, or else in the head of a cut one. */
		int chunk_first = first;
		if (first)
			rc = head_scan(r, in, b + start, end - start,
				       base + start == 0, &first);
		if (!rc && first && tail > CDR_LINE_MAX)
			rc = head_scan(r, in, b + end, CDR_LINE_MAX,
				       base + end == 0, &first);
		if (rc) {
			cdr__run_buf_put(r, b);
			break;
		}
		/* Spool the fresh bytes that may be read back: whole lines and
		 * the unfinished one. A line past CDR_LINE_MAX is rejected,
		 * never a duplicate candidate, so none of it is spooled (its
		 * place in the spool stays a hole): /dev/zero costs no disk. */
		if (spool_text &&
		    (rc = spool(r, in, b, fresh > start ? fresh : start,
				tail > CDR_LINE_MAX ? end : total, base))) {
			cdr__run_buf_put(r, b);
			break;
		}
		if (n > 0) {
			if (tail > CDR_LINE_MAX) {
				/* The tail alone is too long: report its
				 * head, skip the rest of that line. */
				char *lb = cdr__run_buf_get(r);
				if (!lb) {
					cdr__run_buf_put(r, b);
					rc = -ECANCELED;
					break;
				}
				memcpy(lb, b + end, CDR_LINE_MAX);
				chunk lc = {lb, CDR_LINE_MAX, idx, base + end,
					    0, 0, 1};
				cdr__run_chunk_push(r, &lc);
				skipping = 1;
			} else {
				memcpy(carry, b + end, tail);
				carry_n = tail;
			}
		}
		if (end > start) {
			chunk c = {b + start, end - start, idx, base + start,
				   0, (uint8_t)chunk_first, 0};
			/* FILE:LINE ids need line numbers: count the lines
			 * here, where chunks are still in file order (only
			 * for such inputs, and only with --itemize). */
			if (in->fmt.line_ids && r->item_out.id) {
				c.line0 = lines + 1;
				for (const char *q = b + start, *qe = b + end;
				     (q = memchr(q, '\n', (size_t)(qe - q)));
				     q++)
					lines++;
			}
			/* Workers give back c.buf; keep it the pool's pointer. */
			if (start) {
				memmove(b, b + start, end - start);
				c.buf = b;
			}
			/* The header is the first non-empty line: while the
			 * file has shown only blank lines, the next chunk is
			 * still its "first" (head_scan keeps `first`). */
			cdr__run_chunk_push(r, &c);
		} else {
			cdr__run_buf_put(r, b);
		}
		progress(r, t0, last);
		if (n == 0)
			break;
	}
	/* A file written to while it was read (a collector still appending,
	 * or rewriting it in place) gives sums of no file that ever was. */
	if (!rc && regular &&
	    (fstat(fd, &st) || st.st_size != in->size ||
	     (off_t)src.raw_off != in->size ||
	     st.st_mtim.tv_sec != in->mtime.tv_sec ||
	     st.st_mtim.tv_nsec != in->mtime.tv_nsec))
		rc = cdr__run_err(r, -ESTALE, "%s: changed while being rated",
			     in->path);
	if (spooled) { /* the next stream's bytes follow this one's */
		uint64_t len = spool_text ? off : src.spooled;
		in->size = (off_t)len;
		sp->end = in->spool_at + len;
	}
	cdr__source_close(&src);
	if (!is_stdin)
		close(fd);
	return rc;
}

void *cdr__reader_main(void *arg)
{
	reader_arg *a = arg;
	cdr_run *r = a->r;
	char *carry = malloc(CDR_LINE_MAX + 1);
	spool_state sp = {-1, 0};
	double last = cdr__now();
	if (!carry)
		cdr__run_err(r, -ENOMEM, "out of memory");
	for (uint32_t i = 0; carry && i < r->nin && !r->err; i++)
		if (read_input(r, a->be, i, carry, &sp, a->t0, &last))
			break;
	free(carry);
	pthread_mutex_lock(&r->mu);
	r->reading_done = 1;
	pthread_cond_broadcast(&r->cv_ready);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}
