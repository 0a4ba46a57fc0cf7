/*
 * mosquitto_tokens_console: the seed's Application Tokens screens and REST
 * API, on top of the plugin's control topic (SPEC section 8).
 *
 *   mosquitto_tokens_console [--broker HOST:PORT] [--listen ADDR:PORT]
 *                            [--broker-cafile FILE] [--broker-insecure]
 *                            [--cert FILE --key FILE]
 *                            [--max-connections N] [--max-connections-per-address N]
 *                            [--request-timeout SECONDS] [--allowed-host NAME]...
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
#include <sys/resource.h>
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
	struct guard_settings limits;
	bool per_address_given;
	const char **allowed_hosts;     /* argv's --allowed-host values */
	size_t allowed_host_count;
};

/* Descriptors the daemon needs besides the HTTP connections: the listen
 * socket, the broker connections, standard streams. */
#define SPARE_DESCRIPTORS 64

static void usage(FILE *out)
{
	fprintf(out, "Usage: mosquitto_tokens_console [--broker HOST:PORT] [--listen ADDR:PORT]\n"
			"                                 [--broker-cafile FILE] [--broker-insecure]\n"
			"                                 [--cert FILE --key FILE]\n"
			"                                 [--max-connections N] [--max-connections-per-address N]\n"
			"                                 [--request-timeout SECONDS] [--allowed-host NAME]...\n"
			"Defaults: --broker 127.0.0.1:1883 --listen 127.0.0.1:8088 --max-connections %d\n"
			"          --max-connections-per-address %d --request-timeout %d\n",
			GUARD_DEFAULT_MAX_CONNECTIONS, GUARD_DEFAULT_MAX_PER_ADDRESS, GUARD_DEFAULT_REQUEST_TIMEOUT_S);
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

/* A whole number from low to high, or an error naming the option. */
static bool parse_count(const char *option, const char *value, long low, long high, long *number)
{
	char *end;
	errno = 0;
	*number = strtol(value, &end, 10);
	if(errno != 0 || end == value || *end != '\0' || *number < low || *number > high){
		fprintf(stderr, "Error: %s needs a whole number from %ld to %ld, not \"%s\"\n", option, low, high, value);
		return false;
	}
	return true;
}

/* A host name as a Host header carries it: printable, no spaces, and
 * neither a scheme nor a path. */
static bool valid_host_name(const char *name)
{
	size_t length = strlen(name);
	if(length == 0 || length > 255){
		return false;
	}
	for(size_t i = 0; i < length; i++){
		unsigned char c = (unsigned char)name[i];
		if(c <= ' ' || c >= 0x7f || c == '/' || c == '@' || c == ',' || c == '\\'){
			return false;
		}
	}
	return true;
}

enum parsed { NOT_MINE, PARSED, BAD_VALUE };

/* The options of the connection guard and the Host check. */
static enum parsed parse_limit_option(const char *option, const char *value, struct options *options)
{
	long number;
	if(strcmp(option, "--max-connections") == 0){
		if(!parse_count(option, value, 1, 100000, &number)) return BAD_VALUE;
		options->limits.max_connections = (unsigned)number;
	}else if(strcmp(option, "--max-connections-per-address") == 0){
		if(!parse_count(option, value, 1, 100000, &number)) return BAD_VALUE;
		options->limits.max_per_address = (unsigned)number;
		options->per_address_given = true;
	}else if(strcmp(option, "--request-timeout") == 0){
		if(!parse_count(option, value, 1, 3600, &number)) return BAD_VALUE;
		options->limits.request_timeout_ms = (int)number * 1000;
	}else if(strcmp(option, "--allowed-host") == 0){
		if(!valid_host_name(value)){
			fprintf(stderr, "Error: --allowed-host needs a host name (NAME or NAME:PORT), not \"%s\"\n", value);
			return BAD_VALUE;
		}
		options->allowed_hosts[options->allowed_host_count++] = value;
	}else{
		return NOT_MINE;
	}
	return PARSED;
}

/* The per-address limit follows a lowered total unless it was given. */
static bool check_limits(struct options *options)
{
	struct guard_settings *limits = &options->limits;
	if(limits->max_per_address > limits->max_connections){
		if(options->per_address_given){
			fprintf(stderr, "Error: --max-connections-per-address (%u) is more than --max-connections (%u)\n",
					limits->max_per_address, limits->max_connections);
			return false;
		}
		limits->max_per_address = limits->max_connections;
	}
	return true;
}

static bool parse_options(int argc, char *argv[], struct options *options)
{
	*options = (struct options){.broker_host = "127.0.0.1", .broker_port = 1883,
		.listen_address = "127.0.0.1", .listen_port = 8088,
		.limits = {.max_connections = GUARD_DEFAULT_MAX_CONNECTIONS, .max_per_address = GUARD_DEFAULT_MAX_PER_ADDRESS,
			.request_timeout_ms = GUARD_DEFAULT_REQUEST_TIMEOUT_S * 1000}};
	options->allowed_hosts = calloc((size_t)argc, sizeof(*options->allowed_hosts));
	if(options->allowed_hosts == NULL){
		fprintf(stderr, "Error: out of memory\n");
		return false;
	}
	for(int i = 1; i < argc; i++){
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		enum parsed limit = value ? parse_limit_option(argv[i], value, options) : NOT_MINE;
		if(limit == BAD_VALUE){
			return false;
		}else if(limit == PARSED){
			/* taken */
		}else if(strcmp(argv[i], "--broker") == 0 && value){
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
	return check_limits(options);
}

/* Every connection the guard may let in needs a descriptor: raise the soft
 * limit as far as needed (and allowed), or say why the daemon cannot. */
static bool reserve_descriptors(const struct guard_settings *limits)
{
	rlim_t needed = (rlim_t)guard_hard_limit(limits) + SPARE_DESCRIPTORS;
	struct rlimit limit;
	if(getrlimit(RLIMIT_NOFILE, &limit) != 0){
		return true;   /* nothing known, nothing to check */
	}
	if(limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed){
		if(limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= needed){
			limit.rlim_cur = needed;
			setrlimit(RLIMIT_NOFILE, &limit);
			getrlimit(RLIMIT_NOFILE, &limit);
		}
		if(limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed){
			fprintf(stderr, "Error: --max-connections %u needs %llu file descriptors, and the limit is %llu "
					"(ulimit -n)\n", limits->max_connections, (unsigned long long)needed,
					(unsigned long long)limit.rlim_cur);
			return false;
		}
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
	/* poll(), not select(): a descriptor above FD_SETSIZE must not be refused. */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL
		| MHD_USE_ERROR_LOG;
	if(options->cert){
		*cert = read_whole(options->cert);
		*key = read_whole(options->key);
		if(*cert == NULL || *key == NULL){
			return NULL;
		}
		flags |= MHD_USE_TLS;
	}
	return MHD_start_daemon(flags, 0, guard_accept, console->guard, console_handle_request, console,
			MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
			MHD_OPTION_CONNECTION_LIMIT, guard_hard_limit(&options->limits),
			MHD_OPTION_NOTIFY_CONNECTION, guard_notify_connection, console->guard,
			MHD_OPTION_URI_LOG_CALLBACK, console_request_started, console,
			MHD_OPTION_NOTIFY_COMPLETED, console_request_completed, console,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
			/* musl's default thread stack is 128 KiB: a request body nested
			 * as deep as cJSON allows takes about 92 KB of it to parse. */
			MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1024 * 1024),
			options->cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, *cert,
			MHD_OPTION_HTTPS_MEM_KEY, *key,
			MHD_OPTION_END);
}

/* Serves until SIGINT or SIGTERM (blocked in stop_signals); false when the
 * daemon cannot start. */
static bool serve(const struct options *options, const sigset_t *stop_signals)
{
	struct broker_settings settings = {
		.host = options->broker_host, .port = options->broker_port,
		.cafile = options->broker_cafile, .insecure = options->broker_insecure,
		.timeout_ms = 4000, .idle_seconds = 60,
	};
	struct console console = {
		.pool = broker_pool_new(&settings), .guard = guard_new(&options->limits),
		.hosts = {.listen_address = options->listen_address, .listen_port = options->listen_port,
			.names = options->allowed_hosts, .name_count = options->allowed_host_count},
	};
	char *cert = NULL, *key = NULL;
	struct MHD_Daemon *daemon = console.pool && console.guard ? start_http(options, &console, &cert, &key) : NULL;
	if(daemon){
		printf("mosquitto_tokens_console: %s://%s:%d/ (broker %s:%d%s)\n", options->cert ? "https" : "http",
				options->listen_address, options->listen_port, options->broker_host, options->broker_port,
				options->broker_cafile ? ", TLS" : "");
		fflush(stdout);
		int received;
		sigwait(stop_signals, &received);
		MHD_stop_daemon(daemon);
	}else{
		fprintf(stderr, "Error: cannot listen on %s:%d\n", options->listen_address, options->listen_port);
	}
	guard_free(console.guard);
	broker_pool_free(console.pool);
	free(cert);
	free(key);
	return daemon != NULL;
}

int main(int argc, char *argv[])
{
	struct options options;
	if(argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)){
		usage(stdout);
		return 0;
	}
	if(!parse_options(argc, argv, &options) || !reserve_descriptors(&options.limits)){
		free(options.allowed_hosts);
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
	bool served = serve(&options, &stop_signals);
	mosquitto_lib_cleanup();
	free(options.allowed_hosts);
	return served ? 0 : 1;
}
