/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

/*
 * The local service of the latency, connection and memory measures: an echo server in a
 * child process of its own (so that its sockets do not count against the bench's fd limit
 * while the bench holds 10 000 client sockets), one epoll loop, bounded per connection.
 * The names measure runs it as a keep-alive HTTP/1.1 server instead: every request head
 * (up to its empty line; no body) gets PB_BENCH_HTTP_ANSWER; a request that says
 * "Connection: close" gets PB_BENCH_HTTP_ANSWER_CLOSE, and the server closes once it is
 * written (the new connections measure of the tools: wrk -H "Connection: close").
 */

#define PB_BENCH_HTTP_ANSWER                                                                       \
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nbench\n"
#define PB_BENCH_HTTP_ANSWER_CLOSE                                                                 \
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: "         \
	"close\r\n\r\nbench\n"

GPid
pb_bench_echo_spawn(gboolean http, guint16 *port, GError **error);
void
pb_bench_echo_stop(GPid *pid);
