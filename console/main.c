/*
 * mosquitto_tokens_console: the seed's Application Tokens screens and REST
 * API, on top of the plugin's control topic (SPEC section 8).
 *
 *   mosquitto_tokens_console [--broker HOST:PORT] [--listen ADDR:PORT]
 *                            [--broker-cafile FILE] [--broker-insecure]
 *                            [--cert FILE --key FILE]
 *
 * Listens on loopback unless told otherwise. Runs until SIGINT or SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mosquitto.h>

#include "http_api.h"

struct options {
	char broker_host[256];
	int broker_port;
	char listen_address[64];
	int listen_port;
	const char *broker_cafile;
	bool broker_insecure;
	const char *cert;
	const char *key;
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: mosquitto_tokens_console [--broker HOST:PORT] [--listen ADDR:PORT]\n"
			"                                 [--broker-cafile FILE] [--broker-insecure]\n"
			"                                 [--cert FILE --key FILE]\n"
			"Defaults: --broker 127.0.0.1:1883 --listen 127.0.0.1:8088\n");
}

/* HOST:PORT, the port from 1 to 65535. */
static bool parse_endpoint(const char *text, char *host, size_t host_size, int *port)
{
	const char *colon = strrchr(text, ':');
	if(colon == NULL || colon == text || (size_t)(colon - text) >= host_size){
		return false;
	}
	char *end;
	long number = strtol(colon + 1, &end, 10);
	if(*end != '\0' || number < 1 || number > 65535){
		return false;
	}
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	*port = (int)number;
	return true;
}

static bool parse_options(int argc, char *argv[], struct options *options)
{
	*options = (struct options){.broker_host = "127.0.0.1", .broker_port = 1883,
		.listen_address = "127.0.0.1", .listen_port = 8088};
	for(int i = 1; i < argc; i++){
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		if(strcmp(argv[i], "--broker") == 0 && value){
			if(!parse_endpoint(value, options->broker_host, sizeof(options->broker_host), &options->broker_port)){
				fprintf(stderr, "Error: --broker needs HOST:PORT, not \"%s\"\n", value);
				return false;
			}
		}else if(strcmp(argv[i], "--listen") == 0 && value){
			if(!parse_endpoint(value, options->listen_address, sizeof(options->listen_address), &options->listen_port)){
				fprintf(stderr, "Error: --listen needs ADDR:PORT, not \"%s\"\n", value);
				return false;
			}
		}else if(strcmp(argv[i], "--broker-cafile") == 0 && value){
			options->broker_cafile = value;
		}else if(strcmp(argv[i], "--cert") == 0 && value){
			options->cert = value;
		}else if(strcmp(argv[i], "--key") == 0 && value){
			options->key = value;
		}else if(strcmp(argv[i], "--broker-insecure") == 0){
			options->broker_insecure = true;
			continue;
		}else{
			fprintf(stderr, "Error: unknown or incomplete option \"%s\"\n", argv[i]);
			return false;
		}
		i++;
	}
	if((options->cert == NULL) != (options->key == NULL)){
		fprintf(stderr, "Error: --cert and --key go together\n");
		return false;
	}
	return true;
}

static char *read_whole(const char *path)
{
	FILE *file = fopen(path, "rb");
	char *text = NULL;
	long size;
	if(file && fseek(file, 0, SEEK_END) == 0 && (size = ftell(file)) >= 0 && fseek(file, 0, SEEK_SET) == 0
			&& (text = calloc(1, (size_t)size + 1)) != NULL && fread(text, 1, (size_t)size, file) != (size_t)size){
		free(text);
		text = NULL;
	}
	if(file) fclose(file);
	if(text == NULL){
		fprintf(stderr, "Error: cannot read %s: %s\n", path, strerror(errno));
	}
	return text;
}

static struct MHD_Daemon *start_http(const struct options *options, struct console *console,
		char **cert, char **key)
{
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)options->listen_port)};
	if(inet_pton(AF_INET, options->listen_address, &address.sin_addr) != 1){
		fprintf(stderr, "Error: --listen address \"%s\" is not an IPv4 address\n", options->listen_address);
		return NULL;
	}
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if(options->cert){
		*cert = read_whole(options->cert);
		*key = read_whole(options->key);
		if(*cert == NULL || *key == NULL){
			return NULL;
		}
		flags |= MHD_USE_TLS;
	}
	return MHD_start_daemon(flags, 0, NULL, NULL, console_handle_request, console,
			MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
			MHD_OPTION_NOTIFY_COMPLETED, console_request_completed, console,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
			options->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, *cert,
			MHD_OPTION_HTTPS_MEM_KEY, *key,
			MHD_OPTION_END);
}

int main(int argc, char *argv[])
{
	struct options options;
	if(argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)){
		usage(stdout);
		return 0;
	}
	if(!parse_options(argc, argv, &options)){
		usage(stderr);
		return 2;
	}
	/* Blocked here, before any thread starts, so that every thread inherits
	 * the mask: a stop signal then stays pending until main's sigwait takes
	 * it, whichever thread the kernel would have delivered it to. */
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	struct broker_settings settings = {
		.host = options.broker_host, .port = options.broker_port,
		.cafile = options.broker_cafile, .insecure = options.broker_insecure,
		.timeout_ms = 4000, .idle_seconds = 60,
	};
	struct console console = {.pool = broker_pool_new(&settings)};
	char *cert = NULL, *key = NULL;
	struct MHD_Daemon *daemon = console.pool ? start_http(&options, &console, &cert, &key) : NULL;
	if(daemon == NULL){
		fprintf(stderr, "Error: cannot listen on %s:%d\n", options.listen_address, options.listen_port);
		broker_pool_free(console.pool);
		return 1;
	}
	printf("mosquitto_tokens_console: %s://%s:%d/ (broker %s:%d%s)\n", options.cert ? "https" : "http",
			options.listen_address, options.listen_port, options.broker_host, options.broker_port,
			options.broker_cafile ? ", TLS" : "");
	fflush(stdout);
	int received;
	sigwait(&stop_signals, &received);
	MHD_stop_daemon(daemon);
	broker_pool_free(console.pool);
	free(cert);
	free(key);
	mosquitto_lib_cleanup();
	return 0;
}
