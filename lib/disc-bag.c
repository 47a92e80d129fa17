/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "bag.h"
#include "disc-bag.h"
#include "disc-xorriso.h"

/* A growing text buffer for the small files. */
typedef struct Buf {
        char *s;
        size_t n, cap;
        int error;
} Buf;

static void _printf_(2, 3) buf_add(Buf *b, const char *fmt, ...)
{
        if (b->error)
                return;
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (need < 0) {
                b->error = -EINVAL;
                return;
        }
        if (b->n + (size_t)need + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->n + (size_t)need + 1024);
                char *s = realloc(b->s, cap);
                if (!s) {
                        b->error = -ENOMEM;
                        return;
                }
                b->s = s;
                b->cap = cap;
        }
        va_start(ap, fmt);
        vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        b->n += (size_t)need;
}

static void buf_html(Buf *b, const char *s)
{
        for (; s && *s; s++) {
                switch (*s) {
                case '<':
                        buf_add(b, "&lt;");
                        break;
                case '>':
                        buf_add(b, "&gt;");
                        break;
                case '&':
                        buf_add(b, "&amp;");
                        break;
                case '"':
                        buf_add(b, "&quot;");
                        break;
                default:
                        buf_add(b, "%c", *s);
                }
        }
}

static void buf_free(Buf *b)
{
        free(b->s);
        *b = (Buf){};
}

void evd_disc_volume_id(const char *case_numbers, int64_t job_id, unsigned part, char out[33])
{
        char suffix[16];
        snprintf(suffix, sizeof(suffix), "_%u", part);
        bool one_case = case_numbers && *case_numbers && !strchr(case_numbers, ',');
        if (!one_case) {
                snprintf(out, 33, "EVD_J%" PRId64 "%s", job_id, suffix);
                return;
        }
        size_t room = 32 - 4 - strlen(suffix);
        char c[33] = "";
        size_t n = 0;
        for (const char *p = case_numbers; *p && n < room; p++) {
                char ch = *p;
                if (ch >= 'a' && ch <= 'z')
                        ch = (char)(ch - 'a' + 'A');
                else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
                        ch = '_';
                c[n++] = ch;
        }
        c[n] = '\0';
        snprintf(out, 33, "EVD_%s%s", c, suffix);
}

void evd_disc_label(int64_t job_id, unsigned part, unsigned parts, char *out, size_t size)
{
        snprintf(out, size, "evd-j%" PRId64 "-d%uof%u", job_id, part, parts);
}

EvdDiscBag *evd_disc_bag_free(EvdDiscBag *bag)
{
        if (!bag)
                return NULL;
        for (size_t i = 0; i < bag->n_files; i++)
                free(bag->files[i].path);
        free(bag->files);
        free(bag->bag_dir);
        free(bag->graft_path);
        free(bag);
        return NULL;
}

typedef struct Listed {
        int64_t file_id;
        const char *role;
} Listed;

typedef struct Build {
        const EvdDiscBagSpec *spec;
        EvdBag *bag;
        FILE *graft;
        int store_fd;
        Listed *listed;
        size_t n_listed, cap_listed;
        Buf jsonl; /* the JSON lines file being assembled by a DB callback */
        EvdError *key_err;
} Build;

static int list_from_store(Build *b, const char *store_path, uint64_t size, const char *sha_hex,
                           int64_t file_id, const char *role, EvdError *err)
{
        struct stat st;
        int fd = openat(b->store_fd, store_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return evd_error_set_errno(
                    err, errno == ENOENT ? -ENOENT : negative_errno(),
                    "recording %" PRId64 ": the %s '%s' is missing from the store", file_id,
                    strcmp(role, "original") == 0 ? "original" : "archive copy", store_path);
        int r = fstat(fd, &st) < 0 ? negative_errno() : 0;
        close(fd);
        if (r < 0)
                return evd_error_set_errno(err, r, "recording %" PRId64 ": cannot stat '%s'", file_id,
                                           store_path);
        if (!S_ISREG(st.st_mode))
                return evd_error_set(err, -EBADMSG,
                                     "recording %" PRId64 ": '%s' in the store is not a regular file",
                                     file_id, store_path);
        if (size != UINT64_MAX && (uint64_t)st.st_size != size)
                return evd_error_set(err, -EBADMSG,
                                     "recording %" PRId64
                                     ": '%s' in the store has %lld bytes, the database says %" PRIu64,
                                     file_id, store_path, (long long)st.st_size, size);
        uint8_t sha[EVD_DIGEST_SIZE];
        if (evd_unhex(sha_hex, sha, sizeof(sha)) < 0)
                return evd_error_set(err, -EBADMSG,
                                     "recording %" PRId64 ": no SHA-256 of '%s' in the database", file_id,
                                     store_path);
        r = evd_bag_add_listed(b->bag, store_path, (uint64_t)st.st_size, sha, err);
        if (r < 0)
                return evd_error_prefix(err, "recording %" PRId64 ": ", file_id), r;
        char src[4200], dst[EVD_BAG_PATH_MAX * 2 + 16], q_src[8500], q_dst[sizeof(dst) * 2 + 3];
        snprintf(src, sizeof(src), "%s/%s", b->spec->store_root, store_path);
        snprintf(dst, sizeof(dst), "/data/%s", store_path);
        if (evd_xorriso_quote(src, q_src, sizeof(q_src)) < 0 ||
            evd_xorriso_quote(dst, q_dst, sizeof(q_dst)) < 0)
                return evd_error_set(err, -EINVAL,
                                     "recording %" PRId64 ": path '%s' cannot be given to xorriso", file_id,
                                     src);
        if (fprintf(b->graft, "-map %s %s\n", q_src, q_dst) < 0)
                return evd_error_set_errno(err, -EIO, "writing the xorriso graft list");
        if (b->n_listed == b->cap_listed) {
                size_t cap = MAX((size_t)64, b->cap_listed * 2);
                Listed *l = realloc(b->listed, cap * sizeof(*l));
                if (!l)
                        return evd_error_set(err, -ENOMEM, "building a disc: out of memory");
                b->listed = l;
                b->cap_listed = cap;
        }
        b->listed[b->n_listed++] = (Listed){.file_id = file_id, .role = role};
        return 0;
}

static int jsonl_line(const char *text, void *userdata)
{
        Build *b = userdata;
        buf_add(&b->jsonl, "%s\n", text);
        return b->jsonl.error;
}

static int key_file(const char *device_id, const char *key_id, const char *pem, const char *json,
                    void *userdata)
{
        Build *b = userdata;
        char path[128];
        snprintf(path, sizeof(path), "keys/%s-%s.pem", device_id, key_id);
        int r = evd_bag_add_bytes(b->bag, path, pem, strlen(pem), NULL, b->key_err);
        if (r == -EEXIST || (r < 0 && b->key_err && b->key_err->code == -EEXIST))
                r = 0; /* the same key enrolled again */
        buf_add(&b->jsonl, "%s\n", json);
        return r < 0 ? r : b->jsonl.error;
}

static int add_buf(Build *b, const char *path, Buf *buf, EvdError *err)
{
        if (buf->error)
                return evd_error_set(err, buf->error, "building data/%s: out of memory", path);
        int r = evd_bag_add_bytes(b->bag, path, buf->s ? buf->s : "", buf->n, NULL, err);
        buf_free(buf);
        return r;
}

/* A signature in base64 without padding, decoded. */
static int base64_decode(const char *s, size_t n, uint8_t *out, size_t size, size_t *ret_n)
{
        char tmp[1024];
        if (n + 4 > sizeof(tmp) || (n + 3) / 4 * 3 > size)
                return -EINVAL;
        memcpy(tmp, s, n);
        size_t pad = (4 - n % 4) % 4;
        if (pad == 3)
                return -EINVAL;
        memset(tmp + n, '=', pad);
        int got = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)(n + pad));
        if (got < 0)
                return -EINVAL;
        *ret_n = (size_t)got - pad;
        return 0;
}

static int add_chain_record(Build *b, const EvdDbDiscFileInfo *f, EvdError *err)
{
        if (!f->chain_record)
                return 0;
        char path[96];
        snprintf(path, sizeof(path), "chain/%" PRId64 ".record.txt", f->id);
        Buf line = {};
        buf_add(&line, "%s\n", f->chain_record);
        int r = add_buf(b, path, &line, err);
        if (r < 0)
                return r;
        const char *sig = strstr(f->chain_record, ";sig=");
        size_t tbs_n = sig ? (size_t)(sig - f->chain_record) : strlen(f->chain_record);
        snprintf(path, sizeof(path), "chain/%" PRId64 ".tbs", f->id);
        r = evd_bag_add_bytes(b->bag, path, f->chain_record, tbs_n, NULL, err);
        if (r < 0 || !sig)
                return r;
        uint8_t raw[512];
        size_t raw_n;
        if (base64_decode(sig + 5, strlen(sig + 5), raw, sizeof(raw), &raw_n) < 0)
                return 0; /* an unreadable signature is the chain verifier's finding, kept in record.txt */
        snprintf(path, sizeof(path), "chain/%" PRId64 ".sig", f->id);
        return evd_bag_add_bytes(b->bag, path, raw, raw_n, NULL, err);
}

static const char readme_fmt[] =
    "证据光盘 / EVIDENCE DISC  %s  (%s)\n"
    "==========================================================================\n"
    "\n"
    "本光盘由 evidock 刻录，是一个 BagIt 包（RFC 8493）。无需 evidock，只用标准工具即可核验。\n"
    "This disc was written by evidock. It is a BagIt bag (RFC 8493) and can be checked without evidock,\n"
    "with standard tools only.\n"
    "\n"
    "光盘 / Disc: %u / %u   组标识 / Bag-Group-Identifier: %s\n"
    "案件编号 / Case number(s): %s\n"
    "录像数 / Recordings: %zu\n"
    "\n"
    "目录 / Layout\n"
    "  bagit.txt, bag-info.txt      BagIt 声明与说明 / declaration and description (counts, Payload-Oxum)\n"
    "  manifest-sha256.txt          data/ 下每个文件的 SHA-256 / SHA-256 of every file under data/\n"
    "  tagmanifest-sha256.txt       上述清单文件的 SHA-256 / SHA-256 of the files above\n"
    "  data/originals/, data/quarantine/   原始文件（逐位一致）/ the originals, bit-exact\n"
    "  data/archive/                归档副本（Matroska/JPEG，带标签）/ tagged archive copies\n"
    "  data/records/<id>.json       数据库中的记录与核验结论 / the database record and its findings\n"
    "  data/chain/<id>.record.txt   记录仪签名的链记录 / the recorder's signed chain record\n"
    "  data/chain/<id>.tbs, .sig    被签名的字节与签名（二进制）/ the signed bytes and the signature "
    "(binary)\n"
    "  data/keys/                   记录仪登记的公钥 / the recorders' enrolled public keys (PEM)\n"
    "  data/custody/events.jsonl    这些文件的保管链事件 / custody-log events of these files\n"
    "  data/custody/head.json       事件所链接到的日志头 / the log head they chain to\n"
    "  data/cases.jsonl             每个文件当前的案件关联与标记 / current case association and marks\n"
    "  data/index.html              用浏览器打开的目录 / a listing to open in any browser (no script)\n"
    "\n"
    "核验步骤 / How to verify\n"
    "\n"
    "1. 复制或挂载光盘，进入光盘根目录（含 bagit.txt 的目录）。\n"
    "   Mount or copy the disc and change to its top directory (the one holding bagit.txt).\n"
    "\n"
    "2. 核验清单文件本身 / Check the manifests themselves:\n"
    "       sha256sum -c tagmanifest-sha256.txt\n"
    "   每行应为 OK / every line must say OK.\n"
    "\n"
    "3. 核验全部数据文件 / Check every payload file:\n"
    "       sha256sum -c manifest-sha256.txt\n"
    "   每行应为 OK，且 bag-info.txt 中 Payload-Oxum（字节数.文件数）应与 data/ 下实际相符：\n"
    "   every line must say OK, and Payload-Oxum in bag-info.txt (bytes.files) must match data/:\n"
    "       find data -type f | wc -l ;  find data -type f -printf '%%s\\n' | paste -sd+ | bc\n"
    "\n"
    "4. 核对原始文件与记录仪签名 / Check an original against the recorder's signature (record <id>):\n"
    "   a) data/records/<id>.json 中 \"sha256\" 与 manifest 中该原始文件的值相同，\n"
    "      且与 data/chain/<id>.record.txt 中 hash= 字段相同（SHA-256 套件）。\n"
    "      \"sha256\" in data/records/<id>.json equals the original's line in the manifest and the hash=\n"
    "      field of data/chain/<id>.record.txt (for the SHA-256 suites).\n"
    "   b) 公钥 / the key: data/keys/<device>-<key id>.pem (key= field of the record).\n"
    "      ed25519-sha256:\n"
    "        openssl pkeyutl -verify -pubin -inkey data/keys/KEY.pem -rawin \\\n"
    "                -in data/chain/<id>.tbs -sigfile data/chain/<id>.sig\n"
    "      p256-sha256:\n"
    "        openssl dgst -sha256 -verify data/keys/KEY.pem -signature data/chain/<id>.sig "
    "data/chain/<id>.tbs\n"
    "      sm2-sm3:\n"
    "        openssl dgst -sm3 -verify data/keys/KEY.pem -sigopt distid:1234567812345678 \\\n"
    "                -signature data/chain/<id>.sig data/chain/<id>.tbs\n"
    "      输出 \"Signature Verified Successfully\" 或 \"Verified OK\" 即通过。\n"
    "      \"Signature Verified Successfully\" or \"Verified OK\" means the record is the recorder's.\n"
    "   c) 链记录的哈希 / the record's own hash (its successor's prev= field):\n"
    "        sha256sum data/chain/<id>.tbs\n"
    "\n"
    "5. 保管链 / Custody log: every line of data/custody/events.jsonl is one event with its hash and the\n"
    "   hash of the event before it (prev_hash); the encoding that is hashed is given in evidock's\n"
    "   docs/database.md. head.json is the newest event of the whole log when this disc was made.\n"
    "\n"
    "6. 光盘映像 / The whole disc: the SHA-256 of the disc image is recorded in the evidock database\n"
    "   (evidockctl disc show); xorriso can also check the MD5 tags written on the disc:\n"
    "        xorriso -md5 on -indev /dev/sr0 -check_md5_r FAILURE / --\n"
    "\n"
    "同一组光盘共有 %u 张，每张都是完整的 BagIt 包；每张光盘通常刻录两份相同的副本。\n"
    "A set has %u disc(s); each is a complete bag on its own. Each disc is normally burned twice.\n";

static int build_readme(Build *b, const char *cases, size_t n_files, EvdError *err)
{
        const EvdDiscBagSpec *s = b->spec;
        Buf t = {};
        buf_add(&t, readme_fmt, s->part->label, s->part->volume_id, s->part->part, s->job->parts,
                s->job->group_id, *cases ? cases : "-", n_files, s->job->parts, s->job->parts);
        return add_buf(b, "README.txt", &t, err);
}

static void html_cell(Buf *t, const char *s)
{
        buf_add(t, "<td>");
        buf_html(t, s ? s : "");
        buf_add(t, "</td>");
}

static int build_index(Build *b, const EvdDbDiscFileInfo *f, size_t n, const char *cases, EvdError *err)
{
        const EvdDiscBagSpec *s = b->spec;
        Buf t = {};
        buf_add(&t, "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
        buf_html(&t, s->part->label);
        buf_add(&t, "</title>\n<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
                    "td,th{border:1px solid #999;padding:2px 6px;font-size:90%%;vertical-align:top}"
                    "code{font-size:85%%}</style>\n</head>\n<body>\n<h1>证据光盘 / Evidence disc ");
        buf_html(&t, s->part->label);
        buf_add(&t, "</h1>\n<p>光盘 / Disc %u / %u &middot; 案件 / Cases: ", s->part->part, s->job->parts);
        buf_html(&t, *cases ? cases : "-");
        buf_add(&t, " &middot; 录像 / Recordings: %zu &middot; 组 / Group: ", n);
        buf_html(&t, s->job->group_id);
        buf_add(
            &t,
            "</p>\n<p>核验方法见 / How to verify: <a href=\"README.txt\">README.txt</a></p>\n"
            "<table>\n<tr><th>#</th><th>案件编号<br>Case</th><th>方式<br>Method</th>"
            "<th>开始 (UTC)<br>Start</th><th>结束 (UTC)<br>End</th><th>警号<br>Officer</th>"
            "<th>记录仪<br>Recorder</th><th>单位<br>Unit</th><th>结论<br>Verdict</th><th>密级<br>Mark</th>"
            "<th>原始文件 / Original (SHA-256)</th><th>归档副本<br>Archive copy</th>"
            "<th>记录<br>Record</th></tr>\n");
        for (size_t i = 0; i < n; i++) {
                buf_add(&t, "<tr><td>%" PRId64 "</td>", f[i].id);
                html_cell(&t, f[i].case_number);
                html_cell(&t, f[i].method);
                html_cell(&t, f[i].recorded_start);
                html_cell(&t, f[i].recorded_end);
                html_cell(&t, f[i].officer_id);
                html_cell(&t, f[i].device_id);
                html_cell(&t, f[i].unit_code);
                html_cell(&t, f[i].verdict);
                html_cell(&t, f[i].confidentiality);
                /* Links are relative to data/index.html. */
                buf_add(&t, "<td><a href=\"");
                buf_html(&t, f[i].original_path);
                buf_add(&t, "\">");
                buf_html(&t, f[i].original_path);
                buf_add(&t, "</a><br><code>%s</code> (%" PRIu64 " B)</td><td>", f[i].sha256, f[i].size);
                if (f[i].archive_path) {
                        buf_add(&t, "<a href=\"");
                        buf_html(&t, f[i].archive_path);
                        buf_add(&t, "\">");
                        buf_html(&t, f[i].archive_path);
                        buf_add(&t, "</a>");
                }
                buf_add(&t, "</td><td><a href=\"records/%" PRId64 ".json\">json</a>", f[i].id);
                if (f[i].chain_record)
                        buf_add(&t, " <a href=\"chain/%" PRId64 ".record.txt\">chain</a>", f[i].id);
                buf_add(&t, "</td></tr>\n");
        }
        buf_add(&t, "</table>\n</body>\n</html>\n");
        return add_buf(b, "index.html", &t, err);
}

typedef struct Collect {
        EvdDiscBag *out;
        const Listed *listed;
        size_t n_listed, next_listed;
} Collect;

static int collect_file(const char *path, uint64_t size, const uint8_t sha256[EVD_DIGEST_SIZE], bool listed,
                        void *userdata)
{
        Collect *c = userdata;
        EvdDiscBagFile *f = &c->out->files[c->out->n_files];
        f->path = strdup(path);
        if (!f->path)
                return -ENOMEM;
        f->size = size;
        memcpy(f->sha256, sha256, EVD_DIGEST_SIZE);
        if (listed) {
                if (c->next_listed >= c->n_listed)
                        return -EIO;
                f->file_id = c->listed[c->next_listed].file_id;
                f->role = c->listed[c->next_listed].role;
                c->next_listed++;
        } else {
                f->role = strncmp(path, "data/", 5) == 0 ? "meta" : "tag";
        }
        c->out->n_files++;
        c->out->bytes += size;
        return 0;
}

static int count_line(const char *path, uint64_t size, const uint8_t sha256[EVD_DIGEST_SIZE], bool listed,
                      void *userdata)
{
        (void)path, (void)size, (void)sha256, (void)listed;
        (*(size_t *)userdata)++;
        return 0;
}

static int build(Build *b, EvdDiscBag *out, EvdError *err)
{
        const EvdDiscBagSpec *s = b->spec;
        EvdDbDiscFileInfo *f = NULL;
        int r = evd_db_disc_file_info(s->db, s->file_ids, s->n_files, &f, err);
        if (r < 0)
                return r;

        /* Payload listed from the store first: a missing original stops the build before anything else. */
        for (size_t i = 0; i < s->n_files && r >= 0; i++) {
                r = list_from_store(b, f[i].original_path, f[i].size, f[i].sha256, f[i].id, "original", err);
                if (r >= 0 && f[i].archive_path)
                        r = list_from_store(b, f[i].archive_path, UINT64_MAX, f[i].archive_sha256, f[i].id,
                                            "archive", err);
        }

        /* Cases on this disc, in order of first appearance. */
        Buf cases = {};
        for (size_t i = 0; i < s->n_files && r >= 0; i++) {
                const char *c = f[i].case_number;
                if (!c || !*c)
                        continue;
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = f[j].case_number && strcmp(f[j].case_number, c) == 0;
                if (!seen)
                        buf_add(&cases, "%s%s", cases.n ? ", " : "", c);
        }
        if (cases.error && r >= 0)
                r = evd_error_set(err, -ENOMEM, "building a disc: out of memory");
        const char *case_list = cases.s ? cases.s : "";

        for (size_t i = 0; i < s->n_files && r >= 0; i++) {
                char path[64];
                snprintf(path, sizeof(path), "records/%" PRId64 ".json", f[i].id);
                Buf j = {};
                buf_add(&j, "%s\n", f[i].json);
                r = add_buf(b, path, &j, err);
                if (r >= 0)
                        r = add_chain_record(b, &f[i], err);
        }

        /* Enrolled keys: one PEM per enrollment, named by device and key id, plus the rows as JSON. */
        if (r >= 0) {
                b->key_err = err;
                r = evd_db_disc_keys(s->db, s->file_ids, s->n_files, s->part->snapshot_us, key_file, b, err);
        }
        if (r >= 0)
                r = add_buf(b, "keys/enrollments.jsonl", &b->jsonl, err);

        /* Custody events of these files up to the frozen head, and the head itself. */
        if (r >= 0)
                r = evd_db_disc_custody(s->db, s->file_ids, s->n_files, s->part->custody_upto, jsonl_line, b,
                                        err);
        if (r >= 0)
                r = add_buf(b, "custody/events.jsonl", &b->jsonl, err);
        if (r >= 0 && s->part->custody_upto > 0) {
                _cleanup_free_ char *head = NULL;
                r = evd_db_disc_custody_event_json(s->db, s->part->custody_upto, &head, err);
                if (r >= 0) {
                        Buf h = {};
                        buf_add(&h, "%s\n", head);
                        r = add_buf(b, "custody/head.json", &h, err);
                }
        }

        /* Case association and marks as of the snapshot. */
        if (r >= 0) {
                Buf c = {};
                for (size_t i = 0; i < s->n_files; i++) {
                        buf_add(&c, "{\"file_id\": %" PRId64 ", \"case_number\": ", f[i].id);
                        if (f[i].case_number) {
                                buf_add(&c, "\"");
                                for (const char *p = f[i].case_number; *p; p++) {
                                        if (*p == '"' || *p == '\\')
                                                buf_add(&c, "\\%c", *p);
                                        else if ((unsigned char)*p < 0x20)
                                                buf_add(&c, "\\u%04x", (unsigned char)*p);
                                        else
                                                buf_add(&c, "%c", *p);
                                }
                                buf_add(&c, "\"");
                        } else {
                                buf_add(&c, "null");
                        }
                        buf_add(&c, ", \"confidentiality\": \"%s\", \"marks\": []}\n", f[i].confidentiality);
                }
                r = add_buf(b, "cases.jsonl", &c, err);
        }
        if (r >= 0)
                r = build_readme(b, case_list, s->n_files, err);
        if (r >= 0)
                r = build_index(b, f, s->n_files, case_list, err);

        /* bag-info.txt */
        char num[64];
        if (r >= 0 && s->job->unit_code)
                r = evd_bag_info_add(b->bag, "Source-Organization", s->job->unit_code, err);
        if (r >= 0)
                r = evd_bag_info_add(
                    b->bag, "External-Description",
                    "Body-worn recorder evidence with its records (evidock); see data/README.txt", err);
        if (r >= 0)
                r = evd_bag_info_add(b->bag, "External-Identifier", s->part->label, err);
        if (r >= 0)
                r = evd_bag_info_add(b->bag, "Bagging-Date", s->part->bagging_date, err);
        if (r >= 0)
                r = evd_bag_info_add(b->bag, "Bag-Group-Identifier", s->job->group_id, err);
        snprintf(num, sizeof(num), "%u of %u", s->part->part, s->job->parts);
        if (r >= 0)
                r = evd_bag_info_add(b->bag, "Bag-Count", num, err);
        for (char *c = cases.s, *save = NULL, *tok; r >= 0 && c && (tok = strtok_r(c, ",", &save)); c = NULL)
                r = evd_bag_info_add(b->bag, "Case-Number", tok + (*tok == ' '), err);
        if (r >= 0 && s->job->unit_code)
                r = evd_bag_info_add(b->bag, "Unit", s->job->unit_code, err);
        snprintf(num, sizeof(num), "%zu", s->n_files);
        if (r >= 0)
                r = evd_bag_info_add(b->bag, "Recording-Count", num, err);
        size_t n_archive = 0;
        for (size_t i = 0; i < s->n_files; i++)
                n_archive += f[i].archive_path != NULL;
        snprintf(num, sizeof(num), "%zu", n_archive);
        if (r >= 0)
                r = evd_bag_info_add(b->bag, "Archive-Copy-Count", num, err);
        if (r >= 0)
                r = evd_bag_info_add(b->bag, "Volume-Identifier", s->part->volume_id, err);
        snprintf(num, sizeof(num), "%" PRId64, s->part->custody_upto);
        if (r >= 0)
                r = evd_bag_info_add(b->bag, "Custody-Head-Id", num, err);
        buf_free(&cases);
        if (r >= 0)
                r = evd_bag_finish(b->bag, err);

        if (r >= 0) {
                size_t total = 0;
                r = evd_bag_walk(b->bag, count_line, &total, err);
                out->files = r >= 0 ? calloc(MAX(total, (size_t)1), sizeof(*out->files)) : NULL;
                if (r >= 0 && !out->files)
                        r = evd_error_set(err, -ENOMEM, "building a disc: out of memory");
                Collect c = {.out = out, .listed = b->listed, .n_listed = b->n_listed};
                if (r >= 0)
                        r = evd_bag_walk(b->bag, collect_file, &c, err);
                if (r == -ENOMEM || r == -EIO)
                        r = evd_error_set(err, r, "building a disc: collecting its file list failed");
        }
        evd_db_disc_file_info_free(f, s->n_files);
        return r;
}

int evd_disc_bag_build(const EvdDiscBagSpec *spec, EvdDiscBag **ret, EvdError *err)
{
        _cleanup_(evd_disc_bag_freep) EvdDiscBag *out = calloc(1, sizeof(*out));
        if (!out)
                return evd_error_set(err, -ENOMEM, "building a disc: out of memory");
        if (asprintf(&out->bag_dir, "%s/bag", spec->work_dir) < 0 ||
            asprintf(&out->graft_path, "%s/graft", spec->work_dir) < 0) {
                out->bag_dir = out->graft_path = NULL;
                return evd_error_set(err, -ENOMEM, "building a disc: out of memory");
        }
        if (mkdir(out->bag_dir, 0755) < 0)
                return evd_error_set_errno(err, negative_errno(), "building a disc: cannot create %s",
                                           out->bag_dir);
        _cleanup_close_ int bag_fd = open(out->bag_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int store_fd = open(spec->store_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bag_fd < 0 || store_fd < 0)
                return evd_error_set_errno(err, negative_errno(), "building a disc: cannot open %s",
                                           bag_fd < 0 ? out->bag_dir : spec->store_root);
        _cleanup_fclose_ FILE *graft = fopen(out->graft_path, "wxe");
        if (!graft)
                return evd_error_set_errno(err, negative_errno(), "building a disc: cannot create %s",
                                           out->graft_path);
        char q[8300];
        if (evd_xorriso_quote(out->bag_dir, q, sizeof(q)) < 0)
                return evd_error_set(err, -EINVAL,
                                     "building a disc: work directory '%s' cannot be given to xorriso",
                                     out->bag_dir);
        fprintf(graft, "-map %s /\n", q);

        Build b = {.spec = spec, .graft = graft, .store_fd = store_fd};
        int r = evd_bag_new(bag_fd, &b.bag, err);
        if (r >= 0)
                r = build(&b, out, err);
        evd_bag_free(b.bag);
        free(b.listed);
        buf_free(&b.jsonl);
        if (r < 0)
                return r;
        if (fflush(graft) != 0 || ferror(graft))
                return evd_error_set_errno(err, -EIO, "building a disc: cannot write %s", out->graft_path);
        *ret = steal_ptr(&out);
        return 0;
}
