/*
 * virtio_guest.c - virtio.elf: a polling virtio 1.x driver for the two
 * virtio-mmio (version 2) devices its host test attaches, run from a real
 * vCPU. Entered in long mode from virtio_entry.S.
 *
 * Device 0, virtio-blk: negotiation (first refused without VERSION_1, then
 * accepted after a reset), one split queue, then write a sector, flush, read
 * it back, read the host's pattern from the last sector, and read past the
 * end (IOERR).
 * Device 1, virtio-vsock: rx/tx/event queues, a stream connection to the
 * host's listener, "ping" out, the host's reply in, shutdown, RST.
 *
 * Every step reports on port 0x510 (virtio_guest.h has the codes); the first
 * failure reports a VG_FAIL code and halts. No interrupts: the driver polls
 * the used rings, but it still checks and acknowledges InterruptStatus, which
 * the device sets for each used buffer.
 *
 * One request is in flight per queue at a time (rx buffers apart), so
 * descriptors are fixed per request instead of coming from a free list.
 */
#include <stddef.h>
#include <stdint.h>

#include "virtio_guest.h"

/* virtio-mmio registers (virtio 1.2, 4.2.2). */
#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEVICE_FEATURES 0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES 0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_INTERRUPT_STATUS 0x060
#define MMIO_INTERRUPT_ACK 0x064
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC_LOW 0x080
#define MMIO_QUEUE_DESC_HIGH 0x084
#define MMIO_QUEUE_DRIVER_LOW 0x090
#define MMIO_QUEUE_DRIVER_HIGH 0x094
#define MMIO_QUEUE_DEVICE_LOW 0x0a0
#define MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define MMIO_CONFIG_GENERATION 0x0fc
#define MMIO_CONFIG 0x100
#define MMIO_MAGIC_VALUE 0x74726976 /* "virt" */

/* The VMM's virtio-mmio windows (vmm/boot/layout.h), in device order. */
#define VIRTIO_MMIO_BASE 0xd1000000u
#define VIRTIO_MMIO_WINDOW 0x1000u
#define BLK_BASE VIRTIO_MMIO_BASE
#define VSOCK_BASE (VIRTIO_MMIO_BASE + VIRTIO_MMIO_WINDOW)

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 64

#define F_VERSION_1 (1ull << 32)
#define BLK_F_FLUSH (1ull << 9)

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_VSOCK 19

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define SECTOR 512

#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_SHUTDOWN_BOTH 3
#define VSOCK_BUF_ALLOC 4096

/*
 * How long a wait for the device lasts before the guest reports a timeout,
 * in TSC cycles: about 4 s at 5 GHz, 20 s at 1 GHz. A time rather than a
 * poll count, because a poll costs an exit under PVM (measured: 2 million
 * polls took 10 s) but a few nanoseconds on hardware KVM, where a count
 * short enough for PVM would not cover a slow fdatasync. Either way it runs
 * out well inside the host test's 60 s.
 */
#define WAIT_CYCLES 20000000000ull

#define QSZ 8 /* entries per queue: a power of two, below every QueueNumMax */

/* ---- freestanding support ---------------------------------------------- */

/* The compiler may emit calls to these for struct copies and zeroing. rep
 * string instructions keep it from turning the bodies back into calls. */
void* memcpy(void* dst, const void* src, size_t n) {
  void* d = dst;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
  return dst;
}

void* memset(void* dst, int c, size_t n) {
  void* d = dst;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return dst;
}

static int same(const void* a, const void* b, size_t n) {
  const uint8_t* x = a;
  const uint8_t* y = b;
  for (size_t i = 0; i < n; ++i)
    if (x[i] != y[i]) return 0;
  return 1;
}

static uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return lo | (uint64_t)hi << 32;
}

static void report(uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"((uint16_t)0x510)); }

static __attribute__((noreturn)) void fail(uint32_t step, uint32_t reason) {
  report(VG_FAIL | (step << 4) | reason);
  for (;;) __asm__ volatile("cli; hlt");
}

/* Plain 32-bit movs through volatile pointers: each is one MMIO exit that
 * the VMM decodes, and the compiler may neither merge nor reorder them. */
static uint32_t rd(uintptr_t base, uint32_t off) { return *(volatile uint32_t*)(base + off); }
static void wr(uintptr_t base, uint32_t off, uint32_t v) { *(volatile uint32_t*)(base + off) = v; }

/* A 64-bit config field, read again if the device changed the config
 * space in between (virtio 1.2, 4.2.2.3: config generation). */
static uint64_t config_read64(uintptr_t base, uint32_t off, uint32_t step) {
  for (int tries = 0; tries < 100; ++tries) {
    const uint32_t gen = rd(base, MMIO_CONFIG_GENERATION);
    const uint32_t lo = rd(base, MMIO_CONFIG + off);
    const uint32_t hi = rd(base, MMIO_CONFIG + off + 4);
    if (rd(base, MMIO_CONFIG_GENERATION) == gen) return lo | (uint64_t)hi << 32;
  }
  fail(step, VG_R_IDENTITY);
}

/* ---- split virtqueue (virtio 1.2, 2.7) ---------------------------------- */

struct vring_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct vring_avail {
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[QSZ];
  uint16_t used_event;
};

struct vring_used_elem {
  uint32_t id;
  uint32_t len;
};

struct vring_used {
  uint16_t flags;
  uint16_t idx;
  struct vring_used_elem ring[QSZ];
  uint16_t avail_event;
};

struct queue {
  /* The alignments the spec requires of each area. */
  struct vring_desc desc[QSZ] __attribute__((aligned(16)));
  struct vring_avail avail __attribute__((aligned(2)));
  struct vring_used used __attribute__((aligned(4)));
  uintptr_t base;
  uint32_t index;
  uint16_t next_avail; /* our copy of avail.idx */
  uint16_t last_used;  /* used entries consumed */
};

static void set_desc(struct queue* q, uint16_t i, const void* addr, uint32_t len, uint16_t flags, uint16_t next) {
  q->desc[i].addr = (uint64_t)(uintptr_t)addr;
  q->desc[i].len = len;
  q->desc[i].flags = flags;
  q->desc[i].next = next;
}

/* Makes chain `head` available; the device sees it after the next kick. */
static void queue_add(struct queue* q, uint16_t head) {
  q->avail.ring[q->next_avail % QSZ] = head;
  /* Release: the ring entry and descriptors are in memory before the index
   * that publishes them (a compiler barrier on x86). */
  __atomic_store_n(&q->avail.idx, ++q->next_avail, __ATOMIC_RELEASE);
}

static void queue_kick(struct queue* q) {
  /* The new avail idx must be visible before the device looks at the ring.
   * The write is caught by the VMM's ioeventfd (data = queue index). */
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  wr(q->base, MMIO_QUEUE_NOTIFY, q->index);
}

static struct vring_used_elem queue_wait_used(struct queue* q, uint32_t step) {
  for (const uint64_t deadline = rdtsc() + WAIT_CYCLES; rdtsc() < deadline;) {
    if (__atomic_load_n(&q->used.idx, __ATOMIC_ACQUIRE) != q->last_used) {
      const struct vring_used_elem e = q->used.ring[q->last_used % QSZ];
      ++q->last_used;
      return e;
    }
    __builtin_ia32_pause();
  }
  fail(step, VG_R_TIMEOUT);
}

static void queue_setup(struct queue* q, uintptr_t base, uint32_t index, uint32_t step) {
  q->base = base;
  q->index = index;
  wr(base, MMIO_QUEUE_SEL, index);
  if (rd(base, MMIO_QUEUE_READY) != 0 || rd(base, MMIO_QUEUE_NUM_MAX) < QSZ) fail(step, VG_R_QUEUE);
  wr(base, MMIO_QUEUE_NUM, QSZ);
  const uint64_t desc = (uintptr_t)q->desc, driver = (uintptr_t)&q->avail, device = (uintptr_t)&q->used;
  wr(base, MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
  wr(base, MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
  wr(base, MMIO_QUEUE_DRIVER_LOW, (uint32_t)driver);
  wr(base, MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(driver >> 32));
  wr(base, MMIO_QUEUE_DEVICE_LOW, (uint32_t)device);
  wr(base, MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(device >> 32));
  wr(base, MMIO_QUEUE_READY, 1);
  if (rd(base, MMIO_QUEUE_READY) != 1) fail(step, VG_R_QUEUE);
}

/* ---- device initialisation (virtio 1.2, 3.1.1) -------------------------- */

static void check_identity(uintptr_t base, uint32_t device_id, uint32_t step) {
  if (rd(base, MMIO_MAGIC) != MMIO_MAGIC_VALUE || rd(base, MMIO_VERSION) != 2 ||
      rd(base, MMIO_DEVICE_ID) != device_id)
    fail(step, VG_R_IDENTITY);
}

/* Reset, ACKNOWLEDGE, DRIVER, and offer `accept` as our features. Returns
 * whether FEATURES_OK stuck; the caller decides whether that is right. */
static int negotiate(uintptr_t base, uint64_t need, uint64_t accept, uint32_t step) {
  wr(base, MMIO_STATUS, 0);
  if (rd(base, MMIO_STATUS) != 0) fail(step, VG_R_FEATURES);
  wr(base, MMIO_STATUS, STATUS_ACKNOWLEDGE);
  wr(base, MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
  wr(base, MMIO_DEVICE_FEATURES_SEL, 0);
  uint64_t offered = rd(base, MMIO_DEVICE_FEATURES);
  wr(base, MMIO_DEVICE_FEATURES_SEL, 1);
  offered |= (uint64_t)rd(base, MMIO_DEVICE_FEATURES) << 32;
  if ((offered & need) != need) fail(step, VG_R_FEATURES);
  wr(base, MMIO_DRIVER_FEATURES_SEL, 0);
  wr(base, MMIO_DRIVER_FEATURES, (uint32_t)accept);
  wr(base, MMIO_DRIVER_FEATURES_SEL, 1);
  wr(base, MMIO_DRIVER_FEATURES, (uint32_t)(accept >> 32));
  wr(base, MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  return (rd(base, MMIO_STATUS) & STATUS_FEATURES_OK) != 0;
}

static void driver_ok(uintptr_t base, uint32_t step) {
  const uint32_t s = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK;
  wr(base, MMIO_STATUS, s);
  if (rd(base, MMIO_STATUS) != s) fail(step, VG_R_QUEUE); /* NEEDS_RESET: the device refused our queues */
}

/* ---- virtio-blk ---------------------------------------------------------- */

struct blk_req_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

static struct queue blk_q;
static struct blk_req_hdr blk_hdr;
static uint8_t blk_status;
static uint8_t blk_out[SECTOR];
static uint8_t blk_in[SECTOR];

/* The device raises InterruptStatus bit 0 after it uses a buffer (just after
 * the used idx moves, from its own thread): wait for it, acknowledge it, and
 * check that the acknowledgement cleared it. */
static void blk_ack_interrupt(uint32_t step) {
  for (const uint64_t deadline = rdtsc() + WAIT_CYCLES; rdtsc() < deadline;) {
    const uint32_t isr = rd(BLK_BASE, MMIO_INTERRUPT_STATUS);
    if (isr & 1) {
      wr(BLK_BASE, MMIO_INTERRUPT_ACK, isr);
      if (rd(BLK_BASE, MMIO_INTERRUPT_STATUS) != 0) fail(step, VG_R_IRQ);
      return;
    }
  }
  fail(step, VG_R_IRQ);
}

/* One request: header, optional data (device-writable for reads), status.
 * Returns the used length; the status byte is in blk_status. */
static uint32_t blk_request(uint32_t type, uint64_t sector, uint8_t* data, int device_writes, uint32_t step) {
  blk_hdr.type = type;
  blk_hdr.reserved = 0;
  blk_hdr.sector = sector;
  blk_status = 0xff; /* a value the device never writes: proves it wrote one */
  if (data) {
    set_desc(&blk_q, 0, &blk_hdr, sizeof blk_hdr, DESC_F_NEXT, 1);
    set_desc(&blk_q, 1, data, SECTOR, DESC_F_NEXT | (device_writes ? DESC_F_WRITE : 0), 2);
  } else {
    set_desc(&blk_q, 0, &blk_hdr, sizeof blk_hdr, DESC_F_NEXT, 2);
  }
  set_desc(&blk_q, 2, &blk_status, 1, DESC_F_WRITE, 0);
  queue_add(&blk_q, 0);
  queue_kick(&blk_q);
  const struct vring_used_elem e = queue_wait_used(&blk_q, step);
  if (e.id != 0) fail(step, VG_R_QUEUE);
  blk_ack_interrupt(step);
  return e.len;
}

/* Status and used length of a successful request. */
static void blk_expect_ok(uint32_t used_len, uint32_t want_len, uint32_t step) {
  if (blk_status != BLK_S_OK) fail(step, VG_R_STATUS);
  if (used_len != want_len) fail(step, VG_R_LENGTH);
}

static void blk_test(void) {
  check_identity(BLK_BASE, VIRTIO_ID_BLOCK, VG_BLK_LEGACY_REFUSED);
  /* A driver without VERSION_1 is a legacy driver, which a v2 transport
   * must turn away at FEATURES_OK. */
  if (negotiate(BLK_BASE, F_VERSION_1 | BLK_F_FLUSH, BLK_F_FLUSH, VG_BLK_LEGACY_REFUSED))
    fail(VG_BLK_LEGACY_REFUSED, VG_R_FEATURES);
  report(VG_BLK_LEGACY_REFUSED);

  if (!negotiate(BLK_BASE, F_VERSION_1 | BLK_F_FLUSH, F_VERSION_1 | BLK_F_FLUSH, VG_BLK_READY))
    fail(VG_BLK_READY, VG_R_FEATURES);
  const uint64_t capacity = config_read64(BLK_BASE, 0, VG_BLK_READY);
  if (capacity != VG_DISK_SECTORS) fail(VG_BLK_READY, VG_R_DATA);
  queue_setup(&blk_q, BLK_BASE, 0, VG_BLK_READY);
  driver_ok(BLK_BASE, VG_BLK_READY);
  report(VG_BLK_READY);

  for (uint32_t i = 0; i < SECTOR; ++i) blk_out[i] = vg_guest_byte(i);
  /* Writes and flushes only write the status byte. */
  blk_expect_ok(blk_request(BLK_T_OUT, VG_BLK_WRITE_SECTOR, blk_out, 0, VG_BLK_WRITE_OK), 1, VG_BLK_WRITE_OK);
  report(VG_BLK_WRITE_OK);
  blk_expect_ok(blk_request(BLK_T_FLUSH, 0, 0, 0, VG_BLK_FLUSH_OK), 1, VG_BLK_FLUSH_OK);
  report(VG_BLK_FLUSH_OK);

  memset(blk_in, 0xff, SECTOR);
  blk_expect_ok(blk_request(BLK_T_IN, VG_BLK_WRITE_SECTOR, blk_in, 1, VG_BLK_READBACK_OK), SECTOR + 1,
                VG_BLK_READBACK_OK);
  if (!same(blk_in, blk_out, SECTOR)) fail(VG_BLK_READBACK_OK, VG_R_DATA);
  report(VG_BLK_READBACK_OK);

  memset(blk_in, 0xff, SECTOR);
  blk_expect_ok(blk_request(BLK_T_IN, capacity - 1, blk_in, 1, VG_BLK_HOST_SECTOR_OK), SECTOR + 1,
                VG_BLK_HOST_SECTOR_OK);
  for (uint32_t i = 0; i < SECTOR; ++i)
    if (blk_in[i] != vg_host_byte(i)) fail(VG_BLK_HOST_SECTOR_OK, VG_R_DATA);
  report(VG_BLK_HOST_SECTOR_OK);

  const uint32_t len = blk_request(BLK_T_IN, capacity, blk_in, 1, VG_BLK_PAST_END_IOERR);
  if (blk_status != BLK_S_IOERR) fail(VG_BLK_PAST_END_IOERR, VG_R_STATUS);
  if (len != 1) fail(VG_BLK_PAST_END_IOERR, VG_R_LENGTH);
  report(VG_BLK_PAST_END_IOERR);
}

/* ---- virtio-vsock -------------------------------------------------------- */

struct vsock_hdr {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes");

#define VSOCK_RX 0
#define VSOCK_TX 1
#define VSOCK_EVENT 2
#define RX_BUF 256
#define EVENT_BUFS 2

static struct queue vs_rx, vs_tx, vs_ev;
static uint8_t rx_bufs[QSZ][RX_BUF];
static uint8_t tx_buf[sizeof(struct vsock_hdr) + 64];
static uint32_t event_bufs[EVENT_BUFS];
static uint64_t guest_cid;
static uint32_t fwd_cnt; /* payload bytes we consumed: our half of the credit */

static void vsock_ack_interrupt(void) {
  /* Several rx packets may share one interrupt, so there is nothing to wait
   * for: acknowledge whatever is pending. */
  const uint32_t isr = rd(VSOCK_BASE, MMIO_INTERRUPT_STATUS);
  if (isr) wr(VSOCK_BASE, MMIO_INTERRUPT_ACK, isr);
}

static void vsock_send(uint16_t op, uint32_t flags, const char* payload, uint32_t len, uint32_t step) {
  struct vsock_hdr h = {
      .src_cid = guest_cid,
      .dst_cid = VSOCK_HOST_CID,
      .src_port = VG_GUEST_PORT,
      .dst_port = VG_HOST_PORT,
      .len = len,
      .type = VSOCK_TYPE_STREAM,
      .op = op,
      .flags = flags,
      .buf_alloc = VSOCK_BUF_ALLOC,
      .fwd_cnt = fwd_cnt,
  };
  memcpy(tx_buf, &h, sizeof h);
  memcpy(tx_buf + sizeof h, payload, len);
  set_desc(&vs_tx, 0, tx_buf, (uint32_t)sizeof h + len, 0, 0);
  queue_add(&vs_tx, 0);
  queue_kick(&vs_tx);
  /* The device handles tx chains as they are kicked; used = consumed. */
  const struct vring_used_elem e = queue_wait_used(&vs_tx, step);
  if (e.id != 0) fail(step, VG_R_QUEUE);
  vsock_ack_interrupt();
}

/* The next rx packet: its header in *h, its payload copied to `payload`
 * (at most `cap` bytes). The buffer goes straight back to the device. */
static void vsock_recv(struct vsock_hdr* h, uint8_t* payload, uint32_t cap, uint32_t step) {
  const struct vring_used_elem e = queue_wait_used(&vs_rx, step);
  if (e.id >= QSZ) fail(step, VG_R_QUEUE);
  const uint8_t* buf = rx_bufs[e.id];
  if (e.len < sizeof *h || e.len > RX_BUF) fail(step, VG_R_LENGTH);
  memcpy(h, buf, sizeof *h);
  if (h->len != e.len - sizeof *h || h->len > cap) fail(step, VG_R_LENGTH);
  memcpy(payload, buf + sizeof *h, h->len);
  queue_add(&vs_rx, (uint16_t)e.id);
  queue_kick(&vs_rx);
  vsock_ack_interrupt();
  if (h->src_cid != VSOCK_HOST_CID || h->dst_cid != guest_cid || h->src_port != VG_HOST_PORT ||
      h->dst_port != VG_GUEST_PORT || h->type != VSOCK_TYPE_STREAM)
    fail(step, VG_R_PACKET);
}

/* Waits for a packet with operation `op`, skipping credit updates (the
 * device may send one at any time); anything else fails `step`. */
static void vsock_expect(uint16_t op, struct vsock_hdr* h, uint8_t* payload, uint32_t cap, uint32_t step) {
  for (;;) {
    vsock_recv(h, payload, cap, step);
    if (h->op == op) return;
    if (h->op != VSOCK_OP_CREDIT_UPDATE) fail(step, VG_R_PACKET);
  }
}

static void vsock_test(void) {
  check_identity(VSOCK_BASE, VIRTIO_ID_VSOCK, VG_VSOCK_READY);
  if (!negotiate(VSOCK_BASE, F_VERSION_1, F_VERSION_1, VG_VSOCK_READY)) fail(VG_VSOCK_READY, VG_R_FEATURES);
  guest_cid = config_read64(VSOCK_BASE, 0, VG_VSOCK_READY);
  if (guest_cid < 3 || guest_cid > 0xffff) fail(VG_VSOCK_READY, VG_R_IDENTITY); /* 0-2 are reserved */
  queue_setup(&vs_rx, VSOCK_BASE, VSOCK_RX, VG_VSOCK_READY);
  queue_setup(&vs_tx, VSOCK_BASE, VSOCK_TX, VG_VSOCK_READY);
  queue_setup(&vs_ev, VSOCK_BASE, VSOCK_EVENT, VG_VSOCK_READY);
  /* rx buffers must be there before the host can answer anything. */
  for (uint16_t i = 0; i < QSZ; ++i) {
    set_desc(&vs_rx, i, rx_bufs[i], RX_BUF, DESC_F_WRITE, 0);
    queue_add(&vs_rx, i);
  }
  for (uint16_t i = 0; i < EVENT_BUFS; ++i) {
    set_desc(&vs_ev, i, &event_bufs[i], sizeof event_bufs[i], DESC_F_WRITE, 0);
    queue_add(&vs_ev, i);
  }
  driver_ok(VSOCK_BASE, VG_VSOCK_READY);
  queue_kick(&vs_rx);
  queue_kick(&vs_ev);
  report(VG_VSOCK_READY);
  report(VG_VSOCK_CID | (uint32_t)guest_cid);

  struct vsock_hdr h;
  uint8_t payload[RX_BUF];
  vsock_send(VSOCK_OP_REQUEST, 0, 0, 0, VG_VSOCK_CONNECTED);
  vsock_expect(VSOCK_OP_RESPONSE, &h, payload, sizeof payload, VG_VSOCK_CONNECTED);
  report(VG_VSOCK_CONNECTED);

  static const char ping[] = VG_PING;
  vsock_send(VSOCK_OP_RW, 0, ping, sizeof ping - 1, VG_VSOCK_SENT);
  report(VG_VSOCK_SENT);

  /* A stream: the reply may come in several packets. */
  static const char pong[] = VG_PONG;
  uint8_t reply[sizeof pong - 1];
  uint32_t got = 0;
  while (got < sizeof reply) {
    vsock_expect(VSOCK_OP_RW, &h, payload, sizeof payload, VG_VSOCK_REPLY_OK);
    if (h.len == 0 || h.len > sizeof reply - got) fail(VG_VSOCK_REPLY_OK, VG_R_LENGTH);
    memcpy(reply + got, payload, h.len);
    got += h.len;
    fwd_cnt += h.len;
  }
  if (!same(reply, pong, sizeof reply)) fail(VG_VSOCK_REPLY_OK, VG_R_DATA);
  report(VG_VSOCK_REPLY_OK);

  /* Both directions done: the device closes the connection with RST. */
  vsock_send(VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH, 0, 0, VG_VSOCK_CLOSED);
  vsock_expect(VSOCK_OP_RST, &h, payload, sizeof payload, VG_VSOCK_CLOSED);
  report(VG_VSOCK_CLOSED);
}

void guest_main(void) {
  report(VG_STARTED);
  blk_test();
  vsock_test();
  report(VG_DONE);
}
