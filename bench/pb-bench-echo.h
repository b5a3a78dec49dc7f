/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

/*
 * The local service of the latency, connection and memory measures: an echo server in a
 * child process of its own (so that its sockets do not count against the bench's fd limit
 * while the bench holds 10 000 client sockets), one epoll loop, bounded per connection.
 */

GPid
pb_bench_echo_spawn(guint16 *port, GError **error);
