/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The archive copy of a recording, made from the stored, bit-exact original.
 *
 *   video (MP4/MOV, H.264/H.265 + AAC)  -> Matroska (.mkv), stream copy, packets bit-identical
 *   audio (M4A, AAC)                    -> Matroska audio (.mka), stream copy
 *   photo (JPEG)                        -> the same JPEG with COM segments carrying the tags
 *
 * Every archive copy carries the tags below (case number, method, time, maker, ...) and the chain record
 * as an attachment. A digest over all packet payloads (packets_sha256) proves that an archive copy holds
 * the same packets as its original: evd_media_packets_digest() computes it for either file.
 *
 * Inputs are hostile: the demuxer is chosen by magic bytes (only mov/mp4 and Matroska demuxers are ever
 * used, nothing is decoded), every job has a deadline, packet and stream counts are bounded, and a
 * corrupt, truncated or empty file gives -EBADMSG with a message naming the file.
 *
 * Errors (negative errno) of the functions below:
 *   -EBADMSG      the media is corrupt, truncated, has no index, or demuxes to no packets: the pipeline's
 *                 verdict is MEDIA_INVALID (the original is still kept bit-exact)
 *   -EMEDIUMTYPE  not a kind of file this module archives (not MP4/M4A/MOV, Matroska or JPEG), or a
 *                 container with no video/audio stream: also MEDIA_INVALID
 *   -ETIMEDOUT    the deadline in EvdMediaOptions passed
 *   -E2BIG        a bound below was exceeded (streams, packet size, tag/attachment size, JPEG size)
 *   -EINVAL       bad arguments (missing or malformed tags)
 *   other         I/O errors on the fds, -ENOMEM
 *
 * No function here keeps state between calls, moves the file offset of a caller's fd (pread/pwrite
 * only) or closes a caller's fd. FFmpeg's own logging is not touched (programs set av_log_set_level).
 *
 * The functions that read media (media.c) are linked only into evidock-media-worker and the tests:
 * libevidock, evidockd and evidockctl hold the types and evd_archive_format_*() (archive-format.c) and
 * reach the rest through the worker (media-worker.h), so they never load FFmpeg. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "types.h"

/* Bounds. */
#define EVD_MEDIA_MAX_STREAMS          16u                   /* streams in an input container */
#define EVD_MEDIA_MAX_PACKET_BYTES     (64u * 1024u * 1024u) /* one demuxed packet */
#define EVD_MEDIA_MAX_JPEG_BYTES       (64u * 1024u * 1024u) /* a photo is read whole into memory */
#define EVD_MEDIA_MAX_TAG_BYTES        1024u                 /* one tag value */
#define EVD_MEDIA_MAX_EXTRA_TAGS       16u
#define EVD_MEDIA_MAX_ATTACHMENTS      8u
#define EVD_MEDIA_MAX_ATTACHMENT_BYTES (1024u * 1024u) /* one attachment (Matroska); JPEG: 65000 */
#define EVD_MEDIA_IO_BUFFER_BYTES      (256u * 1024u)  /* per AVIOContext (one in, one out) */
/* The muxer's interleaving queue holds at most this much media time, whatever the input's interleave:
 * it bounds memory to about 10 s of the recording's bitrate. */
#define EVD_MEDIA_INTERLEAVE_USEC      (10u * 1000u * 1000u)
#define EVD_MEDIA_DEFAULT_TIMEOUT_USEC (10ull * 60u * 1000u * 1000u) /* when opts give no deadline */

/* Tag names. Matroska upper-cases tag names; CASE_NUMBER and METHOD are the names evidock's design card
 * fixes, DATE_RECORDED is the official Matroska tag (recording start, ISO 8601 with UTC offset), the rest
 * are custom and therefore start with '_' as the Matroska tag registry asks. The JPEG COM segment uses
 * the same names. */
#define EVD_MEDIA_TAG_CASE_NUMBER     "CASE_NUMBER"
#define EVD_MEDIA_TAG_METHOD          "METHOD"        /* "video", "audio", "photo" */
#define EVD_MEDIA_TAG_DATE_RECORDED   "DATE_RECORDED" /* recording start */
#define EVD_MEDIA_TAG_DATE_END        "_EVIDOCK_DATE_RECORDED_END"
#define EVD_MEDIA_TAG_MAKER           "_EVIDOCK_MAKER" /* officer ID of who recorded it */
#define EVD_MEDIA_TAG_DEVICE_ID       "_EVIDOCK_DEVICE_ID"
#define EVD_MEDIA_TAG_ORIGINAL_SHA256 "_EVIDOCK_ORIGINAL_SHA256" /* hex SHA-256 of the original file */
#define EVD_MEDIA_TAG_ORIGINAL_NAME   "_EVIDOCK_ORIGINAL_NAME"
#define EVD_MEDIA_TAG_CONFIDENTIALITY "_EVIDOCK_CONFIDENTIALITY"
/* Present only when some input streams could not be carried, e.g.
 * "#2 data tmcd; #3 data gpmd; #4 data fdsc (kept only in the original)". */
#define EVD_MEDIA_TAG_NOT_CARRIED "_EVIDOCK_NOT_CARRIED"

/* First line of the COM segments evidock inserts into a JPEG archive copy. A tags segment is
 * "EVIDOCK-TAGS/1\n" followed by "KEY=VALUE\n" lines; an attachment segment is
 * "EVIDOCK-ATTACHMENT/1\nfilename=F\nmimetype=M\n\n" followed by the raw attachment bytes. */
#define EVD_MEDIA_JPEG_TAGS_MAGIC       "EVIDOCK-TAGS/1\n"
#define EVD_MEDIA_JPEG_ATTACHMENT_MAGIC "EVIDOCK-ATTACHMENT/1\n"

typedef enum EvdArchiveFormat {
        EVD_ARCHIVE_MKV = 0, /* "mkv", video/x-matroska */
        EVD_ARCHIVE_MKA,     /* "mka", audio/x-matroska */
        EVD_ARCHIVE_JPEG,    /* "jpg", image/jpeg */
        _EVD_ARCHIVE_FORMAT_MAX,
} EvdArchiveFormat;

const char *evd_archive_format_extension(EvdArchiveFormat f); /* "mkv", "mka", "jpg"; NULL if invalid */
const char *evd_archive_format_mimetype(EvdArchiveFormat f);

/* One stream of an input container. All strings are fixed arrays: nothing to free. */
typedef struct EvdMediaStream {
        unsigned index;      /* index in the input container */
        char type[12];       /* "video", "audio", "data", "subtitle", "attachment", "unknown" */
        char codec_tag[8];   /* the container's fourcc, printable ("avc1", "gpmd"), "" if none */
        char codec_name[32]; /* FFmpeg's codec name ("h264", "aac", "bin_data", "none") */
        bool carried;        /* would be / was copied into the Matroska archive copy */
} EvdMediaStream;

typedef struct EvdMediaInfo {
        EvdMethod method;    /* from the content: any video stream -> video, else audio; JPEG -> photo */
        char container[12];  /* "mp4" (mov family), "matroska" or "jpeg" */
        int64_t duration_us; /* -1 if unknown (always for photos) */
        unsigned n_streams;
        EvdMediaStream streams[EVD_MEDIA_MAX_STREAMS];
} EvdMediaInfo;

/* The tags written into an archive copy. All strings are borrowed, UTF-8, without control characters,
 * at most EVD_MEDIA_MAX_TAG_BYTES each. Required: case_number, recorded_start, maker, device_id,
 * original_sha256 (64 hex digits), original_name. Optional (NULL): recorded_end, confidentiality.
 * method: EVD_METHOD_UNKNOWN writes the method found in the content. */
typedef struct EvdArchiveTag {
        const char *key; /* [A-Z0-9_]+, not one of the names above */
        const char *value;
} EvdArchiveTag;

typedef struct EvdArchiveTags {
        const char *case_number;
        EvdMethod method;
        const char *recorded_start; /* ISO 8601 with offset, e.g. "2024-05-01T09:30:00+08:00" */
        const char *recorded_end;
        const char *maker; /* officer ID */
        const char *device_id;
        const char *original_sha256; /* hex */
        const char *original_name;   /* file name on the recorder */
        const char *confidentiality;
        const EvdArchiveTag *extra;
        size_t n_extra; /* <= EVD_MEDIA_MAX_EXTRA_TAGS */
} EvdArchiveTags;

/* An attachment (e.g. the chain record: filename "chain-record.txt", mimetype "text/plain"). Borrowed. */
typedef struct EvdArchiveAttachment {
        const char *filename; /* required, no '/' */
        const char *mimetype; /* required */
        const void *data;
        size_t size; /* 1 .. EVD_MEDIA_MAX_ATTACHMENT_BYTES */
} EvdArchiveAttachment;

/* The archive job's progress through its source (EvdMediaOptions.progress). */
typedef void (*EvdMediaProgressFn)(uint64_t done, uint64_t total, void *userdata);
#define EVD_MEDIA_PROGRESS_STEP (1024u * 1024u)

/* A source that is still being written, from its start to its end, in order (the stored original while
 * ingest.c copies it): the archive copy is made while the copy runs. MP4/MOV/M4A only (-EMEDIUMTYPE
 * otherwise). Reads of [ahead_offset, size) are served from ahead_fd (offset 0 there = ahead_offset in the
 * source): the bytes after the mdat box, read ahead of the copy (mp4-layout.h), since recorders write the
 * index there. Reads below ahead_offset wait, through wait(), until the source holds them.
 *
 * The original's SHA-256 is known only once the copy has ended: tags->original_sha256 is then a
 * placeholder (64 hex digits that cannot occur by chance: a random nonce), and once the archive copy is
 * written, final_sha256() gives the real value, which replaces the placeholder in place (in the Matroska
 * Tags element, whose CRC-32 is recomputed). The result is byte for byte the archive copy the same
 * inputs give without `growing` (tests/e2e/test-pipeline.c checks this). */
typedef struct EvdMediaGrowing {
        uint64_t size;         /* the size the source has once complete */
        int ahead_fd;          /* the bytes read ahead; -1 if ahead_offset == size */
        uint64_t ahead_offset; /* <= size */
        /* Waits until the source holds at least `end` bytes (or the deadline, CLOCK_MONOTONIC usec):
         * returns how many it holds (>= end), or a negative errno (-ETIMEDOUT, the copy failed). */
        int64_t (*wait)(void *userdata, uint64_t end, uint64_t deadline);
        /* Waits for the original's SHA-256 (lower-case hex, NUL-terminated) once the copy has ended: 0, or
         * a negative errno (the copy failed or did not end before the deadline). */
        int (*final_sha256)(void *userdata, char ret_hex[65], uint64_t deadline);
        void *userdata;
} EvdMediaGrowing;

typedef struct EvdMediaOptions {
        /* CLOCK_MONOTONIC time in microseconds (evd_clock_monotonic_us()) after which the job gives up with
         * -ETIMEDOUT; 0 = now + EVD_MEDIA_DEFAULT_TIMEOUT_USEC. */
        uint64_t deadline_usec;
        /* After writing, read the archive copy back and check its packet digest and count equal the
         * original's (-EBADMSG if not). Costs one demux pass over the output (page cache). */
        bool verify_output;
        /* evd_media_archive_isolated() only: non-zero stops the job (the worker is killed) with
         * -ECANCELED within ~100 ms; NULL: none. */
        const atomic_int *cancel;
        /* Progress of evd_media_archive() (and of the isolated forms, called in the caller's thread):
         * done = bytes of the source read so far, total = its size; at most once per
         * EVD_MEDIA_PROGRESS_STEP of the source, and once at the end (done == total). NULL: none. */
        EvdMediaProgressFn progress;
        void *progress_userdata;
        /* evd_media_archive() only: the source is still being written (see above); NULL: it is complete. */
        const EvdMediaGrowing *growing;
} EvdMediaOptions;

typedef struct EvdArchiveResult {
        EvdArchiveFormat format;
        EvdMethod method; /* found in the content */
        uint64_t packets; /* packets copied (1 for a photo) */
        uint8_t packets_sha256[32];
        uint64_t bytes_written; /* size of the archive copy */
        bool output_verified;   /* verify_output was asked for and passed */
        unsigned n_not_carried; /* input streams that live only in the original */
        EvdMediaStream not_carried[EVD_MEDIA_MAX_STREAMS];
} EvdArchiveResult;

/* Looks at a media file: container, method, duration, streams. name_for_errors names the file in
 * err (e.g. "VIDEO/20240501_0930.MP4"). *ret is filled only on success. */
int evd_media_probe(int fd, const char *name_for_errors, const EvdMediaOptions *opts, EvdMediaInfo *ret,
                    EvdError *err);

/* Makes the archive copy of src_fd (the stored original) into out_fd: an empty, seekable, writable file
 * (e.g. O_TMPFILE) written from offset 0 with pwrite; the caller fsyncs, links and closes it. On error
 * out_fd may hold partial output: discard it. opts may be NULL. *ret is filled only on success.
 * Output is reproducible: the same input, tags and attachments give the same bytes. */
int evd_media_archive(int src_fd, const char *src_name, const EvdArchiveTags *tags,
                      const EvdArchiveAttachment *atts, size_t n_atts, const EvdMediaOptions *opts,
                      int out_fd, EvdArchiveResult *ret, EvdError *err);

/* The packet digest of any media file this module reads (an original or an archive copy):
 *
 *   video/audio: SHA-256 over "evidock-packets-v1\n", then for each carried stream (video or audio,
 *     in container order, attachments and data tracks excluded): one byte 'V' or 'A', the stream's packet
 *     count as 8 bytes big-endian, and SHA-256 over its packets in decode order, each as 4-byte
 *     big-endian size + payload. Timestamps are not covered (Matroska stores milliseconds).
 *     Samples are read ignoring MP4 edit lists, so every stored sample counts.
 *   photo: SHA-256 of the JPEG with evidock's COM segments (see above) removed, i.e. of the original
 *     file's bytes; *ret_packets = 1.
 *
 * ret_packets may be NULL. */
int evd_media_packets_digest(int fd, const char *name_for_errors, const EvdMediaOptions *opts,
                             uint8_t ret_digest[32], uint64_t *ret_packets, EvdError *err);
