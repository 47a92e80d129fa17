/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the manifest reader and the chain verifier behind it.
 *
 * Invariants checked (abort() on violation, so both libFuzzer and the plain corpus run catch them):
 *   - parsing never fails except on the documented bounds;
 *   - every record that parsed formats back to exactly its line and re-parses to the same record hash;
 *   - chain verification of whatever parsed succeeds (the outcome is data) and gives one item per file. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "manifest.h"
#include "signature.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *fuzz_key(char id[static EVD_KEY_ID_STRLEN + 1])
{
        /* One key for the whole run: generating one per input would dominate the run time. */
        static EVP_PKEY *key;
        static char key_id[EVD_KEY_ID_STRLEN + 1];
        if (!key) {
                if (evd_key_generate(EVD_SUITE_ED25519_SHA256, &key, NULL) < 0 ||
                    evd_key_id(key, key_id) < 0)
                        abort();
        }
        memcpy(id, key_id, sizeof key_id);
        return key;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        EvdManifest *m = NULL;
        int r = evd_manifest_parse(data, size, &m);
        if (r == -EFBIG)
                return 0;
        if (r < 0)
                abort();

        for (size_t i = 0; i < m->n_records; i++) {
                const EvdRecord *rec = &m->records[i];
                char *line = NULL;
                if (evd_record_to_line(rec, &line, NULL) < 0)
                        abort();
                size_t len = strlen(line);
                /* The formatted line is the parsed line (plus LF) byte for byte. */
                const char *start = (const char *)data;
                for (unsigned l = 1; l < rec->line; l++)
                        start = memchr(start, '\n', size - (size_t)(start - (const char *)data)) + 1;
                if ((size_t)(start - (const char *)data) + len > size || memcmp(start, line, len) != 0)
                        abort();
                EvdRecord again = {};
                if (evd_record_parse_line(line, len - 1, &again, NULL) < 0 ||
                    memcmp(again.record_hash, rec->record_hash, EVD_HASH_SIZE) != 0)
                        abort();
                evd_record_clear(&again);
                free(line);
        }

        /* Verify against an unrelated key, with the files the records name plus one foreign file. */
        char key_id[EVD_KEY_ID_STRLEN + 1];
        EVP_PKEY *key = fuzz_key(key_id);
        EvdChainKey ck = {
            .suite = EVD_SUITE_ED25519_SHA256, .key = key, .key_id = key_id, .device_id = "A123456"};
        size_t n_files = 0;
        EvdSourceEntry *files = calloc(m->n_records + 1, sizeof *files);
        if (!files)
                abort();
        for (size_t i = 0; i < m->n_records; i++)
                if (m->records[i].file && i % 3 != 2) /* some present, some missing */
                        files[n_files++] =
                            (EvdSourceEntry){.path = m->records[i].file, .size = m->records[i].size};
        files[n_files++] = (EvdSourceEntry){.path = (char *)"VIDEO/FOREIGN.MP4", .size = 1};
        EvdChainHead head = {.valid = size % 2 == 1, .seq = size % 7};
        EvdChainInput in;
        evd_chain_input_init(&in);
        in.manifest = m;
        in.key = &ck;
        in.known_head = &head;
        in.files = files;
        in.n_files = n_files;
        in.now_us = INT64_C(1795305600) * 1000000;
        in.device_txt = (const char *)data;
        in.device_txt_len = size;
        EvdChainReport *rep = NULL;
        if (evd_chain_verify(&in, &rep, NULL) < 0)
                abort();
        /* Every listed file (but the chain's own two) is an item, present. */
        for (size_t f = 0; f < n_files; f++) {
                if (strcmp(files[f].path, EVD_CHAIN_MANIFEST_PATH) == 0 ||
                    strcmp(files[f].path, EVD_CHAIN_DEVICE_PATH) == 0)
                        continue;
                bool found = false;
                for (size_t k = 0; k < rep->n_items && !found; k++)
                        found = rep->items[k].present && strcmp(rep->items[k].file, files[f].path) == 0;
                if (!found)
                        abort();
        }
        for (size_t k = 0; k < rep->n_items; k++) {
                uint8_t h[EVD_HASH_SIZE] = {};
                EvdVerdict v;
                r = evd_chain_item_check_content(&rep->items[k], 0, h, &v);
                if (r < 0 && r != -ENOENT)
                        abort();
                (void)evd_chain_item_verdict(&rep->items[k]);
        }
        evd_chain_report_free(rep);
        free(files);
        evd_manifest_free(m);
        return 0;
}
