/*
 * mmsg_send: the C sender of the benchmark's packet-rate section
 * (bench/c_pair.ts). Sends COUNT datagrams of SIZE bytes to GROUP:PORT from
 * a UDP socket bound to 127.0.0.1 (IP_MULTICAST_IF 127.0.0.1, TTL 1,
 * multicast loopback on), with sendmmsg(2) in batches of 64, flat out or
 * paced to RATE datagrams per second, for at most SECONDS. Every datagram
 * carries its number (u32, network order) at offset 0.
 *
 * Usage: mmsg_send GROUP PORT SIZE COUNT SECONDS RATE   (RATE 0 = flat out)
 * Prints one JSON line: {"event":"result","sent":N,"errors":E,
 * "seconds":S,"rate":R}. Exit 0, or 2 on bad arguments, 1 on socket errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SEND_BUFFER (4 * 1024 * 1024)

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what) {
  fprintf(stderr, "mmsg_send: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void sleep_seconds(double seconds) {
  struct timespec ts;
  ts.tv_sec = (time_t)seconds;
  ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: mmsg_send GROUP PORT SIZE COUNT SECONDS RATE\n");
    return 2;
  }
  struct in_addr group;
  if (inet_pton(AF_INET, argv[1], &group) != 1) {
    fprintf(stderr, "mmsg_send: bad group %s\n", argv[1]);
    return 2;
  }
  int port = atoi(argv[2]);
  long size = atol(argv[3]);
  long long count = atoll(argv[4]);
  double max_seconds = atof(argv[5]);
  double rate = atof(argv[6]);
  if (port <= 0 || port > 65535 || size < 4 || size > 65507 || count <= 0 ||
      max_seconds <= 0 || rate < 0) {
    fprintf(stderr, "mmsg_send: bad arguments\n");
    return 2;
  }

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) fail("socket");
  int buffer = SEND_BUFFER;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer, sizeof buffer) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  struct sockaddr_in local = {0};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  local.sin_port = 0;
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) fail("bind");
  struct in_addr iface;
  iface.s_addr = htonl(INADDR_LOOPBACK);
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface) < 0)
    fail("IP_MULTICAST_IF");
  unsigned char ttl = 1, loop = 1;
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0)
    fail("IP_MULTICAST_TTL");
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) < 0)
    fail("IP_MULTICAST_LOOP");

  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  to.sin_addr = group;
  to.sin_port = htons((uint16_t)port);

  unsigned char *payloads = calloc(BATCH, (size_t)size);
  struct iovec vectors[BATCH];
  struct mmsghdr headers[BATCH];
  if (!payloads) fail("calloc");
  memset(headers, 0, sizeof headers);
  for (int i = 0; i < BATCH; i++) {
    memset(payloads + (size_t)i * size, 0x78, (size_t)size);
    vectors[i].iov_base = payloads + (size_t)i * size;
    vectors[i].iov_len = (size_t)size;
    headers[i].msg_hdr.msg_name = &to;
    headers[i].msg_hdr.msg_namelen = sizeof to;
    headers[i].msg_hdr.msg_iov = &vectors[i];
    headers[i].msg_hdr.msg_iovlen = 1;
  }

  long long sent = 0, errors = 0;
  double start = now_seconds(), elapsed = 0;
  while (sent < count) {
    elapsed = now_seconds() - start;
    if (elapsed >= max_seconds) break;
    long long n = count - sent;
    if (n > BATCH) n = BATCH;
    if (rate > 0) {
      /* Datagrams due by now: those whose time (k / rate) has come. */
      long long due = (long long)(elapsed * rate) + 1;
      if (due - sent < n) n = due - sent;
      if (n <= 0) {
        double wait = (double)sent / rate - elapsed;
        if (wait > 0.0002) sleep_seconds(wait - 0.0001);
        continue;
      }
    }
    for (long long i = 0; i < n; i++) {
      uint32_t number = htonl((uint32_t)(sent + i));
      memcpy(payloads + (size_t)i * size, &number, sizeof number);
    }
    int done = sendmmsg(fd, headers, (unsigned int)n, 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS || errno == EAGAIN) {
        errors += 1;
        continue;
      }
      fail("sendmmsg");
    }
    sent += done;
  }
  elapsed = now_seconds() - start;
  close(fd);
  free(payloads);
  printf("{\"event\":\"result\",\"sent\":%lld,\"errors\":%lld,"
         "\"seconds\":%.6f,\"rate\":%.1f}\n",
         sent, errors, elapsed, elapsed > 0 ? (double)sent / elapsed : 0.0);
  return 0;
}
