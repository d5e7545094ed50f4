/*
 * boot_timer: runs a VMM and times how long its guest takes to reach a line
 * on the serial console (read from the VMM's stdout), the same way for every
 * VMM. Prints the milliseconds from spawn to the line; the VMM then runs to
 * its end (or is killed after the timeout).
 * Usage: boot_timer TIMEOUT_S "TEXT" COMMAND [ARGS...]
 * Exit: 0 when the text was seen, 1 otherwise. Static, so it runs in the
 * outer VM of the full-system tier too.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: boot_timer TIMEOUT_S TEXT COMMAND [ARGS...]\n");
    return 2;
  }
  double timeout_ms = atof(argv[1]) * 1e3;
  const char* text = argv[2];
  int fds[2];
  if (pipe(fds) < 0) return 2;
  double start = now_ms();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    int null = open("/dev/null", 0);
    if (null >= 0) dup2(null, STDIN_FILENO);
    execvp(argv[3], argv + 3);
    _exit(127);
  }
  close(fds[1]);
  char window[8192];
  size_t have = 0;
  double seen = -1;
  for (;;) {
    double left = timeout_ms - (now_ms() - start);
    if (left <= 0) break;
    struct pollfd p = {fds[0], POLLIN, 0};
    if (poll(&p, 1, (int)left) <= 0) break;
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    if (seen >= 0) continue;
    /* Keep the tail of the output so a line split across reads is still found. */
    if (have + (size_t)n >= sizeof window - 1) {
      size_t keep = strlen(text);
      memmove(window, window + have - keep, keep);
      have = keep;
    }
    memcpy(window + have, buf, (size_t)n);
    have += (size_t)n;
    window[have] = 0;
    if (memmem(window, have, text, strlen(text))) seen = now_ms() - start;
  }
  if (seen < 0 || now_ms() - start >= timeout_ms) kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  if (seen < 0) {
    printf("not seen\n");
    return 1;
  }
  printf("%.1f\n", seen);
  return 0;
}
