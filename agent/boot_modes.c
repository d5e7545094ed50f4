/*
 * The guest's first steps as PID 1 and the test modes skiff-init had before
 * the agent replaced it (agent/main.cc is the guest's /init).
 *
 * skiff_boot_begin marks the moment userspace starts on the VMM's
 * boot-marker port (so the host can time boot without parsing the console),
 * mounts the pseudo file systems and reports what the guest sees. Then
 * skiff.action= on the kernel command line picks the mode:
 *   agent               the guest agent (agent/main.cc), the product's mode
 *   poweroff (default)  power the VM off through ACPI
 *   reboot              reboot (the VMM ends with "reset")
 *   panic               exit, so the kernel panics ("Attempted to kill init")
 *   shell               run busybox sh on the console, power off when it exits
 *   disktest            read sector 0 of /dev/vda and print its checksum, write
 *                       a marker to sector 1, flush, power off (the e2e tier
 *                       checks both from the host)
 *   vsocktest           over virtio-vsock: connect to the host (CID 2) port
 *                       1025 and exchange a line, then accept one connection
 *                       on port 1024 and answer its line, power off
 *   fstest              mount the virtio-fs share tagged skiff.fstag= (default
 *                       "share") on /mnt and run a small file workload whose
 *                       results the host checks, power off; with
 *                       skiff.fsdax=1 it mounts with dax=always and also
 *                       writes a file through a shared mmap
 *   fsbench             a timed file workload on the share, power off
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agent/boot_modes.h"

/* Must match devices/boot_marker.h on the host. */
#define BOOT_MARKER_PORT 0x440
#define BOOT_MARKER_USERSPACE 0x01

static void mark_userspace(void) {
  /* ioperm needs CAP_SYS_RAWIO, which PID 1 has; a failure only costs the timing. */
  if (ioperm(BOOT_MARKER_PORT, 1, 1) == 0) outb(BOOT_MARKER_USERSPACE, BOOT_MARKER_PORT);
}

static void mount_fs(const char* source, const char* target, const char* type, unsigned long flags) {
  mkdir(target, 0755);
  if (mount(source, target, type, flags, NULL) < 0 && errno != EBUSY)
    fprintf(stderr, "skiff-agent: mount %s on %s: %s\n", type, target, strerror(errno));
}

static void read_file(const char* path, char* buf, size_t size) {
  buf[0] = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  buf[n > 0 ? n : 0] = 0;
}

static const char* cmdline_value(const char* cmdline, const char* key, char* out, size_t size) {
  size_t klen = strlen(key);
  for (const char* p = cmdline; (p = strstr(p, key)) != NULL; p += klen) {
    if (p != cmdline && p[-1] != ' ') continue;
    if (p[klen] != '=') continue;
    const char* v = p + klen + 1;
    size_t n = strcspn(v, " \n");
    if (n >= size) n = size - 1;
    memcpy(out, v, n);
    out[n] = 0;
    return out;
  }
  return NULL;
}

static long mem_total_kib(void) {
  char buf[4096];
  read_file("/proc/meminfo", buf, sizeof buf);
  const char* p = strstr(buf, "MemTotal:");
  return p ? strtol(p + 9, NULL, 10) : -1;
}

/* Block devices the guest sees: "vda sectors=N ro=0" for each. */
static void report_disks(void) {
  char path[64], buf[64];
  for (char c = 'a'; c <= 'z'; ++c) {
    snprintf(path, sizeof path, "/sys/block/vd%c/size", c);
    read_file(path, buf, sizeof buf);
    if (!buf[0]) break;
    long sectors = strtol(buf, NULL, 10);
    snprintf(path, sizeof path, "/sys/block/vd%c/ro", c);
    read_file(path, buf, sizeof buf);
    printf("skiff-agent: disk vd%c sectors=%ld ro=%ld\n", c, sectors, strtol(buf, NULL, 10));
  }
}

/* FNV-1a over the first sector, written by the host test with a known pattern. */
static void disk_test(void) {
  int read_only = 0;
  int fd = open("/dev/vda", O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == EROFS) {
    read_only = 1;
    fd = open("/dev/vda", O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) {
    printf("skiff-agent: disktest: open /dev/vda: %s\n", strerror(errno));
    return;
  }
  unsigned char sector[512];
  if (pread(fd, sector, sizeof sector, 0) != (ssize_t)sizeof sector) {
    printf("skiff-agent: disktest: read: %s\n", strerror(errno));
  } else {
    unsigned hash = 2166136261u;
    for (size_t i = 0; i < sizeof sector; ++i) hash = (hash ^ sector[i]) * 16777619u;
    printf("skiff-agent: disktest: sector0 fnv1a=%08x\n", hash);
  }
  if (read_only) {
    printf("skiff-agent: disktest: sector1 not written: read-only disk\n");
    close(fd);
    return;
  }
  memset(sector, 0, sizeof sector);
  strcpy((char*)sector, "written by skiff-init");
  if (pwrite(fd, sector, sizeof sector, 512) != (ssize_t)sizeof sector || fdatasync(fd) != 0) {
    /* Linux opens a read-only disk for writing and refuses the write itself. */
    if (errno == EPERM || errno == EROFS)
      printf("skiff-agent: disktest: sector1 not written: read-only disk\n");
    else
      printf("skiff-agent: disktest: write: %s\n", strerror(errno));
  }
  else
    printf("skiff-agent: disktest: sector1 written\n");
  close(fd);
}

/* Reads up to a newline (dropped) or `size - 1` bytes; returns the length or -1. */
static ssize_t read_line(int fd, char* buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    ssize_t r = read(fd, buf + n, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return n ? (ssize_t)n : -1;
    if (buf[n] == '\n') break;
    ++n;
  }
  buf[n] = 0;
  return (ssize_t)n;
}

static int vsock_socket(void) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) printf("skiff-agent: vsocktest: socket(AF_VSOCK): %s\n", strerror(errno));
  /* A host that never answers fails the test instead of hanging it. */
  struct timeval limit = {30, 0};
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return fd;
}

static void vsock_test(void) {
  char line[256];
  int fd = vsock_socket();
  if (fd < 0) return;
  struct sockaddr_vm host = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = 1025};
  if (connect(fd, (struct sockaddr*)&host, sizeof host) != 0) {
    printf("skiff-agent: vsocktest: connect to host port 1025: %s\n", strerror(errno));
  } else {
    static const char hello[] = "hello host, this is the guest\n";
    if (write(fd, hello, sizeof hello - 1) != (ssize_t)sizeof hello - 1)
      printf("skiff-agent: vsocktest: write: %s\n", strerror(errno));
    else if (read_line(fd, line, sizeof line) < 0)
      printf("skiff-agent: vsocktest: no reply from the host: %s\n", strerror(errno));
    else
      printf("skiff-agent: vsocktest: host replied: %s\n", line);
  }
  close(fd);
  fflush(stdout);

  int lfd = vsock_socket();
  if (lfd < 0) return;
  struct sockaddr_vm any = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = 1024};
  if (bind(lfd, (struct sockaddr*)&any, sizeof any) != 0 || listen(lfd, 1) != 0) {
    printf("skiff-agent: vsocktest: listen on port 1024: %s\n", strerror(errno));
    close(lfd);
    return;
  }
  printf("skiff-agent: vsocktest: listening on port 1024\n");
  fflush(stdout);
  int cfd = accept(lfd, NULL, NULL); /* SO_RCVTIMEO bounds accept() too */
  if (cfd < 0) {
    printf("skiff-agent: vsocktest: accept: %s\n", strerror(errno));
  } else if (read_line(cfd, line, sizeof line) < 0) {
    printf("skiff-agent: vsocktest: nothing from the host: %s\n", strerror(errno));
  } else {
    printf("skiff-agent: vsocktest: host sent: %s\n", line);
    char reply[300];
    int len = snprintf(reply, sizeof reply, "guest got: %s\n", line);
    if (write(cfd, reply, (size_t)len) != len) {
      printf("skiff-agent: vsocktest: reply: %s\n", strerror(errno));
    } else {
      /* Power-off ends the VM at once, and with it a reply still on its way
       * out of the device: wait for the host to hang up first (bounded by
       * SO_RCVTIMEO). */
      shutdown(cfd, SHUT_WR);
      while (read(cfd, line, sizeof line) > 0) {
      }
    }
  }
  if (cfd >= 0) close(cfd);
  close(lfd);
}

static int write_file(const char* path, const void* data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  int ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
  int saved = errno;
  close(fd);
  errno = saved;
  return ok ? 0 : -1;
}

static unsigned fnv1a(const unsigned char* p, size_t n, unsigned hash) {
  for (size_t i = 0; i < n; ++i) hash = (hash ^ p[i]) * 16777619u;
  return hash;
}

/* Each step prints one line "skiff-agent: fstest: <step>: <result>"; the
 * host checks the lines and the files. */
/* Writes through a MAP_SHARED mapping: with DAX the page is the host's. */
static void mmap_test(void) {
  int fd = open("/mnt/out/mapped.bin", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ftruncate(fd, 8192) != 0) {
    printf("skiff-agent: fstest: mmap file: %s\n", strerror(errno));
    if (fd >= 0) close(fd);
    return;
  }
  char* p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    printf("skiff-agent: fstest: mmap: %s\n", strerror(errno));
  } else {
    strcpy(p + 4096, "through a shared mapping");
    int ok = msync(p, 8192, MS_SYNC) == 0;
    printf("skiff-agent: fstest: mmap write: %s\n", ok ? "ok" : strerror(errno));
    munmap(p, 8192);
  }
  close(fd);
}

static void fs_test(const char* tag, int dax) {
  mkdir("/mnt", 0755);
  if (mount(tag, "/mnt", "virtiofs", 0, dax ? "dax=always" : NULL) != 0) {
    printf("skiff-agent: fstest: mount %s: %s\n", tag, strerror(errno));
    return;
  }
  printf("skiff-agent: fstest: mounted %s%s\n", tag, dax ? " with dax=always" : "");
  char buf[256] = {0};
  int fd = open("/mnt/input.txt", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) close(fd);
  if (n < 0) printf("skiff-agent: fstest: input: %s\n", strerror(errno));
  else printf("skiff-agent: fstest: input: %.*s\n", (int)strcspn(buf, "\n"), buf);

  static const char text[] = "written by the guest\n";
  if (mkdir("/mnt/out", 0755) != 0) {
    printf("skiff-agent: fstest: mkdir: %s\n", strerror(errno));
  } else if (write_file("/mnt/out/guest.txt", text, sizeof text - 1) != 0) {
    printf("skiff-agent: fstest: write: %s\n", strerror(errno));
  } else {
    int ok = rename("/mnt/out/guest.txt", "/mnt/out/renamed.txt") == 0 &&
             symlink("renamed.txt", "/mnt/out/link") == 0 && link("/mnt/out/renamed.txt", "/mnt/out/hard") == 0 &&
             chmod("/mnt/out/renamed.txt", 0600) == 0;
    printf("skiff-agent: fstest: rename symlink link chmod: %s\n", ok ? "ok" : strerror(errno));
    /* 1 MiB across many requests, read back through the share. */
    static unsigned char big[1 << 20];
    for (size_t i = 0; i < sizeof big; ++i) big[i] = (unsigned char)(i * 7 + (i >> 12));
    if (write_file("/mnt/out/big.bin", big, sizeof big) != 0) {
      printf("skiff-agent: fstest: big write: %s\n", strerror(errno));
    } else {
      memset(big, 0, sizeof big);
      fd = open("/mnt/out/big.bin", O_RDONLY | O_CLOEXEC);
      size_t got = 0;
      while (fd >= 0 && got < sizeof big && (n = read(fd, big + got, sizeof big - got)) > 0) got += (size_t)n;
      if (fd >= 0) close(fd);
      printf("skiff-agent: fstest: big read %zu bytes fnv1a=%08x\n", got, fnv1a(big, got, 2166136261u));
    }
  }
  if (dax) {
    /* STATX_ATTR_DAX: the kernel says the file's data goes through DAX. */
    struct statx stx;
    if (statx(AT_FDCWD, "/mnt/out/big.bin", 0, STATX_BASIC_STATS, &stx) != 0)
      printf("skiff-agent: fstest: statx: %s\n", strerror(errno));
    else
      printf("skiff-agent: fstest: big.bin dax attribute: %d\n", (stx.stx_attributes & STATX_ATTR_DAX) ? 1 : 0);
    mmap_test();
  }
  printf("skiff-agent: fstest: unlink: %s\n", unlink("/mnt/delete-me") == 0 ? "ok" : strerror(errno));
  DIR* dir = opendir("/mnt/many");
  int entries = 0;
  struct dirent* e;
  struct stat est;
  /* A stat per entry: each is a LOOKUP, and the host holds an fd for it. */
  while (dir && (e = readdir(dir)) != NULL)
    entries += e->d_name[0] != '.' && fstatat(dirfd(dir), e->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0;
  if (dir) closedir(dir);
  printf("skiff-agent: fstest: readdir many: %d entries\n", entries);
  fflush(stdout);
  sync();
  if (umount("/mnt") != 0) printf("skiff-agent: fstest: umount: %s\n", strerror(errno));
}

/* fsbench: guest-side virtio-fs figures on the share tagged skiff.fstag= (the
 * host puts a big.bin there): sequential 1 MiB reads after dropping the page
 * cache, 4 KiB random preads (O_DIRECT where the mount takes it), and
 * create+close then unlink of 2000 empty files. bench/cases/fs_guest.sh
 * parses the "fsbench:" lines. */
static double fsb_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fs_bench(const char* tag, int loops) {
  static unsigned char buf[1 << 20] __attribute__((aligned(4096)));
  mkdir("/mnt", 0755);
  if (mount(tag, "/mnt", "virtiofs", 0, NULL) != 0) {
    printf("skiff-agent: fsbench: mount %s: %s\n", tag, strerror(errno));
    return;
  }
  write_file("/proc/sys/vm/drop_caches", "3\n", 2);
  int fd = open("/mnt/big.bin", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    printf("skiff-agent: fsbench: open big.bin: %s\n", strerror(errno));
    umount("/mnt");
    return;
  }
  ssize_t n;
  size_t total = 0;
  double t0 = fsb_now();
  while ((n = read(fd, buf, sizeof buf)) > 0) total += (size_t)n;
  double dt = fsb_now() - t0;
  close(fd);
  printf("skiff-agent: fsbench: seq_read %.1f MiB/s\n", (double)total / 1048576.0 / dt);
  fflush(stdout);

  fd = open("/mnt/big.bin", O_RDONLY | O_CLOEXEC | O_DIRECT);
  const char* mode = "o_direct";
  if (fd < 0) {
    mode = "cached_after_drop";
    write_file("/proc/sys/vm/drop_caches", "3\n", 2);
    fd = open("/mnt/big.bin", O_RDONLY | O_CLOEXEC);
  }
  size_t blocks = total / 4096;
  unsigned long ops = 0, x = 2463534242ul;
  t0 = fsb_now();
  while (fd >= 0 && blocks && ops < 20000 && (ops % 256 || fsb_now() - t0 < 2.0)) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift */
    if (pread(fd, buf, 4096, (off_t)((x % blocks) * 4096)) != 4096) {
      printf("skiff-agent: fsbench: pread: %s\n", strerror(errno));
      break;
    }
    ++ops;
  }
  dt = fsb_now() - t0;
  if (fd >= 0) close(fd);
  printf("skiff-agent: fsbench: rand_read_4k %.0f ops/s (%s, %lu ops)\n", (double)ops / dt, mode, ops);
  fflush(stdout);

  char path[64];
  /* skiff.fsloops=N repeats the create/unlink rounds (a soak). */
  for (int loop = 0; loop < loops; ++loop) {
    mkdir("/mnt/bench-create", 0755);
    int made = 0;
    t0 = fsb_now();
    for (int i = 0; i < 2000; ++i) {
      snprintf(path, sizeof path, "/mnt/bench-create/f%d", i);
      int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (f < 0) {
        printf("skiff-agent: fsbench: create f%d: %s\n", i, strerror(errno));
        break;
      }
      close(f);
      ++made;
    }
    dt = fsb_now() - t0;
    printf("skiff-agent: fsbench: create %.0f files/s (%d files)\n", made / dt, made);
    t0 = fsb_now();
    int gone = 0;
    for (int i = 0; i < made; ++i) {
      snprintf(path, sizeof path, "/mnt/bench-create/f%d", i);
      gone += unlink(path) == 0;
    }
    dt = fsb_now() - t0;
    printf("skiff-agent: fsbench: unlink %.0f files/s (%d files)\n", gone / dt, gone);
    rmdir("/mnt/bench-create");
    fflush(stdout);
  }
  if (umount("/mnt") != 0) printf("skiff-agent: fsbench: umount: %s\n", strerror(errno));
}

const char* skiff_cmdline_value(const char* key, char* out, size_t size) {
  char cmdline[4096];
  read_file("/proc/cmdline", cmdline, sizeof cmdline);
  return cmdline_value(cmdline, key, out, size);
}

void skiff_power_off(int reboot_instead) {
  tcdrain(STDOUT_FILENO); /* the console is interrupt-driven: let it finish */
  sync();
  reboot(reboot_instead ? RB_AUTOBOOT : RB_POWER_OFF);
  fprintf(stderr, "skiff-agent: %s failed: %s\n", reboot_instead ? "reboot" : "power-off", strerror(errno));
  for (;;) pause();
}

void skiff_boot_begin(char* action, size_t action_size) {
  mark_userspace();
  mount_fs("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mount_fs("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mount_fs("devtmpfs", "/dev", "devtmpfs", MS_NOSUID);
  mount_fs("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV);
  mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV);

  char uptime[64];
  read_file("/proc/uptime", uptime, sizeof uptime);
  uptime[strcspn(uptime, " ")] = 0;
  snprintf(action, action_size, "poweroff");
  skiff_cmdline_value("skiff.action", action, action_size);

  printf("skiff-agent: userspace reached at %s s\n", uptime);
  printf("skiff-agent: cpus=%ld mem_total_kib=%ld\n", sysconf(_SC_NPROCESSORS_ONLN), mem_total_kib());
  report_disks();
  printf("skiff-agent: action=%s\n", action);
  fflush(stdout);
}

int skiff_boot_run_mode(const char* action) {
  char fstag[40] = "share", fsdax[4] = "0", fsloops[8] = "1";
  skiff_cmdline_value("skiff.fstag", fstag, sizeof fstag);
  skiff_cmdline_value("skiff.fsdax", fsdax, sizeof fsdax);
  skiff_cmdline_value("skiff.fsloops", fsloops, sizeof fsloops);

  if (strcmp(action, "reboot") == 0) {
    skiff_power_off(1);
  } else if (strcmp(action, "panic") == 0) {
    return 1; /* PID 1 exiting panics the kernel */
  } else if (strcmp(action, "shell") == 0) {
    pid_t pid = fork();
    if (pid == 0) {
      setsid();
      char* argv[] = {"/bin/sh", NULL};
      char* envp[] = {"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", "TERM=linux", NULL};
      execve("/bin/sh", argv, envp);
      _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  } else if (strcmp(action, "disktest") == 0) {
    disk_test();
    fflush(stdout);
  } else if (strcmp(action, "fstest") == 0) {
    fs_test(fstag, strcmp(fsdax, "1") == 0);
    fflush(stdout);
  } else if (strcmp(action, "fsbench") == 0) {
    fs_bench(fstag, atoi(fsloops) > 0 ? atoi(fsloops) : 1);
    fflush(stdout);
  } else if (strcmp(action, "vsocktest") == 0) {
    vsock_test();
    fflush(stdout);
  } else if (strcmp(action, "poweroff") != 0) {
    fprintf(stderr, "skiff-agent: unknown skiff.action=%s, powering off\n", action);
  }
  skiff_power_off(0);
  return 0;
}
