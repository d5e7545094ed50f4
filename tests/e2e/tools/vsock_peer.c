/*
 * vsock_peer - the host side of the e2e vsock case, for the outer VM (which
 * has busybox, whose nc speaks no Unix sockets).
 *
 *   vsock_peer serve PATH REPLY
 *       listen on the Unix socket PATH (what `skiff boot --vsock ...,socket=S`
 *       forwards guest connections to host port P to, as S_P), accept one
 *       connection, print the line it sends, answer REPLY and a newline.
 *   vsock_peer connect SOCKET PORT MESSAGE
 *       reach guest port PORT through Skiff's vsock socket: "CONNECT PORT\n",
 *       expect "OK <port>\n", send MESSAGE and a newline, print the line the
 *       guest answers. Retries for 60 s while the guest is not listening yet
 *       (the connection is closed without "OK").
 * Exit status 0 on success, 1 with a one-line reason otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int die(const char* what) {
  fprintf(stderr, "vsock_peer: %s: %s\n", what, strerror(errno));
  return 1;
}

static struct sockaddr_un address(const char* path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    fprintf(stderr, "vsock_peer: path too long: %s\n", path);
    exit(1);
  }
  strcpy(a.sun_path, path);
  return a;
}

static void limit_reads(int fd, int seconds) {
  struct timeval t = {seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
}

/* Reads one line (newline dropped); -1 on EOF or error before any newline. */
static int read_line(int fd, char* buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    ssize_t r = read(fd, buf + n, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    if (buf[n] == '\n') break;
    ++n;
  }
  buf[n] = 0;
  return (int)n;
}

static int write_line(int fd, const char* text) {
  char buf[512];
  int len = snprintf(buf, sizeof buf, "%s\n", text);
  return write(fd, buf, (size_t)len) == len ? 0 : -1;
}

static int serve(const char* path, const char* reply) {
  struct sockaddr_un a = address(path);
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  unlink(path);
  if (l < 0 || bind(l, (struct sockaddr*)&a, sizeof a) != 0 || listen(l, 1) != 0) return die("listen");
  printf("listening on %s\n", path);
  fflush(stdout);
  int c = accept(l, NULL, NULL);
  if (c < 0) return die("accept");
  limit_reads(c, 30);
  char line[256];
  if (read_line(c, line, sizeof line) < 0) return die("read from the guest");
  printf("guest sent: %s\n", line);
  if (write_line(c, reply) != 0) return die("reply");
  close(c);
  close(l);
  return 0;
}

static int connect_guest(const char* sock, const char* port, const char* message) {
  struct sockaddr_un a = address(sock);
  char line[256];
  time_t deadline = time(NULL) + 60;
  for (;;) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return die("socket");
    limit_reads(fd, 30);
    if (connect(fd, (struct sockaddr*)&a, sizeof a) == 0) {
      char request[64];
      snprintf(request, sizeof request, "CONNECT %s", port);
      if (write_line(fd, request) == 0 && read_line(fd, line, sizeof line) >= 0) {
        if (strncmp(line, "OK ", 3) != 0) {
          fprintf(stderr, "vsock_peer: expected OK, got: %s\n", line);
          return 1;
        }
        printf("connected: %s\n", line);
        if (write_line(fd, message) != 0) return die("send");
        if (read_line(fd, line, sizeof line) < 0) return die("read the guest's answer");
        printf("guest answered: %s\n", line);
        close(fd);
        return 0;
      }
    }
    close(fd);
    if (time(NULL) >= deadline) {
      fprintf(stderr, "vsock_peer: guest port %s not reachable through %s for 60 s\n", port, sock);
      return 1;
    }
    usleep(100 * 1000);
  }
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "serve") == 0) return serve(argv[2], argv[3]);
  if (argc == 5 && strcmp(argv[1], "connect") == 0) return connect_guest(argv[2], argv[3], argv[4]);
  fprintf(stderr, "usage: vsock_peer serve PATH REPLY | vsock_peer connect SOCKET PORT MESSAGE\n");
  return 1;
}
