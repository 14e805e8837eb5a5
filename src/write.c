/*
 * write.c - output sets: outputs that appear whole or not at all, and that
 * never destroy an input, a device or each other.
 *
 * The life of a set (cdrate.h has the contract):
 *
 *   add ──> protect ──> check ──> open ──> (run, write) ──> commit
 *   names    inputs,    by inode   temps     the bytes       fsync, link,
 *            tariff     or name    devices                   copy, rename
 *
 * Where the bytes wait. An output that is a regular file, or a new name,
 * is written to an O_TMPFILE in the directory of its final name: a file
 * without a name, which the kernel removes when the process dies, however
 * it dies (SIGKILL included). linkat(2) can give it a name but cannot
 * replace an existing one, and rename(2) is the only call that replaces a
 * name atomically; so commit first links the file to a unique named
 * temporary (NAME.tmp.PID.N) and then renames that over NAME. A named
 * temporary therefore exists only for the moments of a commit. Where the
 * file system has no O_TMPFILE, the named temporary is made at open with
 * O_EXCL (a new name on EEXIST: a file there is someone else's and is
 * never touched). Devices, FIFOs and standard output cannot be renamed
 * over: their bytes go to an unnamed spool in $TMPDIR and are copied to
 * them at commit, so a failed run writes them nothing either.
 *
 * All or nothing. Commit works in three steps: (1) every temporary is
 * fsynced and named, and every old file gets a second name (a hard link,
 * its backup) in the same directory; (2) devices, FIFOs and standard
 * output get their bytes; (3) the renames. Nothing a reader can see
 * changes before step 3, so any failure before it leaves every old output
 * as it was; a rename that fails in step 3 is undone for the outputs
 * renamed before it by renaming their backups back (or removing a name
 * that did not exist before). Bytes already copied to a device in step 2
 * cannot be taken back: that is why devices come before the renames and
 * not after (a broken pipe, their common failure, then costs no file).
 *
 * Signals. A handler may call cdr_cleanup_temps(), so everything it needs
 * is in the fixed array `slots`, touched with single stores in an order
 * that leaves it consistent at every instant, and it calls only unlink(2)
 * and rename(2), both async-signal-safe.
 *
 * Sections: writing - temporary-file registry - resolving an output -
 * the set - protection and checks - opening - commit - whole files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "sys.h"
#include "write.h"

/* ---- writing --------------------------------------------------------- */

int cdr__write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = cdr__sys_table.write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int cdr__pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;
	while (len) {
		ssize_t n = cdr__sys_table.pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- temporary-file registry ----------------------------------------- */

/*
 * One slot per output that is a file. The pointers are set only once the
 * name exists and is ours, and cleared before it stops being ours, so the
 * handler never removes a name this process did not create.
 */
enum { PH_WRITING, PH_RENAMING, PH_DONE };

typedef struct slot {
	int used;			/* claimed by a set (atomic) */
	char *volatile tmp;		/* a named temporary we created */
	char *volatile backup;		/* our second name of the old file */
	char *volatile final;		/* the name being replaced */
	volatile sig_atomic_t renamed;	/* tmp may have become final */
	volatile sig_atomic_t *phase;	/* of the slot's set */
} slot;

/* A shard split holds one output per bucket (--shards is at most 4096)
 * beside a run's few. */
#define MAX_SLOTS (4096 + 64)
static slot slots[MAX_SLOTS];

static slot *slot_claim(volatile sig_atomic_t *phase)
{
	for (int i = 0; i < MAX_SLOTS; i++) {
		int free_ = 0;
		if (__atomic_compare_exchange_n(&slots[i].used, &free_, 1, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			slots[i].phase = phase;
			return &slots[i];
		}
	}
	return NULL;
}

/*
 * Undo what a slot stands for: with the set renaming and this slot's
 * rename perhaps done, put the old file back (or remove the new name);
 * then remove our names. Shared by the failure path and the signal
 * handler, hence unlink and rename only. When the rename had not happened
 * yet, renaming the backup over the final is a no-op (two names of one
 * file) and unlinking it afterwards leaves the final as it was.
 */
static void slot_undo(const slot *s)
{
	char *tmp = s->tmp, *bk = s->backup, *fin = s->final;
	int ph = s->phase ? *s->phase : PH_WRITING;
	if (ph == PH_RENAMING && s->renamed && fin) {
		if (bk)
			rename(bk, fin);
		else
			unlink(fin);
	}
	if (ph != PH_DONE && tmp)
		unlink(tmp);
	if (bk)
		unlink(bk);
}

void cdr_cleanup_temps(void)
{
	for (int i = 0; i < MAX_SLOTS; i++)
		if (slots[i].used)
			slot_undo(&slots[i]);
}

/* Forget a slot's names (after they were removed or renamed) and give it
 * back. The pointers go first: the handler must not see freed memory. */
static void slot_release(slot *s)
{
	char *tmp = s->tmp, *bk = s->backup;
	s->tmp = s->backup = s->final = NULL;
	s->renamed = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	free(tmp);
	free(bk);
	s->phase = NULL;
	__atomic_store_n(&s->used, 0, __ATOMIC_RELEASE);
}

/*
 * A fresh name next to `final`: FINAL.tmp.PID.N. `make` creates it (open
 * with O_EXCL, link, linkat) and returns 0 or an errno; on EEXIST the next
 * N is tried, so a file someone else left there is never opened, replaced
 * or removed.
 */
static int fresh_name(const char *final, char **out,
		      int (*make)(const char *name, void *arg), void *arg)
{
	static unsigned seq;
	size_t n = strlen(final) + 48;
	char *name = malloc(n);
	if (!name)
		return ENOMEM;
	for (int tries = 0; tries < 1000; tries++) {
		snprintf(name, n, "%s.tmp.%ld.%u", final, (long)getpid(),
			 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
		int e = make(name, arg);
		if (!e) {
			*out = name;
			return 0;
		}
		if (e != EEXIST) {
			free(name);
			return e;
		}
	}
	free(name);
	return EEXIST;
}

/* ---- resolving an output --------------------------------------------- */

enum kind { K_FILE, K_DIRECT, K_STDOUT };

typedef struct out {
	char *option, *path;	/* as given, for messages */
	char *name;		/* "--rejects r.csv": option and path */
	char *label;		/* the same, but "standard output" for "-" */
	enum kind kind;
	char *final;		/* K_FILE: the name to replace, its directory
				 * resolved; K_DIRECT: the node to open */
	size_t base;		/* K_FILE: offset of the name in `final` */
	int exists;		/* st holds what `final` is */
	struct stat st;
	dev_t pdev;		/* K_FILE: its directory */
	ino_t pino;
	int resolve_err;	/* errno of resolving, reported by open */
	int fd;			/* temporary or spool, O_RDWR | O_APPEND */
	int dfd;		/* K_DIRECT, K_STDOUT: where the bytes go */
	int unnamed;		/* fd is an O_TMPFILE */
	slot *s;		/* K_FILE */
} out;

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* readlink into a malloc'd string; NULL with errno. */
static char *read_link(const char *path)
{
	for (size_t cap = 256; cap <= 65536; cap *= 2) {
		char *b = malloc(cap);
		if (!b)
			return NULL;
		ssize_t n = readlink(path, b, cap);
		if (n < 0) {
			free(b);
			return NULL;
		}
		if ((size_t)n < cap) {
			b[n] = '\0';
			return b;
		}
		free(b);
	}
	errno = ENAMETOOLONG;
	return NULL;
}

/* "dir" + "/" + "name", malloc'd. */
static char *join(const char *dir, size_t dlen, const char *name)
{
	size_t n = dlen + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%.*s%s%s", (int)dlen, dir,
			 dlen && dir[dlen - 1] == '/' ? "" : "/", name);
	return p;
}

/*
 * Decide what output x is, without creating anything; an errno when it
 * cannot be an output (kept and reported by open, so that the check can
 * still refuse collisions first).
 *
 * A path that is (through any links) what standard output is, is standard
 * output: `--out /dev/stdout` must append to the shell's redirection, not
 * replace the file behind it. Other non-regular nodes are opened as they
 * are: /proc/self/fd/N is a "magic" link whose text is no path, so these
 * are judged by stat before any link is read. Only for regular files and
 * new names are the links followed by hand, to find the name that rename
 * must replace.
 */
static int resolve(out *x, const struct stat *so, int have_so)
{
	struct stat st;
	if (!strcmp(x->path, "-")) {
		x->kind = K_STDOUT;
		if (!have_so)
			return EBADF;
		x->st = *so;
		x->exists = 1;
		return 0;
	}
	if (!stat(x->path, &st)) {
		/* A character device is opened by its path even when it is
		 * standard output: /dev/null or a terminal takes any number
		 * of writers. */
		if (have_so && same_file(&st, so) && !S_ISCHR(st.st_mode)) {
			x->kind = K_STDOUT;
			x->st = st;
			x->exists = 1;
			return 0;
		}
		if (S_ISDIR(st.st_mode))
			return EISDIR;
		if (!S_ISREG(st.st_mode)) {
			x->kind = K_DIRECT;
			x->st = st;
			x->exists = 1;
			return (x->final = strdup(x->path)) ? 0 : ENOMEM;
		}
	}
	x->kind = K_FILE;
	char *p = strdup(x->path);
	if (!p)
		return ENOMEM;
	for (int hops = 0;; hops++) {
		if (lstat(p, &st)) {
			if (errno != ENOENT) {
				int e = errno;
				free(p);
				return e;
			}
			break; /* a new name */
		}
		if (!S_ISLNK(st.st_mode)) {
			x->exists = 1;
			x->st = st;
			break;
		}
		char *t = hops < 40 ? read_link(p) : NULL;
		if (!t) {
			int e = hops < 40 ? errno : ELOOP;
			free(p);
			return e;
		}
		char *np = t;
		const char *slash = strrchr(p, '/');
		if (t[0] != '/' && slash) {
			np = join(p, (size_t)(slash - p), t);
			free(t);
			if (!np) {
				free(p);
				return ENOMEM;
			}
		}
		free(p);
		p = np;
	}
	if (x->exists && !S_ISREG(x->st.st_mode)) {
		/* A link to a node appeared between stat and lstat. */
		free(p);
		return EBUSY;
	}
	/* The directory resolved: two spellings of one name compare equal,
	 * and the temporary lands next to the file it replaces. */
	const char *slash = strrchr(p, '/');
	const char *name = slash ? slash + 1 : p;
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
		free(p);
		return EISDIR;
	}
	char *dir = slash ? strndup(p, slash == p ? 1 : (size_t)(slash - p))
			  : strdup(".");
	char *rd = NULL;
	int e = 0;
	if (!dir)
		e = ENOMEM;
	else if (!(rd = realpath(dir, NULL)))
		e = errno ? errno : ENOENT;
	free(dir);
	if (!e && rd && stat(rd, &st))
		e = errno;
	if (!e && rd) {
		x->pdev = st.st_dev;
		x->pino = st.st_ino;
		x->final = join(rd, strlen(rd), name);
		if (!x->final)
			e = ENOMEM;
		else
			x->base = strlen(x->final) - strlen(name);
	}
	free(rd);
	free(p);
	return e;
}

/* ---- the set --------------------------------------------------------- */

typedef struct prot {
	char *what, *path;	/* for messages */
	struct stat st;
	int in_dir;		/* a file of the directory `path` */
} prot;

struct cdr_outputs {
	out *v;
	int n, cap;
	prot *p;
	size_t np, pcap;
	int checked, opened, finished;
	volatile sig_atomic_t phase;
};

int cdr_outputs_create(cdr_outputs **out_)
{
	*out_ = calloc(1, sizeof(**out_));
	return *out_ ? 0 : -ENOMEM;
}

int cdr_outputs_add(cdr_outputs *o, const char *option, const char *path,
		    char *err, size_t errlen)
{
	if (o->opened || !path) {
		snprintf(err, errlen, "outputs are added before they open");
		return -EINVAL;
	}
	if (o->n == o->cap) {
		int cap = o->cap ? o->cap * 2 : 8;
		out *v = realloc(o->v, (size_t)cap * sizeof(*v));
		if (!v)
			goto oom;
		o->v = v;
		o->cap = cap;
	}
	out *x = &o->v[o->n];
	memset(x, 0, sizeof(*x));
	x->fd = x->dfd = -1;
	x->option = option ? strdup(option) : NULL;
	x->path = strdup(path);
	size_t n = strlen(path) + (option ? strlen(option) : 0) + 2;
	x->name = malloc(n);
	x->label = strcmp(path, "-") ? x->name : strdup("standard output");
	if ((option && !x->option) || !x->path || !x->name || !x->label) {
		free(x->option);
		free(x->path);
		if (x->label != x->name)
			free(x->label);
		free(x->name);
		goto oom;
	}
	if (option)
		snprintf(x->name, n, "%s %s", option, path);
	else
		snprintf(x->name, n, "%s", path);
	return ++o->n;
oom:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

static int prot_push(cdr_outputs *o, const char *what, const char *path,
		     const struct stat *st, int in_dir)
{
	if (o->np == o->pcap) {
		size_t cap = o->pcap ? o->pcap * 2 : 16;
		prot *p = realloc(o->p, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		o->p = p;
		o->pcap = cap;
	}
	prot *p = &o->p[o->np];
	p->what = strdup(what);
	p->path = strdup(path);
	p->st = *st;
	p->in_dir = in_dir;
	if (!p->what || !p->path) {
		free(p->what);
		free(p->path);
		return -ENOMEM;
	}
	o->np++;
	return 0;
}

/*
 * A directory protects itself (a new name in it would be read as input,
 * or is a tariff file to be) and every entry in it, followed through
 * links: a tariff whose plans.csv links elsewhere protects the elsewhere.
 */
int cdr_outputs_protect(cdr_outputs *o, const char *what, const char *path,
			char *err, size_t errlen)
{
	struct stat st;
	int rc = 0;
	/* Writing to a character device destroys nothing, and a terminal
	 * may well be standard input and standard output at once. */
	if (!strcmp(path, "-")) {
		if (!fstat(STDIN_FILENO, &st) && !S_ISCHR(st.st_mode))
			rc = prot_push(o, what, path, &st, 0);
	} else if (stat(path, &st) || S_ISCHR(st.st_mode)) {
		return 0;
	} else if (!(rc = prot_push(o, what, path, &st, 0)) &&
		   S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		while (d && !rc && (de = readdir(d))) {
			char *full = join(path, strlen(path), de->d_name);
			if (!full)
				rc = -ENOMEM;
			else if (strcmp(de->d_name, ".") != 0 &&
				 strcmp(de->d_name, "..") != 0 &&
				 !stat(full, &st) && !S_ISCHR(st.st_mode))
				rc = prot_push(o, what, path, &st, 1);
			free(full);
		}
		if (d)
			closedir(d);
	}
	if (rc)
		snprintf(err, errlen, "out of memory");
	return rc;
}

static void out_free(out *x)
{
	if (x->fd >= 0)
		close(x->fd);
	if (x->dfd >= 0 && x->kind != K_STDOUT)
		close(x->dfd);
	x->fd = x->dfd = -1;
	if (x->s) {
		slot_undo(x->s);
		slot_release(x->s);
		x->s = NULL;
	}
	free(x->option);
	free(x->path);
	if (x->label != x->name)
		free(x->label);
	free(x->name);
	free(x->final);
}

void cdr_outputs_free(cdr_outputs *o)
{
	if (!o)
		return;
	for (int i = 0; i < o->n; i++)
		out_free(&o->v[i]);
	for (size_t i = 0; i < o->np; i++) {
		free(o->p[i].what);
		free(o->p[i].path);
	}
	free(o->v);
	free(o->p);
	free(o);
}

int cdr__outputs_fd(const cdr_outputs *o, int id)
{
	return o && id >= 1 && id <= o->n && o->opened ? o->v[id - 1].fd : -1;
}

const char *cdr__outputs_label(const cdr_outputs *o, int id)
{
	return o && id >= 1 && id <= o->n ? o->v[id - 1].label : "output";
}

/* ---- protection and checks ------------------------------------------- */

static void resolve_all(cdr_outputs *o)
{
	struct stat so;
	int have_so = !fstat(STDOUT_FILENO, &so);
	for (int i = 0; i < o->n; i++)
		o->v[i].resolve_err = resolve(&o->v[i], &so, have_so);
	o->checked = 1;
}

/* Two outputs that would write into one another. A character device (a
 * null device, a terminal) may take several, but `-` only one. */
static int collide(const out *a, const out *b)
{
	if (a->resolve_err || b->resolve_err)
		return 0;
	if (a->kind == K_STDOUT && b->kind == K_STDOUT)
		return 1;
	if (a->exists && b->exists && same_file(&a->st, &b->st))
		return !S_ISCHR(a->st.st_mode);
	return a->kind == K_FILE && b->kind == K_FILE && !a->exists &&
	       !b->exists && a->pdev == b->pdev && a->pino == b->pino &&
	       !strcmp(a->final + a->base, b->final + b->base);
}

int cdr_outputs_check(cdr_outputs *o, char *err, size_t errlen)
{
	resolve_all(o);
	for (int i = 0; i < o->n; i++) {
		const out *x = &o->v[i];
		if (x->resolve_err)
			continue;
		for (size_t k = 0; k < o->np; k++) {
			const prot *p = &o->p[k];
			if (x->exists && same_file(&x->st, &p->st)) {
				snprintf(err, errlen, "%s: is also %s%s '%s'",
					 x->name, p->in_dir ? "a file of " : "",
					 p->what, p->path);
				return -EINVAL;
			}
			if (x->kind == K_FILE && !p->in_dir &&
			    S_ISDIR(p->st.st_mode) && x->pdev == p->st.st_dev &&
			    x->pino == p->st.st_ino) {
				snprintf(err, errlen,
					 "%s: is also inside %s '%s'", x->name,
					 p->what, p->path);
				return -EINVAL;
			}
		}
		for (int j = 0; j < i; j++)
			if (collide(x, &o->v[j])) {
				const out *y = &o->v[j];
				int dash = y->kind == K_STDOUT &&
					   !strcmp(y->path, "-");
				snprintf(err, errlen, "%s: is also %s", x->name,
					 dash ? "standard output" : y->name);
				return -EINVAL;
			}
	}
	return 0;
}

/* ---- opening --------------------------------------------------------- */

static int open_excl(const char *name, void *arg)
{
	int *fd = arg;
	*fd = cdr__sys_table.open(name, O_RDWR | O_CREAT | O_EXCL | O_APPEND |
						O_CLOEXEC,
				  0666);
	return *fd < 0 ? errno : 0;
}

/*
 * An unnamed file in `dir` when the file system has O_TMPFILE (a kernel
 * or file system without it answers EISDIR, EOPNOTSUPP or EINVAL), else
 * a named one next to `final`, registered in `s`; for a spool (s NULL)
 * the name is removed at once. 0 or an errno.
 */
static int make_temp(const char *dir, const char *final, int *fd,
		     int *unnamed, slot *s, mode_t mode)
{
	*fd = cdr__sys_table.open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	if (*fd >= 0) {
		*unnamed = 1;
		return fcntl(*fd, F_SETFL, O_APPEND) ? errno : 0;
	}
	if (errno != EISDIR && errno != EOPNOTSUPP && errno != EINVAL)
		return errno;
	*unnamed = 0;
	char *name;
	int e = fresh_name(final, &name, open_excl, fd);
	if (e)
		return e;
	if (s) {
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		s->tmp = name;
	} else {
		unlink(name);
		free(name);
	}
	return 0;
}

static int open_one(cdr_outputs *o, out *x)
{
	if (x->resolve_err)
		return x->resolve_err;
	if (x->kind != K_FILE) {
		if (x->kind == K_STDOUT) {
			x->dfd = STDOUT_FILENO;
		} else {
			/* Never O_CREAT or O_TRUNC: the node is written as
			 * it is. A FIFO blocks here until it has a reader. */
			x->dfd = cdr__sys_table.open(
				x->final, O_WRONLY | O_NOCTTY | O_CLOEXEC, 0);
			if (x->dfd < 0)
				return errno;
		}
		int fl = fcntl(x->dfd, F_GETFL);
		if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
			return EBADF;
		/* $TMPDIR, else /tmp, like the spool of standard input. */
		const char *td = getenv("TMPDIR");
		char spool[4096];
		int e = ENOENT;
		for (int k = td && *td ? 0 : 1; e && k < 2; k++) {
			const char *d = k ? "/tmp" : td;
			snprintf(spool, sizeof(spool), "%s/cdrate-spool", d);
			e = make_temp(d, spool, &x->fd, &x->unnamed, NULL,
				      0600);
		}
		return e;
	}
	if (!(x->s = slot_claim(&o->phase)))
		return EMFILE;
	char *dir = x->base == 1 ? strdup("/") : strndup(x->final, x->base - 1);
	if (!dir)
		return ENOMEM;
	int e = make_temp(dir, x->final, &x->fd, &x->unnamed, x->s, 0666);
	free(dir);
	if (e)
		return e;
	/* A replaced file keeps its mode, and its owner when we may give
	 * it (root); fchown first, as it clears set-id bits. */
	if (x->exists) {
		if (geteuid() == 0 &&
		    fchown(x->fd, x->st.st_uid, x->st.st_gid) != 0) {
			/* Not fatal: the new file is then ours. */
		}
		if (fchmod(x->fd, x->st.st_mode & 07777))
			return errno;
	}
	return 0;
}

int cdr_outputs_open(cdr_outputs *o, char *err, size_t errlen)
{
	if (o->opened) {
		snprintf(err, errlen, "outputs open once");
		return -EINVAL;
	}
	if (!o->checked)
		resolve_all(o);
	o->opened = 1;
	for (int i = 0; i < o->n; i++) {
		out *x = &o->v[i];
		int e = open_one(o, x);
		if (e) {
			if (x->kind == K_STDOUT && !strcmp(x->path, "-"))
				snprintf(err, errlen, "%s: %s", x->label,
					 strerror(e));
			else
				snprintf(err, errlen, "%s: cannot create: %s",
					 x->label, strerror(e));
			return -e;
		}
	}
	return 0;
}

int cdr_outputs_write(cdr_outputs *o, int id, const void *buf, size_t len,
		      char *err, size_t errlen)
{
	int fd = cdr__outputs_fd(o, id);
	if (fd < 0) {
		snprintf(err, errlen, "%s: not open",
			 cdr__outputs_label(o, id));
		return -EBADF;
	}
	if (cdr__write_all(fd, buf, len)) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot write: %s",
			 cdr__outputs_label(o, id), strerror(e));
		return -e;
	}
	return 0;
}

/* ---- commit ---------------------------------------------------------- */

static int link_fd(const char *name, void *arg)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", *(int *)arg);
	/* linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc
	 * path with AT_SYMLINK_FOLLOW is the unprivileged way. */
	return linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) ? errno
									  : 0;
}

static int link_path(const char *name, void *arg)
{
	return link((const char *)arg, name) ? errno : 0;
}

/* Step 1 for a file: on disk, named, and the old file backed up. */
static int prepare_file(out *x)
{
	if (cdr__sys_table.fsync(x->fd) && errno != EINVAL)
		return errno;
	if (x->unnamed) {
		char *name;
		int e = fresh_name(x->final, &name, link_fd, &x->fd);
		if (e)
			return e;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		x->s->tmp = name;
	}
	x->s->final = x->final;
	struct stat st;
	if (!lstat(x->final, &st) && S_ISREG(st.st_mode)) {
		/* Without a backup (a file system without hard links) the
		 * output is still replaced atomically, but a later failing
		 * rename cannot give the old one back. */
		char *bk;
		if (!fresh_name(x->final, &bk, link_path, x->final)) {
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			x->s->backup = bk;
		}
	}
	return 0;
}

/* Step 2 for a device, FIFO or standard output: copy the spool. */
static int copy_spool(out *x)
{
	char buf[1 << 16];
	off_t off = 0;
	for (;;) {
		ssize_t n = cdr__sys_table.pread(x->fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			break;
		if (cdr__write_all(x->dfd, buf, (size_t)n))
			return errno;
		off += n;
	}
	/* A device that cannot sync (a pipe, a tty) says EINVAL. */
	if (cdr__sys_table.fsync(x->dfd) && errno != EINVAL && errno != EROFS)
		return errno;
	return 0;
}

/* fsync a directory, so that a rename in it survives a crash. Best
 * effort: the renames are done and cannot be taken back. */
static void sync_dir(out *x)
{
	x->final[x->base - 1] = '\0';
	int fd = open(x->base == 1 ? "/" : x->final,
		      O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	x->final[x->base - 1] = '/';
	if (fd >= 0) {
		(void)cdr__sys_table.fsync(fd);
		close(fd);
	}
}

int cdr_outputs_commit(cdr_outputs *o, char *err, size_t errlen)
{
	int e = 0, i;
	out *x = NULL;
	const char *what = "cannot write";
	if (!o->opened || o->finished) {
		snprintf(err, errlen, "outputs commit once, after open");
		return -EINVAL;
	}
	o->finished = 1;
	for (i = 0; !e && i < o->n; i++)
		if ((x = &o->v[i])->kind == K_FILE)
			e = prepare_file(x);
	for (i = 0; !e && i < o->n; i++)
		if ((x = &o->v[i])->kind != K_FILE)
			e = copy_spool(x);
	if (!e) {
		o->phase = PH_RENAMING;
		for (i = 0; !e && i < o->n; i++) {
			x = &o->v[i];
			if (x->kind != K_FILE)
				continue;
			x->s->renamed = 1;
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			if (cdr__sys_table.rename(x->s->tmp, x->final)) {
				e = errno;
				x->s->renamed = 0;
				what = "cannot rename into place";
			}
		}
	}
	if (e) {
		/* Every slot still stands for what it did: undo puts the
		 * renamed outputs back and removes our names. */
		if (x->kind == K_STDOUT && !strcmp(x->path, "-"))
			snprintf(err, errlen, "%s: %s", x->label, strerror(e));
		else
			snprintf(err, errlen, "%s: %s: %s", x->label, what,
				 strerror(e));
		for (i = 0; i < o->n; i++)
			if (o->v[i].s)
				slot_undo(o->v[i].s);
		o->phase = PH_DONE;
		for (i = 0; i < o->n; i++)
			if (o->v[i].s) {
				slot_release(o->v[i].s);
				o->v[i].s = NULL;
			}
		return -e;
	}
	/* One store decides: from here on a signal removes only backups. */
	o->phase = PH_DONE;
	for (i = 0; i < o->n; i++) {
		x = &o->v[i];
		/* A FIFO's reader sees its end of file now, not at free. */
		if (x->kind == K_DIRECT && x->dfd >= 0) {
			close(x->dfd);
			x->dfd = -1;
		}
		if (!x->s)
			continue;
		if (x->s->backup)
			unlink(x->s->backup);
		slot_release(x->s);
		x->s = NULL;
		sync_dir(x);
	}
	return 0;
}

/* ---- whole files ----------------------------------------------------- */

int cdr_write_file_atomic(const char *path, const void *buf, size_t len,
			  char *err, size_t errlen)
{
	cdr_outputs *o;
	if (cdr_outputs_create(&o)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int id = cdr_outputs_add(o, NULL, path ? path : "-", err, errlen);
	int rc = id < 0 ? id : 0;
	if (!rc)
		rc = cdr_outputs_open(o, err, errlen);
	if (!rc)
		rc = cdr_outputs_write(o, id, buf, len, err, errlen);
	if (!rc)
		rc = cdr_outputs_commit(o, err, errlen);
	cdr_outputs_free(o);
	return rc;
}
