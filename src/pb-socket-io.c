/* SPDX-License-Identifier: ISC */
#include "config.h"

#include "pb-socket-io.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>

/*
 * Reads and writes on a GSocket's fd (non-blocking, as every GSocket's is), with errors as
 * GIOErrors: %G_IO_ERROR_WOULD_BLOCK when the socket has nothing to read or no room.
 *
 * Why not g_socket_receive() and g_socket_send(), or the GIOStreams over them: on every
 * call they check the socket's timeout and the cancellable, and the streams go through two
 * or three layers of interfaces first: 500 to 1 000 instructions per call (callgrind),
 * about a tenth of a round trip through a tunnel end, where the system call itself costs
 * 120. The tunneled sockets and the WebSocket over plain TCP are read and written here; TLS
 * goes through its GIOStream.
 */

static gboolean
pb_socket_io_check(GSocket *socket, GError **error)
{
	/* its fd number may be another socket's by now */
	if (!g_socket_is_closed(socket))
		return TRUE;
	g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CLOSED, "the socket is closed");
	return FALSE;
}

static void
pb_socket_io_set_error(GError **error, int saved)
{
	g_set_error_literal(error, G_IO_ERROR, g_io_error_from_errno(saved), g_strerror(saved));
}

/* Returns: bytes read, 0 at the end of the stream, -1 with @error set */
gssize
pb_socket_io_receive(GSocket *socket, void *buf, gsize size, GError **error)
{
	if (!pb_socket_io_check(socket, error))
		return -1;
	for (;;) {
		gssize n = recv(g_socket_get_fd(socket), buf, size, 0);

		if (n >= 0)
			return n;
		if (errno != EINTR) {
			pb_socket_io_set_error(error, errno);
			return -1;
		}
	}
}

/* Returns: bytes written (of all @vectors together), -1 with @error set */
gssize
pb_socket_io_send(GSocket *socket, const GOutputVector *vectors, gsize n_vectors, GError **error)
{
	struct iovec iov[4];
	struct msghdr message = {.msg_iov = iov, .msg_iovlen = n_vectors};

	g_return_val_if_fail(n_vectors <= G_N_ELEMENTS(iov), -1);

	if (!pb_socket_io_check(socket, error))
		return -1;
	for (gsize i = 0; i < n_vectors; i++) {
		iov[i].iov_base = (void *)vectors[i].buffer;
		iov[i].iov_len = vectors[i].size;
	}
	for (;;) {
		/* MSG_NOSIGNAL: a peer that is gone is an error here, not a SIGPIPE */
		gssize n = sendmsg(g_socket_get_fd(socket), &message, MSG_NOSIGNAL);

		if (n >= 0)
			return n;
		if (errno != EINTR) {
			pb_socket_io_set_error(error, errno);
			return -1;
		}
	}
}
