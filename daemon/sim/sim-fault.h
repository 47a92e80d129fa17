/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidock-sim's faults: what each one does to a planned, made or signed volume. The driver (main.c)
 * calls each step between the volume's own steps (sim-volume.h), so that the volume knows nothing
 * of how a fault is made:
 *   sim_volume_plan -> sim_fault_plan_times -> sim_volume_name_files -> sim_fault_plan_records
 *   -> sim_volume_make_media -> sim_volume_sign -> sim_fault_after_sign -> sim_volume_write */
#pragma once

#include "sim-volume.h"

const char *sim_fault_to_string(SimFault f);
int sim_fault_from_string(const char *s); /* SimFault or -EINVAL */

int sim_fault_plan_times(SimVolume *v, EvdError *err);   /* moves recordings in time (before names) */
int sim_fault_plan_records(SimVolume *v, EvdError *err); /* marks records to edit, adds conflicting ones */
int sim_fault_after_sign(SimVolume *v, EvdError *err);   /* files and manifest lines */
