/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#include "copy.h"
#include "writeback.h"

/* 0440: once committed, a stored file is never opened for writing again (this descriptor, opened O_RDWR
 * at creation, is the only writer it ever has); the media worker is kept from chmod by confine.h. */
#define STORE_FILE_MODE 0440

int evd_tmpfile_open(int dir_fd, EvdTmpFile *ret, EvdError *err)
{
        int fd = openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, STORE_FILE_MODE);
        if (fd >= 0) {
                *ret = (EvdTmpFile){.fd = fd, .dir_fd = dir_fd, .tmp_name = NULL};
                return 0;
        }
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                return evd_error_set_errno(err, -errno, "creating a temporary file in the store");
        /* Filesystems without O_TMPFILE: a hidden name that reconciliation recognises. */
        for (unsigned attempt = 0; attempt < 100; attempt++) {
                char name[64];
                unsigned long rnd = (unsigned long)random() ^ ((unsigned long)getpid() << 16) ^ attempt;
                snprintf(name, sizeof(name), EVD_TMPFILE_PREFIX "%08lx", rnd & 0xffffffffUL);
                fd = openat(dir_fd, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, STORE_FILE_MODE);
                if (fd >= 0) {
                        char *n = strdup(name);
                        if (!n) {
                                unlinkat(dir_fd, name, 0);
                                close(fd);
                                return -ENOMEM;
                        }
                        *ret = (EvdTmpFile){.fd = fd, .dir_fd = dir_fd, .tmp_name = n};
                        return 0;
                }
                if (errno != EEXIST)
                        break;
        }
        return evd_error_set_errno(err, -errno, "creating a temporary file in the store");
}

int evd_tmpfile_link(EvdTmpFile *t, int target_dir_fd, const char *name, EvdError *err)
{
        int target = target_dir_fd >= 0 ? target_dir_fd : t->dir_fd;
        if (t->tmp_name) {
                if (renameat2(t->dir_fd, t->tmp_name, target, name, RENAME_NOREPLACE) < 0)
                        return evd_error_set_errno(err, -errno, "naming %s", name);
        } else {
                char proc[64];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", t->fd);
                if (linkat(AT_FDCWD, proc, target, name, AT_SYMLINK_FOLLOW) < 0)
                        return evd_error_set_errno(err, -errno, "naming %s", name);
        }
        closep(&t->fd);
        t->fd = -1;
        free(t->tmp_name);
        t->tmp_name = NULL;
        return 0;
}

int evd_tmpfile_commit(EvdTmpFile *t, int target_dir_fd, const char *name, EvdError *err)
{
        int target = target_dir_fd >= 0 ? target_dir_fd : t->dir_fd;
        if (fdatasync(t->fd) < 0)
                return evd_error_set_errno(err, -errno, "syncing %s", name);
        int r = evd_tmpfile_link(t, target, name, err);
        if (r < 0)
                return r;
        if (fsync(target) < 0)
                return evd_error_set_errno(err, -errno, "syncing the directory of %s", name);
        return 0;
}

int evd_dirs_sync(const int *dir_fds, size_t n, EvdError *err)
{
        for (size_t i = 0; i < n; i++) {
                /* the same directory under several descriptors is synced once */
                struct stat st, other;
                bool seen = false;
                if (fstat(dir_fds[i], &st) < 0)
                        return evd_error_set_errno(err, -errno, "syncing a store directory");
                for (size_t k = 0; k < i && !seen; k++)
                        seen = fstat(dir_fds[k], &other) >= 0 && other.st_dev == st.st_dev &&
                               other.st_ino == st.st_ino;
                if (!seen && fsync(dir_fds[i]) < 0)
                        return evd_error_set_errno(err, -errno, "syncing a store directory");
        }
        return 0;
}

#define SYNC_THREADS 8u

typedef struct SyncAll {
        EvdTmpFile *const *files;
        size_t n;
        atomic_size_t next;
        atomic_int error; /* first negative errno */
} SyncAll;

static void *sync_all_main(void *arg)
{
        SyncAll *a = arg;
        for (size_t i; (i = atomic_fetch_add(&a->next, 1)) < a->n;)
                if (fdatasync(a->files[i]->fd) < 0) {
                        int expected = 0;
                        atomic_compare_exchange_strong(&a->error, &expected, -errno);
                }
        return NULL;
}

int evd_tmpfiles_sync(EvdTmpFile *const *files, size_t n, EvdError *err)
{
        /* Concurrent fdatasync()s wait for the same journal commit: n files cost about one. */
        SyncAll a = {.files = files, .n = n};
        pthread_t threads[SYNC_THREADS];
        unsigned started = 0;
        while (started < MIN((size_t)SYNC_THREADS, n > 0 ? n - 1 : 0) &&
               pthread_create(&threads[started], NULL, sync_all_main, &a) == 0)
                started++;
        sync_all_main(&a); /* this thread takes its share (all of it if no thread could start) */
        for (unsigned i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        int r = atomic_load(&a.error);
        return r < 0 ? evd_error_set_errno(err, r, "syncing files in the store") : 0;
}

int evd_tmpfile_hash_and_sync(EvdTmpFile *t, EvdTmpFile *also, uint8_t ret_sha256[EVD_DIGEST_SIZE],
                              EvdError *err)
{
        EvdTmpFile *files[] = {t, also};
        SyncAll job = {.files = files, .n = also ? 2 : 1};
        pthread_t thread;
        bool threaded = pthread_create(&thread, NULL, sync_all_main, &job) == 0;
        int r = evd_hash_fd(EVD_HASH_SHA256, t->fd, ret_sha256, NULL);
        if (threaded)
                pthread_join(thread, NULL);
        else
                sync_all_main(&job);
        if (r < 0)
                return evd_error_set_errno(err, r, "hashing a file in the store");
        r = atomic_load(&job.error);
        if (r < 0)
                return evd_error_set_errno(err, r, "syncing files in the store");
        return 0;
}

/* evd_tmpfile_sync_begin(): sync_all_main() over the one file, on a thread of its own */
struct EvdTmpFileSync {
        pthread_t thread;
        bool threaded;
        EvdTmpFile *file;
        SyncAll job;
};

EvdTmpFileSync *evd_tmpfile_sync_begin(EvdTmpFile *t)
{
        EvdTmpFileSync *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->file = t;
        s->job = (SyncAll){.files = &s->file, .n = 1};
        s->threaded = pthread_create(&s->thread, NULL, sync_all_main, &s->job) == 0;
        if (!s->threaded)
                sync_all_main(&s->job);
        return s;
}

int evd_tmpfile_sync_end(EvdTmpFileSync *s, EvdError *err)
{
        if (!s)
                return 0;
        if (s->threaded)
                pthread_join(s->thread, NULL);
        int r = atomic_load(&s->job.error);
        free(s);
        if (r < 0 && err)
                return evd_error_set_errno(err, r, "syncing a file in the store");
        return r;
}

void evd_tmpfile_discard(EvdTmpFile *t)
{
        if (t->tmp_name) {
                (void)unlinkat(t->dir_fd, t->tmp_name, 0);
                free(t->tmp_name);
                t->tmp_name = NULL;
        }
        closep(&t->fd);
        t->fd = -1;
}

/* The pipeline: the calling thread reads into slot[i]; one hasher thread per hash (SHA-256, and SM3 for
 * the national suite: SM3 is ~4x slower than SHA-256, so it gets its own core) and the writer thread
 * consume it concurrently; a slot is reused once every consumer is done with it. One mutex and one
 * condition variable are plenty at EVD_COPY_CHUNK-sized steps. */
typedef struct Slot {
        uint8_t *buf;
        size_t len;
} Slot;

typedef struct Pipe {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Slot slots[EVD_COPY_SLOTS];
        uint64_t n_read, n_written; /* counts of chunks through each stage */
        uint64_t n_hashed[2];       /* per hasher: [0] SHA-256, [1] SM3 */
        bool eof;
        int error; /* first error of any stage (negative errno); stops everyone */
        EvdError werr;
        EVP_MD_CTX *md[2]; /* SHA-256, SM3 (NULL unless asked for) */
        int out_fd;
        uint64_t written_bytes;
        EvdWriteback *writeback; /* writeback behind the writer (writeback.h); may be NULL */
} Pipe;

static void pipe_fail(Pipe *p, int r)
{
        if (p->error == 0)
                p->error = r;
        pthread_cond_broadcast(&p->cond);
}

typedef struct Hasher {
        Pipe *pipe;
        unsigned index; /* into Pipe.md / Pipe.n_hashed */
} Hasher;

static void *hasher_main(void *arg)
{
        Hasher *h = arg;
        Pipe *p = h->pipe;
        uint64_t *done = &p->n_hashed[h->index];
        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (p->error == 0 && *done == p->n_read && !p->eof)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (p->error != 0 || *done == p->n_read)
                        break;
                Slot *s = &p->slots[*done % EVD_COPY_SLOTS];
                pthread_mutex_unlock(&p->lock);
                int r = evd_hash_update(p->md[h->index], s->buf, s->len);
                pthread_mutex_lock(&p->lock);
                if (r < 0) {
                        pipe_fail(p, r);
                        break;
                }
                (*done)++;
                pthread_cond_broadcast(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* The chunk count every consumer has finished with. */
static uint64_t pipe_consumed(const Pipe *p)
{
        uint64_t n = MIN(p->n_written, p->n_hashed[0]);
        return p->md[1] ? MIN(n, p->n_hashed[1]) : n;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, buf, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

static void *writer_main(void *arg)
{
        Pipe *p = arg;
        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (p->error == 0 && p->n_written == p->n_read && !p->eof)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (p->error != 0 || p->n_written == p->n_read)
                        break;
                Slot *s = &p->slots[p->n_written % EVD_COPY_SLOTS];
                pthread_mutex_unlock(&p->lock);
                int r = write_all(p->out_fd, s->buf, s->len);
                if (r >= 0) {
                        p->written_bytes += s->len;
                        /* writeback started early (on its own thread) so the final fdatasync is short */
                        evd_writeback_advance(p->writeback, p->written_bytes);
                }
                pthread_mutex_lock(&p->lock);
                if (r < 0) {
                        evd_error_set_errno(&p->werr, r, "writing to the store");
                        pipe_fail(p, r);
                        break;
                }
                p->n_written++;
                pthread_cond_broadcast(&p->cond);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

int evd_copy_stream(EvdReader *src, EvdTmpFile *out, const EvdCopyOptions *opts, EvdCopyResult *ret,
                    EvdError *err)
{
        static const EvdCopyOptions no_opts = {};
        if (!opts)
                opts = &no_opts;
        Pipe p = {.out_fd = out->fd, .writeback = evd_writeback_new(out->fd)};
        pthread_mutex_init(&p.lock, NULL);
        pthread_cond_init(&p.cond, NULL);
        int r = 0;
        for (unsigned i = 0; i < EVD_COPY_SLOTS; i++)
                if (!(p.slots[i].buf = malloc(EVD_COPY_CHUNK)))
                        r = -ENOMEM;
        if (r >= 0)
                r = evd_hash_begin(EVD_HASH_SHA256, &p.md[0]);
        if (r >= 0 && opts->want_sm3)
                r = evd_hash_begin(EVD_HASH_SM3, &p.md[1]);
        /* consumers: the writer, then one hasher per hash */
        pthread_t threads[3];
        Hasher hashers[2] = {{.pipe = &p, .index = 0}, {.pipe = &p, .index = 1}};
        unsigned n_threads = 0, n_wanted = p.md[1] ? 3 : 2;
        while (r >= 0 && n_threads < n_wanted) {
                int k = n_threads == 0 ? pthread_create(&threads[0], NULL, writer_main, &p)
                                       : pthread_create(&threads[n_threads], NULL, hasher_main,
                                                        &hashers[n_threads - 1]);
                if (k != 0) {
                        pthread_mutex_lock(&p.lock);
                        pipe_fail(&p, -EAGAIN);
                        pthread_mutex_unlock(&p.lock);
                        r = -EAGAIN;
                        break;
                }
                n_threads++;
        }
        bool started = r >= 0;
        uint64_t total = 0;
        EvdError rerr = {};
        int read_error = 0;
        while (started) {
                pthread_mutex_lock(&p.lock);
                /* wait for a free slot: one that both the hasher and the writer are done with (they run
                 * independently, either may be the one behind) */
                while (p.error == 0 && p.n_read - pipe_consumed(&p) >= EVD_COPY_SLOTS)
                        pthread_cond_wait(&p.cond, &p.lock);
                bool stop = p.error != 0;
                pthread_mutex_unlock(&p.lock);
                if (stop)
                        break;
                Slot *s = &p.slots[p.n_read % EVD_COPY_SLOTS];
                int fail = 0;
                size_t len = 0;
                /* fill the whole chunk unless the file ends: fewer, larger writes */
                while (len < EVD_COPY_CHUNK) {
                        if (opts->cancel && *opts->cancel) {
                                fail = evd_error_set(&rerr, -ECANCELED, "copy cancelled");
                                break;
                        }
                        ssize_t n = evd_reader_read(src, s->buf + len, EVD_COPY_CHUNK - len, &rerr);
                        if (n < 0) {
                                if (!rerr.code)
                                        evd_error_set_errno(&rerr, (int)n, "reading from the recorder");
                                fail = (int)n;
                                read_error = 1;
                                break;
                        }
                        if (n == 0)
                                break;
                        len += (size_t)n;
                }
                if (!fail && opts->max_bytes && total + len > opts->max_bytes) {
                        fail = evd_error_set(&rerr, -EFBIG, "file larger than the %llu bytes allowed",
                                             (unsigned long long)opts->max_bytes);
                        read_error = 1; /* a property of the source file */
                }
                pthread_mutex_lock(&p.lock);
                if (fail) {
                        pipe_fail(&p, fail);
                        pthread_mutex_unlock(&p.lock);
                        break;
                }
                if (len == 0) {
                        p.eof = true;
                        pthread_cond_broadcast(&p.cond);
                        pthread_mutex_unlock(&p.lock);
                        break;
                }
                s->len = len;
                p.n_read++;
                total += len;
                pthread_cond_broadcast(&p.cond);
                pthread_mutex_unlock(&p.lock);
                if (opts->progress)
                        opts->progress(total, src->size, opts->userdata);
        }
        for (unsigned i = 0; i < n_threads; i++)
                pthread_join(threads[i], NULL);
        if (started) {
                if (r >= 0 && p.error < 0) {
                        r = p.error;
                        if (err)
                                *err = (rerr.code || read_error) ? rerr : p.werr;
                }
        }
        ret->read_failed = r < 0 && read_error;
        if (r >= 0) {
                ret->size = total;
                r = evd_hash_end(p.md[0], ret->sha256);
                ret->has_sm3 = p.md[1] != NULL;
                if (r >= 0 && p.md[1])
                        r = evd_hash_end(p.md[1], ret->sm3);
        }
        evd_writeback_stop(p.writeback, NULL);
        EVP_MD_CTX_free(p.md[0]);
        EVP_MD_CTX_free(p.md[1]);
        for (unsigned i = 0; i < EVD_COPY_SLOTS; i++)
                free(p.slots[i].buf);
        pthread_cond_destroy(&p.cond);
        pthread_mutex_destroy(&p.lock);
        return r;
}
