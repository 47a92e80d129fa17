/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The media worker's side of the session (media-worker.h): what evidock-media-worker runs. Linked with
 * FFmpeg (it calls evd_media_archive()), so it is in evd_media, never in libevidock. */
#pragma once

#include "media-worker.h"

/* Called by the worker after the request is read and before the media work starts (test builds inject
 * faults here); may be NULL. */
typedef void (*EvdMediaWorkerHook)(const char *src_name, void *userdata);

/* Serves requests from channel_fd until it ends: for each, takes its two descriptors to
 * EVD_MEDIA_WORKER_FD_SOURCE/_OUTPUT, runs evd_media_archive() with progress frames, writes the reply and
 * closes them. Returns 0 at the end of the channel (whatever the media results were), a negative errno
 * when a request was malformed or a reply could not be written (the worker then exits with
 * EVD_MEDIA_WORKER_EXIT_PROTOCOL). */
int evd_media_worker_serve(int channel_fd, EvdMediaWorkerHook hook, void *userdata);
