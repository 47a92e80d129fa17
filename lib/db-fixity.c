/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fixity check's SQL (lib/fixity.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db-internal.h"
#include "fixity.h"

void evd_db_fixity_rows_free(EvdDbFixityRow *rows, size_t n)
{
        for (size_t i = 0; rows && i < n; i++) {
                free(rows[i].original_path);
                free(rows[i].archive_path);
        }
        free(rows);
}

int evd_db_fixity_rows(EvdDb *db, int64_t after_id, size_t limit, EvdDbFixityRow **ret_rows, size_t *ret_n,
                       EvdError *err)
{
        DbParams p = {0};
        db_param_i64(&p, after_id);
        db_param_i64(&p, (int64_t)limit);
        _cleanup_(PQclearp) PGresult *res = NULL;
        int r = db_exec(db, "reading files for the fixity check",
                        "SELECT id, size, original_path, sha256, archive_path, archive_sha256 FROM files\n"
                        "WHERE id > $1 ORDER BY id LIMIT $2",
                        &p, &res, err);
        if (r < 0)
                return r;
        int n = PQntuples(res);
        EvdDbFixityRow *rows = calloc((size_t)n + 1, sizeof(*rows));
        if (!rows)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                EvdDbFixityRow *x = &rows[i];
                x->id = db_get_i64(res, i, 0);
                x->size = (uint64_t)db_get_i64(res, i, 1);
                x->original_path = db_get_strdup(res, i, 2);
                snprintf(x->sha256, sizeof(x->sha256), "%s", PQgetvalue(res, i, 3));
                if (!db_is_null(res, i, 4)) {
                        x->archive_path = db_get_strdup(res, i, 4);
                        if (!x->archive_path) {
                                evd_db_fixity_rows_free(rows, (size_t)n);
                                return -ENOMEM;
                        }
                        snprintf(x->archive_sha256, sizeof(x->archive_sha256), "%s", PQgetvalue(res, i, 5));
                }
                if (!x->original_path) {
                        evd_db_fixity_rows_free(rows, (size_t)n);
                        return -ENOMEM;
                }
        }
        *ret_rows = rows;
        *ret_n = (size_t)n;
        return 0;
}

int evd_db_fixity_position(EvdDb *db, int64_t *ret_after_id, EvdError *err)
{
        DbParams p = {0};
        db_param_text(&p, EVD_CUSTODY_FIXITY_CHECKED);
        _cleanup_(PQclearp) PGresult *res = NULL;
        /* newest first through the primary key: only the latest fixity run's event is read */
        int r = db_exec(db, "reading the last fixity position",
                        "SELECT file_id FROM custody_events WHERE kind = $1 ORDER BY id DESC LIMIT 1", &p,
                        &res, err);
        if (r < 0)
                return r;
        *ret_after_id = PQntuples(res) > 0 ? db_get_i64(res, 0, 0) : 0;
        return 0;
}
