/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidockd's burn-to-disc workers: one thread per [disc] drive, each with its own database connection,
 * running lib/disc-job.h steps (the oldest runnable job first) whenever its drive has a blank disc.
 * A drive without a blank, or no job, is asked again every DISC_RUNNER_IDLE_S seconds; a lost database
 * every DISC_RUNNER_RETRY_S. Progress (percent, MB/s, ETA) goes to the journal at most every
 * DISC_RUNNER_PROGRESS_S per drive, outcomes always; xorriso is killed when it says nothing for
 * 10 minutes (lib/disc-xorriso.h), like a hung docking. The same progress (stage, disc n of m, copy,
 * percent, MB/s, ETA; about once a second) and each outcome go to the manager through its report
 * callback, for status.json and `evidockctl status`. */
#pragma once

#include "config.h"
#include "status.h"

#define DISC_RUNNER_MAX_DRIVES 8u
#define DISC_RUNNER_IDLE_S     10u
#define DISC_RUNNER_RETRY_S    30u
#define DISC_RUNNER_PROGRESS_S 15u

typedef struct DiscRunner DiscRunner;

/* Called on a drive's worker thread with that drive's state (drive = its index in [disc] drives, below
 * EVD_STATUS_MAX_DISCS): it must only hand it over (evidockd posts it to the manager's mailbox). */
typedef void (*DiscRunnerReport)(unsigned drive, const EvdStatusDisc *st, void *userdata);

/* Starts the workers for cfg's [disc] drives (copied); report may be NULL. No drive: *ret = NULL and 0. */
int disc_runner_start(const EvdConfig *cfg, DiscRunnerReport report, void *userdata, DiscRunner **ret);
/* Stops the workers: a burn in progress is cancelled (xorriso killed; the disc is recorded as failed when
 * the job resumes) and the threads are joined. Accepts NULL. */
void disc_runner_stop(DiscRunner *r);
