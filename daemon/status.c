/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "output.h"
#include "status.h"

const char *evd_status_path(void)
{
        const char *p = getenv("EVIDOCK_STATUS_FILE");
        return p && *p ? p : "/run/evidock/status.json";
}

int evd_status_write(const EvdStatus *st)
{
        const char *path = evd_status_path();
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        FILE *f = fopen(tmp, "we");
        if (!f)
                return -errno;
        char t[48];
        /* the writer is evidockd itself: its pid tells a reader whether it still runs */
        fprintf(f, "{\"pid\":%d,\"updated_us\":%" PRId64 ",\"updated\":", (int)getpid(), st->updated_us);
        json_string(f, format_time_local(st->updated_us, t, sizeof(t)));
        fprintf(f, ",\"started\":");
        json_string(f, format_time_local(st->started_us, t, sizeof(t)));
        fprintf(f,
                ",\"database_ok\":%s,\"spool_backlog\":%u,\"store_free_bytes\":%" PRIu64
                ",\"store_reserve_bytes\":%" PRIu64 ",\"store_promised_bytes\":%" PRIu64
                ",\"store_paused\":%s,\"files_ingested\":%" PRIu64 ",\"last_error\":",
                st->database_ok ? "true" : "false", st->spool_backlog, st->store_free_bytes,
                st->store_reserve_bytes, st->store_promised_bytes, st->store_paused ? "true" : "false",
                st->files_ingested);
        json_string(f, st->last_error[0] ? st->last_error : NULL);
        fprintf(f, ",\"database_error\":");
        json_string(f, st->database_error[0] ? st->database_error : NULL);
        fprintf(f, ",\"jobs\":[");
        for (unsigned i = 0; i < st->n_jobs && i < EVD_STATUS_MAX_JOBS; i++) {
                const EvdStatusJob *j = &st->jobs[i];
                fprintf(f, "%s\n {\"source\":", i ? "," : "");
                json_string(f, j->source);
                fprintf(f, ",\"device_id\":");
                json_string(f, j->device_id[0] ? j->device_id : NULL);
                fprintf(f, ",\"officer_id\":");
                json_string(f, j->officer_id[0] ? j->officer_id : NULL);
                if (j->docking_id > 0)
                        fprintf(f, ",\"docking_id\":%" PRId64, j->docking_id);
                fprintf(f, ",\"state\":");
                json_string(f, j->state);
                fprintf(f, ",\"file\":");
                json_string(f, j->file[0] ? j->file : NULL);
                fprintf(f,
                        ",\"file_done\":%" PRIu64 ",\"file_total\":%" PRIu64 ",\"file_started_us\":%" PRId64
                        ",\"file_index\":%u,\"files_done\":%u,\"files_total\":%u",
                        j->file_done, j->file_total, j->file_started_us, j->file_index, j->files_done,
                        j->files_total);
                if (j->has_clock_offset)
                        fprintf(f, ",\"clock_offset_ms\":%" PRId64, j->clock_offset_us / 1000);
                fprintf(f, ",\"last_error\":");
                json_string(f, j->last_error[0] ? j->last_error : NULL);
                fprintf(f, "}");
        }
        fprintf(f, "],\"discs\":[");
        for (unsigned i = 0; i < st->n_discs && i < EVD_STATUS_MAX_DISCS; i++) {
                const EvdStatusDisc *d = &st->discs[i];
                fprintf(f, "%s\n {\"drive\":", i ? "," : "");
                json_string(f, d->drive);
                if (d->job_id > 0) {
                        fprintf(f, ",\"job_id\":%" PRId64 ",\"stage\":", d->job_id);
                        json_string(f, d->stage);
                        fprintf(f,
                                ",\"disc\":%u,\"discs\":%u,\"copy\":%u,\"copies\":%u,\"done_bytes\":%" PRIu64
                                ",\"total_bytes\":%" PRIu64 ",\"percent\":%.1f,\"mbps\":%.2f",
                                d->disc, d->discs, d->copy, d->copies, d->done, d->total, d->percent,
                                d->mbps);
                        if (d->eta_s >= 0)
                                fprintf(f, ",\"eta_s\":%.0f", d->eta_s);
                }
                fprintf(f, ",\"updated_us\":%" PRId64 ",\"last\":", d->updated_us);
                json_string(f, d->last[0] ? d->last : NULL);
                fprintf(f, "}");
        }
        fprintf(f, "]}\n");
        if (fflush(f) != 0 || ferror(f)) {
                fclose(f);
                unlink(tmp);
                return -EIO;
        }
        fclose(f);
        if (rename(tmp, path) < 0) {
                int r = -errno;
                unlink(tmp);
                return r;
        }
        return 0;
}
