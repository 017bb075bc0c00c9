// ondemand_probe: a minimal cachefiles on-demand daemon used by the VM suite
// (tests/e2e) to check the harness and to observe the kernel's rules.
//
// It opens /dev/cachefiles, binds ondemand mode on --cache-dir, answers every
// OPEN whose cookie key names a --blob with that file's size (or --size), and
// serves each READ by pread from the file + aligned O_DIRECT pwrite into the
// anon fd + CACHEFILES_IOC_READ_COMPLETE. Every message, every reply and every
// experiment result is logged, one line each, to --log (O_APPEND, unbuffered)
// so the guest scenario script can inspect it while the probe runs.
//
// Experiment switches change how it answers (see usage()). Single-threaded;
// runs until SIGTERM/SIGINT.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/cachefiles.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 4096u
#define MAX_BLOBS 16
#define MAX_OBJECTS 4096

enum tail_mode { TAIL_PADDED, TAIL_SHORT, TAIL_SECTOR };

struct blob {
  const char* cookie;
  const char* path;
  long long size;  // -1: the file's size
};

struct object {
  int fd;  // anon fd, -1 when closed
  int img_fd;
  long long size;
  int reads;
};

static struct blob g_blobs[MAX_BLOBS];
static int g_nblobs;
static struct object g_objects[MAX_OBJECTS];
static int g_log_fd = 2;
static volatile sig_atomic_t g_stop;

// Experiment switches.
static enum tail_mode g_tail = TAIL_PADDED;
static int g_misaligned;               // first READ: try unaligned offset/buffer/length
static int g_double_complete;          // first READ: complete twice
static int g_bad_copen;                // first OPEN: copen unknown id, then duplicate
static long long g_no_data_from = -1;  // READs with off >= this ...
static int g_no_data_count;            // ... this many get no data
static int g_serve_all_on_open;        // write the whole blob right after copen

static void logf_(const char* fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof(line) - 2) n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  ssize_t w = write(g_log_fd, line, (size_t)n);
  (void)w;
}

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static int dev_cmd(int dev, const char* cmd) {
  ssize_t n = write(dev, cmd, strlen(cmd));
  return n < 0 ? -errno : 0;
}

static struct blob* find_blob(const char* cookie, size_t cookie_len) {
  for (int i = 0; i < g_nblobs; i++) {
    if (strlen(g_blobs[i].cookie) == cookie_len &&
        memcmp(g_blobs[i].cookie, cookie, cookie_len) == 0)
      return &g_blobs[i];
  }
  return NULL;
}

static void* alloc_aligned(size_t len) {
  void* p = NULL;
  if (posix_memalign(&p, BLOCK, len ? len : BLOCK) != 0) return NULL;
  memset(p, 0, len ? len : BLOCK);
  return p;
}

// Reads [off, off+len) of the image into buf (zero beyond EOF).
static int fill(struct object* o, char* buf, long long off, size_t len) {
  memset(buf, 0, len);
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(o->img_fd, buf + done, len - done, off + (long long)done);
    if (n < 0) return -errno;
    if (n == 0) break;
    done += (size_t)n;
  }
  return 0;
}

// Writes image data for [off, off+len) into the anon fd, clipped to the blob
// size, with the tail handled per g_tail. Returns 0 or -errno.
static int serve_range(struct object* o, unsigned obj_id, long long off, long long len) {
  if (off >= o->size) return 0;
  long long end = off + len;
  if (end > o->size) end = o->size;
  long long want = end - off;
  long long wlen = want;
  if (end == o->size) {
    if (g_tail == TAIL_PADDED) wlen = (want + BLOCK - 1) / BLOCK * BLOCK;
    if (g_tail == TAIL_SECTOR) wlen = (want + 511) / 512 * 512;
  } else {
    wlen = (want + BLOCK - 1) / BLOCK * BLOCK;
  }
  char* buf = alloc_aligned((size_t)((wlen + BLOCK - 1) / BLOCK * BLOCK));
  if (!buf) return -ENOMEM;
  int rc = fill(o, buf, off, (size_t)wlen);
  if (rc == 0) {
    ssize_t n = pwrite(o->fd, buf, (size_t)wlen, off);
    rc = n < 0 ? -errno : 0;
    logf_("WRITE obj=%u off=%lld len=%lld ret=%zd errno=%d", obj_id, off, wlen, n, n < 0 ? -rc : 0);
    if (n >= 0 && n != wlen) rc = -EIO;
  }
  free(buf);
  return rc;
}

static void experiment_misaligned(struct object* o, unsigned obj_id, long long off) {
  char* buf = alloc_aligned(2 * BLOCK);
  if (!buf) return;
  // Unaligned offset, aligned buffer, whole block of correct data.
  fill(o, buf, off + 512, BLOCK);
  ssize_t n = pwrite(o->fd, buf, BLOCK, off + 512);
  logf_("EXP unaligned_offset obj=%u ret=%zd errno=%d", obj_id, n, n < 0 ? errno : 0);
  // Aligned offset, buffer misaligned by 1 byte.
  fill(o, buf + 1, off, BLOCK);
  n = pwrite(o->fd, buf + 1, BLOCK, off);
  logf_("EXP unaligned_buffer obj=%u ret=%zd errno=%d", obj_id, n, n < 0 ? errno : 0);
  // Aligned offset, aligned buffer, length 1000 (not a sector multiple).
  fill(o, buf, off, 1000);
  n = pwrite(o->fd, buf, 1000, off);
  logf_("EXP unaligned_length_1000 obj=%u ret=%zd errno=%d", obj_id, n, n < 0 ? errno : 0);
  // Aligned offset, 512-byte length (sector multiple, not a page multiple).
  fill(o, buf, off, 512);
  n = pwrite(o->fd, buf, 512, off);
  logf_("EXP sector_length_512 obj=%u ret=%zd errno=%d", obj_id, n, n < 0 ? errno : 0);
  // pread on the anon fd.
  n = pread(o->fd, buf, BLOCK, off);
  logf_("EXP anon_pread obj=%u ret=%zd errno=%d", obj_id, n, n < 0 ? errno : 0);
  free(buf);
}

static void handle_open(int dev, struct cachefiles_msg* msg) {
  struct cachefiles_open* op = (struct cachefiles_open*)msg->data;
  const char* vol = (const char*)op->data;
  const char* cookie = (const char*)op->data + op->volume_key_size;
  int fd = (int)op->fd;
  unsigned id = msg->object_id;
  logf_("OPEN msg=%u obj=%u fd=%d flags=%u vol=%.*s cookie=%.*s", msg->msg_id, id, fd, op->flags,
        (int)op->volume_key_size, vol, (int)op->cookie_key_size, cookie);

  char cmd[128];
  if (g_bad_copen == 1) {
    snprintf(cmd, sizeof(cmd), "copen %u,4096", msg->msg_id + 100000);
    int rc = dev_cmd(dev, cmd);
    logf_("EXP copen_unknown_id ret=%d errno=%d", rc, -rc);
    snprintf(cmd, sizeof(cmd), "copen %u", msg->msg_id + 100001);
    rc = dev_cmd(dev, cmd);
    logf_("EXP copen_no_size ret=%d errno=%d", rc, -rc);
  }

  struct blob* b = find_blob(cookie, op->cookie_key_size);
  long long size = -ENOENT;
  int img_fd = -1;
  if (b) {
    img_fd = open(b->path, O_RDONLY | O_CLOEXEC);
    if (img_fd < 0) {
      size = -errno;
    } else {
      struct stat st;
      fstat(img_fd, &st);
      size = b->size >= 0 ? b->size : (long long)st.st_size;
    }
  }
  if (id >= MAX_OBJECTS) size = -ENOSPC;
  snprintf(cmd, sizeof(cmd), "copen %u,%lld", msg->msg_id, size);
  int rc = dev_cmd(dev, cmd);
  logf_("COPEN msg=%u obj=%u size=%lld ret=%d errno=%d", msg->msg_id, id, size, rc, -rc);
  if (g_bad_copen == 1) {
    int rc2 = dev_cmd(dev, cmd);
    logf_("EXP copen_duplicate ret=%d errno=%d", rc2, -rc2);
    g_bad_copen = 2;
  }
  if (size < 0 || rc < 0) {
    close(fd);
    if (img_fd >= 0) close(img_fd);
    return;
  }
  off_t end = lseek(fd, 0, SEEK_END);
  logf_("EXP seek_end obj=%u ret=%lld errno=%d", id, (long long)end, end < 0 ? errno : 0);
  struct object* o = &g_objects[id];
  if (o->fd >= 0) close(o->fd);
  if (o->img_fd >= 0) close(o->img_fd);
  o->fd = fd;
  o->img_fd = img_fd;
  o->size = size;
  o->reads = 0;
  if (g_serve_all_on_open && size > 0) {
    int r = serve_range(o, id, 0, size);
    logf_("SERVE_ALL obj=%u size=%lld ret=%d", id, size, r);
  }
}

static void handle_read(struct cachefiles_msg* msg) {
  struct cachefiles_read* rd = (struct cachefiles_read*)msg->data;
  unsigned id = msg->object_id;
  logf_("READ msg=%u obj=%u off=%llu len=%llu", msg->msg_id, id, (unsigned long long)rd->off,
        (unsigned long long)rd->len);
  if (id >= MAX_OBJECTS || g_objects[id].fd < 0) {
    logf_("ERROR read for unknown object %u", id);
    return;
  }
  struct object* o = &g_objects[id];
  o->reads++;
  long long off = (long long)rd->off, len = (long long)rd->len;

  int no_data = 0;
  if (g_no_data_from >= 0 && off >= g_no_data_from && g_no_data_count > 0) {
    g_no_data_count--;
    no_data = 1;
    logf_("NODATA msg=%u obj=%u off=%lld len=%lld", msg->msg_id, id, off, len);
  }
  if (g_misaligned == 1 && len >= BLOCK && off + (long long)BLOCK <= o->size) {
    experiment_misaligned(o, id, off);
    g_misaligned = 2;
  }
  if (!no_data) {
    int rc = serve_range(o, id, off, len);
    if (rc < 0) logf_("ERROR serve obj=%u off=%lld len=%lld errno=%d", id, off, len, -rc);
  }
  int rc = ioctl(o->fd, CACHEFILES_IOC_READ_COMPLETE, msg->msg_id);
  logf_("CREAD msg=%u obj=%u ret=%d errno=%d", msg->msg_id, id, rc, rc < 0 ? errno : 0);
  if (g_double_complete == 1) {
    rc = ioctl(o->fd, CACHEFILES_IOC_READ_COMPLETE, msg->msg_id);
    logf_("EXP double_complete ret=%d errno=%d", rc, rc < 0 ? errno : 0);
    g_double_complete = 2;
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: ondemand_probe --cache-dir DIR --blob COOKIE=FILE[:SIZE] ... [options]\n"
          "  --log FILE            log every message/reply/experiment (default stderr)\n"
          "  --ready FILE          create FILE once bound\n"
          "  --tag NAME            cache tag\n"
          "  --tail=padded|short|sector  last partial block: whole zero-padded 4 KiB block\n"
          "                        (default), exact remaining bytes, or rounded to 512\n"
          "  --misaligned          first READ: try unaligned offset/buffer/length writes\n"
          "  --double-complete     first READ: READ_COMPLETE twice\n"
          "  --bad-copen           first OPEN: copen unknown id, malformed, then duplicate\n"
          "  --no-data-from=OFF --no-data-count=N  complete N READs at off>=OFF without data\n"
          "  --serve-all-on-open   write the whole blob right after copen\n");
}

int main(int argc, char** argv) {
  const char* cache_dir = NULL;
  const char* log_path = NULL;
  const char* ready = NULL;
  const char* tag = NULL;
  static const struct option opts[] = {{"cache-dir", required_argument, 0, 'c'},
                                       {"blob", required_argument, 0, 'b'},
                                       {"log", required_argument, 0, 'l'},
                                       {"ready", required_argument, 0, 'r'},
                                       {"tag", required_argument, 0, 't'},
                                       {"tail", required_argument, 0, 'T'},
                                       {"misaligned", no_argument, 0, 'm'},
                                       {"double-complete", no_argument, 0, 'd'},
                                       {"bad-copen", no_argument, 0, 'B'},
                                       {"no-data-from", required_argument, 0, 'n'},
                                       {"no-data-count", required_argument, 0, 'N'},
                                       {"serve-all-on-open", no_argument, 0, 'S'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'c':
        cache_dir = optarg;
        break;
      case 'b': {
        if (g_nblobs == MAX_BLOBS) return 2;
        char* eq = strchr(optarg, '=');
        if (!eq) {
          usage();
          return 2;
        }
        *eq = 0;
        struct blob* b = &g_blobs[g_nblobs++];
        b->cookie = optarg;
        b->path = eq + 1;
        b->size = -1;
        char* colon = strrchr(eq + 1, ':');
        if (colon) {
          *colon = 0;
          b->size = atoll(colon + 1);
        }
        break;
      }
      case 'l':
        log_path = optarg;
        break;
      case 'r':
        ready = optarg;
        break;
      case 't':
        tag = optarg;
        break;
      case 'T':
        if (!strcmp(optarg, "padded"))
          g_tail = TAIL_PADDED;
        else if (!strcmp(optarg, "short"))
          g_tail = TAIL_SHORT;
        else if (!strcmp(optarg, "sector"))
          g_tail = TAIL_SECTOR;
        else {
          usage();
          return 2;
        }
        break;
      case 'm':
        g_misaligned = 1;
        break;
      case 'd':
        g_double_complete = 1;
        break;
      case 'B':
        g_bad_copen = 1;
        break;
      case 'n':
        g_no_data_from = atoll(optarg);
        break;
      case 'N':
        g_no_data_count = atoi(optarg);
        break;
      case 'S':
        g_serve_all_on_open = 1;
        break;
      default:
        usage();
        return 2;
    }
  }
  if (!cache_dir) {
    usage();
    return 2;
  }
  if (log_path) {
    g_log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g_log_fd < 0) {
      perror(log_path);
      return 1;
    }
  }
  for (int i = 0; i < MAX_OBJECTS; i++) g_objects[i].fd = g_objects[i].img_fd = -1;

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int dev = open("/dev/cachefiles", O_RDWR | O_CLOEXEC);
  if (dev < 0) {
    logf_("FATAL open /dev/cachefiles errno=%d", errno);
    return 1;
  }
  char cmd[4200];
  snprintf(cmd, sizeof(cmd), "dir %s", cache_dir);
  int rc = dev_cmd(dev, cmd);
  if (rc == 0 && tag) {
    snprintf(cmd, sizeof(cmd), "tag %s", tag);
    rc = dev_cmd(dev, cmd);
  }
  if (rc == 0) rc = dev_cmd(dev, "bind ondemand");
  if (rc < 0) {
    logf_("FATAL bind errno=%d", -rc);
    return 1;
  }
  logf_("BOUND dir=%s", cache_dir);
  {
    char buf[CACHEFILES_MSG_MAX_SIZE];
    ssize_t n = read(dev, buf, sizeof(buf));
    logf_("EXP idle_read ret=%zd errno=%d", n, n < 0 ? errno : 0);
  }
  if (ready) {
    int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
  }

  char buf[CACHEFILES_MSG_MAX_SIZE];
  while (!g_stop) {
    struct pollfd p = {.fd = dev, .events = POLLIN};
    int pr = poll(&p, 1, 200);
    if (pr < 0) {
      if (errno == EINTR) continue;
      logf_("FATAL poll errno=%d", errno);
      return 1;
    }
    if (pr == 0) continue;
    ssize_t n = read(dev, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      logf_("ERROR read errno=%d", errno);
      continue;
    }
    if (n == 0) continue;
    struct cachefiles_msg* msg = (struct cachefiles_msg*)buf;
    switch (msg->opcode) {
      case CACHEFILES_OP_OPEN:
        handle_open(dev, msg);
        break;
      case CACHEFILES_OP_READ:
        handle_read(msg);
        break;
      case CACHEFILES_OP_CLOSE: {
        unsigned id = msg->object_id;
        logf_("CLOSE msg=%u obj=%u", msg->msg_id, id);
        if (id < MAX_OBJECTS && g_objects[id].fd >= 0) {
          close(g_objects[id].fd);
          close(g_objects[id].img_fd);
          g_objects[id].fd = g_objects[id].img_fd = -1;
        }
        break;
      }
      default:
        logf_("UNKNOWN opcode=%u msg=%u len=%u", msg->opcode, msg->msg_id, msg->len);
    }
  }
  logf_("EXIT");
  return 0;
}
