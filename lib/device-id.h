/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who a recorder and its officer are, as the dock checks them: one rule per identifier, used by every
 * stage (identify, the database layer, the spool). docs/architecture.md, "Identify".
 *
 *   device ID     1-15 ASCII letters or digits (a GA/T 947 serial is 7 of them)
 *   officer ID    1-15 ASCII letters or digits (the chain format's officer number is 6 digits)
 *   unit code     1-31 ASCII letters or digits (the chain format's unit code is 12 of them)
 *
 * The recorder's own manifest format is stricter (docs/chain-format.md); what the dock accepts from an
 * enrollment or an identity file is this. Valid means safe to use in a file name and a log line. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define EVD_DEVICE_ID_MAX  15u                      /* characters */
#define EVD_DEVICE_ID_SIZE (EVD_DEVICE_ID_MAX + 1u) /* a buffer for one, NUL included */
#define EVD_OFFICER_ID_MAX 15u
#define EVD_UNIT_CODE_MAX  31u

bool evd_device_id_valid(const char *s);  /* NULL: false */
bool evd_officer_id_valid(const char *s); /* NULL: false */
bool evd_unit_code_valid(const char *s);  /* NULL: false */
