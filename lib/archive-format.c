/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The names of the archive copy's formats (media.h): file extension and MIME type. Apart from media.c
 * because the parent's side (ingest, the store, exports) names archive copies without linking FFmpeg. */
#include "media.h"

static const char *const archive_extensions[_EVD_ARCHIVE_FORMAT_MAX] = {
    [EVD_ARCHIVE_MKV] = "mkv", [EVD_ARCHIVE_MKA] = "mka", [EVD_ARCHIVE_JPEG] = "jpg"};
static const char *const archive_mimetypes[_EVD_ARCHIVE_FORMAT_MAX] = {
    [EVD_ARCHIVE_MKV] = "video/x-matroska",
    [EVD_ARCHIVE_MKA] = "audio/x-matroska",
    [EVD_ARCHIVE_JPEG] = "image/jpeg"};

const char *evd_archive_format_extension(EvdArchiveFormat f)
{
        return (unsigned)f < _EVD_ARCHIVE_FORMAT_MAX ? archive_extensions[f] : NULL;
}

const char *evd_archive_format_mimetype(EvdArchiveFormat f)
{
        return (unsigned)f < _EVD_ARCHIVE_FORMAT_MAX ? archive_mimetypes[f] : NULL;
}
