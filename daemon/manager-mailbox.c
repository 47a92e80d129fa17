/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one way back to the event loop: any thread appends a Msg and bumps an eventfd; the loop takes
 * them all and handles them in order (manager_dispatch in manager.c). */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "manager-internal.h"

int mailbox_init(Mailbox *mb)
{
        pthread_mutex_init(&mb->lock, NULL);
        mb->head = NULL;
        mb->tail = &mb->head;
        mb->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        return mb->fd < 0 ? -errno : 0;
}

void mailbox_done(Mailbox *mb)
{
        Msg *m = mailbox_take(mb);
        while (m) {
                Msg *next = m->next;
                msg_free(m);
                m = next;
        }
        if (mb->fd >= 0)
                close(mb->fd);
        mb->fd = -1;
        pthread_mutex_destroy(&mb->lock);
}

Msg *msg_new(MsgKind kind)
{
        Msg *m = calloc(1, sizeof(*m));
        if (m)
                m->kind = kind;
        return m;
}

void msg_free(Msg *m)
{
        if (!m)
                return;
        if (m->usb_dev)
                libusb_unref_device(m->usb_dev);
        m->usb_dev = NULL;
        if (!m->embedded)
                free(m);
}

void mailbox_post(Mailbox *mb, Msg *msg)
{
        msg->next = NULL;
        pthread_mutex_lock(&mb->lock);
        *mb->tail = msg;
        mb->tail = &msg->next;
        pthread_mutex_unlock(&mb->lock);
        uint64_t one = 1;
        (void)!write(mb->fd, &one, sizeof(one));
}

Msg *mailbox_take(Mailbox *mb)
{
        uint64_t n;
        (void)!read(mb->fd, &n, sizeof(n));
        pthread_mutex_lock(&mb->lock);
        Msg *list = mb->head;
        mb->head = NULL;
        mb->tail = &mb->head;
        pthread_mutex_unlock(&mb->lock);
        return list;
}
