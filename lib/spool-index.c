/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The in-memory "already spooled?" index of one device's FILE entries (spool-internal.h): its keys and
 * the string lists it and the known-files cache (spool-cache.c) are made of. Calls nothing of spool.c
 * or spool-cache.c: both use it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "spool-internal.h"

void spool_strv_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

int spool_strv_push(char ***v, size_t *n, size_t *size, const char *item)
{
        if (*n == *size) {
                size_t ns = *size ? *size * 2 : 64;
                char **nv = realloc(*v, ns * sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *size = ns;
        }
        if (!((*v)[*n] = strdup(item)))
                return -ENOMEM;
        (*n)++;
        return 0;
}

void spool_index_clear(EvdSpool *s)
{
        for (size_t i = 0; i < s->n_index; i++)
                free(s->index[i]);
        free(s->index);
        s->index = NULL;
        s->n_index = s->size_index = 0;
        s->index_built = false;
}

int spool_index_add(EvdSpool *s, const char *item)
{
        return spool_strv_push(&s->index, &s->n_index, &s->size_index, item);
}

/* "r:<record hash>" for a chained file, "f:<sha256>:<source path>" for a foreign one (hex digests). */
static char *index_key(const char *record_hash_hex, const char *sha256_hex, const char *source_path)
{
        char *k = NULL;
        if (record_hash_hex)
                return asprintf(&k, "r:%s", record_hash_hex) < 0 ? NULL : k;
        return asprintf(&k, "f:%s:%s", strna(sha256_hex), strna(source_path)) < 0 ? NULL : k;
}

/* The same from raw digests (each may be NULL). */
char *spool_index_key_of(const uint8_t *record_hash, const uint8_t *sha256, const char *source_path)
{
        char rh[EVD_DB_HEX_SIZE], sh[EVD_DB_HEX_SIZE];
        return index_key(record_hash ? evd_hex(record_hash, EVD_DIGEST_SIZE, rh) : NULL,
                         sha256 ? evd_hex(sha256, EVD_DIGEST_SIZE, sh) : NULL, source_path);
}

void spool_index_note_file(EvdSpool *s, const char *device_id, const EvdDbFile *file)
{
        if (!s->index_built || strcmp(s->index_device, device_id) != 0)
                return;
        _cleanup_free_ char *k = spool_index_key_of(file->record_hash, file->sha256, file->source_path);
        if (!k || spool_index_add(s, k) < 0)
                spool_index_clear(s); /* rebuilt at the next lookup */
}
