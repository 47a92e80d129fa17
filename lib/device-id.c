/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "device-id.h"

/* 1..max ASCII letters or digits (no locale: isalnum() would accept more under some locales). */
static bool ascii_alnum(const char *s, size_t max)
{
        if (!s)
                return false;
        size_t n = strnlen(s, max + 1);
        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
                        return false;
        }
        return true;
}

bool evd_device_id_valid(const char *s)
{
        return ascii_alnum(s, EVD_DEVICE_ID_MAX);
}

bool evd_officer_id_valid(const char *s)
{
        return ascii_alnum(s, EVD_OFFICER_ID_MAX);
}

bool evd_unit_code_valid(const char *s)
{
        return ascii_alnum(s, EVD_UNIT_CODE_MAX);
}
