/*
 * libFuzzer harness for the console's request handling (http_api.c): an
 * input is the raw bytes a browser or script would send, one or more HTTP
 * requests (method, path, headers, body), so libmicrohttpd parses them as
 * it does in the daemon and calls our handler with what it made of them.
 *
 * One daemon lives for the whole process, with no listen socket and no
 * thread of its own: each input gets a socketpair whose one end is handed
 * to the daemon, and this thread alone writes the input into the other end,
 * drives the daemon with MHD_run and reads the answers away, until the
 * daemon reports the connection closed. Nothing waits on a clock, so the
 * daemon's timeouts never come into play and every run is the same.
 * The broker is test/fuzz/fake_broker_link.c; the connection guard
 * (console/guard.c) is the real one, without its watchdog.
 *
 *   build/fuzz/fuzz_console -max_total_time=60 CORPUS_COPY test/fuzz/corpus/console
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>

#include "http_api.h"

/* Far more rounds than any request needs: reaching it means the daemon
 * holds the connection open with nothing left to do, which is a finding. */
#define MAX_ROUNDS 100000

static struct console console;
static const char *const allowed_names[] = {"console.example"};
static struct MHD_Daemon *daemon_under_test;
static bool connection_closed;
static bool show_answers;

/* The guard's notification (its limits and bookkeeping run as in the
 * daemon; it has no watchdog here, so no clock), then ours. */
static void on_connection(void *context, struct MHD_Connection *connection, void **socket_context,
		enum MHD_ConnectionNotificationCode code)
{
	guard_notify_connection(context, connection, socket_context, code);
	if(code == MHD_CONNECTION_NOTIFY_CLOSED){
		connection_closed = true;
	}
}

static void stop_daemon(void)
{
	MHD_stop_daemon(daemon_under_test);
	guard_free(console.guard);
	broker_pool_free(console.pool);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	show_answers = getenv("FUZZ_CONSOLE_SHOW") != NULL;
	struct broker_settings settings = {.host = "fake", .port = 1883, .timeout_ms = 1, .idle_seconds = 1};
	console.pool = broker_pool_new(&settings);
	/* The seeds' Host is localhost:8088. */
	console.hosts = (struct allowed_hosts){.listen_address = "127.0.0.1", .listen_port = 8088,
		.names = allowed_names, .name_count = 1};
	struct guard_settings limits = {.max_connections = 4, .max_per_address = 4, .request_timeout_ms = 0};
	console.guard = guard_new(&limits);
	/* The daemon's options that shape request parsing are console/main.c's. */
	daemon_under_test = console.pool && console.guard ? MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0,
			guard_accept, console.guard, console_handle_request, &console,
			MHD_OPTION_URI_LOG_CALLBACK, console_request_started, &console,
			MHD_OPTION_NOTIFY_COMPLETED, console_request_completed, &console,
			MHD_OPTION_NOTIFY_CONNECTION, on_connection, console.guard,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
			MHD_OPTION_END) : NULL;
	if(daemon_under_test == NULL){
		fprintf(stderr, "fuzz_console: cannot start the daemon\n");
		exit(1);
	}
	atexit(stop_daemon);
	return 0;
}

/* Writes what the socket takes now; true once all is written. */
static bool feed(int client, const uint8_t *data, size_t size, size_t *written)
{
	while(*written < size){
		ssize_t sent = send(client, data + *written, size - *written, MSG_DONTWAIT);
		if(sent < 0){
			/* EAGAIN: later. EPIPE, ECONNRESET: the daemon has hung up. */
			return errno != EAGAIN && errno != EWOULDBLOCK;
		}
		*written += (size_t)sent;
	}
	return true;
}

/* FUZZ_CONSOLE_SHOW=1 prints the daemon's answers, to check what a seed reaches. */
static void drain(int client)
{
	static char answer[65536];
	ssize_t length;
	while((length = recv(client, answer, sizeof(answer), MSG_DONTWAIT)) > 0){
		if(show_answers){
			fwrite(answer, 1, (size_t)length, stdout);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int ends[2];
	if(socketpair(AF_UNIX, SOCK_STREAM, 0, ends) != 0){
		perror("fuzz_console: socketpair");
		abort();
	}
	int client = ends[0];
	/* MHD wants a peer address; the console does not look at it. */
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(40000),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	connection_closed = false;
	if(MHD_add_connection(daemon_under_test, ends[1], (struct sockaddr *)&peer, sizeof(peer)) != MHD_YES){
		/* MHD has closed its end already. */
		perror("fuzz_console: MHD_add_connection");
		abort();
	}
	size_t written = 0;
	bool all_sent = false;
	for(int round = 0; !connection_closed; round++){
		if(round == MAX_ROUNDS){
			fprintf(stderr, "fuzz_console: the daemon keeps the connection open after the input ended\n");
			abort();
		}
		if(!all_sent && feed(client, data, size, &written)){
			all_sent = true;
			shutdown(client, SHUT_WR);
		}
		MHD_run(daemon_under_test);
		drain(client);
	}
	close(client);
	return 0;
}
