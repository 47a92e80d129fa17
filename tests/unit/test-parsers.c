/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key=value texts and their one line reader (lib/kv.h): the reader's own rules, a recorder's
 * DEVICE.TXT (lib/chain.c), the recorder profiles (daemon/usb-profile.c) and evidock.conf
 * (daemon/config.c). These pin what each format accepted before they shared the reader. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "check.h"
#include "config.h"
#include "kv.h"
#include "macro.h"
#include "small-file.h"
#include "usb-profile.h"

static char tmp_dir[PATH_MAX];

static const char *tmp_write(const char *name, const char *text, size_t len)
{
        static char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
                printf("# cannot write %s\n", path);
                if (fd >= 0)
                        close(fd);
                return NULL;
        }
        close(fd);
        return path;
}

/* ---- the reader ---- */

/* All lines of text as "key=value|" (section lines as "[name]|"), or "ERR<line>:<why>". */
static char *kv_all(const char *text, unsigned flags, size_t max_line)
{
        static char out[1024];
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s", text);
        EvdKvReader rd;
        EvdKvLine l;
        int r;
        evd_kv_reader_init(&rd, buf, strlen(buf), flags);
        rd.max_line = max_line;
        out[0] = 0;
        while ((r = evd_kv_next(&rd, &l)) > 0) {
                size_t n = strlen(out);
                if (!l.key)
                        snprintf(out + n, sizeof(out) - n, "[%s]|", l.value);
                else
                        snprintf(out + n, sizeof(out) - n, "%s%s%s=%s|", l.section, *l.section ? "." : "",
                                 l.key, l.value);
        }
        if (r < 0)
                snprintf(out, sizeof(out), "ERR%u:%s", rd.line, rd.why);
        return out;
}

static void test_kv_reader(void)
{
        /* spool style: exact, every line ends in a newline */
        CHECK_STREQ(kv_all("a=1\nb= 2 \n", EVD_KV_NEWLINE, 0), "a=1|b= 2 |");
        CHECK(strncmp(kv_all("a=1\nb=2", EVD_KV_NEWLINE, 0), "ERR2:", 5) == 0);
        CHECK(strncmp(kv_all("a=1\n#c\n", EVD_KV_NEWLINE, 0), "ERR2:", 5) == 0);
        /* comments without STRIP: empty lines and '#' in the first column only (DEVICE.TXT) */
        CHECK_STREQ(kv_all("#c\n\na=1\n", EVD_KV_COMMENTS, 0), "a=1|");
        CHECK(strncmp(kv_all("  #c\n", EVD_KV_COMMENTS, 0), "ERR1:", 5) == 0);
        CHECK(strncmp(kv_all(" \n", EVD_KV_COMMENTS, 0), "ERR1:", 5) == 0);
        /* a comment is skipped before it is checked: a CR in it does not matter, in a key=value it does */
        CHECK_STREQ(kv_all("#c\r\na=1\n", EVD_KV_COMMENTS, 0), "a=1|");
        CHECK(strncmp(kv_all("a=1\r\n", EVD_KV_COMMENTS, 0), "ERR1:control", 12) == 0);
        /* STRIP: blanks around keys and values, blank lines and indented comments */
        CHECK_STREQ(kv_all(" a = 1 \n\t\n  # c\nb=\n", EVD_KV_STRIP | EVD_KV_COMMENTS, 0), "a=1|b=|");
        CHECK(strncmp(kv_all(" = 1\n", EVD_KV_STRIP, 0), "ERR1:empty key", 14) == 0);
        /* CRLF: the CR before the newline goes, another one is still an error */
        CHECK_STREQ(kv_all("a = 1\r\nb = 2\r\n", EVD_KV_STRIP | EVD_KV_CRLF, 0), "a=1|b=2|");
        CHECK(strncmp(kv_all("a = 1\r2\r\n", EVD_KV_STRIP | EVD_KV_CRLF, 0), "ERR1:control", 12) == 0);
        /* INI: sections, ';' comments */
        CHECK_STREQ(kv_all("; c\n[s]\na = 1\n [t] \nb=2\n", EVD_KV_STRIP | EVD_KV_COMMENTS | EVD_KV_INI, 0),
                    "[s]|s.a=1|[t]|t.b=2|");
        CHECK_STREQ(kv_all("a=1\n", EVD_KV_INI, 0), "a=1|");
        CHECK(strncmp(kv_all("[]\n", EVD_KV_STRIP | EVD_KV_INI, 0), "ERR1:malformed", 14) == 0);
        CHECK(strncmp(kv_all("[a\n", EVD_KV_STRIP | EVD_KV_INI, 0), "ERR1:malformed", 14) == 0);
        CHECK(strncmp(kv_all("[a]b\n", EVD_KV_STRIP | EVD_KV_INI, 0), "ERR1:malformed", 14) == 0);
        CHECK(strncmp(kv_all("[a]]\n", EVD_KV_STRIP | EVD_KV_INI, 0), "ERR1:malformed", 14) == 0);
        /* ';' is an ordinary character without INI */
        CHECK(strncmp(kv_all(";c\n", EVD_KV_STRIP | EVD_KV_COMMENTS, 0), "ERR1:", 5) == 0);
        /* the line bound */
        CHECK_STREQ(kv_all("abc=12\n", 0, 6), "abc=12|");
        CHECK(strncmp(kv_all("x=1\nabc=123\n", 0, 6), "ERR2:line too long", 18) == 0);
}

/* ---- DEVICE.TXT ---- */

static void test_device_txt_format(void)
{
        EvdDeviceInfo info;
        EvdError err = {};
        /* documented: LF-terminated key=value lines, no spaces around; empty and '#' lines ignored;
         * unknown keys ignored; the NUL-free copy is parsed, the caller's buffer is not touched */
        static const char txt[] = "#x\r\n\ndevice_id=A123456\nvendor=any thing=else\nmaker= ACME \n";
        char copy[sizeof(txt)];
        memcpy(copy, txt, sizeof(txt));
        CHECK_OK(evd_device_info_parse(copy, strlen(copy), &info, &err));
        CHECK_STREQ(info.device_id, "A123456");
        CHECK_STREQ(info.maker, " ACME ");
        CHECK(memcmp(copy, txt, sizeof(txt)) == 0);
        /* a key with blanks is another key; an indented '#' is not a comment */
        CHECK_INT(evd_device_info_parse("device_id =A123456\n", 19, &info, &err), ==, -EBADMSG);
        CHECK(strstr(err.msg, "no device_id"));
        CHECK_INT(evd_device_info_parse("device_id=A123456\n #x\n", 22, &info, &err), ==, -EBADMSG);
        CHECK(strstr(err.msg, "line 2"));
        /* a NUL or CR byte in a line, a line without '=' */
        CHECK_INT(evd_device_info_parse("device_id=A12\0"
                                        "456\n",
                                        18, &info, &err),
                  ==, -EBADMSG);
        CHECK(strstr(err.msg, "line 1"));
        CHECK_INT(evd_device_info_parse("device_id=A123456\r\n", 19, &info, &err), ==, -EBADMSG);
        CHECK_INT(evd_device_info_parse("device_id=A123456\nofficer\n", 26, &info, &err), ==, -EBADMSG);
        CHECK(strstr(err.msg, "line 2"));
        /* a value too long for its field */
        CHECK_INT(evd_device_info_parse("device_id=A1234567890123456\n", 28, &info, &err), ==, -EBADMSG);
        CHECK(strstr(err.msg, "too long"));
        /* the size bound */
        CHECK_INT(evd_device_info_parse("", EVD_DEVICE_TXT_MAX + 1, &info, &err), ==, -EFBIG);
}

/* ---- recorder profiles (moved from lib/usb.c to daemon/usb-profile.c) ---- */

static void test_profile_parse(void)
{
        EvdUsbProfile p;
        EvdError err = {};
        const char *root = getenv("EVIDOCK_SOURCE_ROOT");
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/conf/recorders.d/example.conf", root ? root : ".");
        CHECK_OK(evd_usb_profile_parse_file(path, &p, &err));
        CHECK_INT(p.vendor_id, ==, 0x2e8a);
        CHECK_INT(p.storage_interface, ==, 1);
        CHECK(!p.set_clock);

        CHECK_INT(evd_usb_profile_parse_string(
                      "vendor_id = 2e8a\nproduct_id=0947\n\nstorage_interface=1\ncolour=red\n", "x.conf", &p,
                      &err),
                  ==, -EINVAL);
        CHECK(strstr(err.msg, "x.conf:5") && strstr(err.msg, "colour"));
        CHECK_INT(evd_usb_profile_parse_string("vendor_id = 12345\n", "y.conf", &p, &err), ==, -EINVAL);
        CHECK(strstr(err.msg, "y.conf:1"));
        CHECK_INT(evd_usb_profile_parse_string("vendor_id=2e8a\nproduct_id=0947\n", "z.conf", &p, &err), ==,
                  -EINVAL);
        CHECK(strstr(err.msg, "storage_interface"));
        CHECK_INT(evd_usb_profile_parse_string("vendor_id=2e8a\nvendor_id=2e8a\n", "d.conf", &p, &err), ==,
                  -EINVAL);
        CHECK(strstr(err.msg, "d.conf:2"));
        CHECK_OK(evd_usb_profile_parse_string("vendor_id=0x2E8A\nproduct_id=0947\nstorage_interface=1\n"
                                              "control_interface=0\nset_clock=yes\nbulk_in_endpoint=0x81\n",
                                              "/etc/evidock/recorders.d/model-x.conf", &p, &err));
        CHECK(p.set_clock);
        CHECK_INT(p.bulk_in, ==, 0x81);

        CHECK_STREQ(p.name, "model-x");
        CHECK_INT(
            evd_usb_profile_parse_string(
                "vendor_id=2e8a\nproduct_id=0947\nstorage_interface=0\nset_clock=yes\n", "c.conf", &p, &err),
            ==, -EINVAL);
        CHECK(strstr(err.msg, "control_interface"));
        CHECK_OK(evd_usb_profile_parse_string("vendor_id=2e8a\nproduct_id=0947\nstorage_interface=0\n",
                                              "n.conf", &p, &err));
        CHECK(!p.switch_to_storage);
        CHECK_INT(p.control_interface, ==, -1);
}

static void test_profile_file(void)
{
        EvdUsbProfile p;
        EvdError err = {};
        /* CRLF lines and indented comments, as before the move */
        static const char crlf[] = "  # a model\r\nvendor_id = 2e8a\r\n\r\nproduct_id = 0947\r\n"
                                   "storage_interface = 1\r\nname = crlf model\r\n";
        const char *path = tmp_write("crlf.conf", crlf, strlen(crlf));
        CHECK(path);
        CHECK_OK(evd_usb_profile_parse_file(path, &p, &err));
        CHECK_STREQ(p.name, "crlf model");
        CHECK_INT(p.product_id, ==, 0x947);
        /* a symlink to a profile is followed (recorders.d entries may be links) */
        char link[PATH_MAX + 16];
        snprintf(link, sizeof(link), "%s/link.conf", tmp_dir);
        CHECK(symlink("crlf.conf", link) == 0);
        CHECK_OK(evd_usb_profile_parse_file(link, &p, &err));
        CHECK_STREQ(p.name, "crlf model");
        /* no line without '=', no NUL byte, no directory, no file over 64 KiB */
        path = tmp_write("noeq.conf", "vendor_id = 2e8a\nproduct_id\n", 28);
        CHECK_INT(evd_usb_profile_parse_file(path, &p, &err), ==, -EINVAL);
        CHECK(strstr(err.msg, "noeq.conf:2"));
        path = tmp_write("nul.conf", "vendor_id = 2e8a\n\0\n", 19);
        CHECK_INT(evd_usb_profile_parse_file(path, &p, &err), ==, -EINVAL);
        CHECK_INT(evd_usb_profile_parse_file(tmp_dir, &p, &err), ==, -EINVAL);
        _cleanup_free_ char *big = malloc(EVD_USB_PROFILE_FILE_MAX + 1);
        CHECK(big);
        memset(big, '#', EVD_USB_PROFILE_FILE_MAX + 1);
        path = tmp_write("big.conf", big, EVD_USB_PROFILE_FILE_MAX + 1);
        CHECK_INT(evd_usb_profile_parse_file(path, &p, &err), ==, -EFBIG);
        snprintf(link, sizeof(link), "%s/missing.conf", tmp_dir);
        CHECK_INT(evd_usb_profile_parse_file(link, &p, &err), ==, -ENOENT);
        CHECK(strstr(err.msg, "missing.conf"));
}

/* ---- evidock.conf ---- */

static int load(const char *text, EvdConfig *c, EvdError *err)
{
        evd_config_clear(c);
        if (evd_config_init(c) < 0)
                return -ENOMEM;
        const char *path = tmp_write("evidock.conf", text, strlen(text));
        return path ? evd_config_load(c, path, true, err) : -EIO;
}

static void test_config_file(void)
{
        EvdConfig c = {};
        EvdError err = {};
        CHECK_OK(load("# comment\n; comment\n[store]\n  root = /srv/store   # trailing comment\r\n"
                      "reserve = 1G\n\n[ingest]\ndefault_case_number = \"A-1 #7\"\nlate_after = 36h ;x\n"
                      "[watch]\ndir = /a\ndir = /b\n",
                      &c, &err));
        CHECK_STREQ(c.store_root, "/srv/store");
        CHECK_INT(c.store_reserve_bytes, ==, 1ULL << 30);
        CHECK_STREQ(c.default_case_number, "A-1 #7");
        CHECK_INT(c.n_watch_dirs, ==, 2);
        CHECK_STREQ(c.watch_dirs[1], "/b");
        /* the value parser still sees "36h;x" as one value (no blank before ';') */
        CHECK_INT(load("[ingest]\nlate_after = 36h;x\n", &c, &err), ==, -EINVAL);
        CHECK(strstr(err.msg, ":2: invalid value '36h;x'"));

        /* every refusal names file:line */
        static const struct {
                const char *text, *msg;
        } bad[] = {
            {"[nosuch]\n", ":1: unknown section [nosuch]"},
            {"root = /x\n", ":1: key 'root' outside a section"},
            {"[store]\nroot\n", ":2: not key=value"},
            {"[store]\nroot = /x\nroot = /y\n", ":3: key 'root' given twice"},
            {"[store]\ncolour = red\n", ":2: unknown key 'colour' in section [store]"},
            {"[store\n", ":1: malformed section header"},
            {"[]\n", ":1: malformed section header"},
            {"[store]x\n", ":1: malformed section header"},
            {"[store]\nroot = \"/x\n", ":2: a quote is not closed"},
            {"[store]\nroot = x\n", ":2: store.root must be an absolute path, not 'x'"},
            {"[store]\nroot = /x\rx\n", ":2: control byte"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK_INT(load(bad[i].text, &c, &err), ==, -EINVAL);
                if (!strstr(err.msg, bad[i].msg) || !strstr(err.msg, "evidock.conf")) {
                        printf("# case %zu: '%s', expected '%s'\n", i, err.msg, bad[i].msg);
                        CHECK(false);
                }
        }

        /* lines of up to 1022 bytes (evidock.conf(5)) */
        char line[1100];
        int n = snprintf(line, sizeof(line), "[ingest]\ndefault_case_number = ");
        memset(line + n, 'x', 1022 - 22);
        strcpy(line + n + 1022 - 22, "\n");
        CHECK_OK(load(line, &c, &err));
        CHECK_INT(strlen(c.default_case_number), ==, 1000);
        strcpy(line + n + 1022 - 22, "x\n");
        CHECK_INT(load(line, &c, &err), ==, -EINVAL);
        CHECK(strstr(err.msg, ":2: line too long"));

        /* the file: missing is fine unless named; a link is followed; /dev/null is the defaults */
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/none.conf", tmp_dir);
        evd_config_clear(&c);
        CHECK_OK(evd_config_init(&c));
        CHECK_OK(evd_config_load(&c, path, false, &err));
        CHECK_INT(evd_config_load(&c, path, true, &err), ==, -ENOENT);
        CHECK(strstr(err.msg, "none.conf"));
        CHECK_OK(load("[store]\nroot = /linked\n", &c, &err));
        snprintf(path, sizeof(path), "%s/link-evidock.conf", tmp_dir);
        CHECK(symlink("evidock.conf", path) == 0);
        evd_config_clear(&c);
        CHECK_OK(evd_config_init(&c));
        CHECK_OK(evd_config_load(&c, path, true, &err));
        CHECK_STREQ(c.store_root, "/linked");
        evd_config_clear(&c);
        CHECK_OK(evd_config_init(&c));
        CHECK_OK(evd_config_load(&c, "/dev/null", true, &err));
        evd_config_clear(&c);
}

int main(void)
{
        const char *base = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof(tmp_dir), "%s/evd-parsers-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmp_dir))
                return 1;
        RUN(test_kv_reader);
        RUN(test_device_txt_format);
        RUN(test_profile_parse);
        RUN(test_profile_file);
        RUN(test_config_file);
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", tmp_dir);
        return check_finish();
}
