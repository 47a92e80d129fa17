/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every evidockctl command group (daemon/ctl-<group>.c) shares: the command table entry, option
 * parsing that rejects what it does not know, the configuration loaded only when a command needs it
 * (so `COMMAND --help` never reads the config, the database or the store), the database and spool,
 * time arguments, text tables with CJK-aware column widths, and JSON output through json-c.
 *
 * Adding a command group: see the comment at the top of daemon/evidockctl.c. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "config.h"
#include "db.h"
#include "spool.h"

/* Exit status of every command (documented in evidockctl(1)). */
enum {
        EXIT_CLEAN = 0,
        EXIT_ERROR = 1,
        EXIT_FINDINGS = 2, /* done, with findings or files left for later */
        EXIT_REFUSED = 3,
        EXIT_SPOOLED = 4,
        EXIT_USAGE = 64
};

typedef struct Ctl {
        EvdConfig cfg;
        bool cfg_loaded;
        const char *config_path;    /* --config, else $EVIDOCK_CONFIG, else the compiled default */
        const char *db_override;    /* --database, else $EVIDOCK_DATABASE */
        const char *store_override; /* --store */
        bool json;                  /* --json (global or per command) */
        bool quiet;
        char cmd[64]; /* "device retire": the command being run, for messages */
} Ctl;

/* A command group: `evidockctl NAME ...`. run() gets argv[0] == NAME. */
typedef struct CtlCommand {
        const char *name;
        const char *synopsis; /* for `evidockctl --help`: "device enroll|list|retire ..." */
        const char *summary;  /* one line */
        int (*run)(Ctl *c, int argc, char **argv);
} CtlCommand;

/* A subcommand of a group (`device retire`): run() gets argv[0] == its name. */
typedef struct CtlSubcommand {
        const char *name;
        const char *summary;
        int (*run)(Ctl *c, int argc, char **argv);
} CtlSubcommand;

/* The groups (one per daemon/ctl-<group>.c), listed in daemon/evidockctl.c. One per line: helpers add
 * theirs in parallel. */
extern const CtlCommand ctl_cmd_ingest;
extern const CtlCommand ctl_cmd_log;
extern const CtlCommand ctl_cmd_chain;
extern const CtlCommand ctl_cmd_device;
extern const CtlCommand ctl_cmd_dockings;
extern const CtlCommand ctl_cmd_audit;
extern const CtlCommand ctl_cmd_reconcile;
extern const CtlCommand ctl_cmd_spool;
extern const CtlCommand ctl_cmd_status;
extern const CtlCommand ctl_cmd_config;
extern const CtlCommand ctl_cmd_report;
extern const CtlCommand ctl_cmd_access;
extern const CtlCommand ctl_cmd_export;
/* after ingest (docs/lifecycle.md) */
extern const CtlCommand ctl_cmd_case;
extern const CtlCommand ctl_cmd_mark;
extern const CtlCommand ctl_cmd_retention;
extern const CtlCommand ctl_cmd_dispose;
/* The storage budget for `evidockctl status` (ctl-retention.c): store use, what retention frees in 7/30
 * days, days until [store] reserve at the recent ingest rate, as text. Says on stderr why it cannot. */
int ctl_retention_print_budget(Ctl *c);
/* The same as a JSON object for `status --json` ("storage_budget"); NULL when it cannot be had. */
json_object *ctl_retention_budget_json(Ctl *c);
extern const CtlCommand ctl_cmd_disc;

/* Runs the subcommand argv[1] of group `argv[0]`; `GROUP --help` lists the subcommands (on stdout, exit
 * 0); a missing or unknown subcommand is a usage error. */
int ctl_dispatch(Ctl *c, const CtlSubcommand *subs, size_t n_subs, int argc, char **argv);

/* ---- options ------------------------------------------------------------------------------------ */

/* Every command accepts these two; add them to its struct option table. */
#define CTL_OPTION_HELP                                                                                     \
        {                                                                                                   \
                "help", no_argument, NULL, 'h'                                                              \
        }
#define CTL_OPTION_JSON                                                                                     \
        {                                                                                                   \
                "json", no_argument, NULL, 'j'                                                              \
        }

enum {
        CTL_OPT_END = 0,
        CTL_OPT_HELP_SHOWN = -1, /* --help printed: return EXIT_CLEAN */
        CTL_OPT_USAGE = -2,      /* an unknown option or a missing argument, said on stderr */
};

/* getopt_long over argv (argv[0] is the command word) with the short options derived from opts.
 * help is the command's help text; its first line is the usage line ("Usage: evidockctl log [...]").
 * Returns the next option (> 0), CTL_OPT_END, or one of the negative CTL_OPT_* after printing help or
 * the error. 'j' (--json) sets c->json and is not returned. Positional arguments are left in
 * argv[optind..] (GNU permutation: they may come before or after the options). */
int ctl_getopt(Ctl *c, int argc, char **argv, const struct option *opts, const char *help);

/* The exit status for a negative ctl_getopt() result. */
static inline int ctl_opt_exit(int o)
{
        return o == CTL_OPT_HELP_SHOWN ? EXIT_CLEAN : EXIT_USAGE;
}

/* After ctl_getopt: requires min..max positional arguments (max < 0: any number); otherwise says what
 * is wrong with the usage line and returns -1. Returns their count. */
int ctl_positional(Ctl *c, int argc, char **argv, int min, int max, const char *help);

/* For a command with no options but --help and --json: parses them and checks for min..max positional
 * arguments. Returns -1 when the command should go on (arguments in argv[optind..]), else the exit status
 * to return (help shown: EXIT_CLEAN; usage error: EXIT_USAGE). */
int ctl_parse_plain(Ctl *c, int argc, char **argv, int min, int max, const char *help);

/* One option of a command parsed by ctl_parse(): a flag (set true when given) or a text argument (the
 * last one given is kept). A table ends with {}. key is the getopt value: a letter is also the short
 * option. */
typedef struct CtlOption {
        const char *name;
        int key;
        bool *flag;        /* no argument */
        const char **text; /* required argument */
} CtlOption;

/* The option loop of most commands: opts (may be NULL) plus --json and --help, then min..max positional
 * arguments (ctl_positional()). Returns -1 when the command should go on (arguments in argv[optind..]),
 * else the exit status to return (help shown: EXIT_CLEAN; usage error: EXIT_USAGE). */
int ctl_parse(Ctl *c, int argc, char **argv, const CtlOption *opts, int min, int max, const char *help);

/* A positive number (a job, batch, request or file id); -EINVAL for anything else. */
int ctl_parse_id(const char *s, int64_t *ret);

/* Prints "evidockctl CMD: <message>", the usage line of help and "Try 'evidockctl CMD --help'." on
 * stderr; returns EXIT_USAGE. */
int ctl_usage_error(Ctl *c, const char *help, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prints "evidockctl CMD: <message>" on stderr; returns EXIT_ERROR. */
int ctl_error(Ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- configuration, database, spool ------------------------------------------------------------- */

/* Loads the configuration (once) with the --database/--store overrides; says what is wrong on stderr.
 * An explicitly named config file (--config, $EVIDOCK_CONFIG) must exist. */
int ctl_config(Ctl *c);

/* Loads the configuration and opens the evidence database; says what is wrong on stderr. */
int ctl_open_db(Ctl *c, EvdDb **ret_db);

/* The spool, if one is configured ("" disables it); NULL when it cannot be used (said on stderr unless
 * quiet). Needs ctl_config() first. */
EvdSpool *ctl_open_spool(Ctl *c, bool quiet);

/* Replays the spool into db and says what it did. Returns the replay's result. */
int ctl_replay_spool(Ctl *c, EvdSpool *s, EvdDb *db, bool quiet);
/* Says what a replay did (r: its result, err its message); quiet: only when it did something. */
void ctl_replay_report(Ctl *c, const char *spool_dir, const EvdSpoolReplay *rep, int r, const EvdError *err,
                       bool quiet);

/* An unknown recorder is an error: says so (with a known ID differing only in case, if there is one)
 * and returns EXIT_ERROR; 0 if the database knows device_id (enrolled, retired or docked). */
int ctl_check_device(Ctl *c, EvdDb *db, const char *device_id);

/* ---- arguments ---------------------------------------------------------------------------------- */

/* A point in time for --since/--until: ISO 8601 with Z or an offset ("2026-11-22T08:00:00Z",
 * "2026-11-22T08:00:00+08:00"), local "2026-11-22 08:00[:00]", a local date "2026-11-22" (its
 * midnight), "now", "today" (local midnight), "yesterday" (the midnight before), or a duration meaning
 * that long ago ("24h", "30m", "7d", "90s"). -EINVAL otherwise. */
int ctl_parse_time(const char *s, int64_t now_us, int64_t *ret_us);

/* ---- text tables ------------------------------------------------------------------------------- */

/* Columns padded to their widest cell in terminal columns: East Asian wide characters (CJK, Hangul,
 * fullwidth forms, emoji) count two, combining marks zero, whatever the locale. */
typedef struct CtlTable CtlTable;
CtlTable *ctl_table_new(unsigned n_cols, const char *const headers[]);
void ctl_table_right(CtlTable *t, unsigned col); /* right-align a (numeric) column */
/* Adds one row of n_cols cells (copied; NULL shows as "-"). -ENOMEM on failure. */
int ctl_table_add(CtlTable *t, const char *const cells[]);
int ctl_table_addf(CtlTable *t, unsigned n, ...); /* n cells as const char * arguments */
void ctl_table_print(const CtlTable *t, FILE *f);
size_t ctl_table_rows(const CtlTable *t);
void ctl_table_free(CtlTable *t);
static inline void ctl_table_freep(CtlTable **t)
{
        ctl_table_free(*t);
}

/* Display width of a UTF-8 string in terminal columns (invalid bytes count one). */
size_t ctl_display_width(const char *s);

/* ---- JSON --------------------------------------------------------------------------------------- */

/* A JSON string (NULL -> null); invalid UTF-8 bytes become U+FFFD so the output is always valid JSON. */
json_object *ctl_json_string(const char *s);
json_object *ctl_json_time(int64_t utc_us, int tz_minutes); /* ISO 8601 with offset */
json_object *ctl_json_time_local(int64_t utc_us);           /* in the dock's time zone */
/* Prints o on one line plus "\n" to stdout (o stays the caller's); -EIO if stdout failed. */
int ctl_json_print(json_object *o);
static inline void json_object_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}

/* Writes the custody event for showing these files' metadata if any is restricted or above
 * (evd_access_log_listing()); a command shows them only when this succeeded. */
int ctl_log_listing(EvdDb *db, const EvdDbFileRow *files, size_t n, const char *what, EvdError *err);

/* A file row / finding row as a JSON object (the `log --json` schema, evidockctl(1)); NULL on ENOMEM. */
json_object *ctl_json_file_row(const EvdDbFileRow *f);
json_object *ctl_json_finding_row(const EvdDbFindingRow *x);
