/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small helpers used everywhere: cleanup attributes, ownership transfer, array sizes. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)         __attribute__((cleanup(f)))
#define _unused_             __attribute__((unused))
#define _printf_(a, b)       __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* Defines type##p-style cleanup wrappers for library free functions:
 * DEFINE_TRIVIAL_CLEANUP_FUNC(PGresult *, PQclear) gives PQclearp(PGresult **). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                             \
        static inline void func##p(type *p)                                                                 \
        {                                                                                                   \
                if (*p)                                                                                     \
                        func(*p);                                                                           \
        }

static inline void freep(void *p)
{
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes *fd if open and sets it to -1, so that calling it twice (or a later cleanup) is harmless. */
static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
        *fd = -1;
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Hands ownership of a pointer to the caller: returns it and leaves NULL behind. */
#define steal_ptr(pp)                                                                                       \
        ({                                                                                                  \
                typeof(*(pp)) _stolen = *(pp);                                                              \
                *(pp) = NULL;                                                                               \
                _stolen;                                                                                    \
        })

static inline int steal_fd(int *fd)
{
        int r = *fd;
        *fd = -1;
        return r;
}

static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

static inline const char *strna(const char *s)
{
        return s ? s : "n/a";
}
