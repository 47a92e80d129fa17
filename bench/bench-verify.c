/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-verify: what chain verification costs on one recorder volume, without the copy.
 *
 *   bench-verify --volume DIR --key PUB.pem [--repeat N]
 *
 * Times, N times (default 5), the three steps ingest adds on top of copy+hash for verification:
 *   parse    evd_manifest_parse() of EVIDOCK/CHAIN.LOG (already in memory: reading it is I/O)
 *   verify   evd_chain_verify(): links, sequence, identity and every record's signature
 *   content  evd_chain_item_check_content() of every segment against the size and suite hash that
 *            the copy computed (here computed once beforehand, outside the timing, as the copy does
 *            it in the same pass as reading)
 * and prints one line of key=value pairs with the median of each (microseconds), for bench/run.
 * Exit status 1 when the volume does not verify INTACT: then the figures would time the wrong path. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain.h"
#include "hash.h"
#include "manifest.h"
#include "signature.h"
#include "source.h"

#define MAX_REPEAT 1000u

static int64_t mono_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

static int64_t median_ns(int64_t *v, unsigned n)
{
        qsort(v, n, sizeof *v, cmp_i64);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The suite hash of every listed file, as the copy would have computed it. Caller frees. */
static int hash_listing(int vol_fd, const EvdSourceEntry *files, size_t n, EvdSuite suite,
                        uint8_t (**ret_hashes)[EVD_HASH_SIZE], uint64_t **ret_sizes, uint64_t *ret_bytes)
{
        _cleanup_free_ uint8_t(*hashes)[EVD_HASH_SIZE] = calloc(n ? n : 1, sizeof *hashes);
        _cleanup_free_ uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
        uint64_t bytes = 0;
        if (!hashes || !sizes)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = openat(vol_fd, files[i].path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                int r = evd_hash_fd(evd_suite_hash(suite), fd, hashes[i], &sizes[i]);
                if (r < 0)
                        return r;
                bytes += sizes[i];
        }
        *ret_hashes = steal_ptr(&hashes);
        *ret_sizes = steal_ptr(&sizes);
        *ret_bytes = bytes;
        return 0;
}

static ssize_t listing_index(const EvdSourceEntry *files, size_t n, const char *path)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(files[i].path, path) == 0)
                        return (ssize_t)i;
        return -1;
}

static void help(void)
{
        printf(
            "Usage: bench-verify --volume DIR --key PUB.pem [--repeat N]\n"
            "Times manifest parse + evd_chain_verify + evd_chain_item_check_content on a recorder volume\n"
            "and prints the medians (microseconds) as key=value pairs.\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
            {"volume", required_argument, NULL, 'v'},
            {"key", required_argument, NULL, 'k'},
            {"repeat", required_argument, NULL, 'n'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        const char *volume = NULL, *key_path = NULL;
        unsigned repeat = 5;
        int c;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'v':
                        volume = optarg;
                        break;
                case 'k':
                        key_path = optarg;
                        break;
                case 'n':
                        repeat = (unsigned)strtoul(optarg, NULL, 10);
                        if (repeat == 0 || repeat > MAX_REPEAT) {
                                fprintf(stderr, "bench-verify: --repeat wants 1..%u\n", MAX_REPEAT);
                                return 2;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        }
        if (!volume || !key_path) {
                help();
                return 2;
        }

        EvdError err = {};
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        int r = evd_key_load_public_pem(key_path, &key, &err);
        if (r < 0) {
                fprintf(stderr, "bench-verify: %s\n", evd_error_message(&err, r));
                return 1;
        }
        EvdSuite suite;
        char key_id[EVD_KEY_ID_STRLEN + 1];
        if (evd_key_suite(key, &suite) < 0 || evd_key_id(key, key_id) < 0) {
                fprintf(stderr, "bench-verify: %s is not a key of a chain suite\n", key_path);
                return 1;
        }

        _cleanup_(evd_source_freep) EvdSource *src = NULL;
        r = evd_source_dir_new(volume, &src, &err);
        _cleanup_free_ char *mbuf = NULL, *device_txt = NULL;
        size_t mlen = 0, device_txt_len = 0;
        if (r >= 0)
                r = evd_source_read_small(src, EVD_CHAIN_MANIFEST_PATH, EVD_MANIFEST_MAX_BYTES, &mbuf, &mlen,
                                          &err);
        if (r >= 0)
                r = evd_source_read_small(src, EVD_CHAIN_DEVICE_PATH, EVD_DEVICE_TXT_MAX, &device_txt,
                                          &device_txt_len, &err);
        EvdSourceEntry *files = NULL;
        size_t n_files = 0;
        if (r >= 0)
                r = evd_source_list(src, &files, &n_files, &err);
        if (r < 0) {
                fprintf(stderr, "bench-verify: %s: %s\n", volume, evd_error_message(&err, r));
                return 1;
        }
        EvdDeviceInfo info = {};
        r = evd_device_info_parse(device_txt, device_txt_len, &info, &err);
        if (r < 0) {
                fprintf(stderr, "bench-verify: %s/%s: %s\n", volume, EVD_CHAIN_DEVICE_PATH,
                        evd_error_message(&err, r));
                evd_source_entries_free(files, n_files);
                return 1;
        }

        _cleanup_close_ int vol_fd = open(volume, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ uint8_t(*hashes)[EVD_HASH_SIZE] = NULL;
        _cleanup_free_ uint64_t *sizes = NULL;
        uint64_t bytes = 0;
        r = vol_fd < 0 ? -errno : hash_listing(vol_fd, files, n_files, suite, &hashes, &sizes, &bytes);
        if (r < 0) {
                fprintf(stderr, "bench-verify: hashing the files of %s: %s\n", volume, strerror(-r));
                evd_source_entries_free(files, n_files);
                return 1;
        }

        EvdChainKey ck = {.suite = suite,
                          .key = key,
                          .key_id = key_id,
                          .device_id = info.device_id,
                          .officer_id = info.officer_id[0] ? info.officer_id : NULL};
        EvdChainHead no_head = {};
        _cleanup_free_ int64_t *t_parse = calloc(repeat, sizeof(int64_t));
        _cleanup_free_ int64_t *t_verify = calloc(repeat, sizeof(int64_t));
        _cleanup_free_ int64_t *t_content = calloc(repeat, sizeof(int64_t));
        _cleanup_free_ int64_t *t_total = calloc(repeat, sizeof(int64_t));
        if (!t_parse || !t_verify || !t_content || !t_total) {
                evd_source_entries_free(files, n_files);
                return 1;
        }
        /* Which listing entry each report item is: found once in an untimed warm-up round (a linear
         * search per item would be counted in content otherwise); the item order is deterministic. */
        _cleanup_free_ ssize_t *file_of_item = NULL;
        size_t n_items = 0;
        size_t n_records = 0, n_checked = 0, n_not_intact = 0, n_findings = 0;
        for (int k = -1; k < (int)repeat && r >= 0; k++) {
                struct timespec wall;
                clock_gettime(CLOCK_REALTIME, &wall);
                int64_t t0 = mono_now_ns();
                _cleanup_(evd_manifest_freep) EvdManifest *m = NULL;
                r = evd_manifest_parse(mbuf, mlen, &m);
                if (r < 0) {
                        fprintf(stderr, "bench-verify: parsing the manifest: %s\n", strerror(-r));
                        break;
                }
                int64_t t1 = mono_now_ns();
                EvdChainInput in;
                evd_chain_input_init(&in);
                in.manifest = m;
                in.device_txt = device_txt;
                in.device_txt_len = device_txt_len;
                in.key = &ck;
                in.known_head = &no_head;
                in.files = files;
                in.n_files = n_files;
                in.now_us = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000;
                _cleanup_(evd_chain_report_freep) EvdChainReport *rep = NULL;
                r = evd_chain_verify(&in, &rep, &err);
                if (r < 0) {
                        fprintf(stderr, "bench-verify: %s\n", evd_error_message(&err, r));
                        break;
                }
                int64_t t2 = mono_now_ns();
                if (k < 0) {
                        n_items = rep->n_items;
                        file_of_item = calloc(n_items ? n_items : 1, sizeof *file_of_item);
                        if (!file_of_item) {
                                r = -ENOMEM;
                                break;
                        }
                        for (size_t i = 0; i < n_items; i++)
                                file_of_item[i] = rep->items[i].present
                                                      ? listing_index(files, n_files, rep->items[i].file)
                                                      : -1;
                }
                if (rep->n_items != n_items) {
                        fprintf(stderr, "bench-verify: the report changed between rounds\n");
                        r = -EINVAL;
                        break;
                }
                n_checked = n_not_intact = 0;
                for (size_t i = 0; i < rep->n_items; i++) {
                        EvdChainItem *it = &rep->items[i];
                        ssize_t f = file_of_item[i];
                        if (f < 0 || !it->record)
                                continue;
                        EvdVerdict content;
                        if (evd_chain_item_check_content(it, sizes[f], hashes[f], &content) < 0)
                                continue;
                        n_checked++;
                        if (content != EVD_VERDICT_INTACT ||
                            evd_chain_item_verdict(it) != EVD_VERDICT_INTACT)
                                n_not_intact++;
                }
                int64_t t3 = mono_now_ns();
                n_records = m->n_records;
                n_findings = rep->n_findings;
                if (k < 0)
                        continue;
                t_parse[k] = t1 - t0;
                t_verify[k] = t2 - t1;
                t_content[k] = t3 - t2;
                t_total[k] = t3 - t0;
        }
        evd_source_entries_free(files, n_files);
        if (r < 0)
                return 1;
        printf("suite=%s records=%zu segments_checked=%zu bytes=%" PRIu64
               " repeat=%u parse_us=%.1f verify_us=%.1f "
               "content_us=%.1f total_us=%.1f not_intact=%zu docking_findings=%zu\n",
               evd_suite_to_string(suite), n_records, n_checked, bytes, repeat,
               median_ns(t_parse, repeat) / 1e3, median_ns(t_verify, repeat) / 1e3,
               median_ns(t_content, repeat) / 1e3, median_ns(t_total, repeat) / 1e3, n_not_intact,
               n_findings);
        if (n_not_intact || n_findings || n_checked == 0) {
                fprintf(stderr,
                        "bench-verify: %s does not verify INTACT (%zu items not intact, %zu docking "
                        "findings, %zu checked): the timing is not of the normal path\n",
                        volume, n_not_intact, n_findings, n_checked);
                return 1;
        }
        return 0;
}
