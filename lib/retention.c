/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Retention classes, longest wins, legal hold; the retention report and the storage budget. */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "db-lifecycle.h"
#include "retention.h"

#define US_PER_DAY ((int64_t)86400 * 1000000)

void evd_retention_policy_default(EvdRetentionPolicy *p)
{
        *p = (EvdRetentionPolicy){
            .ordinary_us = 180 * US_PER_DAY,
            .evidence_after_close_us = EVD_RETENTION_PERMANENT,
        };
}

int evd_retention_parse_period(const char *s, int64_t *ret_us)
{
        if (!s)
                return -EINVAL;
        while (isspace((unsigned char)*s))
                s++;
        if (strcmp(s, "permanent") == 0) {
                *ret_us = EVD_RETENTION_PERMANENT;
                return 0;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || s[0] == '-')
                return -EINVAL;
        int64_t unit;
        if (strcmp(end, "y") == 0)
                unit = 365 * US_PER_DAY;
        else if (strcmp(end, "w") == 0)
                unit = 7 * US_PER_DAY;
        else if (strcmp(end, "d") == 0)
                unit = US_PER_DAY;
        else if (strcmp(end, "h") == 0)
                unit = 3600LL * 1000000LL;
        else if (strcmp(end, "m") == 0)
                unit = 60LL * 1000000LL;
        else if (strcmp(end, "s") == 0)
                unit = 1000000LL;
        else
                return -EINVAL;
        if (v > (unsigned long long)(INT64_MAX / 2 / unit))
                return -ERANGE;
        *ret_us = (int64_t)v * unit;
        return 0;
}

int evd_retention_parse_categories(EvdRetentionPolicy *p, const char *s, EvdError *err)
{
        p->n_categories = 0;
        _cleanup_free_ char *copy = strdup(s ? s : "");
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
                while (isspace((unsigned char)*item))
                        item++;
                char *e = item + strlen(item);
                while (e > item && isspace((unsigned char)e[-1]))
                        *--e = '\0';
                if (!item[0])
                        continue;
                char *eq = strchr(item, '=');
                if (!eq)
                        return evd_error_set(
                            err, -EINVAL,
                            "retention category '%s': expected NAME=PERIOD (e.g. criminal=permanent)", item);
                *eq = '\0';
                char *name = item, *period = eq + 1;
                for (e = name + strlen(name); e > name && isspace((unsigned char)e[-1]);)
                        *--e = '\0';
                int r = evd_case_category_check(name, err);
                if (r < 0)
                        return r;
                if (p->n_categories >= EVD_RETENTION_MAX_CATEGORIES)
                        return evd_error_set(err, -E2BIG, "more than %u retention categories",
                                             EVD_RETENTION_MAX_CATEGORIES);
                for (size_t i = 0; i < p->n_categories; i++)
                        if (strcmp(p->categories[i].name, name) == 0)
                                return evd_error_set(err, -EINVAL, "retention category '%s' given twice",
                                                     name);
                int64_t us;
                r = evd_retention_parse_period(period, &us);
                if (r < 0)
                        return evd_error_set(
                            err, -EINVAL,
                            "retention category '%s': '%s' is not a period (e.g. 3650d, 10y, "
                            "permanent)",
                            name, period);
                EvdRetentionCategory *c = &p->categories[p->n_categories++];
                snprintf(c->name, sizeof(c->name), "%s", name);
                c->after_close_us = us;
        }
        return 0;
}

const char *evd_retention_class_to_string(EvdRetentionClass c)
{
        switch (c) {
        case EVD_RETENTION_ORDINARY:
                return "ordinary";
        case EVD_RETENTION_EVIDENCE:
                return "evidence";
        case EVD_RETENTION_LONG_TERM:
                return "long_term";
        }
        return NULL;
}

static void format_day(int64_t us, char *buf, size_t size)
{
        time_t t = (time_t)(us / 1000000);
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d", &tm) == 0)
                snprintf(buf, size, "?");
}

static void format_period(int64_t us, char *buf, size_t size)
{
        if (us == EVD_RETENTION_PERMANENT)
                snprintf(buf, size, "permanent");
        else if (us % US_PER_DAY == 0)
                snprintf(buf, size, "%" PRId64 "d", us / US_PER_DAY);
        else
                snprintf(buf, size, "%" PRId64 "s", us / 1000000);
}

static int64_t add_sat(int64_t a, int64_t b)
{
        if (b == EVD_RETENTION_PERMANENT || a > EVD_RETENTION_PERMANENT - b)
                return EVD_RETENTION_PERMANENT;
        return a + b;
}

void evd_retention_evaluate(const EvdRetentionPolicy *p, const EvdRetentionFacts *f,
                            EvdRetentionVerdict *ret)
{
        char day[16], per[24];
        *ret = (EvdRetentionVerdict){.wins = EVD_RETENTION_ORDINARY};

        /* ordinary: every recording */
        ret->keep_until_us = add_sat(f->recorded_us, p->ordinary_us);
        format_day(f->recorded_us, day, sizeof(day));
        format_period(p->ordinary_us, per, sizeof(per));
        snprintf(ret->why, sizeof(ret->why), "ordinary: recorded %s + %s", day, per);

        /* evidence: in a case; the case file's retention runs from its closing */
        if (f->current_case) {
                int64_t after = p->evidence_after_close_us;
                for (size_t i = 0; f->case_category && i < p->n_categories; i++)
                        if (strcmp(p->categories[i].name, f->case_category) == 0)
                                after = p->categories[i].after_close_us;
                int64_t until = EVD_RETENTION_PERMANENT;
                if (!f->case_known)
                        snprintf(ret->why, sizeof(ret->why),
                                 "evidence: in case '%s' (given by the recorder, not "
                                 "opened here: kept until it is)",
                                 f->current_case);
                else if (!f->case_closed)
                        snprintf(ret->why, sizeof(ret->why), "evidence: in case '%s' (%s, open)",
                                 f->current_case, strna(f->case_category));
                else {
                        until = add_sat(f->case_closed_us, after);
                        format_day(f->case_closed_us, day, sizeof(day));
                        format_period(after, per, sizeof(per));
                        snprintf(ret->why, sizeof(ret->why), "evidence: in case '%s' (%s, closed %s + %s)",
                                 f->current_case, strna(f->case_category), day, per);
                }
                if (until >= ret->keep_until_us) {
                        ret->keep_until_us = until;
                        ret->wins = EVD_RETENTION_EVIDENCE;
                }
                ret->blocked = true;
        }

        /* long-term (002:§18): permanent, always the longest */
        if (f->long_term) {
                ret->keep_until_us = EVD_RETENTION_PERMANENT;
                ret->wins = EVD_RETENTION_LONG_TERM;
                ret->blocked = true;
                snprintf(ret->why, sizeof(ret->why), "long-term: %s (002:§18)", strna(f->long_term_reason));
        }

        if (f->hold) {
                ret->held = true;
                ret->blocked = true;
                size_t n = strlen(ret->why);
                snprintf(ret->why + n, sizeof(ret->why) - n, "; legal hold");
        }
}

bool evd_retention_disposable(const EvdRetentionFacts *f, const EvdRetentionVerdict *v, int64_t now_us)
{
        return !f->disposed && !v->blocked && v->keep_until_us != EVD_RETENTION_PERMANENT &&
               v->keep_until_us <= now_us;
}

EvdRetentionReport *evd_retention_report_free(EvdRetentionReport *r)
{
        if (!r)
                return NULL;
        db_lifecycle_facts_free(r->files, r->n_files);
        free(r->verdicts);
        free(r);
        return NULL;
}

int evd_retention_report(EvdDb *db, const EvdRetentionPolicy *p, EvdRetentionReport **ret, EvdError *err)
{
        _cleanup_(evd_retention_report_freep) EvdRetentionReport *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        int q = db_lifecycle_facts(db, NULL, 0, &r->files, &r->n_files, &r->truncated, err);
        if (q < 0)
                return q;
        r->verdicts = calloc(r->n_files ? r->n_files : 1, sizeof(*r->verdicts));
        if (!r->verdicts)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_files; i++)
                evd_retention_evaluate(p, &r->files[i], &r->verdicts[i]);
        *ret = steal_ptr(&r);
        return 0;
}

/* Bytes a stored file occupies (0 when absent). */
static uint64_t stored_size(EvdStore *store, const char *rel)
{
        struct stat st;
        if (!rel || fstatat(evd_store_root_fd(store), rel, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode))
                return 0;
        return (uint64_t)st.st_size;
}

int evd_storage_budget(const EvdRetentionReport *rep, EvdStore *store, uint64_t reserve_bytes,
                       int64_t now_us, EvdStorageBudget *ret, EvdError *err)
{
        EvdStorageBudget b = {.reserve_bytes = reserve_bytes, .days_until_reserve = -1};
        struct statvfs sv;
        if (fstatvfs(evd_store_root_fd(store), &sv) < 0)
                return evd_error_set_errno(err, -errno, "reading the size of the store %s",
                                           evd_store_root(store));
        b.fs_total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
        b.fs_free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;

        uint64_t recent = 0;
        for (size_t i = 0; i < rep->n_files; i++) {
                const EvdRetentionFacts *f = &rep->files[i];
                if (f->disposed)
                        continue;
                uint64_t bytes = stored_size(store, f->original_path) + stored_size(store, f->archive_path);
                b.stored_bytes += bytes;
                if (f->ingested_us >= now_us - 7 * US_PER_DAY)
                        recent += bytes;
                if (evd_retention_disposable(f, &rep->verdicts[i], now_us + 30 * US_PER_DAY))
                        b.frees_30d_bytes += bytes;
                if (evd_retention_disposable(f, &rep->verdicts[i], now_us + 7 * US_PER_DAY))
                        b.frees_7d_bytes += bytes;
        }
        b.ingest_per_day_bytes = recent / 7;
        b.reserve_reached = b.fs_free_bytes <= reserve_bytes;
        if (b.reserve_reached)
                b.days_until_reserve = 0;
        else if (b.ingest_per_day_bytes > 0)
                b.days_until_reserve =
                    (double)(b.fs_free_bytes - reserve_bytes) / (double)b.ingest_per_day_bytes;
        *ret = b;
        return 0;
}
