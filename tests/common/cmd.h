/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Runs a shell command (system(3)); 0 if it exited 0, else -1 after a TAP comment that names the command
 * and its status, so a failing set-up step says what failed. */
int test_run_cmd(const char *cmd);
