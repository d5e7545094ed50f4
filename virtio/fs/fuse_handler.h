#pragma once
// What the virtio-fs device asks of a FUSE server. A request comes as a
// ChainReader over the device-readable part of its descriptor chain
// (fuse_in_header, the opcode's arguments, WRITE data) and a ChainWriter over
// the device-writable part (fuse_out_header and the reply): the server never
// computes a guest address, and READ/WRITE move file data straight between
// the file and guest memory with preadv/pwritev on iovecs() (no copy in
// between).
#include <cstdint>

#include "virtio/virtqueue.h"

namespace skiff::virtio {

// What a FUSE server offers the virtio-fs device. handle() may be called
// from several worker threads at once.
class FuseHandler {
 public:
  virtual ~FuseHandler() = default;
  // Serves one request. Returns the bytes written to `out` (fuse_out_header
  // included), or 0 for requests that take no reply (FORGET, BATCH_FORGET)
  // and for input too short to carry a fuse_in_header. Never throws for
  // anything the guest sent.
  virtual uint32_t handle(ChainReader& in, ChainWriter& out) = 0;
  // The device was reset: forget every inode and handle the guest had.
  virtual void reset() {}
};

}  // namespace skiff::virtio
