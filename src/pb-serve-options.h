/* SPDX-License-Identifier: ISC */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The options of `piggyback serve`, as parsed from its command line and its --config file
 * ([serve]), before they are checked. */
typedef struct {
	char *config; /* --config FILE */
	int port;
	char *listen_host;
	char *tunnel_ports;
	char *tunnel_host; /* NULL: every address, both families */
	char *public_host;
	char *domain;
	int http_port; /* -1: none */
	char *public_url;
	int sni_port; /* -1: none */
	char *features;
	int window;
	int max_clients;
	int max_connections;
	int max_services;
	int max_buffer_mib;
	int handshake_timeout;
	int idle_timeout;
	int grace;
	int drain; /* seconds of 503 on /healthz after SIGTERM */
	char *token_file;
	char *metrics;
	char *metrics_token_file;
	char *tls_cert;
	char *tls_key;
	char *allow; /* CIDR ranges, for the public ports */
	char *deny;
	int max_connections_per_address; /* 0: no limit */
	char *listen_allow;		 /* CIDR ranges, for the WebSocket port */
	char *listen_deny;
} PbServeOptions;

void
pb_serve_options_init(PbServeOptions *self);
GOptionEntry *
pb_serve_options_get_entries(PbServeOptions *self);
void
pb_serve_options_clear(PbServeOptions *self);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PbServeOptions, pb_serve_options_clear)

G_END_DECLS
