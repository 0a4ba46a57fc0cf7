/*
 * Login storm: CONNECT, CONNACK, DISCONNECT as fast as possible from several
 * threads, each cycle on a new TCP connection, for a fixed time. Speaks
 * MQTT 3.1.1 on raw sockets so that the client costs next to nothing and
 * the broker's login path is what is measured.
 *
 *   login_storm HOST PORT SECONDS THREADS [USERNAME [PASSWORD]]
 *
 * Prints "<cycles per second> <refused>" on one line.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct storm {
	struct sockaddr_in address;
	const char *username;
	const char *password;
	double deadline;
	int thread;
	long cycles;
	long refused;
};

static double seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static size_t put_string(unsigned char *out, const char *text)
{
	size_t length = strlen(text);
	out[0] = (unsigned char)(length >> 8);
	out[1] = (unsigned char)length;
	memcpy(out + 2, text, length);
	return length + 2;
}

/* An MQTT 3.1.1 CONNECT; returns its length. */
static size_t connect_packet(unsigned char *packet, const char *client_id, const char *username, const char *password)
{
	unsigned char body[512];
	size_t length = 0;
	length += put_string(body, "MQTT");
	body[length++] = 4;   /* protocol level 3.1.1 */
	body[length++] = (unsigned char)(0x02 | (username ? 0x80 : 0) | (password ? 0x40 : 0));
	body[length++] = 0;
	body[length++] = 60;  /* keepalive */
	length += put_string(body + length, client_id);
	if(username) length += put_string(body + length, username);
	if(password) length += put_string(body + length, password);

	size_t header = 0;
	packet[header++] = 0x10;
	size_t remaining = length;
	do{
		unsigned char digit = remaining % 128;
		remaining /= 128;
		packet[header++] = (unsigned char)(digit | (remaining ? 0x80 : 0));
	}while(remaining);
	memcpy(packet + header, body, length);
	return header + length;
}

static bool read_exactly(int fd, unsigned char *buffer, size_t length)
{
	while(length > 0){
		ssize_t got = read(fd, buffer, length);
		if(got <= 0) return false;
		buffer += got;
		length -= (size_t)got;
	}
	return true;
}

/* One cycle; false if the broker refused or the connection failed. */
static bool cycle(struct storm *storm, long number)
{
	char client_id[64];
	unsigned char packet[600], connack[4];
	static const unsigned char disconnect[2] = {0xe0, 0x00};
	snprintf(client_id, sizeof(client_id), "storm-%d-%ld", storm->thread, number);
	size_t length = connect_packet(packet, client_id, storm->username, storm->password);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	/* Reset instead of TIME_WAIT, or the client runs out of ports. */
	struct linger reset = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	bool accepted = connect(fd, (struct sockaddr *)&storm->address, sizeof(storm->address)) == 0
		&& write(fd, packet, length) == (ssize_t)length
		&& read_exactly(fd, connack, sizeof(connack))
		&& connack[0] == 0x20 && connack[3] == 0;
	if(accepted){
		accepted = write(fd, disconnect, sizeof(disconnect)) == sizeof(disconnect);
	}
	close(fd);
	return accepted;
}

static void *run(void *argument)
{
	struct storm *storm = argument;
	for(long number = 0; seconds() < storm->deadline; number++){
		if(cycle(storm, number)){
			storm->cycles++;
		}else{
			storm->refused++;
		}
	}
	return NULL;
}

int main(int argc, char *argv[])
{
	if(argc < 5){
		fprintf(stderr, "usage: login_storm HOST PORT SECONDS THREADS [USERNAME [PASSWORD]]\n");
		return 2;
	}
	int thread_count = atoi(argv[4]);
	double duration = atof(argv[3]);
	struct storm *storms = calloc((size_t)thread_count, sizeof(*storms));
	pthread_t *threads = calloc((size_t)thread_count, sizeof(*threads));
	double start = seconds();
	for(int i = 0; i < thread_count; i++){
		storms[i].address.sin_family = AF_INET;
		storms[i].address.sin_port = htons((uint16_t)atoi(argv[2]));
		inet_pton(AF_INET, argv[1], &storms[i].address.sin_addr);
		storms[i].username = argc > 5 ? argv[5] : NULL;
		storms[i].password = argc > 6 ? argv[6] : NULL;
		storms[i].deadline = start + duration;
		storms[i].thread = i;
		pthread_create(&threads[i], NULL, run, &storms[i]);
	}
	long cycles = 0, refused = 0;
	for(int i = 0; i < thread_count; i++){
		pthread_join(threads[i], NULL);
		cycles += storms[i].cycles;
		refused += storms[i].refused;
	}
	printf("%.0f %ld\n", (double)cycles / (seconds() - start), refused);
	free(storms);
	free(threads);
	return 0;
}
