/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "types.h"

static const char *const method_names[_EVD_METHOD_MAX] = {
    [EVD_METHOD_UNKNOWN] = "unknown",
    [EVD_METHOD_VIDEO] = "video",
    [EVD_METHOD_AUDIO] = "audio",
    [EVD_METHOD_PHOTO] = "photo",
};

static const char *const suite_names[_EVD_SUITE_MAX] = {
    [EVD_SUITE_ED25519_SHA256] = "ed25519-sha256",
    [EVD_SUITE_P256_SHA256] = "p256-sha256",
    [EVD_SUITE_SM2_SM3] = "sm2-sm3",
};

static const struct {
        const char *name;
        const char *describe;
        bool quarantines;
} verdicts[_EVD_VERDICT_MAX] = {
    [EVD_VERDICT_INTACT] = {"INTACT", "hash, signature and chain link verified", false},
    [EVD_VERDICT_HASH_MISMATCH] = {"HASH_MISMATCH", "file content does not match the hash in its record",
                                   true},
    [EVD_VERDICT_TRUNCATED] = {"TRUNCATED", "file is shorter than its record says", true},
    [EVD_VERDICT_SIGNATURE_INVALID] = {"SIGNATURE_INVALID",
                                       "record signature does not verify with the enrolled key", true},
    [EVD_VERDICT_UNSIGNED] = {"UNSIGNED", "record carries no signature", true},
    [EVD_VERDICT_LINK_MISMATCH] = {"LINK_MISMATCH",
                                   "record does not link to the hash of the record before it", true},
    [EVD_VERDICT_SEGMENT_GAP] = {"SEGMENT_GAP", "sequence numbers are missing from the chain", true},
    [EVD_VERDICT_SEGMENT_INSERTED] = {"SEGMENT_INSERTED", "file or record was not chained by this recorder",
                                      true},
    [EVD_VERDICT_SEGMENT_REORDERED] = {"SEGMENT_REORDERED", "records are out of sequence order", true},
    [EVD_VERDICT_SEGMENT_DUPLICATE] = {"SEGMENT_DUPLICATE", "the same record or file appears more than once",
                                       true},
    [EVD_VERDICT_SEGMENT_CONFLICT] = {"SEGMENT_CONFLICT", "two different files claim one place in the chain",
                                      true},
    [EVD_VERDICT_CHAIN_ROLLBACK] = {"CHAIN_ROLLBACK",
                                    "recorder chain head is older than the head already seen", true},
    [EVD_VERDICT_SESSION_BREAK] = {"SESSION_BREAK", "a recording session ended without an end record", true},
    [EVD_VERDICT_TIME_GAP] = {"TIME_GAP", "unexplained time between consecutive segments of a session",
                              true},
    [EVD_VERDICT_TIME_OVERLAP] = {"TIME_OVERLAP", "segments overlap in time", true},
    [EVD_VERDICT_CLOCK_ANOMALY] = {"CLOCK_ANOMALY",
                                   "recorder time goes backwards, lies in the future or is far off", true},
    [EVD_VERDICT_IDENTITY_MISMATCH] = {"IDENTITY_MISMATCH", "USB identity, manifest and key disagree", true},
    [EVD_VERDICT_DELETION_LOGGED] = {"DELETION_LOGGED",
                                     "an authorised-deletion record covers a missing segment", false},
    [EVD_VERDICT_MANIFEST_INVALID] = {"MANIFEST_INVALID",
                                      "the chain manifest or a line of it does not parse", true},
    [EVD_VERDICT_MEDIA_INVALID] = {"MEDIA_INVALID", "the media cannot be demuxed or archived", true},
    [EVD_VERDICT_NAME_INVALID] = {"NAME_INVALID", "unsafe file name on the recorder", true},
    [EVD_VERDICT_UNREADABLE] = {"UNREADABLE", "the file could not be read from the recorder", true},
    [EVD_VERDICT_NOT_ENROLLED] = {"NOT_ENROLLED", "the recorder is not enrolled; docking refused", true},
    [EVD_VERDICT_MISSING] = {"MISSING", "a record names a file that is not on the recorder", true},
};

/* MESSAGE_IDs: a fixed 120-bit prefix and the verdict number. Stable because verdict numbers are. */
static const char message_id_prefix[] = "6f1c2a9e3d8b4c57a0e1f2d3c4b5a6";

const char *evd_method_to_string(EvdMethod m)
{
        if ((unsigned)m >= _EVD_METHOD_MAX)
                return "unknown";
        return method_names[m];
}

EvdMethod evd_method_from_string(const char *s)
{
        for (unsigned i = 0; s && i < _EVD_METHOD_MAX; i++)
                if (strcmp(s, method_names[i]) == 0)
                        return (EvdMethod)i;
        return EVD_METHOD_UNKNOWN;
}

const char *evd_suite_to_string(EvdSuite s)
{
        if ((unsigned)s >= _EVD_SUITE_MAX)
                return NULL;
        return suite_names[s];
}

int evd_suite_from_string(const char *s)
{
        for (unsigned i = 0; s && i < _EVD_SUITE_MAX; i++)
                if (strcmp(s, suite_names[i]) == 0)
                        return (int)i;
        return -EINVAL;
}

const char *evd_verdict_to_string(EvdVerdict v)
{
        if ((unsigned)v >= _EVD_VERDICT_MAX)
                return "UNKNOWN";
        return verdicts[v].name;
}

int evd_verdict_from_string(const char *s)
{
        for (unsigned i = 0; s && i < _EVD_VERDICT_MAX; i++)
                if (strcmp(s, verdicts[i].name) == 0)
                        return (int)i;
        return -EINVAL;
}

const char *evd_verdict_describe(EvdVerdict v)
{
        if ((unsigned)v >= _EVD_VERDICT_MAX)
                return "unknown verdict";
        return verdicts[v].describe;
}

bool evd_verdict_quarantines(EvdVerdict v)
{
        if ((unsigned)v >= _EVD_VERDICT_MAX)
                return true;
        return verdicts[v].quarantines;
}

void evd_verdict_message_id(EvdVerdict v, char ret[static 33])
{
        if ((unsigned)v >= _EVD_VERDICT_MAX)
                v = EVD_VERDICT_MANIFEST_INVALID;
        snprintf(ret, 33, "%s%02x", message_id_prefix, (unsigned)v);
}
