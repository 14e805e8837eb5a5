/*
 * testutil.h - helpers shared by the Criterion suites: scratch tariff
 * directories written from strings, so that each test states the exact
 * tariff its hand-worked figures come from.
 */
#ifndef CDR_TESTUTIL_H
#define CDR_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrate/cdrate.h"

/* A minimal valid tariff; tests override single files. */
#define T_CONF "timezone = Asia/Shanghai\ndecimals = 2\nfree_zones = emergency\n"
#define T_ZONES                                                               \
	"prefix,zone\n0,national\n010,beijing\n13,mobile\n=110,emergency\n"   \
	"11,service\n*#,code\n"
#define T_BANDS "band,days,from,to\npeak,mon-fri,08:00,22:00\nidle,*,00:00,24:00\n"
#define T_PLANS "plan,monthly_fee\nm18,18\nf25,25\n"
#define T_RATES                                                               \
	"plan,service,zone,band,connect,price,unit,first,increment\n"         \
	"m18,voice,*,peak,0,0.15,60,60,60\n"                                  \
	"m18,voice,*,idle,0,0.06,60,60,60\n"                                  \
	"m18,sms,*,*,0,0.1,1,1,1\n"                                           \
	"m18,data,*,*,0,0.0003,1024,1024,1024\n"
#define T_SUBS                                                                \
	"subscriber,account,plan,packages,from,to\n"                          \
	"13800000001,A1,m18,,2025-01-01,\n"

static inline void tu_write(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

/* A fresh directory holding the minimal tariff. */
static inline char *tu_tariff(void)
{
	char *dir = strdup("/tmp/cdrate-test-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	tu_write(dir, "tariff.conf", T_CONF);
	tu_write(dir, "zones.csv", T_ZONES);
	tu_write(dir, "bands.csv", T_BANDS);
	tu_write(dir, "plans.csv", T_PLANS);
	tu_write(dir, "rates.csv", T_RATES);
	tu_write(dir, "subscribers.csv", T_SUBS);
	return dir;
}

static inline void tu_rmdir(char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		abort();
	free(dir);
}

/* Load dir; on failure return NULL and leave the message in err. */
static inline cdr_tariff *tu_load(const char *dir, char *err)
{
	cdr_tariff *t = NULL;
	if (cdr_tariff_load(&t, dir, NULL, err, CDR_ERR_MAX))
		return NULL;
	return t;
}

#endif
