/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* evidock-sim: writes a body-worn recorder's volume into a directory (see docs/man/evidock-sim.1). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include <libavutil/log.h>

#include "evd-config.h"
#include "sim-fault.h"

static void help(void)
{
        printf(
            "Usage: evidock-sim --out DIR [OPTIONS]\n"
            "Writes a body-worn recorder volume (EVIDOCK/DEVICE.TXT, EVIDOCK/CHAIN.LOG, VIDEO/, AUDIO/, "
            "PHOTO/)\n"
            "with real H.264+AAC MP4, AAC M4A and JPEG files and a signed chain manifest.\n\n"
            "  --out DIR             the volume directory (created if missing)\n"
            "  --device ID           device id, 7 letters/digits (default A1B2C3D)\n"
            "  --officer ID          officer id, 6 digits (default 123456)\n"
            "  --unit CODE           unit code, 12 letters/digits (default 110105000000)\n"
            "  --key FILE            PEM private key (default DIR.key); generated, mode 0600, if missing\n"
            "  --suite SUITE         ed25519-sha256 (default), p256-sha256 or sm2-sm3\n"
            "  --print-pubkey        print the PEM public key (for `evidockctl device enroll`) and exit\n"
            "  --videos N            video recordings (default 2)\n"
            "  --audios N            audio recordings (default 1)\n"
            "  --photos N            photos (default 1)\n"
            "  --duration SECONDS    length of each video/audio recording (default 10)\n"
            "  --preset NAME         tiny (192x108@10, default) or 1080p (1920x1080@30, 8 Mbit/s)\n"
            "  --start TIME          first recording's start, ISO 8601 with offset\n"
            "                        (e.g. 2026-11-22T08:00:00+08:00; default: now minus the total length)\n"
            "  --start-ago HOURS     start that many hours ago\n"
            "  --tz OFFSET           recorder UTC offset, e.g. +08:00 (default: --start's, else +08:00)\n"
            "  --case CASENO         case number entered on the recorder\n"
            "  --sessions N          split the recordings into N sessions, each closed by an END record\n"
            "  --append              continue the chain already in DIR (same key)\n"
            "  --seed N              content seed (default 1): same options and seed, same files\n"
            "  --fault NAME          inject a fault (repeatable; --fault list lists them)\n"
            "  --quiet               print nothing but errors\n"
            "  --help, --version\n");
}

static int parse_uint(const char *s, unsigned max, unsigned *ret)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v > max || s[0] == '-')
                return -EINVAL;
        *ret = (unsigned)v;
        return 0;
}

static int parse_tz(const char *s, int *ret)
{
        if (strcmp(s, "Z") == 0) {
                *ret = 0;
                return 0;
        }
        unsigned h, m;
        char sign;
        int n = 0;
        if ((sscanf(s, "%c%2u:%2u%n", &sign, &h, &m, &n) != 3 &&
             sscanf(s, "%c%2u%2u%n", &sign, &h, &m, &n) != 3) ||
            s[n] || (sign != '+' && sign != '-') || h > 14 || m > 59)
                return -EINVAL;
        *ret = (sign == '-' ? -1 : 1) * (int)(h * 60 + m);
        return 0;
}

static int print_pubkey(const SimOptions *opt)
{
        SimVolume v;
        EvdError err = {};
        _cleanup_free_ char *pem = NULL;
        int r = sim_volume_open_key(&v, opt, &err);
        if (r >= 0)
                r = evd_key_public_to_pem(v.key, &pem, &err);
        if (r < 0) {
                fprintf(stderr, "evidock-sim: %s\n", evd_error_message(&err, r));
                sim_volume_done(&v);
                return 1;
        }
        fputs(pem, stdout);
        sim_volume_done(&v);
        return 0;
}

static int run(int argc, char **argv)
{
        enum {
                ARG_OUT = 0x100,
                ARG_DEVICE,
                ARG_OFFICER,
                ARG_UNIT,
                ARG_KEY,
                ARG_SUITE,
                ARG_PRINT_PUBKEY,
                ARG_VIDEOS,
                ARG_AUDIOS,
                ARG_PHOTOS,
                ARG_DURATION,
                ARG_PRESET,
                ARG_START,
                ARG_START_AGO,
                ARG_TZ,
                ARG_CASE,
                ARG_SESSIONS,
                ARG_APPEND,
                ARG_SEED,
                ARG_FAULT,
                ARG_QUIET,
                ARG_VERSION,
        };
        static const struct option options[] = {
            {"out", required_argument, NULL, ARG_OUT},
            {"device", required_argument, NULL, ARG_DEVICE},
            {"officer", required_argument, NULL, ARG_OFFICER},
            {"unit", required_argument, NULL, ARG_UNIT},
            {"key", required_argument, NULL, ARG_KEY},
            {"suite", required_argument, NULL, ARG_SUITE},
            {"print-pubkey", no_argument, NULL, ARG_PRINT_PUBKEY},
            {"videos", required_argument, NULL, ARG_VIDEOS},
            {"audios", required_argument, NULL, ARG_AUDIOS},
            {"photos", required_argument, NULL, ARG_PHOTOS},
            {"duration", required_argument, NULL, ARG_DURATION},
            {"preset", required_argument, NULL, ARG_PRESET},
            {"start", required_argument, NULL, ARG_START},
            {"start-ago", required_argument, NULL, ARG_START_AGO},
            {"tz", required_argument, NULL, ARG_TZ},
            {"case", required_argument, NULL, ARG_CASE},
            {"sessions", required_argument, NULL, ARG_SESSIONS},
            {"append", no_argument, NULL, ARG_APPEND},
            {"seed", required_argument, NULL, ARG_SEED},
            {"fault", required_argument, NULL, ARG_FAULT},
            {"quiet", no_argument, NULL, ARG_QUIET},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, ARG_VERSION},
            {},
        };
        SimOptions opt = {
            .videos = 2,
            .audios = 1,
            .photos = 1,
            .sessions = 1,
            .duration_us = 10000000,
            .preset = SIM_PRESET_TINY,
            .tz_minutes = 480,
            .seed = 1,
        };
        bool want_pubkey = false, tz_set = false;
        double start_ago_hours = -1;
        int c, r;
        char *end;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_OUT:
                        opt.out_dir = optarg;
                        break;
                case ARG_DEVICE:
                        opt.device_id = optarg;
                        break;
                case ARG_OFFICER:
                        opt.officer_id = optarg;
                        break;
                case ARG_UNIT:
                        opt.unit_code = optarg;
                        break;
                case ARG_KEY:
                        opt.key_path = optarg;
                        break;
                case ARG_SUITE:
                        r = evd_suite_from_string(optarg);
                        if (r < 0) {
                                fprintf(stderr, "evidock-sim: unknown suite '%s'\n", optarg);
                                return 2;
                        }
                        opt.suite = (EvdSuite)r;
                        opt.suite_set = true;
                        break;
                case ARG_PRINT_PUBKEY:
                        want_pubkey = true;
                        break;
                case ARG_VIDEOS:
                case ARG_AUDIOS:
                case ARG_PHOTOS:
                case ARG_SESSIONS: {
                        unsigned *dst = c == ARG_VIDEOS   ? &opt.videos
                                        : c == ARG_AUDIOS ? &opt.audios
                                        : c == ARG_PHOTOS ? &opt.photos
                                                          : &opt.sessions;
                        if (parse_uint(optarg, SIM_MAX_RECORDINGS, dst) < 0) {
                                fprintf(stderr, "evidock-sim: --%s wants a number 0..%u, not '%s'\n",
                                        options[c - ARG_OUT].name, SIM_MAX_RECORDINGS, optarg);
                                return 2;
                        }
                        break;
                }
                case ARG_DURATION: {
                        double d = strtod(optarg, &end);
                        if (end == optarg || *end || !(d > 0) || d > 24 * 3600) {
                                fprintf(stderr,
                                        "evidock-sim: --duration wants seconds (0 < s <= 86400), not '%s'\n",
                                        optarg);
                                return 2;
                        }
                        opt.duration_us = llround(d * 1e6);
                        break;
                }
                case ARG_PRESET:
                        r = sim_preset_from_string(optarg);
                        if (r < 0) {
                                fprintf(stderr, "evidock-sim: unknown preset '%s' (tiny, 1080p)\n", optarg);
                                return 2;
                        }
                        opt.preset = (SimPreset)r;
                        break;
                case ARG_START: {
                        int tz;
                        if (evd_time_parse(optarg, &opt.start_us, &tz) < 0) {
                                fprintf(stderr,
                                        "evidock-sim: --start '%s' is not ISO 8601 with an offset "
                                        "(2026-11-22T08:00:00+08:00)\n",
                                        optarg);
                                return 2;
                        }
                        opt.start_set = true;
                        if (!tz_set)
                                opt.tz_minutes = tz;
                        break;
                }
                case ARG_START_AGO:
                        start_ago_hours = strtod(optarg, &end);
                        if (end == optarg || *end || start_ago_hours < 0) {
                                fprintf(stderr, "evidock-sim: --start-ago wants hours, not '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case ARG_TZ:
                        if (parse_tz(optarg, &opt.tz_minutes) < 0) {
                                fprintf(stderr, "evidock-sim: --tz '%s' is not an offset like +08:00\n",
                                        optarg);
                                return 2;
                        }
                        tz_set = true;
                        break;
                case ARG_CASE:
                        opt.case_number = optarg;
                        break;
                case ARG_APPEND:
                        opt.append = true;
                        break;
                case ARG_SEED:
                        errno = 0;
                        opt.seed = strtoull(optarg, &end, 0);
                        if (errno || end == optarg || *end) {
                                fprintf(stderr, "evidock-sim: --seed wants a number, not '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case ARG_FAULT:
                        if (strcmp(optarg, "list") == 0) {
                                for (int i = 0; i < _SIM_FAULT_MAX; i++)
                                        puts(sim_fault_to_string((SimFault)i));
                                return 0;
                        }
                        r = sim_fault_from_string(optarg);
                        if (r < 0) {
                                fprintf(stderr, "evidock-sim: unknown fault '%s' (--fault list)\n", optarg);
                                return 2;
                        }
                        opt.faults |= 1u << r;
                        break;
                case ARG_QUIET:
                        opt.quiet = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts("evidock-sim " EVD_VERSION);
                        return 0;
                default:
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "evidock-sim: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (want_pubkey && (opt.key_path || opt.out_dir))
                return print_pubkey(&opt);
        if (!opt.out_dir) {
                fprintf(stderr, "evidock-sim: --out DIR is required (see --help)\n");
                return 2;
        }
        if (start_ago_hours >= 0) {
                if (opt.start_set) {
                        fprintf(stderr, "evidock-sim: --start and --start-ago exclude each other\n");
                        return 2;
                }
                opt.start_us = ((int64_t)time(NULL) - (int64_t)llround(start_ago_hours * 3600)) * 1000000;
                opt.start_set = true;
        }

        av_log_set_level(opt.quiet ? AV_LOG_QUIET : AV_LOG_ERROR);
        SimVolume v;
        EvdError err = {};
        r = sim_volume_open(&v, &opt, &err);
        if (r >= 0)
                r = sim_volume_plan(&v, &err);
        if (r >= 0) /* before the names: a time fault may move a recording */
                r = sim_fault_plan_times(&v, &err);
        if (r >= 0)
                r = sim_volume_name_files(&v);
        if (r >= 0)
                r = sim_fault_plan_records(&v, &err);
        if (r >= 0)
                r = sim_volume_make_media(&v, &err);
        if (r >= 0)
                r = sim_volume_sign(&v, &err);
        if (r >= 0)
                r = sim_fault_after_sign(&v, &err);
        if (r >= 0)
                r = sim_volume_write(&v, &err);
        if (r < 0) {
                fprintf(stderr, "evidock-sim: %s\n", evd_error_message(&err, r));
                sim_volume_done(&v);
                return 1;
        }
        if (!opt.quiet)
                sim_volume_print_summary(&v);
        sim_volume_done(&v);
        return 0;
}

int main(int argc, char **argv)
{
        return run(argc, argv);
}
