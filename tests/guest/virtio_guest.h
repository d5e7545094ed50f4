/*
 * virtio_guest.h - what virtio.elf and its host test (tests/vmm/
 * vm_virtio_kvm_test.cc) agree on: the report codes, the disk layout and data
 * patterns, and the vsock ports and messages.
 *
 * Plain C that also compiles as C++: the guest is freestanding C, the test
 * is C++, and one definition keeps the two from drifting apart.
 */
#ifndef SKIFF_TESTS_GUEST_VIRTIO_GUEST_H
#define SKIFF_TESTS_GUEST_VIRTIO_GUEST_H

#include <stdint.h>

/*
 * Reports on port 0x510, in the order a passing run sends them. A failure
 * sends VG_FAIL | (step << 4) | reason, where step is the code of the step
 * that was being attempted (so 0xdead2035 is "data mismatch while reading
 * back the written sector"), then halts with interrupts off.
 */
enum virtio_guest_report {
  VG_STARTED = 0x100,            /* C code runs in long mode */
  VG_BLK_LEGACY_REFUSED = 0x201, /* FEATURES_OK did not stick without VERSION_1 */
  VG_BLK_READY = 0x202,          /* negotiated again after a reset; DRIVER_OK */
  VG_BLK_WRITE_OK = 0x203,       /* VIRTIO_BLK_T_OUT of VG_BLK_WRITE_SECTOR */
  VG_BLK_FLUSH_OK = 0x204,       /* VIRTIO_BLK_T_FLUSH */
  VG_BLK_READBACK_OK = 0x205,    /* the written sector read back, equal */
  VG_BLK_HOST_SECTOR_OK = 0x206, /* the last sector holds the host's pattern */
  VG_BLK_PAST_END_IOERR = 0x207, /* a read at `capacity` failed with IOERR */
  VG_VSOCK_READY = 0x301,        /* rx/tx/event queues live, DRIVER_OK */
  VG_VSOCK_CID = 0x30000,        /* | the guest CID read from config space */
  VG_VSOCK_CONNECTED = 0x302,    /* OP_RESPONSE to our OP_REQUEST */
  VG_VSOCK_SENT = 0x303,         /* OP_RW with VG_PING consumed by the device */
  VG_VSOCK_REPLY_OK = 0x304,     /* OP_RW payload(s) from the host == VG_PONG */
  VG_VSOCK_CLOSED = 0x305,       /* OP_SHUTDOWN answered by OP_RST */
  VG_DONE = 0x600d               /* then an i8042 reset ends the VM */
};
/* Not in the enum: C enumerators must fit in an int. */
#define VG_FAIL 0xdead0000u

/* Failure reasons (the low nibble of a VG_FAIL report). */
enum virtio_guest_reason {
  VG_R_IDENTITY = 1, /* magic, version or device id */
  VG_R_FEATURES = 2, /* a feature we need is missing or FEATURES_OK failed */
  VG_R_QUEUE = 3,    /* queue not available or too small; NEEDS_RESET */
  VG_R_TIMEOUT = 4,  /* the device never used our buffer */
  VG_R_STATUS = 5,   /* wrong request status byte */
  VG_R_DATA = 6,     /* wrong data */
  VG_R_LENGTH = 7,   /* wrong used length */
  VG_R_PACKET = 8,   /* unexpected vsock packet */
  VG_R_IRQ = 9       /* InterruptStatus not set after a used buffer, or not acked */
};

/* The disk: VG_DISK_SECTORS sectors; the host fills the last one with
 * vg_host_byte(i), the guest writes VG_BLK_WRITE_SECTOR with vg_guest_byte(i). */
#define VG_DISK_SECTORS 128
#define VG_BLK_WRITE_SECTOR 3

static inline uint8_t vg_host_byte(uint32_t i) { return (uint8_t)(0x5a ^ (i * 13)); }
static inline uint8_t vg_guest_byte(uint32_t i) { return (uint8_t)(i * 7 + 0x3c); }

/* vsock: the guest (CID from config space) connects from VG_GUEST_PORT to
 * the host's VG_HOST_PORT, sends VG_PING, expects VG_PONG back. */
#define VG_GUEST_PORT 1234
#define VG_HOST_PORT 5000
#define VG_PING "ping from guest"
#define VG_PONG "PING FROM GUEST"

#endif /* SKIFF_TESTS_GUEST_VIRTIO_GUEST_H */
