/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The current case beside the recorder's in log/chain listings (ctl-case-column.h). */
#include <stdio.h>
#include <stdlib.h>

#include "ctl-case-column.h"
#include "ctl-common.h"
#include "lifecycle.h"
#include "macro.h"
#include "output.h"

void ctl_case_column_load(CtlCaseColumn *col, EvdDb *db, const EvdDbFileRow *rows, size_t n)
{
        *col = (CtlCaseColumn){};
        if (n == 0)
                return;
        _cleanup_free_ int64_t *ids = calloc(n, sizeof(*ids));
        if (!ids)
                return;
        for (size_t i = 0; i < n; i++)
                ids[i] = rows[i].id;
        EvdError err = {};
        int r = evd_case_current_of_files(db, ids, n, &col->current, &col->recorder, &err);
        if (r < 0) {
                fprintf(stderr, "cannot read the current cases (the recorder's are shown): %s\n",
                        evd_error_message(&err, r));
                return;
        }
        col->n = n;
}

void ctl_case_column_clear(CtlCaseColumn *col)
{
        evd_strv_free(col->current, col->n);
        evd_strv_free(col->recorder, col->n);
        *col = (CtlCaseColumn){};
}

const char *ctl_case_column_text(const CtlCaseColumn *col, size_t i, const EvdDbFileRow *row, char *buf,
                                 size_t size)
{
        const char *rec = row->case_number && row->case_number[0] ? row->case_number : NULL;
        if (i >= col->n) {
                snprintf(buf, size, "%s", rec ? text_shown(rec) : "-");
                return buf;
        }
        const char *cur = col->current[i];
        if ((cur == NULL) == (rec == NULL) && (!cur || strcmp(cur, rec) == 0))
                snprintf(buf, size, "%s", cur ? text_shown(cur) : "-");
        else
                snprintf(buf, size, "%s (recorder: %s)", cur ? text_shown(cur) : "none",
                         rec ? text_shown(rec) : "none");
        return buf;
}

void ctl_case_column_json(const CtlCaseColumn *col, size_t i, json_object *row)
{
        if (!row)
                return;
        if (i < col->n)
                json_object_object_add(row, "current_case", ctl_json_string(col->current[i]));
}
