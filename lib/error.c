/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>

#include "error.h"
#include "text.h"

static int error_vset(EvdError *err, int code, int with_errno, const char *fmt, va_list ap)
{
        if (code >= 0)
                code = -EIO;
        if (!err)
                return code;
        err->code = code;
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        if (with_errno && n >= 0 && (size_t)n < sizeof(err->msg))
                snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(-code));
        return code;
}

int evd_error_set(EvdError *err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_vset(err, code, 0, fmt, ap);
        va_end(ap);
        return r;
}

int evd_error_set_errno(EvdError *err, int code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = error_vset(err, code, 1, fmt, ap);
        va_end(ap);
        return r;
}

int evd_error_prefix(EvdError *err, const char *fmt, ...)
{
        if (!err)
                return 0;
        char prefix[256], old[sizeof(err->msg)];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof(old));
        snprintf(err->msg, sizeof(err->msg), "%s%s", prefix, old);
        return err->code;
}

const char *evd_error_message(const EvdError *err, int code)
{
        if (err && err->code != 0 && err->msg[0])
                return err->msg;
        return strerror(code < 0 ? -code : code);
}

void evd_debug(const char *fmt, ...)
{
        if (!getenv("EVIDOCK_DEBUG"))
                return;
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fputs("evidock-debug: ", stderr);
        evd_text_fputs(msg, stderr, 0); /* debug lines quote recorder text: no control or bidi characters */
        fputc('\n', stderr);
}
