/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The custody log against a real scratch PostgreSQL: append, verify, tamper detection, concurrent
 * appenders. Tampering is done the way an attacker with superuser rights would: disable the append-only
 * trigger, change a row, enable it again. */
#include <sys/wait.h>

#include "check.h"
#include "common/pg.h"
#include "custody.h"
#include "db.h"

#define CONCURRENT_PROCS 3
#define EVENTS_PER_PROC  60

static int fresh_log(const char *tag, unsigned n_events, char **ret_conninfo, EvdDb **ret_db)
{
        CHECK_OR_RET(test_pg_new_database(tag, ret_conninfo) == 0);
        CHECK_OR_RET(evd_db_open(*ret_conninfo, ret_db, NULL) == 0);
        static const char *const kinds[] = {EVD_CUSTODY_DOCKED, EVD_CUSTODY_IDENTIFIED, EVD_CUSTODY_COPIED,
                                            EVD_CUSTODY_VERIFIED, EVD_CUSTODY_RECORDED};
        for (unsigned i = 0; i < n_events; i++) {
                char detail[64];
                snprintf(detail, sizeof(detail), "step %u, 中文 detail", i);
                EvdCustodyEntry e = {.kind = kinds[i % ELEMENTSOF(kinds)],
                                     .device_id = i % 2 ? "AB12345" : NULL,
                                     .detail = detail};
                int64_t id = 0;
                CHECK_OR_RET(evd_custody_append(*ret_db, &e, &id, NULL) == 0);
                CHECK_OR_RET(id == (int64_t)i + 1);
        }
        return 0;
}

static int tamper(const char *conninfo, const char *sql)
{
        char buf[512], msg[256] = "";
        snprintf(buf, sizeof(buf),
                 "ALTER TABLE custody_events DISABLE TRIGGER custody_events_append_only; %s; "
                 "ALTER TABLE custody_events ENABLE TRIGGER custody_events_append_only",
                 sql);
        int r = test_pg_exec(conninfo, buf, msg, sizeof(msg));
        if (r < 0)
                printf("# tamper: %s\n", msg);
        return r;
}

static void test_empty_log(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_log("custody_empty", 0, &ci, &db) == 0);
        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);
        CHECK_INT(rep.n_events, ==, 0);
        CHECK_INT(rep.head_id, ==, 0);
}

static void test_append_verify(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_log("custody_ok", 2500, &ci, &db) == 0); /* more than one FETCH batch */
        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);
        CHECK_INT(rep.n_events, ==, 2500);
        CHECK_INT(rep.head_id, ==, 2500);
        CHECK_INT(rep.first_bad_id, ==, 0);
        CHECK_INT(rep.problem, ==, EVD_CUSTODY_OK);

        /* The head hash is what is stored for the last event, and event 1 links to zero. */
        char sql[200];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM custody_events WHERE id = 2500 AND hash = '%s'",
                 evd_hex(rep.head_hash, EVD_DIGEST_SIZE, (char[EVD_DB_HEX_SIZE]){}));
        CHECK_INT(test_pg_query_int(ci, sql), ==, 1);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(*) FROM custody_events WHERE id = 1 AND prev_hash = "
                                        "repeat('0', 64)"),
                  ==, 1);
}

/* The documented encoding, recomputed here byte by byte, gives the same hash as the library. */
static void test_encoding_documented(void)
{
        EvdCustodyEvent ev = {.id = 1,
                              .time_us = 1718000000123456,
                              .kind = "docked",
                              .device_id = NULL,
                              .docking_id = 3,
                              .file_id = 0,
                              .detail = "ab"};
        uint8_t prev[EVD_DIGEST_SIZE] = {}, got[EVD_DIGEST_SIZE], want[EVD_DIGEST_SIZE];
        CHECK_OK(evd_custody_event_hash(&ev, prev, got));

        uint8_t buf[256];
        size_t o = 0;
        memset(buf, 0, 32);
        o += 32;
        memcpy(buf + o, "evidock-custody-v1", 18);
        o += 18;
        static const uint8_t fields[] = {
            0,    0,    0,    0,    0,    0,    0,    1,              /* id */
            0x00, 0x06, 0x1a, 0x83, 0x0b, 0xbb, 0x42, 0x40,           /* time_us 1718000000123456 */
            0,    0,    0,    6,    'd',  'o',  'c',  'k',  'e', 'd', /* kind */
            0xff, 0xff, 0xff, 0xff,                                   /* device_id: NULL */
            0,    0,    0,    0,    0,    0,    0,    3,              /* docking_id */
            0,    0,    0,    0,    0,    0,    0,    0,              /* file_id: none */
            0,    0,    0,    2,    'a',  'b',                        /* detail */
        };
        memcpy(buf + o, fields, sizeof(fields));
        o += sizeof(fields);
        CHECK_OK(evd_hash_buffer(EVD_HASH_SHA256, buf, o, want));
        CHECK(memcmp(got, want, EVD_DIGEST_SIZE) == 0);

        /* A NULL device and an empty one must differ. */
        ev.device_id = "";
        CHECK_OK(evd_custody_event_hash(&ev, prev, want));
        CHECK(memcmp(got, want, EVD_DIGEST_SIZE) != 0);
}

static void test_tamper_detail(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_log("custody_tamper", 20, &ci, &db) == 0);

        /* The application cannot change it... */
        char msg[256] = "";
        CHECK_INT(
            test_pg_exec(ci, "UPDATE custody_events SET detail = 'forged' WHERE id = 7", msg, sizeof(msg)),
            <, 0);
        CHECK(strstr(msg, "append-only") != NULL);
        /* ...a superuser can, and verify names the first event touched. */
        CHECK(tamper(ci, "UPDATE custody_events SET detail = 'forged' WHERE id IN (7, 12)") == 0);
        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        printf("# %s\n", rep.detail);
        CHECK(!rep.ok);
        CHECK_INT(rep.first_bad_id, ==, 7);
        CHECK_INT(rep.problem, ==, EVD_CUSTODY_HASH_MISMATCH);
        CHECK_INT(rep.head_id, ==, 6);
        CHECK(strstr(rep.detail, "event 7") != NULL);

        /* Forging the hash of the changed row too moves the break to the next link. */
        _cleanup_free_ char *ci2 = NULL;
        _cleanup_(evd_db_closep) EvdDb *db2 = NULL;
        CHECK(fresh_log("custody_tamper2", 10, &ci2, &db2) == 0);
        CHECK(tamper(ci2, "UPDATE custody_events SET hash = repeat('a', 64) WHERE id = 4") == 0);
        CHECK_OK(evd_custody_verify(db2, &rep, NULL));
        CHECK(!rep.ok);
        CHECK_INT(rep.first_bad_id, ==, 4);
        CHECK_INT(rep.problem, ==, EVD_CUSTODY_HASH_MISMATCH);
        CHECK(tamper(ci2, "UPDATE custody_events SET detail = 'x', hash = (SELECT hash FROM custody_events "
                          "WHERE id = 4) WHERE id = 9") == 0);
        CHECK_OK(evd_custody_verify(db2, &rep, NULL));
        CHECK_INT(rep.first_bad_id, ==, 4); /* still the first */

        /* A changed time is caught as well. */
        _cleanup_free_ char *ci3 = NULL;
        _cleanup_(evd_db_closep) EvdDb *db3 = NULL;
        CHECK(fresh_log("custody_tamper3", 5, &ci3, &db3) == 0);
        CHECK(tamper(ci3, "UPDATE custody_events SET at = at - interval '1 microsecond' WHERE id = 2") == 0);
        CHECK_OK(evd_custody_verify(db3, &rep, NULL));
        CHECK_INT(rep.first_bad_id, ==, 2);
}

static void test_tamper_delete(void)
{
        EvdCustodyReport rep;
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_log("custody_delete", 10, &ci, &db) == 0);
        CHECK(tamper(ci, "DELETE FROM custody_events WHERE id = 5") == 0);
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        printf("# %s\n", rep.detail);
        CHECK(!rep.ok);
        CHECK_INT(rep.first_bad_id, ==, 5);
        CHECK_INT(rep.problem, ==, EVD_CUSTODY_ID_GAP);
        CHECK(strstr(rep.detail, "event 5 is missing") != NULL);

        /* Deleting and renumbering to hide the gap breaks the link instead. */
        CHECK(tamper(ci, "UPDATE custody_events SET id = id - 1 WHERE id > 5") == 0);
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(!rep.ok);
        CHECK_INT(rep.first_bad_id, ==, 5);
        CHECK_INT(rep.problem, ==, EVD_CUSTODY_PREV_MISMATCH);

        /* Deleting the first event. */
        _cleanup_free_ char *ci2 = NULL;
        _cleanup_(evd_db_closep) EvdDb *db2 = NULL;
        CHECK(fresh_log("custody_delete1", 3, &ci2, &db2) == 0);
        CHECK(tamper(ci2, "DELETE FROM custody_events WHERE id = 1") == 0);
        CHECK_OK(evd_custody_verify(db2, &rep, NULL));
        CHECK_INT(rep.first_bad_id, ==, 1);
        CHECK_INT(rep.problem, ==, EVD_CUSTODY_ID_GAP);
}

/* Rolled back with the caller's transaction: no event, no gap. */
static void test_append_in_transaction(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_log("custody_tx", 2, &ci, &db) == 0);
        EvdCustodyEntry e = {.kind = EVD_CUSTODY_REFUSED, .detail = "not enrolled"};
        CHECK_OK(evd_db_begin(db, NULL));
        CHECK_OK(evd_custody_append(db, &e, NULL, NULL));
        CHECK_OK(evd_db_rollback(db));
        int64_t id = 0;
        CHECK_OK(evd_custody_append(db, &e, &id, NULL));
        CHECK_INT(id, ==, 3);
        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        CHECK(rep.ok);
        CHECK_INT(rep.n_events, ==, 3);
}

static void test_concurrent_appenders(void)
{
        _cleanup_free_ char *ci = NULL;
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        CHECK(fresh_log("custody_conc", 1, &ci, &db) == 0);

        pid_t pids[CONCURRENT_PROCS];
        for (unsigned p = 0; p < CONCURRENT_PROCS; p++) {
                pids[p] = fork();
                CHECK(pids[p] >= 0);
                if (pids[p] == 0) {
                        EvdDb *mine = NULL;
                        EvdError err = {};
                        int r = evd_db_open(ci, &mine, &err);
                        for (unsigned i = 0; r >= 0 && i < EVENTS_PER_PROC; i++) {
                                char detail[32];
                                snprintf(detail, sizeof(detail), "proc %u event %u", p, i);
                                EvdCustodyEntry e = {.kind = EVD_CUSTODY_COPIED, .detail = detail};
                                r = evd_custody_append(mine, &e, NULL, &err);
                        }
                        if (r < 0)
                                printf("# appender %u: %s\n", p, evd_error_message(&err, r));
                        evd_db_close(mine);
                        fflush(stdout);
                        _exit(r < 0 ? 1 : 0); /* no atexit: the parent owns the cluster */
                }
        }
        int failed = 0;
        for (unsigned p = 0; p < CONCURRENT_PROCS; p++) {
                int status = 0;
                waitpid(pids[p], &status, 0);
                failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        }
        CHECK_INT(failed, ==, 0);

        EvdCustodyReport rep;
        CHECK_OK(evd_custody_verify(db, &rep, NULL));
        if (!rep.ok)
                printf("# %s\n", rep.detail);
        CHECK(rep.ok);
        CHECK_INT(rep.n_events, ==, 1 + CONCURRENT_PROCS * EVENTS_PER_PROC);
        CHECK_INT(test_pg_query_int(ci, "SELECT count(DISTINCT prev_hash) FROM custody_events"), ==,
                  1 + CONCURRENT_PROCS * EVENTS_PER_PROC);
}

int main(void)
{
        RUN(test_empty_log);
        RUN(test_append_verify);
        RUN(test_encoding_documented);
        RUN(test_tamper_detail);
        RUN(test_tamper_delete);
        RUN(test_append_in_transaction);
        RUN(test_concurrent_appenders);
        return check_finish();
}
