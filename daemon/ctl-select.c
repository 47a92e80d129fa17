/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recordings a case/mark command acts on (ctl-select.h). */
#include <inttypes.h>
#include <stdlib.h>

#include "clock.h"
#include "ctl-select.h"
#include "macro.h"
#include "output.h"

bool ctl_select_option(CtlSelect *s, int o, const char *arg)
{
        switch (o) {
        case 'F':
                s->file = arg;
                return true;
        case 'd':
                s->device = arg;
                return true;
        case 'q':
                s->seq = arg;
                return true;
        case 'o':
                s->officer = arg;
                return true;
        case 'f':
                s->from = arg;
                return true;
        case 't':
                s->to = arg;
                return true;
        }
        return false;
}

static int parse_u64(const char *s, uint64_t *ret)
{
        char *end;
        errno = 0;
        if (!s[0] || s[0] == '-' || s[0] == '+')
                return -EINVAL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > INT64_MAX)
                return -EINVAL;
        *ret = v;
        return 0;
}

int ctl_select_build(Ctl *c, const CtlSelect *s, const char *help, EvdFileSelector *ret)
{
        unsigned ways = !!s->file + !!(s->device || s->seq) + !!(s->officer || s->from || s->to);
        if (ways == 0)
                return ctl_usage_error(c, help,
                                       "say which recordings: --file, --device with --seq, or --officer "
                                       "with --from and --to");
        if (ways > 1)
                return ctl_usage_error(c, help, "use one of --file, --device/--seq, --officer/--from/--to");
        *ret = (EvdFileSelector){};
        if (s->file) {
                uint64_t id;
                if (parse_u64(s->file, &id) < 0 || id == 0)
                        return ctl_usage_error(c, help, "--file '%s' is not a file id", s->file);
                ret->kind = EVD_SELECT_FILE;
                ret->file_id = (int64_t)id;
                return 0;
        }
        if (s->device || s->seq) {
                if (!s->device || !s->seq)
                        return ctl_usage_error(c, help, "--device and --seq go together");
                _cleanup_free_ char *copy = strdup(s->seq);
                if (!copy)
                        return EXIT_ERROR;
                char *dash = strchr(copy, '-');
                if (dash)
                        *dash = '\0';
                ret->kind = EVD_SELECT_DEVICE_SEQ;
                ret->device_id = s->device;
                if (parse_u64(copy, &ret->seq_first) < 0 ||
                    parse_u64(dash ? dash + 1 : copy, &ret->seq_last) < 0)
                        return ctl_usage_error(c, help, "--seq '%s' is not N or N-M", s->seq);
                if (ret->seq_first > ret->seq_last)
                        return ctl_usage_error(c, help, "--seq '%s': the range is reversed", s->seq);
                return 0;
        }
        if (!s->officer || !s->from || !s->to)
                return ctl_usage_error(c, help, "--officer, --from and --to go together");
        ret->kind = EVD_SELECT_OFFICER_TIME;
        ret->officer_id = s->officer;
        int64_t now = evd_clock_wall_us();
        if (ctl_parse_time(s->from, now, &ret->from_us) < 0)
                return ctl_usage_error(c, help, "cannot parse time '%s'", s->from);
        if (ctl_parse_time(s->to, now, &ret->to_us) < 0)
                return ctl_usage_error(c, help, "cannot parse time '%s'", s->to);
        if (ret->from_us >= ret->to_us)
                return ctl_usage_error(c, help, "--from must be before --to");
        return 0;
}

int ctl_select_print_change(Ctl *c, const EvdLifecycleChange *ch, const char *done, const char *already)
{
        if (c->json) {
                _cleanup_(json_object_putp) json_object *j = json_object_new_object();
                json_object *ids = json_object_new_array();
                if (!j || !ids) {
                        json_object_put(ids);
                        return EXIT_ERROR;
                }
                json_object_object_add(j, "matched", json_object_new_int64((int64_t)ch->n_matched));
                json_object_object_add(j, "changed", json_object_new_int64((int64_t)ch->n_changed));
                json_object_object_add(j, "unchanged", json_object_new_int64((int64_t)ch->n_unchanged));
                for (size_t i = 0; i < ch->n_changed; i++)
                        json_object_array_add(ids, json_object_new_int64(ch->file_ids[i]));
                json_object_object_add(j, "file_ids", ids);
                return ctl_json_print(j) < 0 ? EXIT_ERROR : EXIT_CLEAN;
        }
        if (!c->quiet) {
                printf("%zu of %zu recording(s) %s", ch->n_changed, ch->n_matched, done);
                if (ch->n_unchanged)
                        printf(", %zu %s", ch->n_unchanged, already);
                printf("\n");
        }
        return EXIT_CLEAN;
}
