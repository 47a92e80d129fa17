/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a libFuzzer target over every file of a corpus directory, as a plain TAP test (one test point per
 * file), so that fuzz targets run in every `meson test` without libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT (16u * 1024u * 1024u + 1u)

static int by_name(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
                return 2;
        }
        struct dirent **names = NULL;
        int n = scandir(argv[1], &names, NULL, by_name);
        if (n < 0) {
                printf("Bail out! cannot read %s\n", argv[1]);
                return 1;
        }
        int run = 0;
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] == '.') {
                        free(names[i]);
                        continue;
                }
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[1], names[i]->d_name);
                FILE *f = fopen(path, "rb");
                uint8_t *buf = malloc(FUZZ_MAX_INPUT);
                size_t len = f && buf ? fread(buf, 1, FUZZ_MAX_INPUT, f) : 0;
                if (f)
                        fclose(f);
                /* A crash or abort() ends the process: meson reports the test as failed. */
                LLVMFuzzerTestOneInput(buf, len);
                printf("ok %d - %s (%zu bytes)\n", ++run, names[i]->d_name, len);
                fflush(stdout);
                free(buf);
                free(names[i]);
        }
        free(names);
        printf("1..%d\n", run);
        return run > 0 ? 0 : 1;
}
