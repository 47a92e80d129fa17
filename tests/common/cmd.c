/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"

int test_run_cmd(const char *cmd)
{
        int st = system(cmd);
        if (st != 0)
                printf("# command failed (%d): %s\n", st, cmd);
        return st == 0 ? 0 : -1;
}
