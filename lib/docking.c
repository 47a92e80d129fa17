/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connect, go offline if needed, replay, ingest: docking.h. */
#include <errno.h>
#include <unistd.h>

#include "docking.h"

int evd_docking_run(EvdSource *src, EvdStore *store, const char *conninfo, const EvdIngestOptions *opts,
                    bool spool_if_refused, EvdDockingStartFn on_start, EvdIngestSummary *ret, EvdError *err)
{
        EvdDockingStart start = {};
        EvdError cerr = {}, rerr = {};
        _cleanup_(evd_db_closep) EvdDb *db = NULL;
        bool spool = opts->spool_dir && opts->spool_dir[0];

        int r = evd_db_open(conninfo, &db, &cerr);
        start.database_ok = r >= 0;
        start.connect_error = r < 0 ? r : 0;
        start.connect_err = &cerr;
        start.login_refused = r < 0 && evd_db_login_refused(r);
        start.offline =
            r < 0 && spool && (evd_spool_db_unreachable(r) || (start.login_refused && spool_if_refused));
        if (r < 0 && !start.offline) {
                if (on_start)
                        on_start(&start, opts->userdata);
                if (err)
                        *err = cerr;
                return r;
        }
        /* no spool directory yet: no earlier docking waits in it (it is made when one goes offline) */
        if (db && spool && (access(opts->spool_dir, F_OK) == 0 || errno != ENOENT)) {
                /* earlier dockings' entries go first (unless another replay is at it already) */
                _cleanup_(evd_spool_freep) EvdSpool *s = NULL;
                int q = evd_spool_open(opts->spool_dir, &s, &rerr);
                if (q >= 0)
                        q = evd_spool_replay(s, db, &start.replay, &rerr);
                start.replayed = true;
                start.replay_error = q < 0 ? q : 0;
        }
        start.replay_err = &rerr;
        if (on_start)
                on_start(&start, opts->userdata);
        return evd_ingest_run(src, store, db, opts, ret, err);
}
