/*
 * mmsg_recv: the C receiver of the benchmark's packet-rate section
 * (bench/c_pair.ts). Binds GROUP:PORT with SO_REUSEADDR, asks for an 8 MiB
 * receive buffer (SO_RCVBUFFORCE, else SO_RCVBUF), joins GROUP on
 * 127.0.0.1, reads with recvmmsg(2) in batches of 64 and counts datagrams
 * and bytes until COUNT arrived (0: no limit), IDLE_MS passed after the
 * last one, or MAX_MS in all.
 *
 * Usage: mmsg_recv GROUP PORT COUNT IDLE_MS MAX_MS
 * Prints {"event":"ready"} once joined, then {"event":"result",
 * "received":N,"bytes":B,"seconds":S,"rate":R,"highest":H} where S runs
 * from the first datagram to the last and R = (N - 1) / S. Exit 0, or 2 on
 * bad arguments, 1 on socket errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 65536
#define RECEIVE_BUFFER (8 * 1024 * 1024)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void fail(const char *what) {
  fprintf(stderr, "mmsg_recv: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: mmsg_recv GROUP PORT COUNT IDLE_MS MAX_MS\n");
    return 2;
  }
  struct in_addr group;
  if (inet_pton(AF_INET, argv[1], &group) != 1) {
    fprintf(stderr, "mmsg_recv: bad group %s\n", argv[1]);
    return 2;
  }
  int port = atoi(argv[2]);
  long long count = atoll(argv[3]);
  double idle_ms = atof(argv[4]);
  double max_ms = atof(argv[5]);
  if (port <= 0 || port > 65535 || count < 0 || idle_ms <= 0 || max_ms <= 0) {
    fprintf(stderr, "mmsg_recv: bad arguments\n");
    return 2;
  }

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) fail("socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    fail("SO_REUSEADDR");
  int buffer = RECEIVE_BUFFER;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  struct sockaddr_in local = {0};
  local.sin_family = AF_INET;
  local.sin_addr = group;
  local.sin_port = htons((uint16_t)port);
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) fail("bind");
  struct ip_mreq request;
  request.imr_multiaddr = group;
  request.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
  if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &request, sizeof request) <
      0)
    fail("IP_ADD_MEMBERSHIP");

  unsigned char *slots = malloc((size_t)BATCH * SLOT);
  struct iovec vectors[BATCH];
  struct mmsghdr headers[BATCH];
  if (!slots) fail("malloc");
  memset(headers, 0, sizeof headers);
  for (int i = 0; i < BATCH; i++) {
    vectors[i].iov_base = slots + (size_t)i * SLOT;
    vectors[i].iov_len = SLOT;
    headers[i].msg_hdr.msg_iov = &vectors[i];
    headers[i].msg_hdr.msg_iovlen = 1;
  }
  printf("{\"event\":\"ready\"}\n");
  fflush(stdout);

  long long received = 0, bytes = 0, highest = -1;
  double start = now_ms(), first = 0, last = 0;
  struct pollfd waiting = {.fd = fd, .events = POLLIN};
  while (count == 0 || received < count) {
    double now = now_ms();
    double left = max_ms - (now - start);
    if (received > 0 && idle_ms - (now - last) < left)
      left = idle_ms - (now - last);
    if (left <= 0) break;
    int ready = poll(&waiting, 1, (int)left + 1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }
    if (ready == 0) continue; /* The bounds above end the loop. */
    int got = recvmmsg(fd, headers, BATCH, MSG_DONTWAIT, NULL);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      fail("recvmmsg");
    }
    if (got == 0) continue;
    now = now_ms();
    if (received == 0) first = now;
    last = now;
    for (int i = 0; i < got; i++) {
      bytes += headers[i].msg_len;
      if (headers[i].msg_len >= 4) {
        uint32_t number;
        memcpy(&number, slots + (size_t)i * SLOT, sizeof number);
        if ((long long)ntohl(number) > highest) highest = ntohl(number);
      }
    }
    received += got;
  }
  close(fd);
  free(slots);
  double seconds = (last - first) / 1e3;
  printf("{\"event\":\"result\",\"received\":%lld,\"bytes\":%lld,"
         "\"seconds\":%.6f,\"rate\":%.1f,\"highest\":%lld}\n",
         received, bytes, seconds,
         received > 1 && seconds > 0 ? (double)(received - 1) / seconds : 0.0,
         highest);
  return 0;
}
