/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* USB recorders: the profiles of conf/recorders.d, and libusb hotplug on its own event thread. The
 * hotplug callback only posts MSG_USB_ARRIVED / MSG_USB_LEFT; the loop thread queues or drops dockings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "manager-internal.h"
#include "usb-profile.h"

static void usb_port_name(libusb_device *dev, char *buf, size_t size)
{
        uint8_t ports[8];
        int n = libusb_get_port_numbers(dev, ports, (int)sizeof(ports));
        int o = snprintf(buf, size, "usb:%u-", libusb_get_bus_number(dev));
        for (int i = 0; i < n && o > 0 && (size_t)o < size; i++)
                o += snprintf(buf + o, size - (size_t)o, i ? ".%u" : "%u", ports[i]);
        if (n <= 0 && o > 0 && (size_t)o < size)
                snprintf(buf + o, size - (size_t)o, "addr%u", libusb_get_device_address(dev));
}

static Job *job_find_usb(Manager *m, libusb_device *dev)
{
        for (Job *j = m->jobs; j; j = j->next)
                if (j->usb_dev == dev)
                        return j;
        return NULL;
}

void usb_on_arrived(Manager *m, libusb_device *dev)
{
        EvdError err = {};
        int k = evd_usb_profile_match(m->profiles, m->n_profiles, dev, &err);
        struct libusb_device_descriptor d = {};
        (void)libusb_get_device_descriptor(dev, &d);
        if (k < 0) {
                log_debug("USB device %04x:%04x matches no recorder profile: ignored", d.idVendor,
                          d.idProduct);
                return;
        }
        if (job_find_usb(m, dev) || m->stopping)
                return;
        char port[64], source[160];
        usb_port_name(dev, port, sizeof(port));
        snprintf(source, sizeof(source), "%s (%04x:%04x, profile %s)", port, d.idVendor, d.idProduct,
                 m->profiles[k].name);
        (void)docking_queue_usb(m, dev, &m->profiles[k], port, source);
}

void usb_on_left(Manager *m, libusb_device *dev)
{
        Job *j = job_find_usb(m, dev);
        if (!j)
                return;
        j->departed = true;
        log_info("recorder at %s unplugged", j->source);
        if (j->state == JOB_PENDING) { /* never started or waiting for a retry: drop it */
                Job **p = &m->jobs;
                while (*p != j)
                        p = &(*p)->next;
                *p = j->next;
                m->n_jobs--;
                job_free(j);
        }
}

/* Runs on the USB event thread: only hands the device over; all work happens on the loop thread. */
static int LIBUSB_CALL on_usb_hotplug(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event event,
                                      void *userdata)
{
        Manager *m = userdata;
        Msg *msg = msg_new(event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? MSG_USB_ARRIVED : MSG_USB_LEFT);
        if (!msg) {
                log_error("out of memory: a USB hotplug event is lost");
                return 0;
        }
        msg->usb_dev = libusb_ref_device(dev);
        mailbox_post(&m->mailbox, msg);
        return 0;
}

static void *usb_thread_main(void *arg)
{
        Manager *m = arg;
        while (!atomic_load(&m->usb_stop)) {
                struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
                int r = libusb_handle_events_timeout_completed(m->usb, &tv, NULL);
                if (r < 0 && r != LIBUSB_ERROR_INTERRUPTED && r != LIBUSB_ERROR_TIMEOUT) {
                        log_error("USB event handling failed: %s", libusb_error_name(r));
                        sleep(1);
                }
        }
        return NULL;
}

static int usb_profiles_load(Manager *m)
{
        EvdUsbProfileFile *files = NULL;
        size_t n = 0;
        int r = evd_usb_profile_list(m->cfg.usb_profiles_dir, &files, &n);
        if (r == -EIO) /* as before: a directory that cannot be listed has no profiles */
                r = 0;
        if (r >= 0 && n == 0)
                log_warn("no recorder profiles in %s: USB recorders are ignored", m->cfg.usb_profiles_dir);
        if (r >= 0 && n > 0 && !(m->profiles = calloc(n, sizeof(*m->profiles))))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (files[i].result < 0) {
                        /* strict: a broken profile is an error, as for the main configuration */
                        r = files[i].result;
                        log_error("%s", evd_error_message(&files[i].err, r));
                        break;
                }
                EvdUsbProfile *p = &m->profiles[m->n_profiles++];
                *p = files[i].profile;
                if (m->cfg.usb_set_clock)
                        p->set_clock = true;
                log_info("recorder profile %s: %04x:%04x", p->name, p->vendor_id, p->product_id);
        }
        evd_usb_profile_list_free(files, n);
        return r;
}

int usb_start(Manager *m)
{
        if (!m->cfg.usb_enabled)
                return 0;
        int r = usb_profiles_load(m);
        if (r < 0)
                return r;
        if (m->n_profiles == 0)
                return 0;
        r = libusb_init(&m->usb);
        if (r < 0) {
                log_error("cannot initialise libusb: %s; USB recorders are not detected",
                          libusb_error_name(r));
                m->usb = NULL;
                return 0;
        }
        if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
                log_error("libusb has no hotplug support here; USB recorders are not detected");
                return 0;
        }
        /* ENUMERATE: recorders already docked at start-up arrive like new ones */
        r = libusb_hotplug_register_callback(
            m->usb, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
            LIBUSB_HOTPLUG_ENUMERATE, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
            LIBUSB_HOTPLUG_MATCH_ANY, on_usb_hotplug, m, &m->usb_hotplug);
        if (r < 0) {
                log_error("cannot register for USB hotplug: %s", libusb_error_name(r));
                return 0;
        }
        if (pthread_create(&m->usb_thread, NULL, usb_thread_main, m) != 0)
                return -EAGAIN;
        m->usb_thread_running = true;
        log_info("watching USB for %zu recorder profile(s)", m->n_profiles);
        return 0;
}

void usb_stop(Manager *m)
{
        if (!m->usb)
                return;
        atomic_store(&m->usb_stop, true);
        if (m->usb_thread_running) {
                libusb_hotplug_deregister_callback(m->usb, m->usb_hotplug); /* wakes the event thread */
                pthread_join(m->usb_thread, NULL);
                m->usb_thread_running = false;
        }
}

void usb_free(Manager *m)
{
        usb_stop(m);
        if (m->usb)
                libusb_exit(m->usb);
        m->usb = NULL;
        free(m->profiles);
        m->profiles = NULL;
}
