/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Watched directories: every subdirectory that appears (or is there at start) is a recorder volume to
 * dock, unless its done mark (manager-done-mark.c) says it was taken completely and is unchanged. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "manager-internal.h"

/* ---- watching ------------------------------------------------------------------------------------- */

/* A volume directory appeared (or was there at start). */
static void watch_take(Manager *m, const char *dir, uint64_t delay)
{
        if (job_find(m, dir))
                return;
        if (volume_is_done(dir)) {
                log_info("volume %s was ingested completely and is unchanged since: not docked again", dir);
                return;
        }
        (void)docking_queue_dir(m, dir, delay, 0);
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Manager *m = userdata;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        ssize_t n = read(fd, buf, sizeof(buf));
        for (char *p = buf; n > 0 && p < buf + n;) {
                struct inotify_event *ev = (struct inotify_event *)p;
                p += sizeof(*ev) + ev->len;
                if (!(ev->mask & IN_ISDIR) || !ev->len || ev->name[0] == '.')
                        continue;
                /* A directory renamed into place is complete; one created in place (mkdir + mount, cp -r)
                 * may still be filling: give it time to settle. */
                uint64_t delay = ev->mask & IN_MOVED_TO ? 0 : EVD_MANAGER_SETTLE_USEC;
                for (unsigned i = 0; i < m->cfg.n_watch_dirs; i++)
                        if (m->watch_wd[i] == ev->wd) {
                                _cleanup_free_ char *dir = NULL;
                                if (asprintf(&dir, "%s/%s", m->cfg.watch_dirs[i], ev->name) >= 0)
                                        watch_take(m, dir, delay);
                        }
        }
        jobs_dispatch(m);
        return 0;
}

static int scan_watch_dir(Manager *m, const char *dir)
{
        DIR *d = opendir(dir);
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || de->d_type != DT_DIR)
                        continue;
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, de->d_name) >= 0)
                        watch_take(m, p, 0);
        }
        closedir(d);
        return 0;
}

int watch_start(Manager *m)
{
        m->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (m->inotify_fd < 0)
                return -errno;
        for (unsigned i = 0; i < m->cfg.n_watch_dirs; i++) {
                const char *d = m->cfg.watch_dirs[i];
                if (mkdir(d, 0750) < 0 && errno != EEXIST)
                        log_warn("cannot create watch directory %s: %s", d, strerror(errno));
                m->watch_wd[i] = inotify_add_watch(m->inotify_fd, d, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
                if (m->watch_wd[i] < 0) {
                        log_error("cannot watch %s: %s", d, strerror(errno));
                        continue;
                }
                volume_marks_prune(d);
                scan_watch_dir(m, d);
                log_info("watching %s for recorder volumes", d);
        }
        return sd_event_add_io(m->event, NULL, m->inotify_fd, EPOLLIN, on_inotify, m);
}

void watch_stop(Manager *m)
{
        closep(&m->inotify_fd);
}
