/* recvtty: the receiving end of a --console-socket, as runc's recvtty:
 * listens on SOCKET, takes the pty master the runtime sends (SCM_RIGHTS),
 * sets the terminal to ROWSxCOLS, and copies what the container writes to
 * OUTPUT until the terminal closes (or 60 s pass). Once the output holds
 * WAIT_FOR it resizes the terminal to ROWS2xCOLS2, then types INPUT and a
 * newline: a test checks the size before and after, and that the input got
 * through.
 *   recvtty SOCKET OUTPUT ROWS COLS WAIT_FOR ROWS2 COLS2 INPUT */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "recvtty: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int receive_fd(int conn) {
  char name[256];
  struct iovec iov = {name, sizeof name};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  if (recvmsg(conn, &msg, 0) < 0) die("recvmsg");
  struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) {
    fprintf(stderr, "recvtty: no fd in the message\n");
    exit(1);
  }
  int fd;
  memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  return fd;
}

static void set_size(int fd, int rows, int cols) {
  struct winsize ws = {(unsigned short)rows, (unsigned short)cols, 0, 0};
  if (ioctl(fd, TIOCSWINSZ, &ws) != 0) die("TIOCSWINSZ");
}

int main(int argc, char **argv) {
  if (argc != 9) {
    fprintf(stderr, "usage: recvtty SOCKET OUTPUT ROWS COLS WAIT_FOR ROWS2 COLS2 INPUT\n");
    return 2;
  }
  int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = {0};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
  unlink(argv[1]);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
  if (listen(lfd, 1) != 0) die("listen");
  int conn = accept(lfd, NULL, NULL);
  if (conn < 0) die("accept");
  int master = receive_fd(conn);
  close(conn);
  set_size(master, atoi(argv[3]), atoi(argv[4]));
  FILE *out = fopen(argv[2], "w");
  if (!out) die("fopen");
  char seen[65536] = "";
  size_t seen_len = 0;
  int typed = 0;
  time_t deadline = time(NULL) + 60;
  while (time(NULL) < deadline) {
    struct pollfd p = {master, POLLIN, 0};
    int r = poll(&p, 1, 200);
    if (r < 0 && errno != EINTR) die("poll");
    if (r > 0) {
      char buf[4096];
      ssize_t n = read(master, buf, sizeof buf);
      if (n <= 0) break; /* EIO: the other side closed */
      fwrite(buf, 1, (size_t)n, out);
      fflush(out);
      if (seen_len + (size_t)n < sizeof seen - 1) {
        memcpy(seen + seen_len, buf, (size_t)n);
        seen_len += (size_t)n;
        seen[seen_len] = 0;
      }
    }
    if (!typed && strstr(seen, argv[5])) {
      set_size(master, atoi(argv[6]), atoi(argv[7]));
      usleep(500000); /* the runtime polls the size every 100 ms */
      if (write(master, argv[8], strlen(argv[8])) < 0 || write(master, "\r", 1) < 0) die("write");
      typed = 1;
    }
  }
  fclose(out);
  return 0;
}
